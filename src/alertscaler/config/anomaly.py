"""The policy file's ``anomaly:`` list: PromQL series whose recent window alertscaler compares with a reference
window (a two-sample Kolmogorov-Smirnov test, optionally a seasonal residual score) and exports as
``alertscaler_anomaly_score`` on /metrics, for alert rules to watch. Part of ``config``: ``AnomalySection`` is
validated by ``config.loading`` (problems at ``anomaly[i].key``), turned into ``model.anomaly.AnomalySpec``
values for ``act.anomaly`` (wired by ``service``).

One entry::

    - name: checkout_latency        # the ``name`` label of the scores
      query: avg(rate(http_request_duration_seconds_sum[1m]) / rate(http_request_duration_seconds_count[1m]))
      window: 10m                   # the recent window
      reference: 1h                 # the reference window's length (default: window)
      reference_offset: 10m         # how far back the reference window ends (default: window, the period just
                                    #   before the recent one; 1d: the same hours yesterday)
      step: 15s                     # resolution of the range queries
      interval: 1m                  # how often the scores are computed
      season: 1d                    # optional: also the seasonal residual score (value - value one season ago)
      min_samples: 10               # fewer points in a window: no score
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, RootModel, field_validator, model_validator

from alertscaler.config.sections import ConfigModel
from alertscaler.model.anomaly import AnomalySpec
from alertscaler.model.durations import Duration, Interval, PositiveDuration, format_duration

#: points of one window at most (the KS statistic sorts them; Prometheus answers at most 11,000 per request)
MAX_POINTS = 20_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")


class AnomalyConfig(ConfigModel):
    """One entry of ``anomaly:`` (see the module docstring)."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    query: Annotated[str, Field(min_length=1)]
    window: PositiveDuration = 600.0
    reference: PositiveDuration | None = None
    reference_offset: Duration | None = None
    step: PositiveDuration = 15.0
    interval: Interval = 60.0
    season: PositiveDuration | None = None
    min_samples: Annotated[int, Field(ge=5)] = 10

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("may use letters, digits, '_', '.', ':' and '-', starting with a letter or '_' "
                             "(it is the name label of alertscaler_anomaly_score)")
        return value

    @model_validator(mode="after")
    def _fits(self) -> AnomalyConfig:
        spec = self.spec()
        if spec.offset < spec.window:
            raise ValueError(f"reference_offset {format_duration(spec.offset)} is shorter than window "
                             f"{format_duration(spec.window)}: the reference window would overlap the recent one")
        for key, length in (("window", spec.window), ("reference", spec.reference)):
            points = int(length // spec.step)
            if points < spec.min_samples:
                raise ValueError(f"{key} {format_duration(length)} at step {format_duration(spec.step)} gives "
                                 f"{points} point(s), fewer than min_samples ({spec.min_samples}): lengthen it or "
                                 "shorten step")
            if points > MAX_POINTS:
                raise ValueError(f"{key} {format_duration(length)} at step {format_duration(spec.step)} gives "
                                 f"{points} points, more than {MAX_POINTS}: lengthen step")
        if spec.season is not None and spec.season < spec.step:
            raise ValueError(f"season {format_duration(spec.season)} is shorter than step "
                             f"{format_duration(spec.step)}")
        return self

    def spec(self) -> AnomalySpec:
        """The values ``decide.anomaly`` and ``act.anomaly`` work with (defaults filled in)."""
        return AnomalySpec(name=self.name, query=self.query, window=self.window,
                           reference=self.reference if self.reference is not None else self.window,
                           offset=self.reference_offset if self.reference_offset is not None else self.window,
                           step=self.step, interval=self.interval, season=self.season, min_samples=self.min_samples)


class AnomalySection(RootModel[list[AnomalyConfig]]):
    """The ``anomaly:`` list; names are unique (each is the ``name`` label of its scores)."""

    model_config = {"frozen": True}

    @model_validator(mode="after")
    def _unique(self) -> AnomalySection:
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.root):
            if entry.name in seen:
                raise ValueError(f"names must be unique: anomaly[{seen[entry.name]}] and anomaly[{i}] are both "
                                 f"{entry.name!r}")
            seen[entry.name] = i
        return self

    def specs(self) -> tuple[AnomalySpec, ...]:
        return tuple(entry.spec() for entry in self.root)

    def queries(self) -> list[tuple[str, str]]:
        """(path, PromQL) of each entry, for the checks of every query alertscaler runs itself."""
        return [(f"anomaly[{i}].query", entry.query) for i, entry in enumerate(self.root)]
