"""Carrying out what operators say about changes that wait for approval: approve (the change is recorded anew as
an acted ``approved`` decision through ``act.recording.record``), reject, and the expiry pass (a change nobody
approved in time is recorded ``approval_expired``, once).

Every function locks the group's row first, then the approval's (the order ``act.recording`` keeps when a newer
change supersedes an older one), so an approval is ended exactly once whoever tries at the same time (an
operator, the expiry pass, another replica). The rules (may it be approved now? has it expired?) are
``decide.approvals``'; the change that waits is recorded by ``act.recording`` (its gate, ``_wait``).

Called by ``act.operating.Operator`` (approve, reject: the API and the CLI) and ``act.engine`` (the expiry pass,
on the re-evaluation timer, in a thread).
"""

from __future__ import annotations

import logging
from datetime import datetime

from alertscaler.act.ownership import Drives, drives_all
from alertscaler.act.recording import About, Recorded, end_approval, record
from alertscaler.config import PolicyFile
from alertscaler.decide.approvals import approve_refusal, expired
from alertscaler.model.approvals import ApprovalKind, ApprovalState, PendingApproval
from alertscaler.model.controls import pause_of
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import Conflict, NotFound
from alertscaler.model.policies import Direction
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)


def _found(store: StateStore, policy: PolicyFile, decision_id: int) -> PendingApproval:
    approval = store.get_approval(decision_id)
    if approval is None:
        raise NotFound(f"no approval {decision_id} (the id of a pending_approval decision: alertscaler approvals)")
    if approval.group not in policy.groups:
        raise Conflict(f"approval {decision_id}: group {approval.group!r} is no longer configured")
    return approval


def approve(store: StateStore, policy: PolicyFile, decision_id: int, by: str, now: datetime) -> Recorded:
    """Carry out the change that waits as approval ``decision_id``: an acted ``approved`` decision (trigger
    ``approval``; a step policy's cooldown runs from now). Raises ``NotFound`` (no such approval) or ``Conflict``
    (already ended, expired — then recorded so —, the group moved since, the target is outside the bounds in force,
    or the group is paused: a pause wins; the change keeps waiting until it expires)."""
    found = _found(store, policy, decision_id)
    config = policy.groups[found.group]
    refusal: str | None = None
    with store.transaction() as tx:
        state = tx.lock_group(found.group, config.initial_desired)
        approval = tx.get_approval(decision_id, lock=True)
        assert approval is not None
        refusal = approve_refusal(approval, state.desired, config.bounds_at(now), now)
        if refusal is None:
            pause = pause_of(tx.pauses(), approval.group, now)
            if pause is not None:
                raise Conflict(f"approval {decision_id}: group {approval.group} is {pause.describe()}: resume it "
                               f"first (the change waits until {approval.expires_at.isoformat(timespec='seconds')})")
            size = state.desired if approval.kind is ApprovalKind.HEAL else approval.from_capacity
            target = state.desired if approval.kind is ApprovalKind.HEAL else approval.to_capacity
            verdict = Verdict(Outcome.ACTED, Reason.APPROVED, size, target,
                              f"approval {decision_id} approved by {by}: {approval.describe()} (it waited because "
                              f"{approval.why}; the policy said: {approval.message})")
            done = record(tx, About(approval.group, approval.policy, Trigger.APPROVAL, config), verdict, now,
                          state=state, step=Direction(approval.step) if approval.step else None,
                          targets=approval.targets, numbered=True)
            if not tx.resolve_approval(decision_id, ApprovalState.APPROVED, now, by, done.decision_id):
                raise Conflict(f"approval {decision_id} was ended by someone else meanwhile")
            log.warning("approval %d of group %s approved by %s: %s", decision_id, approval.group, by,
                        approval.describe())
            return done
        ended = _expire(tx, policy, approval, now)
    raise Conflict(refusal) if ended is None else _ExpiredMeanwhile(refusal, ended)


class _ExpiredMeanwhile(Conflict):
    """A refusal because the approval expired, whose ``approval_expired`` decision was recorded on the way."""

    def __init__(self, message: str, recorded: Recorded) -> None:
        super().__init__(message)
        self.recorded = recorded


def reject(store: StateStore, policy: PolicyFile, decision_id: int, by: str, now: datetime) -> Recorded:
    """Reject the change that waits as approval ``decision_id``: recorded ``rejected`` (trigger ``approval``),
    nothing runs. Raises ``NotFound`` or ``Conflict`` (already ended, or expired — then recorded so)."""
    found = _found(store, policy, decision_id)
    config = policy.groups[found.group]
    with store.transaction() as tx:
        tx.lock_group(found.group, config.initial_desired)
        approval = tx.get_approval(decision_id, lock=True)
        assert approval is not None
        if approval.state is ApprovalState.PENDING and not expired(approval, now):
            done = end_approval(tx, config, approval, ApprovalState.REJECTED, now, by)
            log.warning("approval %d of group %s rejected by %s: %s", decision_id, approval.group, by,
                        approval.describe())
            return done
        ended = _expire(tx, policy, approval, now)
        refusal = approve_refusal(approval, 0, config.bounds, now) or f"approval {decision_id} cannot be rejected"
    raise Conflict(refusal) if ended is None else _ExpiredMeanwhile(refusal, ended)


def expire_due(store: StateStore, policy: PolicyFile, now: datetime, drives: Drives = drives_all) -> list[Recorded]:
    """The expiry pass: every pending approval whose time has passed is recorded ``approval_expired`` (once),
    for the groups this replica ``drives`` (and those no longer configured)."""
    out: list[Recorded] = []
    for due in store.due_approvals(now):
        config = policy.groups.get(due.group)
        if config is not None and not drives(due.group, now):
            continue
        with store.transaction() as tx:
            if config is not None:
                tx.lock_group(due.group, config.initial_desired)
            approval = tx.get_approval(due.decision_id, lock=True)
            if approval is not None:
                done = _expire(tx, policy, approval, now)
                if done is not None:
                    out.append(done)
    return out


def _expire(tx: Tx, policy: PolicyFile, approval: PendingApproval, now: datetime) -> Recorded | None:
    """Record ``approval``'s expiry if it is pending and its time has passed (None otherwise). A step policy's
    alerts that still fire are decided afresh (their route's reason is cleared): they ask again."""
    if not expired(approval, now):
        return None
    done = end_approval(tx, policy.groups.get(approval.group), approval, ApprovalState.EXPIRED, now)
    if approval.step is not None and approval.policy is not None and approval.trigger in (Trigger.NOTIFICATION,
                                                                                          Trigger.TIMER):
        tx.set_route_reason(approval.group, approval.policy, None)
    log.info("approval %d of group %s expired unapproved: %s", approval.decision_id, approval.group,
             approval.describe())
    return done


def recorded_on_refusal(exc: Conflict) -> list[Recorded]:
    """The decision a refusal recorded on the way (an expiry), to publish; empty for other refusals."""
    return [exc.recorded] if isinstance(exc, _ExpiredMeanwhile) else []
