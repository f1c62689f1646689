"""Approvals and change freezes, pure, with time passed in: the rules of ``decide.approvals``, the operators' gate of
``act.recording`` (pause, hold, freeze, approval, dry run) and the ``approval`` / ``change_freeze`` config, each case
a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alertscaler.act.recording import About, effective, gate_of
from alertscaler.config import load_policy
from alertscaler.decide.approvals import (
    approval_needed,
    approve_refusal,
    expired,
    frozen,
    next_freeze,
    open_freeze,
)
from alertscaler.model.approvals import ApprovalKind, ApprovalRules, ApprovalState, ChangeFreeze, PendingApproval
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import HealTarget, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import ConfigError
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Bounds

TUESDAY = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
FRIDAY_6PM = datetime(2026, 12, 11, 18, 0, tzinfo=UTC)
WEEKEND = ChangeFreeze.model_validate({"windows": [{"name": "weekend", "cron": "0 18 * * FRI", "duration": "62h",
                                                    "reason": "weekend freeze"}]})
BERLIN = ChangeFreeze.model_validate({"timezone": "Europe/Berlin",
                                      "windows": [{"name": "weekend", "cron": "0 18 * * FRI", "duration": "62h"}]})
OVERLAPPING = ChangeFreeze.model_validate({"windows": [
    {"name": "release", "cron": "0 9 11 12 *", "duration": "1h"},
    {"name": "weekend", "cron": "0 8 11 12 *", "duration": "5h"}]})


def scale(start: int, end: int) -> Verdict:
    return Verdict(Outcome.ACTED, Reason.SCALED, start, end, f"scale {start} -> {end}")


HEAL = Verdict(Outcome.ACTED, Reason.HEALED, 3, 3, "replace m-1")
REPLACE = (HealTarget("m-1", "replace", "s-1"),)
REBOOT = (HealTarget("m-2", "reboot", "s-2"),)
SKIP = Verdict(Outcome.SKIPPED, Reason.COOLDOWN, 3, 3, "cooldown")


@pytest.mark.parametrize(
    ("freeze", "now", "window", "closes"),
    [
        (WEEKEND, TUESDAY, None, None),
        (WEEKEND, FRIDAY_6PM - timedelta(minutes=1), None, None),
        (WEEKEND, FRIDAY_6PM, "weekend", datetime(2026, 12, 14, 8, 0, tzinfo=UTC)),
        (WEEKEND, datetime(2026, 12, 13, 23, 0, tzinfo=UTC), "weekend", datetime(2026, 12, 14, 8, 0, tzinfo=UTC)),
        (WEEKEND, datetime(2026, 12, 14, 8, 0, tzinfo=UTC), None, None),
        (BERLIN, datetime(2026, 12, 11, 17, 0, tzinfo=UTC), "weekend", datetime(2026, 12, 14, 7, 0, tzinfo=UTC)),
        (BERLIN, datetime(2026, 12, 11, 16, 59, tzinfo=UTC), None, None),
        (OVERLAPPING, datetime(2026, 12, 11, 9, 30, tzinfo=UTC), "weekend", datetime(2026, 12, 11, 13, 0, tzinfo=UTC)),
        (None, FRIDAY_6PM, None, None),
    ],
    ids=["weekday", "a-minute-before", "opens", "sunday-night", "closed-monday-8am", "berlin-is-utc+1",
         "berlin-before", "overlapping-the-later-close-wins", "no-freeze"],
)
def test_open_freeze(freeze: ChangeFreeze | None, now: datetime, window: str | None, closes: datetime | None) -> None:
    found = open_freeze(freeze, now)
    assert (found.name if found else None, found.closes_at if found else None) == (window, closes)
    if found is not None and window == "weekend" and freeze is WEEKEND:
        assert found.describe() == "change freeze 'weekend' until 2026-12-14T08:00:00Z (weekend freeze)"


def test_next_freeze_and_a_naive_time_refused() -> None:
    assert next_freeze(WEEKEND, TUESDAY) == FRIDAY_6PM
    assert next_freeze(None, TUESDAY) is None
    with pytest.raises(ValueError, match="aware"):
        open_freeze(WEEKEND, TUESDAY.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("verdict", "stopped"),
    [(scale(3, 4), False), (scale(4, 3), True), (HEAL, True), (SKIP, False)],
    ids=["scale-out-runs", "scale-in-frozen", "heal-frozen", "skip-untouched"],
)
def test_what_a_freeze_stops(verdict: Verdict, stopped: bool) -> None:
    assert frozen(verdict) is stopped


RULES = ApprovalRules(over_change=3, heal=["replace"])
IN_ONLY = ApprovalRules(over_change=3, scale_out=False)
EVERY_SCALE_IN = ApprovalRules(over_change=0, scale_out=False)


@pytest.mark.parametrize(
    ("rules", "verdict", "targets", "why"),
    [
        (RULES, scale(2, 5), (), None),
        (RULES, scale(2, 6), (), "a scale-out of 4 instances is over the approval limit of 3"),
        (RULES, scale(9, 2), (), "a scale-in of 7 instances is over the approval limit of 3"),
        (IN_ONLY, scale(2, 20), (), None),
        (IN_ONLY, scale(20, 2), (), "a scale-in of 18 instances is over the approval limit of 3"),
        (EVERY_SCALE_IN, scale(3, 2), (), "a scale-in of 1 instances is over the approval limit of 0"),
        (EVERY_SCALE_IN, scale(3, 3), (), None),
        (RULES, HEAL, REPLACE, "heal actions of kind replace need approval"),
        (RULES, HEAL, REBOOT, None),
        (RULES, HEAL, REPLACE + REBOOT, "heal actions of kind replace need approval"),
        (ApprovalRules(heal=["reboot"]), scale(1, 30), (), None),
        (RULES, SKIP, (), None),
        (None, scale(1, 30), (), None),
    ],
    ids=["within-limit", "scale-out-over", "scale-in-over", "scale-out-exempt", "scale-in-still-counted",
         "every-scale-in", "no-change", "heal-of-a-named-kind", "heal-of-another-kind", "mixed-heal",
         "heal-rules-only", "skip", "no-rules"],
)
def test_approval_needed(rules: ApprovalRules | None, verdict: Verdict, targets: tuple[HealTarget, ...],
                         why: str | None) -> None:
    assert approval_needed(rules, verdict, targets) == why


def waiting(kind: ApprovalKind = ApprovalKind.SCALE, state: ApprovalState = ApprovalState.PENDING,
            expires: datetime = TUESDAY + timedelta(hours=1)) -> PendingApproval:
    return PendingApproval(7, "web", kind, "scale_out", Trigger.NOTIFICATION, "scale_out", 2, 7,
                           REPLACE if kind is ApprovalKind.HEAL else (), "why", "scale 2 -> 7", TUESDAY, expires,
                           state, resolved_by="alice" if state is not ApprovalState.PENDING else None)


@pytest.mark.parametrize(
    ("approval", "desired", "bounds", "now", "refusal"),
    [
        (waiting(), 2, Bounds(min_size=1, max_size=10), TUESDAY, None),
        (waiting(), 3, Bounds(min_size=1, max_size=10), TUESDAY, "the group moved since: its desired size is 3"),
        (waiting(), 2, Bounds(min_size=1, max_size=5), TUESDAY, "7 is outside the bounds in force now (1..5)"),
        (waiting(), 2, Bounds(min_size=1, max_size=10), TUESDAY + timedelta(hours=1),
         "expired at 2026-12-08T11:00:00Z"),
        (waiting(state=ApprovalState.REJECTED), 2, Bounds(min_size=1, max_size=10), TUESDAY,
         "is already rejected by alice"),
        (waiting(state=ApprovalState.SUPERSEDED), 2, Bounds(min_size=1, max_size=10), TUESDAY, "already superseded"),
        (waiting(ApprovalKind.HEAL), 5, Bounds(min_size=1, max_size=4), TUESDAY, None),
    ],
    ids=["approvable", "group-moved", "outside-bounds-now", "expired", "rejected", "superseded",
         "a-heal-whatever-the-size"],
)
def test_approve_refusal(approval: PendingApproval, desired: int, bounds: Bounds, now: datetime,
                         refusal: str | None) -> None:
    got = approve_refusal(approval, desired, bounds, now)
    assert (got is None) == (refusal is None)
    if refusal is not None:
        assert got is not None and refusal in got and "approval 7" in got


@pytest.mark.parametrize(
    ("approval", "now", "due"),
    [(waiting(), TUESDAY + timedelta(minutes=59), False), (waiting(), TUESDAY + timedelta(hours=1), True),
     (waiting(state=ApprovalState.APPROVED), TUESDAY + timedelta(days=1), False)],
    ids=["before", "at-expiry", "approved-never-expires"],
)
def test_expired(approval: PendingApproval, now: datetime, due: bool) -> None:
    assert expired(approval, now) is due
    assert approval.waiting(now) is (approval.state is ApprovalState.PENDING and not due)


POLICY = load_policy("""
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 20
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 5}
    approval: {over_change: 3, heal: [replace], expire_after: 30m}
    change_freeze:
      windows: [{name: weekend, cron: "0 18 * * FRI", duration: 62h, reason: weekend freeze}]
  dry:
    provider: {type: fake}
    max_size: 20
    dry_run: true
    approval: {over_change: 3}
    change_freeze: {windows: [{name: weekend, cron: "0 18 * * FRI", duration: 62h}]}
  plain:
    provider: {type: fake}
    max_size: 20
""")
SATURDAY = datetime(2026, 12, 12, 12, 0, tzinfo=UTC)
PAUSE = Pause("web", TUESDAY - timedelta(days=7), None, "incident 42")


def held(group: str = "web") -> GroupState:
    return GroupState(group, 3, held_until=SATURDAY + timedelta(days=7))


GATE_CASES: list[tuple[Any, ...]] = [
    # id, group, trigger, now, pauses, state, verdict, targets -> outcome, reason, message fragment
    ("small-change-runs", "web", Trigger.NOTIFICATION, TUESDAY, [], None, scale(3, 6), (), Outcome.ACTED,
     Reason.SCALED, "scale 3 -> 6"),
    ("big-change-waits", "web", Trigger.NOTIFICATION, TUESDAY, [], None, scale(3, 8), (), Outcome.SKIPPED,
     Reason.PENDING_APPROVAL, "waits for approval until 2026-12-08T10:30:00Z (a scale-out of 5 instances"),
    ("timer-waits", "web", Trigger.TIMER, TUESDAY, [], None, scale(3, 8), (), Outcome.SKIPPED,
     Reason.PENDING_APPROVAL, "would have scale 3 -> 8"),
    ("tracking-waits", "web", Trigger.TRACKING, TUESDAY, [], None, scale(12, 2), (), Outcome.SKIPPED,
     Reason.PENDING_APPROVAL, "a scale-in of 10 instances"),
    ("schedule-is-an-operators-plan", "web", Trigger.SCHEDULE, TUESDAY, [], None, scale(3, 10), (), Outcome.ACTED,
     Reason.SCALED, "scale 3 -> 10"),
    ("manual-never-waits", "web", Trigger.MANUAL, TUESDAY, [], None, scale(3, 15), (), Outcome.ACTED,
     Reason.SCALED, "scale 3 -> 15"),
    ("reconcile-never-waits", "web", Trigger.RECONCILE, TUESDAY, [], None, scale(3, 15), (), Outcome.ACTED,
     Reason.SCALED, "scale 3 -> 15"),
    ("approved-runs", "web", Trigger.APPROVAL, TUESDAY, [], None, scale(3, 15), (), Outcome.ACTED, Reason.SCALED,
     "scale 3 -> 15"),
    ("replace-heal-waits", "web", Trigger.HEALTH, TUESDAY, [], None, HEAL, REPLACE, Outcome.SKIPPED,
     Reason.PENDING_APPROVAL, "heal actions of kind replace need approval"),
    ("reboot-heal-runs", "web", Trigger.HEALTH, TUESDAY, [], None, HEAL, REBOOT, Outcome.ACTED, Reason.HEALED,
     "replace m-1"),
    ("freeze-stops-scale-in", "web", Trigger.NOTIFICATION, SATURDAY, [], None, scale(4, 3), (), Outcome.SKIPPED,
     Reason.CHANGE_FREEZE, "change freeze 'weekend' until 2026-12-14T08:00:00Z (weekend freeze): nothing but "
                           "scale-out runs: would have scale 4 -> 3"),
    ("freeze-stops-heals", "web", Trigger.HEALTH, SATURDAY, [], None, HEAL, REBOOT, Outcome.SKIPPED,
     Reason.CHANGE_FREEZE, "would have replace m-1"),
    ("freeze-stops-schedules-scale-in", "web", Trigger.SCHEDULE, SATURDAY, [], None, scale(6, 2), (), Outcome.SKIPPED,
     Reason.CHANGE_FREEZE, "would have scale 6 -> 2"),
    ("freeze-lets-scale-out-run", "web", Trigger.TIMER, SATURDAY, [], None, scale(3, 4), (), Outcome.ACTED,
     Reason.SCALED, "scale 3 -> 4"),
    ("freeze-then-approval-for-a-big-scale-out", "web", Trigger.NOTIFICATION, SATURDAY, [], None, scale(3, 9), (),
     Outcome.SKIPPED, Reason.PENDING_APPROVAL, "a scale-out of 6 instances"),
    ("freeze-beats-approval", "web", Trigger.NOTIFICATION, SATURDAY, [], None, scale(12, 2), (), Outcome.SKIPPED,
     Reason.CHANGE_FREEZE, "would have scale 12 -> 2"),
    ("manual-runs-through-a-freeze-noted", "web", Trigger.MANUAL, SATURDAY, [], None, scale(5, 2), (), Outcome.ACTED,
     Reason.SCALED, "scale 5 -> 2 (during change freeze 'weekend' until 2026-12-14T08:00:00Z (weekend freeze): an "
                    "operator's command runs)"),
    ("approved-runs-through-a-freeze-noted", "web", Trigger.APPROVAL, SATURDAY, [], None, scale(12, 2), (),
     Outcome.ACTED, Reason.SCALED, "an operator's command runs"),
    ("reconcile-not-frozen", "web", Trigger.RECONCILE, SATURDAY, [], None, scale(5, 2), (), Outcome.ACTED,
     Reason.SCALED, "scale 5 -> 2"),
    ("pause-beats-approval", "web", Trigger.NOTIFICATION, TUESDAY, [PAUSE], None, scale(3, 9), (), Outcome.SKIPPED,
     Reason.PAUSED, "incident 42"),
    ("pause-beats-freeze", "web", Trigger.NOTIFICATION, SATURDAY, [PAUSE], None, scale(4, 3), (), Outcome.SKIPPED,
     Reason.PAUSED, "incident 42"),
    ("hold-beats-freeze", "web", Trigger.TIMER, SATURDAY, [], held(), scale(3, 2), (), Outcome.SKIPPED,
     Reason.HELD, "size held at 3"),
    ("hold-beats-approval", "web", Trigger.TIMER, TUESDAY, [], held(), scale(3, 9), (), Outcome.SKIPPED,
     Reason.HELD, "size held at 3"),
    ("dry-run-notes-approval", "dry", Trigger.NOTIFICATION, TUESDAY, [], None, scale(3, 9), (), Outcome.SKIPPED,
     Reason.DRY_RUN, "dry run: would have scale 3 -> 9 (would wait for approval: a scale-out of 6 instances"),
    ("dry-run-frozen", "dry", Trigger.NOTIFICATION, SATURDAY, [], None, scale(4, 3), (), Outcome.SKIPPED,
     Reason.CHANGE_FREEZE, "would have scale 4 -> 3"),
    ("no-rules-no-gate", "plain", Trigger.NOTIFICATION, SATURDAY, [], None, scale(19, 1), (), Outcome.ACTED,
     Reason.SCALED, "scale 19 -> 1"),
    ("skips-pass", "web", Trigger.NOTIFICATION, SATURDAY, [], None, SKIP, (), Outcome.SKIPPED, Reason.COOLDOWN,
     "cooldown"),
]


@pytest.mark.parametrize(("group", "trigger", "now", "pauses", "state", "verdict", "targets", "outcome", "reason",
                          "fragment"), [c[1:] for c in GATE_CASES], ids=[c[0] for c in GATE_CASES])
def test_the_gate(group: str, trigger: Trigger, now: datetime, pauses: list[Pause], state: GroupState | None,
                  verdict: Verdict, targets: tuple[HealTarget, ...], outcome: Outcome, reason: Reason,
                  fragment: str) -> None:
    config = POLICY.groups[group]
    about = About(group, None if trigger in (Trigger.MANUAL, Trigger.RECONCILE) else "scale_out", trigger, config)
    gate = gate_of(pauses, about, state, now)
    got = effective(verdict, config, gate, targets)
    assert (got.outcome, got.reason, got.from_capacity, got.to_capacity) == \
        (outcome, reason, verdict.from_capacity, verdict.to_capacity)
    assert fragment in got.message
    assert effective(got, config, gate, targets) == got  # applying it again changes nothing


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("approval: {}", "groups.web.approval: nothing would ever need approval"),
        ("approval: {over_change: -1}", "groups.web.approval.over_change"),
        ("approval: {over_change: 3, expire_after: 8d}", "groups.web.approval.expire_after: must be more "
                                                         "than 0s and at most 7d, got 192h"),
        ("approval: {heal: [explode]}",
         "groups.web.approval.heal[0]: Input should be 'replace', 'reboot' or 'quarantine'"),
        ("approval: {over_change: 3, when: always}", "groups.web.approval.when"),
        ("change_freeze: {windows: []}", "groups.web.change_freeze.windows"),
        ("change_freeze: {windows: [{name: w, cron: '0 25 * * *', duration: 1h}]}",
         "groups.web.change_freeze.windows[0].cron: hour field '25': 25 is out of range 0-23"),
        ("change_freeze: {windows: [{name: w, cron: '@daily', duration: 40d}]}",
         "groups.web.change_freeze.windows[0].duration: must be at most 31d"),
        ("change_freeze: {timezone: Mars/Olympus, windows: [{name: w, cron: '@daily', duration: 1h}]}",
         "groups.web.change_freeze.timezone: unknown time zone 'Mars/Olympus'"),
        ("change_freeze: {windows: [{name: w, cron: '@daily', duration: 1h}, {name: w, cron: '@weekly', "
         "duration: 1h}]}", "window name 'w' is used twice"),
    ],
    ids=["nothing-to-approve", "negative-limit", "expiry-too-long", "unknown-heal-action", "unknown-key",
         "no-windows", "bad-cron", "window-too-long", "unknown-zone", "duplicate-window"],
)
def test_config_problems_name_their_path(section: str, problem: str) -> None:
    text = ("server: {auth: {insecure_no_auth: true}}\ngroups:\n  web:\n    provider: {type: fake}\n"
            f"    max_size: 5\n    {section}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    assert any(problem in str(p) for p in info.value.problems), info.value.problems


def test_config_defaults() -> None:
    web = POLICY.groups["web"]
    assert web.approval is not None and (web.approval.scale_out, web.approval.expire_after) == (True, 1800.0)
    assert ApprovalRules(over_change=1).expire_after == 3600.0
    assert web.change_freeze is not None and web.change_freeze.timezone == "UTC"
