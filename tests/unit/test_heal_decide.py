"""``decide.healing.plan_heal``: table-driven, time passed in, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.decide.healing import find_member, plan_heal, slot_of
from alertscaler.model.groups import Member, MemberState
from alertscaler.model.healing import HealAction, HealOutcome, HealRecord, HealRules, HealSignal, SignalSource

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=1)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def member(n: int, created: datetime = OLD) -> Member:
    return Member(f"m{n}", f"127.0.0.1:{9000 + n}", MemberState.RUNNING, created)


def down(key: str, at: float = 5, source: SignalSource = SignalSource.ALERT) -> HealSignal:
    return HealSignal(key, source, "InstanceDown", ago(at))


def heal(slot: str, at: float, action: HealAction = HealAction.REPLACE) -> HealRecord:
    return HealRecord(slot, slot, action, ago(at))


MEMBERS = [member(i) for i in range(1, 7)]  # six members, all past their grace period
RULES = HealRules()

CASES = [
    # id, signals, members, history, rules, monitoring problem -> {key: outcome}
    ("one-down-is-healed", [down("m1")], MEMBERS, [], RULES, None, {"m1": HealOutcome.HEAL}),
    ("by-address", [down("127.0.0.1:9002")], MEMBERS, [], RULES, None, {"127.0.0.1:9002": HealOutcome.HEAL}),
    ("unknown-member", [down("m9")], MEMBERS, [], RULES, None, {"m9": HealOutcome.UNKNOWN_MEMBER}),
    ("in-grace", [down("m1")], [member(1, ago(30)), *MEMBERS[1:]], [], RULES, None, {"m1": HealOutcome.GRACE}),
    ("grace-over", [down("m1")], [member(1, ago(121)), *MEMBERS[1:]], [], RULES, None, {"m1": HealOutcome.HEAL}),
    ("budget-one-per-window", [down("m1", 9), down("m2", 3)], MEMBERS, [], RULES, None,
     {"m1": HealOutcome.HEAL, "m2": HealOutcome.OVER_BUDGET}),
    ("budget-spent-by-a-recent-heal", [down("m1")], MEMBERS, [heal("m5", 10)], RULES, None,
     {"m1": HealOutcome.OVER_BUDGET}),
    ("older-heal-outside-the-window", [down("m1")], MEMBERS, [heal("m5", 25)], RULES, None,
     {"m1": HealOutcome.HEAL}),
    ("budget-of-two", [down("m1"), down("m2"), down("m3")], MEMBERS, [], replace(RULES, budget=2), None,
     {"m1": HealOutcome.HEAL, "m2": HealOutcome.HEAL, "m3": HealOutcome.OVER_BUDGET}),  # 3 of 6: no storm
    ("storm-freezes-everything", [down(f"m{i}") for i in range(1, 5)], MEMBERS, [], RULES, None,
     dict.fromkeys([f"m{i}" for i in range(1, 5)], HealOutcome.FROZEN)),
    ("one-of-two-is-no-storm", [down("m1")], MEMBERS[:2], [], RULES, None, {"m1": HealOutcome.HEAL}),
    ("both-of-two-is-a-storm", [down("m1"), down("m2")], MEMBERS[:2], [], RULES, None,
     {"m1": HealOutcome.FROZEN, "m2": HealOutcome.FROZEN}),
    ("prometheus-down-freezes", [down("m1")], MEMBERS, [], RULES, "Prometheus unreachable",
     {"m1": HealOutcome.FROZEN}),
    ("flapping-quarantined", [down("m1")], MEMBERS, [heal("m1", 100), heal("m1", 200), heal("m1", 300)],
     replace(RULES, can_quarantine=True), None, {"m1": HealOutcome.QUARANTINE}),
    ("flapping-without-quarantine", [down("m1")], MEMBERS, [heal("m1", 100), heal("m1", 200), heal("m1", 300)],
     RULES, None, {"m1": HealOutcome.FLAPPING}),
    ("flaps-outside-the-period-are-forgotten", [down("m1")], MEMBERS,
     [heal("m1", 100), heal("m1", 200), heal("m1", 3700)], RULES, None, {"m1": HealOutcome.HEAL}),
    ("several-signals-one-member", [down("m1", 9), down("m1", 3, SignalSource.STATUS)], MEMBERS, [], RULES, None,
     {"m1": HealOutcome.HEAL}),
]


@pytest.mark.parametrize(("signals", "members", "history", "rules", "problem", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(signals: list[HealSignal], members: list[Member], history: list[HealRecord], rules: HealRules,
              problem: str | None, expected: dict[str, HealOutcome]) -> None:
    plan = plan_heal(signals, members, history, rules, NOW, monitoring_problem=problem)
    assert {j.key: j.outcome for j in plan.judgements} == expected
    assert plan.frozen == any(o is HealOutcome.FROZEN for o in expected.values())
    for j in plan.judgements:
        assert j.message  # every judgement says why
        assert (j.action is not None) == j.outcome.acts


def test_acting_members_get_the_policy_action_and_their_slot() -> None:
    rules = replace(HealRules(), action=HealAction.REBOOT, budget=3)
    replaced = {"m2": "slot-a"}
    plan = plan_heal([down("m1"), down("m2")], MEMBERS, [], rules, NOW, replaced=replaced)
    assert [(j.member_id, j.action, j.slot) for j in plan.acting] == [
        ("m1", HealAction.REBOOT, "m1"), ("m2", HealAction.REBOOT, "slot-a")]


def test_a_replacement_inherits_the_flaps_of_its_slot() -> None:
    """m7 replaced m1 (slot m1) which was healed twice before: the third heal of the slot is a flap."""
    members = [*MEMBERS, member(7)]
    history = [heal("m1", 100), heal("m1", 200), heal("m1", 300)]
    plan = plan_heal([down("m7")], members, history, replace(RULES, can_quarantine=True), NOW,
                     replaced={"m7": "m1"})
    (judgement,) = plan.judgements
    assert (judgement.outcome, judgement.slot) == (HealOutcome.QUARANTINE, "m1")
    assert "healed 3 times" in judgement.message


def test_quarantine_does_not_spend_the_budget() -> None:
    history = [heal("m1", 100), heal("m1", 200), heal("m1", 300)]
    plan = plan_heal([down("m1"), down("m2")], MEMBERS, history, replace(RULES, can_quarantine=True), NOW)
    assert {j.member_id: j.outcome for j in plan.judgements} == {"m1": HealOutcome.QUARANTINE,
                                                                 "m2": HealOutcome.HEAL}


def test_the_same_member_by_id_and_by_address_counts_once() -> None:
    plan = plan_heal([down("m1"), down("127.0.0.1:9001")], MEMBERS, [], RULES, NOW)
    assert [(j.member_id, j.outcome) for j in plan.judgements] == [("m1", HealOutcome.HEAL)]


@pytest.mark.parametrize(("key", "found"), [("m3", "m3"), ("127.0.0.1:9003", "m3"), ("nope", None)],
                         ids=["id", "address", "missing"])
def test_find_member(key: str, found: str | None) -> None:
    result = find_member(key, MEMBERS)
    assert (result.id if result else None) == found


def test_slot_of() -> None:
    assert slot_of("m9", {"m9": "m1"}) == "m1"
    assert slot_of("m1", {"m9": "m1"}) == "m1"
