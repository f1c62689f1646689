"""What an operator commands, through the API or the CLI: a manual scale (with an optional hold), pause and resume
(a group or every group), listing and clearing believed-firing alerts, approving or rejecting a change that waits
for approval (``act.approving``). Each command is recorded by ``act.recording`` like any other verdict and
published to the group's worker.

Built by ``service.build_engine`` (``Loops.operator``, reached as ``Engine.operator``); called by ``api.app``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from alertscaler.act.approving import approve, recorded_on_refusal, reject
from alertscaler.act.metrics import Metrics
from alertscaler.act.recording import About, Recorded, policies_free_at, record
from alertscaler.act.silencing import clear_alert
from alertscaler.config import PolicyFile
from alertscaler.decide.evaluator import evaluate_manual
from alertscaler.model.approvals import PendingApproval
from alertscaler.model.controls import EVERY_GROUP, Pause
from alertscaler.model.decisions import Trigger, Verdict
from alertscaler.model.errors import Conflict, NotFound
from alertscaler.model.groups import GroupState
from alertscaler.store.base import ActiveAlert, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManualResult:
    """A manual scale: its decision, and when policies may move the group again (``held_until``: the hold's
    end; without a hold ``policies_from``, the next time a policy could act)."""

    decision_id: int
    action_id: int | None
    verdict: Verdict
    held_until: datetime | None = None
    policies_from: datetime | None = None


def paused_gauges(metrics: Metrics, policy: PolicyFile, pauses: list[Pause], now: datetime) -> None:
    """``alertscaler_group_paused``: 1 for each group a pause holds now (its own or every group's)."""
    holding = {p.scope for p in pauses if p.holds(now)}
    for name in policy.groups:
        metrics.paused.labels(name).set(1 if holding & {name, EVERY_GROUP} else 0)


def pending_gauges(metrics: Metrics, policy: PolicyFile, approvals: list[PendingApproval], now: datetime) -> None:
    """``alertscaler_approvals_pending``: how many changes of each group wait for approval now."""
    for name in policy.groups:
        metrics.approvals_pending.labels(name).set(sum(1 for a in approvals if a.group == name and a.waiting(now)))


class Operator:
    def __init__(self, policy: PolicyFile, store: StateStore, clock: Callable[[], datetime], metrics: Metrics,
                 publish: Callable[[Sequence[Recorded]], None]) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.publish = publish  # act.recording.publish to the metrics and the groups' workers

    async def manual_scale(self, group: str, desired: int, hold: float | None = None) -> ManualResult:
        """Set ``group``'s desired capacity; ``hold`` (seconds): policies may not move it for that long (a
        manual scale replaces the group's hold: without one, it clears it)."""
        if group not in self.policy.groups:
            raise NotFound(f"no group named {group!r}")
        done, after = await anyio.to_thread.run_sync(self._manual_scale, group, desired, hold)
        self.publish([done])
        assert done.decision_id is not None and done.verdict is not None
        held = after.held_until if after.held(self.clock()) else None
        free = policies_free_at(self.policy.groups[group], after, self.clock())
        return ManualResult(done.decision_id, done.action_id, done.verdict, held, free)

    def _manual_scale(self, name: str, desired: int, hold: float | None) -> tuple[Recorded, GroupState]:
        group = self.policy.groups[name]
        now = self.clock()
        with self.store.transaction() as tx:
            state = tx.lock_group(name, group.initial_desired)
            verdict = evaluate_manual(state, desired, group.bounds_at(now))
            until = now + timedelta(seconds=hold) if hold else None
            done = record(tx, About(name, None, Trigger.MANUAL, group), verdict, now, state=state, numbered=True,
                          hold=until)
            return done, tx.lock_group(name, group.initial_desired)

    async def active_alerts(self, group: str | None = None) -> list[ActiveAlert]:
        """What alertscaler believes firing (every group, or ``group``'s)."""
        if group is not None and group not in self.policy.groups:
            raise NotFound(f"no group named {group!r}")
        return await anyio.to_thread.run_sync(self.store.active_alerts, group)

    async def clear_alert(self, group: str, fingerprint: str) -> list[Recorded]:
        """End one believed-firing alert by hand (``act.silencing.clear_alert``: recorded ``cleared``)."""
        done = await self.store.call(clear_alert, self.store, self.policy, group, fingerprint, self.clock())
        self.publish(done)
        return done

    async def pause(self, group: str | None, until: datetime | None, reason: str) -> Pause:
        """Pause ``group`` (None: every group) until ``until`` (None: until resumed). Durable (the store):
        every replica, and every restart, sees it. Decisions go on being recorded, as ``paused``."""
        if group is not None and group not in self.policy.groups:
            raise NotFound(f"no group named {group!r}")
        pause = Pause(group or EVERY_GROUP, self.clock(), until, reason)
        await anyio.to_thread.run_sync(self._set_pause, pause)
        log.warning("%s %s: %s", "pause" if group else "pause of every group", group or "", pause.describe())
        paused_gauges(self.metrics, self.policy, await anyio.to_thread.run_sync(self.store.pauses), self.clock())
        return pause

    def _set_pause(self, pause: Pause) -> None:
        with self.store.transaction() as tx:
            tx.set_pause(pause)

    async def resume(self, group: str | None) -> Pause | None:
        """End ``group``'s pause (None: the global pause); the pause that ended (None: there was none).
        Resuming a group does not end a global pause."""
        if group is not None and group not in self.policy.groups:
            raise NotFound(f"no group named {group!r}")
        ended = await anyio.to_thread.run_sync(self._clear_pause, group or EVERY_GROUP)
        log.warning("resume %s: %s", group or "every group", "pause ended" if ended else "was not paused")
        paused_gauges(self.metrics, self.policy, await anyio.to_thread.run_sync(self.store.pauses), self.clock())
        return ended

    def _clear_pause(self, scope: str) -> Pause | None:
        with self.store.transaction() as tx:
            return tx.clear_pause(scope)

    async def approvals(self, group: str | None = None, every: bool = False,
                        limit: int = 100) -> list[PendingApproval]:
        """The changes that wait for approval, newest first (``every``: the ended ones too), of every group or
        ``group``'s. One whose time has passed is shown expired (``PendingApproval.waiting``) before the expiry
        pass records it."""
        if group is not None and group not in self.policy.groups:
            raise NotFound(f"no group named {group!r}")
        return await anyio.to_thread.run_sync(lambda: self.store.approvals(group, not every, limit))

    async def approve(self, decision_id: int, by: str) -> Recorded:
        """Carry out approval ``decision_id`` (``act.approving.approve``: NotFound, Conflict with the reason)."""
        return await self._approval(approve, decision_id, by)

    async def reject(self, decision_id: int, by: str) -> Recorded:
        """Reject approval ``decision_id`` (``act.approving.reject``)."""
        return await self._approval(reject, decision_id, by)

    async def _approval(self, command: Callable[..., Recorded], decision_id: int, by: str) -> Recorded:
        try:
            done = await anyio.to_thread.run_sync(command, self.store, self.policy, decision_id, by, self.clock())
        except Conflict as exc:
            self.publish(recorded_on_refusal(exc))  # an expiry recorded on the way is counted like any decision
            raise
        self.publish([done])
        pending_gauges(self.metrics, self.policy, await anyio.to_thread.run_sync(self.store.approvals),
                       self.clock())
        return done
