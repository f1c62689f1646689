"""Target tracking as values: the rules a group's ``track`` section sets (targets, tolerance, HPA-style
stabilisation and rate limits per direction, bounds, fallback), the history they are applied to
(``Recommendation``, ``Change``) and the verdict ``decide.tracking.recommend`` returns. Used by ``config``
(``TrackConfig.rules``), ``decide``, ``act.tracking`` and ``sim``.

HPA's defaults (``HPA_SCALE_UP``, ``HPA_SCALE_DOWN``) are those of Kubernetes autoscaling/v2 (the simulator's
HPA baselines); the policy file's defaults (``config.groups``) keep HPA's rate limits, with their own
tolerances and scale-down window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class LimitKind(str, Enum):
    PERCENT = "percent"
    INSTANCES = "instances"


class Select(str, Enum):
    MAX = "max"        # the policy allowing the largest change
    MIN = "min"        # the most restrictive
    DISABLED = "disabled"  # no change in this direction at all


@dataclass(frozen=True)
class RateLimit:
    kind: LimitKind
    value: float
    period: float  # seconds


@dataclass(frozen=True)
class DirectionRules:
    stabilization: float = 0.0
    limits: tuple[RateLimit, ...] = ()
    select: Select = Select.MAX
    tolerance: float | None = None   # this direction's own tolerance (None: ``TrackingRules.tolerance``), as HPA's
    #                                  ``behavior.scaleUp/scaleDown.tolerance`` (Kubernetes 1.33)


#: HPA's default behaviour (autoscaling/v2): up: +100 % or +4 per 15 s, whichever is more, no stabilisation;
#: down: -100 % per 15 s after a 300 s stabilisation window.
HPA_SCALE_UP = DirectionRules(0.0, (RateLimit(LimitKind.PERCENT, 100, 15), RateLimit(LimitKind.INSTANCES, 4, 15)))
HPA_SCALE_DOWN = DirectionRules(300.0, (RateLimit(LimitKind.PERCENT, 100, 15),))


@dataclass(frozen=True)
class TrackingRules:
    targets: tuple[float, ...]                 # one target value per metric
    tolerance: float = 0.1
    scale_up: DirectionRules = HPA_SCALE_UP
    scale_down: DirectionRules = HPA_SCALE_DOWN
    min_size: int = 0
    max_size: int = 1
    fallback: int | None = None                # None: hold the current size when a metric is missing

    @property
    def tolerance_up(self) -> float:
        """The tolerance above the target (a ratio above 1 within it keeps the size)."""
        return self.tolerance if self.scale_up.tolerance is None else self.scale_up.tolerance

    @property
    def tolerance_down(self) -> float:
        """The tolerance below the target."""
        return self.tolerance if self.scale_down.tolerance is None else self.scale_down.tolerance


@dataclass(frozen=True, slots=True)
class Recommendation:
    at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Change:
    at: datetime
    from_size: int
    to_size: int


class TrackingReason(str, Enum):
    SCALED = "scaled"
    NO_CHANGE = "no_change"          # every metric within tolerance of its target
    STABILIZED = "stabilized"        # the stabilisation window held the size (or part of the change)
    RATE_LIMITED = "rate_limited"    # the change was cut by a rate limit
    AT_MAX = "at_max"
    AT_MIN = "at_min"
    FALLBACK = "fallback"            # a metric is missing: hold, or the fixed fallback capacity
    PREDICTED = "predicted"          # scaled out further than the metrics ask: the forecast asks more


@dataclass(frozen=True)
class TrackingVerdict:
    current: int
    desired: int
    raw: int                          # what the metrics alone ask for (before stabilisation and limits)
    reason: TrackingReason
    message: str
    per_metric: tuple[int | None, ...] = field(default=())

    @property
    def acts(self) -> bool:
        return self.desired != self.current
