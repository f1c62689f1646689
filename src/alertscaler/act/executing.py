"""Run one claimed action against its provider: outcome, retries with backoff, metrics.

Called by ``act.queueing`` (one group's worker, so actions of a group never overlap). Runs in a worker
thread: provider calls are blocking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alertscaler.act.metrics import Metrics
from alertscaler.config import ActionsConfig
from alertscaler.model.decisions import Action, ActionState
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.base import Provider, ScaleRequest
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)


def backoff(attempts: int, config: ActionsConfig, hint: float | None) -> float:
    """Seconds before the next attempt: the provider's hint if it gave one, else exponential."""
    if hint is not None and hint >= 0:
        return min(hint, config.backoff_max)
    return float(min(config.backoff_initial * 2 ** max(0, attempts - 1), config.backoff_max))


@dataclass(frozen=True)
class Executor:
    store: StateStore
    provider: Provider
    config: ActionsConfig
    metrics: Metrics
    clock: Callable[[], datetime]

    def execute(self, action: Action, request: ScaleRequest | None = None) -> ActionState:
        """``action`` has been claimed (RUNNING). Call the provider and record the outcome. ``request`` is
        built from the stored decision when not given."""
        request = request or self._request(action)
        called_at = self.clock()
        started = time.perf_counter()
        try:
            result = self.provider.scale(request)
        except TemporaryProviderError as exc:
            self._observe(action, started)
            if action.attempts >= self.config.max_attempts:
                return self._fail(action, f"gave up after {action.attempts} attempts: {exc}", called_at)
            delay = backoff(action.attempts, self.config, exc.delay)
            self.store.release_action(action.id, self.clock() + timedelta(seconds=delay), str(exc), called_at)
            self.metrics.action_retries.labels(action.group).inc()
            log.warning("action %s group=%s attempt %d failed temporarily, retry in %.1fs: %s",
                        action.id, action.group, action.attempts, delay, exc)
            return ActionState.PENDING
        except PermanentProviderError as exc:
            self._observe(action, started)
            return self._fail(action, str(exc), called_at)
        except Exception as exc:  # a provider bug must not kill the worker; record it
            self._observe(action, started)
            log.exception("action %s group=%s: provider raised unexpectedly", action.id, action.group)
            return self._fail(action, f"internal provider error: {type(exc).__name__}: {exc}", called_at)
        self._observe(action, started)
        self.store.finish_action(action.id, ActionState.SUCCEEDED, self.clock(), result=result, called_at=called_at)
        self.metrics.actions.labels(action.group, "succeeded").inc()
        log.info("action %s group=%s %s -> %s succeeded: %s",
                 action.id, action.group, action.from_capacity, action.desired, result)
        return ActionState.SUCCEEDED

    def _request(self, action: Action) -> ScaleRequest:
        decision = self.store.get_decision(action.decision_id)
        body = None
        if decision is not None and decision.notification_id is not None:
            body = self.store.notification_body(decision.notification_id)
        return ScaleRequest(
            group=action.group, from_capacity=action.from_capacity, desired=action.desired,
            action_id=action.id, decision_id=action.decision_id, notification=body,
            alerts=decision.alerts if decision else [],
        )

    def _fail(self, action: Action, error: str, called_at: datetime | None = None) -> ActionState:
        self.store.finish_action(action.id, ActionState.FAILED, self.clock(), error=error, called_at=called_at)
        self.metrics.actions.labels(action.group, "failed").inc()
        log.error("action %s group=%s %s -> %s failed: %s",
                  action.id, action.group, action.from_capacity, action.desired, error)
        return ActionState.FAILED

    def _observe(self, action: Action, started: float) -> None:
        self.metrics.action_duration.labels(action.group).observe(time.perf_counter() - started)
