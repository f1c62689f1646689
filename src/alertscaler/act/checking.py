"""The live check of a checked step policy (``guard`` / ``size_by``): the PromQL is evaluated now, in
Prometheus, and what it found is handed to ``decide.evaluator`` as a ``LiveCheck``.

Called by ``act.reevaluating`` (in a worker thread: the queries block), never inside a store transaction and
never on the event loop: a slow Prometheus delays that one decision, not the webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from alertscaler.model.errors import QueryError
from alertscaler.model.policies import LiveCheck, StepPolicy

log = logging.getLogger(__name__)

#: PromQL -> the one value it gives (raises ``QueryError``: empty, several series, bad PromQL, unreachable)
ValueOf = Callable[[str], float]
#: PromQL -> how many series it returns (raises ``QueryError`` for bad PromQL or an unreachable Prometheus)
SeriesCount = Callable[[str], int]


@dataclass(frozen=True)
class Checker:
    """The two questions a live check asks Prometheus."""

    value_of: ValueOf
    series: SeriesCount

    def check(self, step: StepPolicy, where: str) -> LiveCheck:
        """Evaluate ``step``'s guard (first: a guard that fails spares the size query) and size_by.
        ``where`` names the group/policy in the log."""
        guard_held: bool | None = None
        count = 0
        try:
            if step.guard is not None:
                count = self.series(step.guard)
                guard_held = count > 0
                if not guard_held:
                    return LiveCheck(guard_held=False)
            value = self.value_of(step.size_by.query) if step.size_by is not None else None
        except QueryError as exc:
            log.warning("%s: live check failed: %s", where, exc)
            return LiveCheck(guard_held=guard_held, guard_series=count, error=str(exc))
        return LiveCheck(guard_held=guard_held, guard_series=count, size_value=value)
