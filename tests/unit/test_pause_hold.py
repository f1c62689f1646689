"""The operators' gate of ``act.recording`` (pause, hold), pure, with time passed in: every case is a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.recording import About, effective, gate_of
from alertscaler.config import load_policy
from alertscaler.model.controls import EVERY_GROUP, Pause
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.groups import GroupState

NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
POLICY = load_policy("""
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 2
    max_size: 6
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1}
  dry:
    provider: {type: fake}
    max_size: 6
    dry_run: true
    scale_out: {matchers: ['alertname="QueueDeep"'], adjustment: 1}
""")
STEP = Verdict(Outcome.ACTED, Reason.SCALED, 3, 4, "scale 3 -> 4")
NO_CHANGE = Verdict(Outcome.SKIPPED, Reason.COOLDOWN, 3, 3, "cooldown")
BELOW_MIN = Verdict(Outcome.ACTED, Reason.SCALED, 1, 3, "scale 1 -> 3")


def pause(scope: str = "web", minutes: float | None = None) -> Pause:
    return Pause(scope, NOW - timedelta(hours=1), NOW + timedelta(minutes=minutes) if minutes is not None else None,
                 "incident 42")


def held(minutes: float) -> GroupState:
    return GroupState("web", 3, held_until=NOW + timedelta(minutes=minutes))


CASES = [
    # id, group, trigger, pauses, state, verdict -> outcome, reason, (from, to)
    ("not-paused", "web", Trigger.NOTIFICATION, [], GroupState("web", 3), STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("group-paused", "web", Trigger.NOTIFICATION, [pause()], None, STEP, Outcome.SKIPPED, Reason.PAUSED, (3, 4)),
    ("every-group-paused", "web", Trigger.TIMER, [pause(EVERY_GROUP)], None, STEP, Outcome.SKIPPED, Reason.PAUSED,
     (3, 4)),
    ("other-group-paused", "web", Trigger.TIMER, [pause("api")], None, STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("pause-ends-in-a-minute", "web", Trigger.TIMER, [pause(minutes=1)], None, STEP, Outcome.SKIPPED, Reason.PAUSED,
     (3, 4)),
    ("pause-expired", "web", Trigger.TIMER, [pause(minutes=0)], None, STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("manual-while-paused", "web", Trigger.MANUAL, [pause()], None, STEP, Outcome.SKIPPED, Reason.PAUSED, (3, 4)),
    ("heal-while-paused", "web", Trigger.HEALTH, [pause(EVERY_GROUP)], None, STEP, Outcome.SKIPPED, Reason.PAUSED,
     (3, 4)),
    ("skip-while-paused-unchanged", "web", Trigger.TIMER, [pause()], None, NO_CHANGE, Outcome.SKIPPED,
     Reason.COOLDOWN, (3, 3)),
    ("paused-beats-dry-run", "dry", Trigger.NOTIFICATION, [pause("dry")], None, STEP, Outcome.SKIPPED,
     Reason.PAUSED, (3, 4)),
    ("dry-run-not-paused", "dry", Trigger.NOTIFICATION, [], None, STEP, Outcome.SKIPPED, Reason.DRY_RUN, (3, 4)),
    ("held-alert", "web", Trigger.NOTIFICATION, [], held(30), STEP, Outcome.SKIPPED, Reason.HELD, (3, 4)),
    ("held-timer", "web", Trigger.TIMER, [], held(30), STEP, Outcome.SKIPPED, Reason.HELD, (3, 4)),
    ("held-tracking", "web", Trigger.TRACKING, [], held(30), STEP, Outcome.SKIPPED, Reason.HELD, (3, 4)),
    ("held-schedule", "web", Trigger.SCHEDULE, [], held(30), STEP, Outcome.SKIPPED, Reason.HELD, (3, 4)),
    ("hold-ended", "web", Trigger.TIMER, [], held(0), STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("manual-replaces-hold", "web", Trigger.MANUAL, [], held(30), STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("reconcile-not-held", "web", Trigger.RECONCILE, [], held(30), STEP, Outcome.ACTED, Reason.SCALED, (3, 4)),
    ("held-but-below-min-moves-into-bounds", "web", Trigger.SCHEDULE, [],
     GroupState("web", 1, held_until=NOW + timedelta(minutes=30)), BELOW_MIN, Outcome.ACTED, Reason.CLAMPED, (1, 2)),
]


@pytest.mark.parametrize(("group", "trigger", "pauses", "state", "verdict", "outcome", "reason", "sizes"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_gate(group: str, trigger: Trigger, pauses: list[Pause], state: GroupState | None, verdict: Verdict,
                  outcome: Outcome, reason: Reason, sizes: tuple[int, int]) -> None:
    config = POLICY.groups[group]
    about = About(group, None if trigger is Trigger.MANUAL else "scale_out", trigger, config)
    got = effective(verdict, config, gate_of(pauses, about, state, NOW))
    assert (got.outcome, got.reason, (got.from_capacity, got.to_capacity)) == (outcome, reason, sizes)
    if got.reason in (Reason.PAUSED, Reason.HELD):
        assert f"would have {verdict.message}" in got.message
    if got.reason is Reason.HELD:
        assert "2026-12-08T10:30:00" in got.message
    if got.reason is Reason.PAUSED:
        assert "incident 42" in got.message
    assert effective(got, config, gate_of(pauses, about, state, NOW)) == got  # applying it again changes nothing
