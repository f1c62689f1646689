"""Silences for heal signals, pure and table-driven (time passed in): ``act.silencing.judge_heal`` (Alertmanager's
view of a group's heal alerts → which members' alerts are silenced or inhibited; fail open / closed) and
``decide.healing.plan_heal`` with it (a silenced member is not healed; the provider's own status is not subject to
silences; silenced members are no part of a storm)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.silencing import View, judge_heal
from alertscaler.alertmanager.client import AmAlert
from alertscaler.config.alertmanager_api import OnUnreachable, SilencesConfig
from alertscaler.decide.healing import plan_heal
from alertscaler.model.groups import Member, MemberState
from alertscaler.model.healing import HealOutcome, HealRules, HealSignal, HealSilences, SignalSource

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LABELS = ("alertscaler_member", "instance")


def am(fp: str, member: str, silenced: tuple[str, ...] = (), inhibited: tuple[str, ...] = (),
       label: str = "alertscaler_member") -> AmAlert:
    state = "suppressed" if silenced or inhibited else "active"
    return AmAlert(fp, {"alertname": "InstanceDown", label: member}, state, silenced, inhibited)


def view(*alerts: AmAlert) -> View:
    return View(NOW, {a.fingerprint: a for a in alerts})


RESPECT = SilencesConfig()
IGNORE = SilencesConfig(respect=False)
HEAL_OPEN = SilencesConfig.model_validate({"when_unreachable": {"heal": "open"}})
DOWN = View(NOW, error="Alertmanager at http://am:9093 is unreachable: connection refused")

JUDGE_HEAL = [
    # id, view, setting -> suppressed {member: why}, blocked?, note?
    ("active-alert", view(am("a", "m1")), RESPECT, {}, False, False),
    ("silenced", view(am("a", "m1", ("s-1",))), RESPECT, {"m1": "silenced by s-1"}, False, False),
    ("inhibited", view(am("a", "m1", inhibited=("f9",))), RESPECT, {"m1": "inhibited by f9"}, False, False),
    ("named-by-instance", view(am("a", "10.0.0.1:9100", ("s-1",), label="instance")), RESPECT,
     {"10.0.0.1:9100": "silenced by s-1"}, False, False),
    ("one-of-two-alerts-silenced-is-not", view(am("a", "m1", ("s-1",)), am("b", "m1")), RESPECT, {}, False, False),
    ("both-alerts-suppressed", view(am("a", "m1", ("s-1",)), am("b", "m1", inhibited=("f9",))), RESPECT,
     {"m1": "inhibited by f9; silenced by s-1"}, False, False),
    ("per-member", view(am("a", "m1", ("s-1",)), am("b", "m2")), RESPECT, {"m1": "silenced by s-1"}, False, False),
    ("nameless-alert-ignored", View(NOW, {"a": AmAlert("a", {"alertname": "InstanceDown"}, "suppressed", ("s",))}),
     RESPECT, {}, False, False),
    ("respect-false", view(am("a", "m1", ("s-1",))), IGNORE, {}, False, False),
    ("unreachable-fails-closed-by-default", DOWN, RESPECT, {}, True, False),
    ("unreachable-set-open", DOWN, HEAL_OPEN, {}, False, True),
    ("unreachable-respect-false", DOWN, IGNORE, {}, False, False),
]


@pytest.mark.parametrize(("seen", "setting", "suppressed", "blocked", "noted"), [c[1:] for c in JUDGE_HEAL],
                         ids=[c[0] for c in JUDGE_HEAL])
def test_judge_heal(seen: View, setting: SilencesConfig, suppressed: dict[str, str], blocked: bool,
                    noted: bool) -> None:
    judged = judge_heal(seen, LABELS, setting)
    assert (dict(judged.suppressed), judged.blocked is not None, bool(judged.note)) == (suppressed, blocked, noted)
    if blocked:
        assert "silences.when_unreachable.heal: closed" in (judged.blocked or "")
        assert "connection refused" in (judged.blocked or "")
    if noted:
        assert "heal fails open" in judged.note


def test_heal_fails_closed_unless_set_open() -> None:
    assert SilencesConfig().when_unreachable.heal is OnUnreachable.CLOSED
    assert HEAL_OPEN.when_unreachable.heal is OnUnreachable.OPEN
    assert HEAL_OPEN.when_unreachable.scale_in is OnUnreachable.CLOSED  # the others keep their defaults


OLD = NOW - timedelta(hours=1)
MEMBERS = [Member(f"m{i}", f"127.0.0.1:{9000 + i}", MemberState.RUNNING, OLD) for i in range(1, 7)]


def alert(key: str) -> HealSignal:
    return HealSignal(key, SignalSource.ALERT, "alert InstanceDown firing", NOW - timedelta(seconds=5))


def status(key: str) -> HealSignal:
    return HealSignal(key, SignalSource.STATUS, "provider reports failed", NOW - timedelta(seconds=4))


SILENCED_M1 = HealSilences({"m1": "silenced by s-1"})
BLOCKED = HealSilences(blocked="Alertmanager could not be asked (refused); heal fails closed")
OPEN = HealSilences(note="Alertmanager could not be asked (refused); heal fails open")

PLANS = [
    # id, signals, silences -> {key: outcome}
    ("not-asked", [alert("m1")], None, {"m1": HealOutcome.HEAL}),
    ("nothing-silenced", [alert("m1")], HealSilences(), {"m1": HealOutcome.HEAL}),
    ("silenced", [alert("m1")], SILENCED_M1, {"m1": HealOutcome.SILENCED}),
    ("another-member-silenced", [alert("m2")], SILENCED_M1, {"m2": HealOutcome.HEAL}),
    ("one-silenced-one-healed", [alert("m1"), alert("m2")], SILENCED_M1,
     {"m1": HealOutcome.SILENCED, "m2": HealOutcome.HEAL}),
    ("status-is-not-subject-to-silences", [status("m1")], SILENCED_M1, {"m1": HealOutcome.HEAL}),
    ("alert-and-status-heals", [alert("m1"), status("m1")], SILENCED_M1, {"m1": HealOutcome.HEAL}),
    ("unknown-member-silenced", [alert("m9")], HealSilences({"m9": "silenced by s-1"}),
     {"m9": HealOutcome.SILENCED}),
    ("fails-closed", [alert("m1"), alert("m2")], BLOCKED,
     {"m1": HealOutcome.SILENCE_UNKNOWN, "m2": HealOutcome.SILENCE_UNKNOWN}),
    ("fails-closed-status-still-heals", [alert("m1"), status("m2")], BLOCKED,
     {"m1": HealOutcome.SILENCE_UNKNOWN, "m2": HealOutcome.HEAL}),
    ("fails-open", [alert("m1")], OPEN, {"m1": HealOutcome.HEAL}),
    ("silenced-members-are-no-storm", [alert(f"m{i}") for i in range(1, 5)],
     HealSilences({f"m{i}": "silenced by s-1" for i in range(1, 4)}),
     {"m1": HealOutcome.SILENCED, "m2": HealOutcome.SILENCED, "m3": HealOutcome.SILENCED, "m4": HealOutcome.HEAL}),
]


@pytest.mark.parametrize(("signals", "silences", "expected"), [c[1:] for c in PLANS], ids=[c[0] for c in PLANS])
def test_plan_heal_with_silences(signals: list[HealSignal], silences: HealSilences | None,
                                 expected: dict[str, HealOutcome]) -> None:
    plan = plan_heal(signals, MEMBERS, [], HealRules(), NOW, silences=silences)
    assert {j.key: j.outcome for j in plan.judgements} == expected
    assert not plan.frozen
    for j in plan.judgements:
        assert (j.action is not None) == j.outcome.acts
        if j.outcome is HealOutcome.SILENCED:
            assert "silenced by s-1 in Alertmanager: not healed" in j.message
        if j.outcome is HealOutcome.SILENCE_UNKNOWN:
            assert "heal fails closed" in j.message and j.member_id == j.key
        if silences is OPEN:
            assert "heal fails open" in j.message
