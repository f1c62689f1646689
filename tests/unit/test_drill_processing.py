"""Fire-drill alerts in ``act.processing`` (``act.drills``): split out of their notification, decided ``drill``
(skipped; from/to and the message say what the policy would have done), and NOTHING else touched — no desired
change, no cooldown stamp, no active alert for the re-evaluation timer, no heal signal, no action — even in a group
that is not dry-run, and even when Alertmanager re-sends them. Real alerts in the same notification are decided as
usual. A real SQLite store; the time is passed in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertscaler.act.processing import Processor
from alertscaler.act.recording import About, Evidence, record
from alertscaler.config import load_policy
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.drills import DRILL_LABEL
from alertscaler.model.errors import ConfigError
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction
from alertscaler.store.sql import SqlStore
from tests.support.webhooks import alert, body

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 4
    desired: 2
    DRYRUN
    scale_out: {matchers: ['alertname="HighLoad"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 60s CHECKED}
    scale_in: {matchers: ['alertname="LowLoad"', 'alertscaler_group="web"'], adjustment: -1, cooldown: 60s}
    heal: {matchers: ['alertname="InstanceDown"']}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def drill(name: str = "HighLoad", status: str = "firing", drill_id: str = "d1", **labels: str) -> dict[str, Any]:
    return alert(name, status, **{"alertscaler_group": "web", DRILL_LABEL: drill_id, **labels})


def real(name: str = "HighLoad", status: str = "firing", **labels: str) -> dict[str, Any]:
    return alert(name, status, **{"alertscaler_group": "web", **labels})


@dataclass(frozen=True)
class Case:
    id: str
    notifications: list[list[dict[str, Any]]]  # each: the alerts of one webhook, in order
    # (group, policy, outcome, reason, from, to, in the message) of every decision, oldest first
    decisions: list[tuple[str | None, str | None, str, str, int | None, int | None, str]]
    desired: int = 2                      # web's desired after it all
    stamped: bool = False                 # web's scale_out cooldown clock ran
    active: list[str] = field(default_factory=list)  # alertnames alertscaler believes firing after it all
    state: GroupState | None = None       # web's row before (None: the initial one)
    pauses: list[Pause] = field(default_factory=list)
    dry_run: bool = False
    checked: bool = False
    gated: bool = False


CASES = [
    Case("alone-in-a-group-that-is-not-dry-run", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "fire drill d1: would have scale 2 -> 3; nothing was")]),
    Case("with-a-real-alert-in-one-notification", [[real(), drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "fire drill d1: would have scale 2 -> 3"),
          ("web", "scale_out", "acted", "scaled", 2, 3, "scale 2 -> 3")],
         desired=3, stamped=True, active=["HighLoad"]),
    Case("two-drills-one-decision", [[drill(drill_id="a", instance="x"), drill(drill_id="b", instance="y")]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "fire drills a, b: would have scale 2 -> 3")]),
    Case("scale-in-policy", [[drill("LowLoad")]],
         [("web", "scale_in", "skipped", "drill", 2, 1, "would have scale 2 -> 1")]),
    Case("re-sent-by-alertmanager", [[drill()], [drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "would have scale 2 -> 3"),
          ("web", "scale_out", "skipped", "drill", None, None, "re-sent by Alertmanager; a drill never acts")]),
    Case("resolved-at-the-end", [[drill()], [drill(status="resolved")]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "would have scale 2 -> 3"),
          ("web", "scale_out", "skipped", "drill", None, None, "resolved: the drill ended; nothing to do")]),
    Case("dry-run-group", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3,
           "would not have acted (dry_run): dry run: would have scale 2 -> 3")], dry_run=True),
    Case("cooldown-running", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 2, "would not have acted (cooldown): scale_out cooldown: 30s")],
         state=GroupState("web", 2, last_scale_out_at=T0 - timedelta(seconds=30)), stamped=True),
    Case("paused-group", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "would not have acted (paused): paused until resumed")],
         pauses=[Pause("web", T0 - timedelta(minutes=1), None, "")]),
    Case("held-group", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "would not have acted (held): size held at 2")],
         state=GroupState("web", 2, held_until=T0 + timedelta(hours=1))),
    Case("no-group-matches", [[alert("Unknown", **{DRILL_LABEL: "d1"})]],
         [(None, None, "skipped", "drill", None, None, "fire drill d1: no group policy matches the drill's labels")]),
    Case("matches-a-heal-policy", [[alert("InstanceDown", instance="10.0.0.1:9100", **{DRILL_LABEL: "d1"})]],
         [("web", "heal", "skipped", "drill", None, None, "a heal policy matches; a drill stores no heal signal")]),
    Case("checked-policy-no-live-check", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "(the live check is not run in a drill: fixed step)")],
         checked=True),
    Case("alertmanager-gated", [[drill()]],
         [("web", "scale_out", "skipped", "drill", 2, 3, "(Alertmanager's silences are not asked in a drill)")],
         gated=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_drill_is_decided_apart_and_touches_nothing(store: SqlStore, tmp_path: Path, case: Case) -> None:
    text = POLICY.replace("DRYRUN", "dry_run: true" if case.dry_run else "").replace(
        " CHECKED", ", guard: 'up > 0'" if case.checked else "")
    policy = load_policy(text, base_dir=tmp_path)
    with store.transaction() as tx:
        tx.lock_group("web", 2)
        if case.state is not None:
            tx.save_group(case.state)
        for pause in case.pauses:
            tx.set_pause(pause)
    before = store.get_group_state("web")
    processor = Processor(policy, store, gated=case.gated)
    checks = []
    for i, alerts in enumerate(case.notifications):
        store.record_notification(parse_notification(body(*alerts)), T0 + timedelta(seconds=i))
        done = processor.process_pending(T0 + timedelta(seconds=i))
        checks += [(c.group, c.policy) for c in done.checks]
        assert all(r.action_id is None for r in done.recorded if r.reason is Reason.DRILL)

    decisions = sorted(store.list_decisions(limit=100), key=lambda d: d.id)
    got = [(d.group, d.policy, d.outcome.value, d.reason.value, d.from_capacity, d.to_capacity) for d in decisions]
    assert got == [want[:6] for want in case.decisions]
    for d, want in zip(decisions, case.decisions, strict=True):
        assert want[6] in d.message, d.message
        if d.reason is Reason.DRILL:
            assert d.alerts and all(DRILL_LABEL in a["labels"] for a in d.alerts)  # only drill alerts kept
            assert d.received_at is not None and d.notification_id is not None  # the hops' times
    after = store.get_group_state("web")
    assert after is not None and before is not None
    assert after.desired == case.desired
    assert (after.last_scale_out_at != before.last_scale_out_at) == (case.stamped and case.state is None)
    assert after.last_scale_in_at == before.last_scale_in_at and after.held_until == before.held_until
    assert sorted(a.labels["alertname"] for a in store.active_alerts()) == case.active
    assert all(DRILL_LABEL not in a.labels for a in store.active_alerts())
    with store.transaction() as tx:
        assert tx.pending_heal_signals("web") == []
    assert len(store.list_actions(limit=100)) == (case.desired - 2)  # only the real alert's
    assert checks == []  # a drill never waits for a live check or Alertmanager's view


@pytest.mark.parametrize("verdict", [
    Verdict(Outcome.ACTED, Reason.SCALED, 2, 3, "scale 2 -> 3"),
    Verdict(Outcome.ACTED, Reason.MANUAL, 2, 4, "manual scale 2 -> 4"),
], ids=["step", "manual"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["live-group", "dry-run-group"])
def test_record_never_acts_on_a_drills_evidence(store: SqlStore, tmp_path: Path, verdict: Verdict,
                                                 dry_run: bool) -> None:
    """Belt and braces: whatever path hands ``record`` a drill alert as evidence, it records a ``drill`` skip
    and moves nothing (not even a dry run's cooldown clock)."""
    policy = load_policy(POLICY.replace("DRYRUN", "dry_run: true" if dry_run else "").replace(" CHECKED", ""),
                         base_dir=tmp_path)
    notification = parse_notification(body(drill()))
    with store.transaction() as tx:
        state = tx.lock_group("web", 2)
        done = record(tx, About("web", "scale_out", Trigger.TIMER, policy.groups["web"]), verdict, T0,
                      state=state, step=None if verdict.reason is Reason.MANUAL else Direction.SCALE_OUT,
                      evidence=Evidence.of(list(notification.alerts)))
    assert (done.outcome, done.reason, done.action_id) == (Outcome.SKIPPED, Reason.DRILL, None)
    assert store.get_group_state("web") == GroupState("web", 2)
    assert store.list_actions(limit=10) == []
    assert "nothing was changed" in store.list_decisions(limit=1)[0].message


@pytest.mark.parametrize("rule", [
    "{alert: Busy, expr: up > 0, labels: {alertscaler_drill: x}}",
    "{alert: Busy, expr: up > 0, carry: [alertscaler_drill]}",
    "{record: 'job:up', expr: up, labels: {alertscaler_drill: x}}",
], ids=["alert-label", "carried-label", "recording-rule-label"])
def test_the_drill_label_is_reserved_in_rules(tmp_path: Path, rule: str) -> None:
    """A real alert carrying the drill label would never act: the policy file cannot give it one."""
    text = POLICY.replace("DRYRUN", "").replace(" CHECKED", "") + f"rules: {{groups: [{{name: r, rules: [{rule}]}}]}}\n"
    with pytest.raises(ConfigError) as caught:
        load_policy(text, base_dir=tmp_path)
    assert "alertscaler_drill is reserved for fire drills" in str(caught.value.problems)
