"""Recording a verdict: the ONE place a decision is written, for every path that decides.

Called inside a store transaction by every decider — alert notifications (``act.processing``), the
re-evaluation timer and checked policies (``act.reevaluating``), target tracking (``act.tracking``),
schedules (``act.scheduling``), healing (``act.healing.HealJudge``), reconcile at start (``act.lifecycle``)
and manual scale (``act.engine``) — and, after the commit, by ``act.engine`` to publish what was recorded.

``record`` owns, for one verdict:

- the operators' gate (``gate_of`` / ``gated``): while the group (or every group) is paused, what would have
  acted is recorded as a skip (reason ``paused``, from/to filled in, the message says what it would have done)
  and nothing is executed; while a manual scale holds the group's size, a policy's move (alerts, timer,
  tracking, schedules) is recorded as ``held`` with the hold's end (bounds still apply: a group outside the
  bounds in force is moved into them). A manual decision sets or clears the hold (``hold``). Then the group's
  ``change_freeze``: while a window is open every change of a policy or a heal but scale-out is recorded
  ``change_freeze`` (an operator's command runs, its message notes the freeze); then its ``approval`` rules
  (``decide.approvals``): a change that needs approval is recorded ``pending_approval`` with a row in the
  store (``_wait``: its id is the decision's; a repeat of the same change says it still waits; a different
  one supersedes the older, recorded ``approval_expired``). ``act.approving`` approves, rejects and expires;
- the dry-run rule (``effective``): a dry-run group records what it would have done as a skip (reason
  ``dry_run``); its size never moves, a step's cooldown clock still runs (the step it would have taken);
- the drill rule: a verdict whose alerts are a fire drill's (``model.drills``; ``act.drills`` decides them) never
  acts, whatever the path: recorded as a ``drill`` skip, nothing else moves (no cooldown stamp either);
- the decision row (``NewDecision`` is built here only), with at most ``MAX_ALERTS_PER_DECISION`` alerts;
- the group's row: an acted decision moves ``desired`` (a step also stamps its direction's cooldown clock);
  a ``reconcile`` skip makes ``desired`` follow the provider that decides the size itself;
- the action: created already claimed when the group has nothing queued (``Claimed``: the worker runs it
  without reading it back), else queued behind the group's older action;
- the one log line: ``decision: message`` with group, policy, from, to, outcome, reason, trigger as fields
  (``extra=``: keys in JSON and logfmt, ``key=value`` after a text line; ``alertscaler.logs``).

``publish`` (after the commit) counts each decision in ``/metrics`` and gives each acted decision to its
group's worker (``act.queueing.GroupWorker.deliver``): the one way an action reaches a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from alertscaler.act.metrics import Metrics
from alertscaler.config import GroupConfig
from alertscaler.decide.approvals import OpenFreeze, approval_needed, frozen, open_freeze
from alertscaler.model.alerts import Alert
from alertscaler.model.approvals import ApprovalKind, ApprovalRules, ApprovalState, PendingApproval
from alertscaler.model.controls import Pause, pause_of
from alertscaler.model.decisions import Action, ActionState, HealTarget, Outcome, Reason, Trigger, Verdict
from alertscaler.model.drills import is_drill
from alertscaler.model.errors import StoreError
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import AdjustmentType, Bounds, Direction
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
    also: tuple[Recorded, ...] = ()  # decisions recorded on the way (a superseded approval's): counted too


class Worker(Protocol):
    def deliver(self, recorded: Recorded) -> None: ...


#: the triggers of policies, which a hold keeps from moving a group (manual, reconcile and heals are not); a
#: signal (a signed URL, an Aodh or Monasca alarm: ``act.signals``) is a policy's alert from outside
POLICY_TRIGGERS = frozenset({Trigger.NOTIFICATION, Trigger.TIMER, Trigger.TRACKING, Trigger.SCHEDULE, Trigger.SIGNAL})
#: what a change freeze stops (but scale-out); an operator's command (manual, approved) runs, noting it
FREEZE_TRIGGERS = POLICY_TRIGGERS | {Trigger.HEALTH}
OPERATOR_TRIGGERS = frozenset({Trigger.MANUAL, Trigger.APPROVAL})
#: what waits for approval: policies and heals; a schedule is an operator's plan, written in the policy file
APPROVAL_TRIGGERS = frozenset({Trigger.NOTIFICATION, Trigger.TIMER, Trigger.TRACKING, Trigger.HEALTH, Trigger.SIGNAL})


@dataclass(frozen=True)
class Gate:
    """What operators say about one decision's group at its time: the pause that holds (None: not paused);
    until when a manual scale holds the size (None: no hold, or the decision is not a policy's) with the
    bounds in force then (a hold never keeps a group outside them)."""

    pause: Pause | None = None
    held_until: datetime | None = None
    bounds: Bounds | None = None
    freeze: OpenFreeze | None = None        # an open change freeze that stops this decision (but scale-out)
    freeze_noted: OpenFreeze | None = None  # an open change freeze an operator's command runs through
    approval: ApprovalRules | None = None   # the group's approval rules, when they apply to this decision
    approval_until: datetime | None = None  # until when a change waiting from now waits
    trial: bool = False                     # a dry-run group: what would need approval is only noted


OPEN = Gate()


def gate_of(pauses: Iterable[Pause], about: About, state: GroupState | None, now: datetime) -> Gate:
    """The gate for a decision ``about`` a group whose row is ``state``, at ``now`` (time passed in)."""
    if about.group is None:
        return OPEN
    pause = pause_of(pauses, about.group, now)
    held = state is not None and state.held(now) and about.trigger in POLICY_TRIGGERS
    config = about.config
    freeze = open_freeze(config.change_freeze, now) if config is not None else None
    rules = config.approval if config is not None and about.trigger in APPROVAL_TRIGGERS else None
    if pause is None and not held and freeze is None and rules is None:
        return OPEN
    bounds = config.bounds_at(now) if held and config is not None else None
    return Gate(pause, state.held_until if held and state is not None else None, bounds,
                freeze=freeze if about.trigger in FREEZE_TRIGGERS else None,
                freeze_noted=freeze if about.trigger in OPERATOR_TRIGGERS else None,
                approval=rules, approval_until=now + timedelta(seconds=rules.expire_after) if rules else None,
                trial=config is not None and config.dry_run)


def gated(verdict: Verdict, gate: Gate, targets: Sequence[HealTarget] = ()) -> Verdict:
    """The operators' rule: a paused group's action becomes a ``paused`` skip, a held group's policy move a
    ``held`` skip, a frozen change a ``change_freeze`` skip, a change that needs approval (``targets``: a
    heal's) a ``pending_approval`` skip (what it would have done kept in from/to and the message). Skips pass
    unchanged."""
    if not verdict.acted:
        return verdict
    if gate.pause is not None:
        return replace(verdict, outcome=Outcome.SKIPPED, reason=Reason.PAUSED,
                       message=f"{gate.pause.describe()}: would have {verdict.message}")
    if gate.held_until is None:
        return _approved_or_waits(_frozen(verdict, gate), gate, targets)
    until = gate.held_until.isoformat(timespec="seconds")
    start = verdict.from_capacity
    if gate.bounds is not None and gate.bounds.clamp(start) != start:  # bounds still apply
        into = gate.bounds.clamp(start)
        if verdict.to_capacity == into:
            return verdict  # the move into the bounds (already gated, or the policy's own clamp)
        return replace(verdict, reason=Reason.CLAMPED, to_capacity=into,
                       message=f"held until {until}, but {start} is outside the bounds in force "
                               f"({gate.bounds.min_size}..{gate.bounds.max_size}): scale {start} -> {into} "
                               f"only (the policy said: {verdict.message})")
    return replace(verdict, outcome=Outcome.SKIPPED, reason=Reason.HELD,
                   message=f"size held at {start} by a manual scale until {until}: would have {verdict.message}")


def _frozen(verdict: Verdict, gate: Gate) -> Verdict:
    """A change freeze: stops what is not scale-out; an operator's command runs and says so."""
    if gate.freeze is not None and frozen(verdict):
        return replace(verdict, outcome=Outcome.SKIPPED, reason=Reason.CHANGE_FREEZE,
                       message=f"{gate.freeze.describe()}: nothing but scale-out runs: would have {verdict.message}")
    note = f" (during {gate.freeze_noted.describe()}: an operator's command runs)" if gate.freeze_noted else ""
    return replace(verdict, message=verdict.message + note) if note and note not in verdict.message else verdict


def _approved_or_waits(verdict: Verdict, gate: Gate, targets: Sequence[HealTarget]) -> Verdict:
    """A change the group's approval rules name waits (``record`` keeps it: ``_wait``); in a dry run it is noted."""
    why = approval_needed(gate.approval, verdict, targets)
    if why is None or gate.approval_until is None:
        return verdict
    if gate.trial:
        note = f" (would wait for approval: {why})"
        return verdict if note in verdict.message else replace(verdict, message=verdict.message + note)
    return replace(verdict, outcome=Outcome.SKIPPED, reason=Reason.PENDING_APPROVAL,
                   message=f"waits for approval until {_when(gate.approval_until)} ({why}): would have "
                           f"{verdict.message}")


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def policies_free_at(config: GroupConfig, state: GroupState, now: datetime) -> datetime:
    """The next time a policy could move the group: the hold's end, else the earliest end of a step policy's
    cooldown (now if one has none running, or the group tracks a target)."""
    if state.held(now):
        assert state.held_until is not None
        return state.held_until
    ends = [now] if config.track is not None or config.schedule is not None else []
    for direction, step in config.policies():
        last = state.last_step_at(direction)
        ends.append(max(now, last + timedelta(seconds=step.cooldown)) if last is not None else now)
    return min(ends, default=now)


def effective(verdict: Verdict, config: GroupConfig | None, gate: Gate = OPEN,
              targets: Sequence[HealTarget] = ()) -> Verdict:
    """The verdict as ``record`` records it: the operators' gate (pause, hold, change freeze, approval), then the
    dry-run rule (a dry-run group's action becomes a recorded skip, ``dry_run``)."""
    verdict = gated(verdict, gate, targets)
    return verdict.as_dry_run() if config is not None and config.dry_run else verdict


def drilled(evidence: Evidence) -> bool:
    """Is the evidence a fire drill's (an alert carrying the drill label)?"""
    return any(is_drill(a.get("labels") or {}) for a in evidence.alerts)


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
           numbered: bool = False, hold: datetime | None = None) -> Recorded:
    """Record ``verdict`` (the operators' gate and the dry run applied) and what follows from it. ``state``:
    the group's row, locked in ``tx`` (given: the row follows the decision); ``step``: the direction of a
    step, whose cooldown clock it stamps; ``targets``: a heal action's members; ``numbered``: the caller needs
    the decision's id even for a skip; ``hold``: a manual decision's hold (None: it clears the group's hold)."""
    said, gate = verdict, gate_of(tx.pauses(), about, state, now)
    verdict = effective(verdict, about.config, gate, targets)
    if verdict.reason is not Reason.DRILL and drilled(evidence):  # act.drills records drills: belt and braces
        verdict = replace(verdict, outcome=Outcome.SKIPPED, reason=Reason.DRILL,
                          message=f"fire drill: {verdict.reason.value}: {verdict.message}; nothing was changed")
    verdict = _with_count(verdict, evidence)
    row = _row(about, verdict.outcome, verdict.reason, verdict.from_capacity, verdict.to_capacity,
               verdict.message, now, evidence)
    _log(row)
    if state is not None:
        _follow(tx, state, verdict, step, now, hold if about.trigger is Trigger.MANUAL else state.held_until)
    if verdict.reason is Reason.PENDING_APPROVAL and about.group is not None:
        return _wait(tx, about, said, verdict, row, gate, step, targets, now, numbered)
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
        for also in r.also:
            metrics.decisions.labels(also.group or "", also.outcome.value, also.reason.value).inc()
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


def _wait(tx: Tx, about: About, said: Verdict, verdict: Verdict, row: NewDecision, gate: Gate,
          step: Direction | None, targets: Sequence[HealTarget], now: datetime, numbered: bool) -> Recorded:
    """A change that waits for approval: kept (``approvals``, its id the decision's) unless the same change
    already waits (then the decision says so); the group's older waiting change of the same kind (scale or
    heal) ends: expired if its time has passed, else superseded (a heal's members it had are carried over)."""
    assert about.group is not None and gate.approval_until is not None
    kind = ApprovalKind.HEAL if targets else ApprovalKind.SCALE
    wanted, ended, members = tuple(targets), [], list(targets)
    for old in tx.pending_approvals(about.group):
        if old.kind is not kind:
            continue
        if now >= old.expires_at:
            ended.append(end_approval(tx, about.config, old, ApprovalState.EXPIRED, now))
        elif old.same_change(kind, said.from_capacity, said.to_capacity, wanted):
            message = (f"still waits for approval {old.decision_id} until {_when(old.expires_at)}: alertscaler "
                       f"approve {old.decision_id}: would have {said.message}")
            decision_id = _add(tx, replace(row, message=message), numbered)
            return Recorded(about.group, verdict.outcome, verdict.reason, None, decision_id,
                            verdict=replace(verdict, message=message), also=tuple(ended))
        else:
            known = {t.member_id for t in members}
            members += [t for t in old.targets if t.member_id not in known]
            ended.append(end_approval(tx, about.config, old, ApprovalState.SUPERSEDED, now))
    carried = members[len(wanted):]
    what = said.message
    if carried:
        what += "; and from the change it supersedes: " + ", ".join(f"{t.action} {t.member_id}" for t in carried)
    why = approval_needed(gate.approval, said, members) or ""
    decision_id = tx.add_decision(row)
    message = (f"waits for approval until {_when(gate.approval_until)} ({why}): alertscaler approve {decision_id} "
               f"(or reject {decision_id}): would have {what}")
    tx.add_approval(PendingApproval(
        decision_id, about.group, kind, about.policy, about.trigger, step.value if step is not None else None,
        said.from_capacity, said.to_capacity, tuple(members), why, what, now, gate.approval_until), message)
    return Recorded(about.group, verdict.outcome, verdict.reason, None, decision_id,
                    verdict=replace(verdict, message=message), also=tuple(ended))


def end_approval(tx: Tx, config: GroupConfig | None, approval: PendingApproval, state: ApprovalState,
                 now: datetime, by: str = "") -> Recorded:
    """End a pending approval that is not carried out, recorded once: ``EXPIRED`` (its time passed) and
    ``SUPERSEDED`` (a newer change waits) as ``approval_expired``, ``REJECTED`` (by an operator, ``by``) as
    ``rejected``. Call with the group's row locked (every resolver locks it first)."""
    texts = {ApprovalState.EXPIRED: f"expired at {_when(approval.expires_at)} unapproved",
             ApprovalState.SUPERSEDED: "superseded by a newer change of the group",
             ApprovalState.REJECTED: f"rejected by {by or 'an operator'}"}
    reason = Reason.REJECTED if state is ApprovalState.REJECTED else Reason.APPROVAL_EXPIRED
    done = record(tx, About(approval.group, approval.policy, Trigger.APPROVAL, config),
                  Verdict(Outcome.SKIPPED, reason, approval.from_capacity, approval.to_capacity,
                          f"approval {approval.decision_id} {texts[state]}: {approval.describe()} not carried out "
                          f"(it would have {approval.message})"), now, numbered=True)
    if not tx.resolve_approval(approval.decision_id, state, now, by or state.value, done.decision_id):
        raise StoreError(f"approval {approval.decision_id} was ended by someone else meanwhile")
    return done


def _with_count(verdict: Verdict, evidence: Evidence) -> Verdict:
    if evidence.total > len(evidence.alerts):
        return replace(verdict, message=f"{verdict.message} ({evidence.total} alerts, "
                                        f"the first {len(evidence.alerts)} kept)")
    return verdict


def _follow(tx: Tx, state: GroupState, verdict: Verdict, step: Direction | None, now: datetime,
            hold: datetime | None) -> None:
    """The group's row after the decision (one rule for every path). ``hold``: the group's hold after it (a
    manual decision sets or clears it, unless paused; other decisions keep it)."""
    if verdict.reason is Reason.PAUSED:
        return  # nothing moves, no clock runs: once resumed, the policies decide afresh
    if hold != state.held_until:
        state = replace(state, held_until=hold)
        if not verdict.acted:
            tx.save_group(state)
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
    # the fields as their own keys (alertscaler.logs: JSON keys, logfmt pairs, appended to a text line)
    log.info("decision: %s", row.message, extra={
        "group": row.group or "-", "policy": row.policy or "-", "from": _or_dash(row.from_capacity),
        "to": _or_dash(row.to_capacity), "outcome": row.outcome.value, "reason": row.reason.value,
        "trigger": row.trigger.value})


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
