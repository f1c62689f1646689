"""Predictive scaling as values: the rules a group's ``predict`` section sets (``PredictRules``), the forecast
``decide.prediction`` makes from the group's history (``Forecast``) and what a group's predictor says about
itself (``PredictionView``: a forecast, or why there is none). Used by ``config`` (``PredictConfig.rules``),
``decide.prediction``, ``act.tracking`` / ``act.prediction`` (the service), ``api`` (``status``) and ``sim``.

Times are Unix seconds (floats) inside ``decide.prediction``, aware datetimes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: a season is learned once the history covers this many of its cycles
MIN_CYCLES = 2
#: the fewest points on the step grid a forecast is made from (level and trend only)
MIN_POINTS = 12
#: the band shown (status, /metrics): the central share of the forecast distribution
BAND = 0.8


@dataclass(frozen=True)
class Smoothing:
    """Holt-Winters' smoothing constants (additive, damped trend): ``level`` (alpha; None: chosen at each fit),
    ``trend`` (beta), ``damping`` (phi, 1 = an undamped trend), ``season`` (gamma, the same for every season).
    See ``decide.prediction``."""

    level: float | None = None   # None: chosen at each fit (``decide.prediction.LEVEL_GRID``)
    trend: float = 0.01
    damping: float = 0.9
    season: float = 0.1


@dataclass(frozen=True)
class PredictRules:
    """What ``decide.prediction`` needs: the load one member carries (``per_instance``, in the query's unit),
    the seasons (seconds, each a multiple of ``step``), the grid the history is read on (``step``), how far
    ahead capacity is planned (``lead``: a new member's start-up delay), how much history is read
    (``history``), how often it is read whole and the model fitted again (``refit``; in between only the new
    points are folded in), the share of the forecast distribution capacity is planned for (``quantile``: 0.5
    plans for the mean, 0.9 for the upper end of the 80 % band) and the smoothing constants; the forecast is
    used only while its skill is above ``min_skill``. The defaults are ``config.prediction.PredictConfig``'s."""

    per_instance: float
    seasons: tuple[float, ...] = (86400.0, 604800.0)
    step: float = 300.0
    lead: float = 120.0
    history: float = 1814400.0
    refit: float = 86400.0
    quantile: float = 0.5
    smoothing: Smoothing = Smoothing()
    min_skill: float = 0.3

    def __post_init__(self) -> None:
        if not self.per_instance > 0:
            raise ValueError(f"per_instance must be > 0, got {self.per_instance}")
        if not self.step > 0 or not self.history >= self.step or not self.refit > 0 or self.lead < 0:
            raise ValueError("step, history and refit must be > 0 (history at least one step), lead >= 0")
        if not 0.5 <= self.quantile < 1:
            raise ValueError(f"quantile must be in [0.5, 1), got {self.quantile}")
        for season in self.seasons:
            if season < 2 * self.step or abs(season / self.step - round(season / self.step)) > 1e-9:
                raise ValueError(f"a season ({season:g} s) must be a multiple of the step ({self.step:g} s), at "
                                 "least two steps")


@dataclass(frozen=True)
class Forecast:
    """The group's load forecast for ``for_at`` (made at ``made_at``, ``lead`` ahead): the ``mean``, the ``BAND``
    ``lower``..``upper``, the value capacity is planned for (``planned``: the ``quantile`` of the forecast
    distribution) and the capacity it needs (``ask`` = ceil(planned / per_instance), before bounds); its
    ``skill`` and whether it ``applies`` (skill above ``min_skill``); from ``points`` points of history
    with the seasons it learned (``seasons``, seconds; empty: level and trend only), the model fitted at
    ``fitted_at`` and fed up to ``data_until``."""

    made_at: datetime
    for_at: datetime
    mean: float
    lower: float
    upper: float
    planned: float
    quantile: float
    ask: int
    skill: float
    applies: bool
    points: int
    seasons: tuple[float, ...]
    fitted_at: datetime
    data_until: datetime

    def describe(self) -> str:
        planned = "" if self.quantile == 0.5 else f", planned for its {self.quantile:g} quantile {self.planned:.4g}"
        return (f"forecast {self.mean:.4g} ({BAND * 100:.0f} % band {self.lower:.4g}..{self.upper:.4g}{planned}) at "
                f"{self.for_at.isoformat(timespec='seconds').replace('+00:00', 'Z')} needs {self.ask}")


@dataclass(frozen=True)
class PredictionView:
    """A group's predictor as ``status`` and ``/metrics`` show it: the last forecast (None: none yet) and, when
    there is none or the last attempt failed, why (``problem``); ``forecast_only``: it is not applied."""

    forecast: Forecast | None
    problem: str | None
    forecast_only: bool
