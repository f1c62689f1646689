"""Recording a verdict: the ONE place a decision is written, for every path that decides.

Called inside a store transaction by every decider — alert notifications (``act.processing``), the
re-evaluation timer and checked policies (``act.reevaluating``), target tracking (``act.tracking``),
schedules (``act.scheduling``), healing (``act.healing.HealJudge``), reconcile at start (``act.lifecycle``)
and manual scale (``act.engine``) — and, after the commit, by ``act.engine`` to publish what was recorded.

``record`` owns, for one verdict:

- the dry-run rule (``effective``): a dry-run group records what it would have done as a skip (reason
  ``dry_run``); its size never moves, a step's cooldown clock still runs (the step it would have taken);
- the decision row (``NewDecision`` is built here only), with at most ``MAX_ALERTS_PER_DECISION`` alerts;
- the group's row: an acted decision moves ``desired`` (a step also stamps its direction's cooldown clock);
  a ``reconcile`` skip makes ``desired`` follow the provider that decides the size itself;
- the action: created already claimed when the group has nothing queued (``Claimed``: the worker runs it
  without reading it back), else queued behind the group's older action;
- the one log line: ``decision group=… policy=… from=… to=… outcome=… reason=… trigger=…: message``.

``publish`` (after the commit) counts each decision in ``/metrics`` and gives each acted decision to its
group's worker (``act.queueing.GroupWorker.deliver``): the one way an action reaches a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from alertscaler.act.metrics import Metrics
from alertscaler.config import GroupConfig
from alertscaler.model.alerts import Alert
from alertscaler.model.decisions import Action, ActionState, HealTarget, Outcome, Reason, Trigger, Verdict
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import AdjustmentType, Direction
from alertscaler.providers.base import ScaleRequest
from alertscaler.store.base import ActiveAlert, NewDecision, StoredNotification, Tx

log = logging.getLogger(__name__)

MAX_ALERTS_PER_DECISION = 50  # kept with a decision (and handed to the provider): explains it, stays small


@dataclass(frozen=True)
class About:
    """Whom a decision is about and why it was taken: the group (None: no group matched the alerts) with its
    configuration (its dry-run setting and exact-capacity policies apply), the policy, the trigger."""

    group: str | None
    policy: str | None
    trigger: Trigger
    config: GroupConfig | None = None


@dataclass(frozen=True)
class Evidence:
    """What a decision was about: alert summaries (at most ``MAX_ALERTS_PER_DECISION``), how many alerts in all,
    the notification they came in, the earliest alert start."""

    alerts: Sequence[dict[str, Any]] = ()
    total: int = 0
    stored: StoredNotification | None = None
    starts_at: datetime | None = None

    @classmethod
    def of(cls, alerts: Sequence[Alert] | Sequence[ActiveAlert], stored: StoredNotification | None = None,
           total: int = 0) -> Evidence:
        return cls([summary(a) for a in alerts[:MAX_ALERTS_PER_DECISION]], max(total, len(alerts)), stored,
                   min((a.starts_at for a in alerts), default=None))


NO_EVIDENCE = Evidence()


@dataclass(frozen=True)
class Claimed:
    """An action created already claimed (RUNNING) by the decision's transaction, with what the provider gets."""

    action: Action
    request: ScaleRequest


class Recorded(NamedTuple):
    """One recorded decision (the result type of every decider). ``verdict`` is the effective one (dry run
    applied; None for a skip without capacities); ``claimed``: its action, for the worker to run at once."""

    group: str | None
    outcome: Outcome
    reason: Reason
    action_id: int | None = None
    decision_id: int | None = None
    claimed: Claimed | None = None
    verdict: Verdict | None = None


class Worker(Protocol):
    def deliver(self, recorded: Recorded) -> None: ...


def effective(verdict: Verdict, config: GroupConfig | None) -> Verdict:
    """The dry-run rule: a dry-run group's action becomes a recorded skip (``dry_run``)."""
    return verdict.as_dry_run() if config is not None and config.dry_run else verdict


def exact(about: About) -> bool:
    """Does the decision set an exact capacity (manual, or an ``exact_capacity`` step policy)?"""
    if about.trigger is Trigger.MANUAL:
        return True
    return about.config is not None and about.policy in exact_policies(about.config)


def exact_policies(config: GroupConfig) -> frozenset[str]:
    return frozenset(d.value for d, step in config.policies()
                     if step.adjustment_type is AdjustmentType.EXACT_CAPACITY)


def record(tx: Tx, about: About, verdict: Verdict, now: datetime, *, state: GroupState | None = None,
           step: Direction | None = None, evidence: Evidence = NO_EVIDENCE, targets: Sequence[HealTarget] = (),
           numbered: bool = False) -> Recorded:
    """Record ``verdict`` (dry run applied) and what follows from it. ``state``: the group's row, locked in
    ``tx`` (given: the row follows the decision); ``step``: the direction of a step, whose cooldown clock it
    stamps; ``targets``: a heal action's members; ``numbered``: the caller needs the decision's id even
    for a skip."""
    verdict = effective(verdict, about.config)
    verdict = _with_count(verdict, evidence)
    row = _row(about, verdict.outcome, verdict.reason, verdict.from_capacity, verdict.to_capacity,
               verdict.message, now, evidence)
    _log(row)
    if state is not None:
        _follow(tx, state, verdict, step, now)
    if not verdict.acted:
        decision_id = _add(tx, row, numbered)
        return Recorded(about.group, verdict.outcome, verdict.reason, None, decision_id, verdict=verdict)
    assert about.group is not None
    decision_id = tx.add_decision(row)
    action_id = tx.add_action(decision_id, about.group, verdict.from_capacity, verdict.to_capacity, now,
                              claim=True, targets=targets)
    claimed = None
    if tx.claimed_action(action_id):
        action = Action(action_id, decision_id, about.group, verdict.from_capacity, verdict.to_capacity,
                        ActionState.RUNNING, 1, None, now, started_at=now, kind="heal" if targets else "scale",
                        targets=tuple(targets))
        request = ScaleRequest(about.group, verdict.from_capacity, verdict.to_capacity, action_id, decision_id,
                               notification=evidence.stored.body if evidence.stored else None,
                               alerts=list(evidence.alerts), exact=exact(about))
        claimed = Claimed(action, request)
    return Recorded(about.group, verdict.outcome, verdict.reason, action_id, decision_id, claimed, verdict)


def record_skip(tx: Tx, about: About, reason: Reason, message: str, now: datetime,
                evidence: Evidence = NO_EVIDENCE, numbered: bool = False) -> Recorded:
    """Record a skip that names no capacity (alerts no group takes, duplicates, resolved, stale, dropped)."""
    if evidence.total > len(evidence.alerts):
        message = f"{message} ({evidence.total} alerts, the first {len(evidence.alerts)} kept)"
    row = _row(about, Outcome.SKIPPED, reason, None, None, message, now, evidence)
    _log(row)
    decision_id = _add(tx, row, numbered)
    return Recorded(about.group, Outcome.SKIPPED, reason, None, decision_id)


def publish(recorded: Iterable[Recorded], metrics: Metrics, workers: Mapping[str, Worker]) -> None:
    """After the commit: count each decision in /metrics; give each acted one to its group's worker."""
    for r in recorded:
        metrics.decisions.labels(r.group or "", r.outcome.value, r.reason.value).inc()
        if r.action_id is not None and r.group is not None and r.group in workers:
            workers[r.group].deliver(r)


def summary(alert: Alert | ActiveAlert) -> dict[str, Any]:
    """How an alert is kept in a decision: enough to explain it, and to hand it to a provider."""
    if isinstance(alert, ActiveAlert):
        return {"status": "firing", "labels": alert.labels, "startsAt": alert.starts_at.isoformat(),
                "fingerprint": alert.fingerprint, "lastSeenAt": alert.last_seen_at.isoformat()}
    return {
        "status": alert.status.value,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at.isoformat(),
        "endsAt": alert.ends_at.isoformat() if alert.ends_at else None,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def _with_count(verdict: Verdict, evidence: Evidence) -> Verdict:
    if evidence.total > len(evidence.alerts):
        return replace(verdict, message=f"{verdict.message} ({evidence.total} alerts, "
                                        f"the first {len(evidence.alerts)} kept)")
    return verdict


def _follow(tx: Tx, state: GroupState, verdict: Verdict, step: Direction | None, now: datetime) -> None:
    """The group's row after the decision (one rule for every path)."""
    if verdict.acted:
        tx.save_group(state.stepped(step, verdict.to_capacity, now) if step is not None
                      else state.resized(verdict.to_capacity, now))
    elif verdict.reason is Reason.DRY_RUN and step is not None:
        tx.save_group(state.stepped(step, state.desired, now))  # the cooldown runs, the size does not
    elif verdict.reason is Reason.RECONCILE and verdict.to_capacity != state.desired:
        tx.save_group(state.resized(verdict.to_capacity, now))  # the provider decides the size: follow it


def _add(tx: Tx, row: NewDecision, numbered: bool) -> int | None:
    """Write the row; a skip whose id nobody needs is batched with the transaction's other skips."""
    if numbered:
        return tx.add_decision(row)
    tx.add_skip(row)
    return None


def _row(about: About, outcome: Outcome, reason: Reason, from_capacity: int | None, to_capacity: int | None,
         message: str, now: datetime, evidence: Evidence) -> NewDecision:
    stored = evidence.stored
    return NewDecision(
        group=about.group, policy=about.policy, trigger=about.trigger, outcome=outcome, reason=reason,
        from_capacity=from_capacity, to_capacity=to_capacity, message=message, decided_at=now,
        alerts=list(evidence.alerts), notification_id=stored.id if stored else None,
        alert_starts_at=evidence.starts_at, received_at=stored.received_at if stored else None)


def _log(row: NewDecision) -> None:
    log.info("decision group=%s policy=%s from=%s to=%s outcome=%s reason=%s trigger=%s: %s",
             row.group or "-", row.policy or "-", _or_dash(row.from_capacity), _or_dash(row.to_capacity),
             row.outcome.value, row.reason.value, row.trigger.value, row.message)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
