"""A group's ``predict`` section as a typed model: the query giving the group's whole load, what one member
carries, the seasons, the history read, how far ahead capacity is planned, the band, the smoothing constants and
``forecast_only``. ``PredictConfig.rules`` gives ``model.prediction.PredictRules`` for ``decide.prediction``.
Part of ``config`` (``config.groups.GroupConfig.predict``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from alertscaler.config.sections import ConfigModel
from alertscaler.model.durations import Duration, Interval, format_duration
from alertscaler.model.prediction import MIN_CYCLES, MIN_POINTS, PredictRules, Smoothing


class SmoothingConfig(ConfigModel):
    """``predict.smoothing``: Holt-Winters' constants. ``level: auto`` chooses alpha at each fit (the one with the
    least one-step error over the history)."""

    level: Literal["auto"] | float = "auto"
    trend: Annotated[float, Field(ge=0, le=1)] = 0.01
    damping: Annotated[float, Field(gt=0, le=1)] = 0.9
    season: Annotated[float, Field(ge=0, le=1)] = 0.1

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise ValueError(f"must be auto (chosen at each fit) or a number in (0, 1], got {value!r}")
        return float(value)

    def smoothing(self) -> Smoothing:
        return Smoothing(level=None if self.level == "auto" else float(self.level), trend=self.trend,
                         damping=self.damping, season=self.season)


class PredictConfig(ConfigModel):
    """``groups.NAME.predict``: forecast the group's load from its Prometheus history (daily and weekly seasons,
    trend, a band) and keep at least the capacity the forecast ``lead`` ahead needs; combined with the group's
    ``track`` section (the larger wins, a scale-in needs both to agree). ``forecast_only: true`` records what it
    would do and changes nothing."""

    query: Annotated[str, Field(min_length=1)]     # PromQL giving the group's WHOLE load as one series
    per_instance: Annotated[float, Field(gt=0)]    # the load one member should carry (as the track target)
    seasons: list[Duration] = Field(default_factory=lambda: [86400.0, 604800.0])
    step: Interval = 300.0
    lead: Duration = 120.0                         # a new member's start-up delay: plan this far ahead
    history: Duration = 1814400.0                  # 3w
    refit: Interval = 86400.0
    # chosen on the bank of traces (BENCHMARKS.md): plan for the mean; use the forecast only while its one-step
    # error is at least 30 % (squared) below the last value's
    quantile: Annotated[float, Field(ge=0.5, lt=1)] = 0.5
    min_skill: Annotated[float, Field(ge=0, lt=1)] = 0.3
    smoothing: SmoothingConfig = SmoothingConfig()
    forecast_only: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> PredictConfig:
        step = self.step
        for season in self.seasons:
            if season < 2 * step or abs(season / step - round(season / step)) > 1e-9:
                raise ValueError(f"seasons: {format_duration(season)} is not a whole number of steps "
                                 f"({format_duration(step)}), at least two")
            if MIN_CYCLES * season > self.history + 1e-9:
                raise ValueError(f"history ({format_duration(self.history)}) is shorter than {MIN_CYCLES} cycles "
                                 f"of the season {format_duration(season)}: it could never be learned; give history "
                                 f">= {format_duration(MIN_CYCLES * season)} or leave the season out")
        if self.history < MIN_POINTS * step:
            raise ValueError(f"history ({format_duration(self.history)}) holds fewer than {MIN_POINTS} steps of "
                             f"{format_duration(step)}")
        return self

    def rules(self) -> PredictRules:
        return PredictRules(per_instance=self.per_instance, seasons=tuple(self.seasons), step=self.step,
                            lead=self.lead, history=self.history, refit=self.refit, quantile=self.quantile,
                            smoothing=self.smoothing.smoothing(), min_skill=self.min_skill)
