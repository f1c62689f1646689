"""Run one claimed action against its provider: outcome, retries with backoff, metrics.

Called by ``act.queueing`` (one group's worker, so actions of a group never overlap). Runs in a worker
thread: provider calls are blocking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from alertscaler.act.healing import carry_out
from alertscaler.act.metrics import Metrics
from alertscaler.act.recording import About, record
from alertscaler.act.removals import StoreDepartures
from alertscaler.config import ActionsConfig, GroupConfig
from alertscaler.model.decisions import Action, ActionState, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import PermanentProviderError, ProviderDeclined, TemporaryProviderError
from alertscaler.providers.base import Provider, ScaleRequest
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)


def backoff(attempts: int, config: ActionsConfig, hint: float | None) -> float:
    """Seconds before the next attempt: the provider's hint if it gave one, else exponential."""
    if hint is not None and hint >= 0:
        return min(hint, config.backoff_max)
    return float(min(config.backoff_initial * 2 ** max(0, attempts - 1), config.backoff_max))


@dataclass(frozen=True)
class CallOutcome:
    """What one provider call did. ``kind``: succeeded, temporary (retry) or permanent (fail)."""

    called_at: datetime
    duration: float
    kind: Literal["succeeded", "temporary", "permanent"]
    message: str
    delay: float | None = None
    declined_at: int | None = None  # the cloud declined the change; the group stays at this size
    real_size: int | None = None    # failed for good: the provider's size read right after (None: unknown)


@dataclass(frozen=True)
class Executor:
    store: StateStore
    provider: Provider
    config: ActionsConfig
    metrics: Metrics
    clock: Callable[[], datetime]
    exact_policies: frozenset[str] = frozenset()  # the group's policies that set an exact capacity
    owner: str | None = None  # this replica: outcomes are recorded only while it still holds the action
    group: GroupConfig | None = None  # its bounds: desired follows a real size clamped into them
    drain: float = 0.0  # seconds a scale-in's victim stays out of discovery before it is stopped (PolicyFile.drain_of)
    halt: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)  # set: stop draining

    def execute(self, action: Action, request: ScaleRequest | None = None) -> ActionState:
        """``action`` has been claimed (RUNNING). Call the provider and record the outcome. ``request`` is
        built from the stored decision when not given. (The worker runs ``call`` in a thread and
        ``record`` next to the store instead; this does both, for callers without an event loop.)"""
        return self.record(action, self.call(action, request or self.request(action)))

    def call(self, action: Action, request: ScaleRequest) -> CallOutcome:
        """The provider call alone (blocking: run it in a thread). Never raises."""
        called_at = self.clock()
        started = time.perf_counter()
        try:
            if action.kind == "heal":
                result = carry_out(self.provider, action, self.store, self.clock)
            else:  # a scale-in's victims leave discovery, drain, are stopped: reported to the store (act.removals)
                result = self.provider.scale(replace(request, drain=self.drain, departures=StoreDepartures(
                    self.store, action.group, self.clock, self.halt)))
        except TemporaryProviderError as exc:
            return CallOutcome(called_at, time.perf_counter() - started, "temporary", str(exc), exc.delay)
        except ProviderDeclined as exc:
            return CallOutcome(called_at, time.perf_counter() - started, "permanent", f"declined: {exc}",
                               declined_at=exc.current)
        except PermanentProviderError as exc:
            return CallOutcome(called_at, time.perf_counter() - started, "permanent", str(exc),
                               real_size=self._real_size(action))
        except Exception as exc:  # a provider bug must not kill the worker; record it
            log.exception("action %s group=%s: provider raised unexpectedly", action.id, action.group)
            return CallOutcome(called_at, time.perf_counter() - started, "permanent",
                               f"internal provider error: {type(exc).__name__}: {exc}",
                               real_size=self._real_size(action))
        return CallOutcome(called_at, time.perf_counter() - started, "succeeded", result)

    def record(self, action: Action, outcome: CallOutcome) -> ActionState:
        """Store the outcome of ``call``: succeeded, failed, or released for a retry with backoff."""
        self.metrics.action_duration.labels(action.group).observe(outcome.duration)
        if outcome.kind == "temporary":
            if action.attempts >= self.config.max_attempts:
                return self._fail(action, f"gave up after {action.attempts} attempts: {outcome.message}",
                                  outcome.called_at)
            delay = backoff(action.attempts, self.config, outcome.delay)
            self.store.release_action(action.id, self.clock() + timedelta(seconds=delay), outcome.message,
                                      outcome.called_at, owner=self.owner)
            self.metrics.action_retries.labels(action.group).inc()
            log.warning("action %s group=%s attempt %d failed temporarily, retry in %.1fs: %s",
                        action.id, action.group, action.attempts, delay, outcome.message)
            return ActionState.PENDING
        if outcome.kind == "permanent":
            if outcome.declined_at is not None:
                self._keep_size(action, outcome.declined_at, "the provider declined")
                return self._fail(action, outcome.message, outcome.called_at, result="declined")
            if outcome.real_size is not None:
                self._follow_real_size(action, outcome.real_size)
            else:
                self._keep_size(action, action.from_capacity, "the action failed")
            return self._fail(action, outcome.message, outcome.called_at)
        self.store.finish_action(action.id, ActionState.SUCCEEDED, self.clock(), result=outcome.message,
                                 called_at=outcome.called_at, owner=self.owner)
        self.metrics.actions.labels(action.group, "succeeded").inc()
        for target in action.targets:
            self.metrics.heals.labels(action.group, target.action).inc()
        log.info("action %s group=%s %s -> %s succeeded: %s",
                 action.id, action.group, action.from_capacity, action.desired, outcome.message)
        return ActionState.SUCCEEDED

    def request(self, action: Action) -> ScaleRequest:
        """What the provider gets, rebuilt from the stored decision and notification."""
        decision = self.store.get_decision(action.decision_id)
        body = None
        if decision is not None and decision.notification_id is not None:
            body = self.store.notification_body(decision.notification_id)
        exact = decision is not None and (decision.trigger is Trigger.MANUAL
                                          or (decision.policy or "") in self.exact_policies)
        return ScaleRequest(
            group=action.group, from_capacity=action.from_capacity, desired=action.desired,
            action_id=action.id, decision_id=action.decision_id, notification=body,
            alerts=decision.alerts if decision else [], exact=exact,
        )

    def _real_size(self, action: Action) -> int | None:
        """The provider's size after an action failed for good (blocking; None when it cannot tell)."""
        if action.kind == "heal":
            return None
        try:
            return self.provider.status().current
        except Exception as exc:  # any failure: the planned size is kept, as before
            log.warning("action %s group=%s: cannot read the provider's size after the failure: %s",
                        action.id, action.group, exc)
            return None

    def _follow_real_size(self, action: Action, real: int) -> None:
        """The action failed for good and the provider reports ``real``: desired follows the real size — unless
        a newer decision has changed desired since — with a decision saying so (``reconcile``)."""
        now = self.clock()
        size = self.group.bounds_at(now).clamp(real) if self.group is not None else real
        with self.store.transaction() as tx:
            state = tx.lock_group(action.group, size)
            queued = self._rebase_next(tx, action, real)
            if queued is not None or state.desired != action.desired or size == state.desired:
                return  # a newer decision set desired (its action starts from the real size)
            bounded = f" (within the bounds: {size})" if size != real else ""
            record(tx, About(action.group, None, Trigger.RECONCILE), Verdict(
                Outcome.SKIPPED, Reason.RECONCILE, state.desired, size,
                f"action {action.id} ({action.from_capacity} -> {action.desired}) failed; the provider reports "
                f"{real}: desired follows the real size{bounded}"), now, state=state)

    def _keep_size(self, action: Action, size: int, why: str) -> None:
        """The change did not happen (declined by the cloud, or failed for good: refused, 4xx...): alertscaler's
        desired capacity goes back to ``size`` — unless a newer decision has changed it since — so the next
        decision starts from the group's real size, not from one it never reached."""
        with self.store.transaction() as tx:
            state = tx.lock_group(action.group, size)
            queued = self._rebase_next(tx, action, size)
            if queued is None and state.desired == action.desired and size != action.desired:
                tx.save_group(replace(state, desired=size, updated_at=self.clock()))
                log.info("group=%s desired %s -> %s: %s (action %s)", action.group, action.desired, size, why,
                         action.id)

    @staticmethod
    def _rebase_next(tx: Tx, action: Action, real: int) -> int | None:
        """An action decided while ``action`` was queued was planned from ``action.desired``, a size the group
        never reached: it starts from ``real`` instead (for a relative provider — a Heat signal, "add one
        Linode" — the change would otherwise be applied to the wrong base). Returns the next queued action's
        id (None: nothing queued; else a newer decision owns desired, even one equal to ``action.desired``)."""
        queued = tx.rebase_next_action(action.group, action.desired, real)
        if queued is not None:
            log.info("group=%s action %s failed: the next queued action %s starts from %s if it was planned "
                     "from %s", action.group, action.id, queued, real, action.desired)
        return queued

    def _fail(self, action: Action, error: str, called_at: datetime | None = None,
              result: str = "failed") -> ActionState:
        """Record the action as failed; ``result`` is its metrics label (``declined``: the cloud said no)."""
        self.store.finish_action(action.id, ActionState.FAILED, self.clock(), error=error, called_at=called_at,
                                 owner=self.owner)
        self.metrics.actions.labels(action.group, result).inc()
        log.error("action %s group=%s %s -> %s failed: %s",
                  action.id, action.group, action.from_capacity, action.desired, error)
        return ActionState.FAILED

