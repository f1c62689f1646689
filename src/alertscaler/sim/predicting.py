"""The simulator's driver of ``decide.prediction``: the same ``plan`` / ``absorb`` / ``predict`` calls the service
makes (``act.prediction``), with the history read from the demand replayed so far instead of a range query.

The history is what the service's ``predict.query`` would give over the same span, a ``rate(...[step])`` on
the grid of ``step``: each grid point ``p`` holds the mean of the demand the controller observed in
``(p - step, p]`` (``decide.prediction.bucket``). Nothing after ``now`` is ever read. Called by
``sim.controllers.TrackingController`` (the built-in policies) and ``sim.group.GroupController`` (a user's
group with a ``predict`` section), once per tracking evaluation.
"""

from __future__ import annotations

import math
from datetime import datetime

from alertscaler.decide.prediction import PredictorState, absorb, plan, predict
from alertscaler.model.prediction import Forecast, PredictRules

__all__ = ["SimPredictor"]


class SimPredictor:
    """``observe`` every demand the controller sees, then ``forecast`` at the same instant."""

    def __init__(self, rules: PredictRules) -> None:
        self.rules = rules
        self.state = PredictorState()
        self._sums: dict[int, list[float]] = {}  # grid slot -> [sum, count]
        self._oldest = 0

    def observe(self, now: datetime, demand: float) -> None:
        if not math.isfinite(demand) or demand < 0:
            return
        slot = math.ceil(now.timestamp() / self.rules.step - 1e-9)
        acc = self._sums.get(slot)
        if acc is None:
            self._sums[slot] = [demand, 1.0]
        else:
            acc[0] += demand
            acc[1] += 1.0

    def forecast(self, now: datetime) -> Forecast | None:
        t = now.timestamp()
        fetch = plan(self.state, t, self.rules)
        if fetch is not None:
            step = self.rules.step
            first, last = math.ceil(fetch.start / step - 1e-9), math.floor(fetch.end / step + 1e-9)
            points = [(slot * step, acc[0] / acc[1]) for slot in range(max(first, self._oldest), last + 1)
                      if (acc := self._sums.get(slot)) is not None]
            self.state = absorb(self.state, fetch, points, t, self.rules)
            self._prune(t)
        return predict(self.state, now, self.rules)

    def _prune(self, t: float) -> None:
        """Forget what no full fit will read again."""
        keep_from = math.ceil((t - self.rules.history) / self.rules.step) - 1
        if keep_from > self._oldest + 1000:
            for slot in range(self._oldest, keep_from):
                self._sums.pop(slot, None)
            self._oldest = keep_from
