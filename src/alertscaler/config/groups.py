"""A group's section of the policy file as typed models: bounds, step policies (signed adjustments, live checks),
``heal``, ``track`` (with ``predict``: ``config.prediction``), ``schedule``, ``approval`` and ``change_freeze``;
``GroupConfig.bounds_at`` gives the bounds in force. Part of ``config``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.config.alertmanager_api import SilencesConfig
from alertscaler.config.prediction import PredictConfig
from alertscaler.config.sections import ConfigModel
from alertscaler.decide.schedules import active_windows, effective_bounds
from alertscaler.model.approvals import ApprovalRules, ChangeFreeze
from alertscaler.model.durations import Duration, Interval
from alertscaler.model.healing import HealAction, HealRules
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import AdjustmentType, Bounds, Direction, StepPolicy
from alertscaler.model.schedules import Schedule
from alertscaler.model.tracking import DirectionRules, LimitKind, RateLimit, Select, TrackingRules


class ScaleOutPolicy(StepPolicy):
    @field_validator("adjustment")
    @classmethod
    def _sign(cls, value: int, info: ValidationInfo) -> int:
        return _signed(value, info, Direction.SCALE_OUT)


class ScaleInPolicy(StepPolicy):
    @field_validator("adjustment")
    @classmethod
    def _sign(cls, value: int, info: ValidationInfo) -> int:
        return _signed(value, info, Direction.SCALE_IN)


def _signed(value: int, info: ValidationInfo, direction: Direction) -> int:
    kind = info.data.get("adjustment_type", AdjustmentType.CHANGE_IN_CAPACITY)
    StepPolicy.check_sign(kind, value, direction)
    return value


class FlapConfig(ConfigModel):
    heals: Annotated[int, Field(ge=1)] = 3   # a member slot healed this many times within period ...
    period: Duration = 3600.0               # ... is quarantined (if the provider can) and no longer healed


class FreezeConfig(ConfigModel):
    share: Annotated[float, Field(gt=0, le=1)] = 0.5  # more than this share of members unhealthy at once ...
    min: Annotated[int, Field(ge=1)] = 2               # ... and at least this many: freeze, destroy nothing
    prometheus: bool = True                            # also freeze while prometheus.url does not answer


class HealConfig(ConfigModel):
    """``groups.NAME.heal``: replace, reboot or quarantine unhealthy members, safely. Signals: firing alerts
    matching ``matchers`` (the member named by the first of ``member_labels`` the alert has: a member id or
    its address), and members the provider reports failed (``provider_status``)."""

    matchers: list[str] = Field(default_factory=list)
    member_labels: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["alertscaler_member", "instance"])
    provider_status: bool = True
    action: HealAction = HealAction.REPLACE
    grace: Duration = 120.0
    batch_window: Duration = 20.0
    budget: Annotated[int, Field(ge=1)] = 1
    flap: FlapConfig = FlapConfig()
    freeze: FreezeConfig = FreezeConfig()

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[str]) -> list[str]:
        MatcherSet.parse(value)  # raises ValueError naming the bad matcher
        return value

    @model_validator(mode="after")
    def _some_signal(self) -> HealConfig:
        if not self.matchers and not self.provider_status:
            raise ValueError("nothing would ever signal: give matchers (alerts naming a member) and/or "
                             "provider_status: true")
        return self

    def rules(self, can_quarantine: bool) -> HealRules:
        return HealRules(action=self.action, grace=self.grace, batch_window=self.batch_window, budget=self.budget,
                         flap_heals=self.flap.heals, flap_period=self.flap.period, freeze_share=self.freeze.share,
                         freeze_min=self.freeze.min, can_quarantine=can_quarantine)


class RateLimitConfig(ConfigModel):
    """One HPA-style rate-limit policy: at most ``percent`` % or ``instances`` per ``period``."""

    percent: Annotated[float, Field(gt=0)] | None = None
    instances: Annotated[int, Field(ge=1)] | None = None
    period: Duration = 15.0

    @model_validator(mode="after")
    def _one(self) -> RateLimitConfig:
        if (self.percent is None) == (self.instances is None):
            raise ValueError("give exactly one of percent or instances")
        return self

    def limit(self) -> RateLimit:
        if self.percent is not None:
            return RateLimit(LimitKind.PERCENT, self.percent, self.period)
        return RateLimit(LimitKind.INSTANCES, float(self.instances or 0), self.period)


class DirectionConfig(ConfigModel):
    stabilization: Duration = 0.0
    select: Select = Select.MAX
    limits: list[RateLimitConfig] = Field(default_factory=list)
    # this direction's own; None: track.tolerance if given, else the direction's default (TOLERANCE_UP / _DOWN)
    tolerance: Annotated[float, Field(ge=0, lt=1)] | None = None

    def rules(self) -> DirectionRules:
        return DirectionRules(self.stabilization, tuple(lim.limit() for lim in self.limits), self.select,
                              self.tolerance)


# The defaults, chosen on a bank of traces (BENCHMARKS.md, "Choosing the defaults"; bench/choose_defaults.py):
# no tolerance above the target (HPA's 10 % band above it is most of the time its group is under the target),
# 30 % below it and a 3-minute scale-down window (few actions, a quick return after a burst); HPA's rate limits.
TOLERANCE_UP = 0.0
TOLERANCE_DOWN = 0.3
_HPA_UP = DirectionConfig(stabilization=0, limits=[RateLimitConfig(percent=100, period=15),
                                                   RateLimitConfig(instances=4, period=15)])


_DEFAULT_DOWN = DirectionConfig(stabilization=180, limits=[RateLimitConfig(percent=100, period=15)])


class TrackMetric(ConfigModel):
    query: Annotated[str, Field(min_length=1)]   # PromQL giving ONE value for the group
    target: Annotated[float, Field(gt=0)]


class TrackConfig(ConfigModel):
    """``groups.NAME.track``: target tracking the way Kubernetes' HPA decides: every ``interval`` each metric's
    query is evaluated and the group sized so that value / target comes back to 1. HPA's algorithm and rate
    limits; the tolerances and the scale-down window are alertscaler's defaults (``TOLERANCE_UP``,
    ``TOLERANCE_DOWN``, 180 s). ``tolerance`` sets both directions at once (HPA's is 0.1); a direction's own
    ``tolerance`` wins over it."""

    metrics: Annotated[list[TrackMetric], Field(min_length=1)]
    interval: Interval = 15.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] | None = None
    scale_up: DirectionConfig = _HPA_UP
    scale_down: DirectionConfig = _DEFAULT_DOWN
    fallback: Literal["hold"] | Annotated[int, Field(ge=0)] = "hold"

    def rules(self, bounds: Bounds) -> TrackingRules:
        up = _tolerance(self.scale_up, self.tolerance, TOLERANCE_UP)
        down = _tolerance(self.scale_down, self.tolerance, TOLERANCE_DOWN)
        return TrackingRules(targets=tuple(m.target for m in self.metrics), tolerance=up,
                             scale_up=replace(self.scale_up.rules(), tolerance=up),
                             scale_down=replace(self.scale_down.rules(), tolerance=down),
                             min_size=bounds.min_size, max_size=bounds.max_size,
                             fallback=None if self.fallback == "hold" else int(self.fallback))


def _tolerance(direction: DirectionConfig, both: float | None, default: float) -> float:
    """A direction's tolerance: its own, else ``track.tolerance``, else the direction's default."""
    if direction.tolerance is not None:
        return direction.tolerance
    return both if both is not None else default


class GroupConfig(ConfigModel):
    provider: Any = None  # replaced by the provider type's own config model in ``load_policy``
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=0)] = 1
    desired: Annotated[int, Field(ge=0)] | None = None
    dry_run: bool = False
    scale_out: ScaleOutPolicy | None = None
    scale_in: ScaleInPolicy | None = None
    heal: HealConfig | None = None
    track: TrackConfig | None = None
    predict: PredictConfig | None = None          # a load forecast combined with track (config.prediction)
    schedule: Schedule | None = None
    silences: SilencesConfig = SilencesConfig()  # Alertmanager's silences respected; fail open/closed
    approval: ApprovalRules | None = None         # which changes wait for an operator (model.approvals)
    change_freeze: ChangeFreeze | None = None     # windows in which nothing but scale-out runs
    # a scale-in's victim leaves discovery and pools, runs this long, then is stopped (None: from the scrape
    # section, ``PolicyFile.drain_of``); 0 stops it at once
    drain: Duration | None = None

    @field_validator("max_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and low > value:
            raise ValueError(f"min_size ({low}) is greater than max_size ({value})")
        return value

    @field_validator("predict")
    @classmethod
    def _predict_with_track(cls, value: PredictConfig | None, info: ValidationInfo) -> PredictConfig | None:
        if value is not None and info.data.get("track") is None:
            raise ValueError("predict needs a track section: the forecast is combined with target tracking (the "
                             "larger wins, a scale-in needs both to agree)")
        return value

    @field_validator("desired")
    @classmethod
    def _desired_within(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_size"), info.data.get("max_size")
        if value is not None and low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"desired ({value}) must be within min_size..max_size ({low}..{high})")
        return value

    @property
    def bounds(self) -> Bounds:
        return Bounds(min_size=self.min_size, max_size=self.max_size)

    def bounds_at(self, now: datetime) -> Bounds:
        """min/max at ``now``: the configured ones, overridden by the schedule's open windows."""
        if self.schedule is None:
            return self.bounds
        return effective_bounds(self.bounds, active_windows(self.schedule, now))

    @property
    def initial_desired(self) -> int:
        return self.min_size if self.desired is None else self.desired

    @property
    def provider_type(self) -> str:
        return str(getattr(self.provider, "type", ""))

    def policies(self) -> Iterator[tuple[Direction, StepPolicy]]:
        if self.scale_out is not None:
            yield Direction.SCALE_OUT, self.scale_out
        if self.scale_in is not None:
            yield Direction.SCALE_IN, self.scale_in
