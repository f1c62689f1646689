"""One comparison, as ``alertscaler simulate`` and ``bench/decision_quality.py`` run it: a chosen policy and
both baselines (HPA's default behaviour, the seeds' step policy) on the same scenario in the same run, with
their summaries and the issue's goal checked (τU at most half of HPA-default's, at no more instance-hours).

Also builds the scenario's trace from the command's options (``prepare_trace``) and the policies from their
names (``policy_named``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alertscaler.model.durations import parse_duration
from alertscaler.sim.metrics import Summary, summarize
from alertscaler.sim.running import Run, simulate_all
from alertscaler.sim.scenarios import (
    DEFAULT_TARGET,
    Policy,
    Scenario,
    alertscaler_sized,
    alertscaler_step,
    alertscaler_tracking,
    hpa_default,
    seed_step,
)
from alertscaler.sim.traces import BUNDLED, Trace, TraceError, load_trace

__all__ = ["DEFAULT_PEAK_FRACTION", "POLICIES", "Comparison", "Goal", "compare", "policy_named", "prepare_trace"]

#: A bundled trace is scaled so that its busiest sample needs this share of max_size's capacity.
DEFAULT_PEAK_FRACTION = 0.7
POLICIES = ("tracking", "step", "sized", "hpa", "seed")


def policy_named(name: str, target: float, capacity: float, delay: float) -> Policy:
    """``tracking`` (alertscaler's best default, predicting one provisioning ``delay`` ahead), ``step``
    (alertscaler's step policy, scale-out cooldown = max(60 s, delay)), ``sized`` (the same alerts, steps
    sized live with ``size_by``), ``hpa``, ``seed``."""
    if name == "tracking":
        return alertscaler_tracking(target, capacity, lookahead=delay)
    if name == "step":
        return alertscaler_step(target, cooldown=max(60.0, delay))
    if name == "sized":
        return alertscaler_sized(target, capacity, cooldown=max(60.0, delay))
    if name == "hpa":
        return hpa_default(target)
    if name == "seed":
        return seed_step()
    raise ValueError(f"unknown policy {name!r}: choose one of {', '.join(POLICIES)}")


def prepare_trace(spec: str, *, start: str | None = None, minutes: float | None = None, smooth: int = 1,
                  peak: float | None = None, speed: float = 1.0, max_size: int = 20,
                  capacity: float = 40.0) -> Trace:
    """Load, cut (``start``: a date-time of the trace or a duration after its start; ``minutes`` of trace
    time), smooth (a moving average over ``smooth`` samples), scale (busiest sample = ``peak`` requests/s;
    bundled traces default to ``DEFAULT_PEAK_FRACTION`` x ``max_size`` x ``capacity``) and compress
    (``speed`` trace seconds per simulated second), in that order."""
    trace = load_trace(spec)
    offset = 0.0 if start is None else _offset(trace, start)
    trace = trace.window(offset, None if minutes is None else minutes * 60.0)
    trace = trace.smoothed(smooth)
    if peak is None and spec in BUNDLED:
        if max_size < 1:
            raise TraceError("scaling the bundled trace needs max_size >= 1 (or give --peak)")
        peak = DEFAULT_PEAK_FRACTION * max_size * capacity
    if peak is not None:
        trace = trace.scaled_to_peak(peak)
    return trace.compressed(speed)


@dataclass(frozen=True)
class Goal:
    """Issue 6's goal for the chosen policy against HPA-default."""

    tau_u: float
    hpa_tau_u: float
    instance_hours: float
    hpa_instance_hours: float

    @property
    def half_the_underprovisioning(self) -> bool:
        return self.tau_u <= self.hpa_tau_u / 2 + 1e-9

    @property
    def no_more_instance_hours(self) -> bool:
        return self.instance_hours <= self.hpa_instance_hours + 1e-9

    @property
    def met(self) -> bool:
        return self.half_the_underprovisioning and self.no_more_instance_hours

    def as_dict(self) -> dict[str, Any]:
        return {"tau_u": self.tau_u, "hpa_tau_u": self.hpa_tau_u, "instance_hours": self.instance_hours,
                "hpa_instance_hours": self.hpa_instance_hours,
                "half_the_underprovisioning": self.half_the_underprovisioning,
                "no_more_instance_hours": self.no_more_instance_hours, "met": self.met}


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    runs: tuple[Run, ...]               # the chosen policy first, then the baselines
    summaries: tuple[Summary, ...]

    @property
    def chosen(self) -> Summary:
        return self.summaries[0]

    @property
    def goal(self) -> Goal | None:
        """None when the chosen policy is HPA-default itself."""
        hpa = next(s for s in self.summaries if s.policy == "hpa-default")
        if self.chosen is hpa:
            return None
        return Goal(self.chosen.tau_u, hpa.tau_u, self.chosen.instance_hours, hpa.instance_hours)

    def as_dict(self) -> dict[str, Any]:
        sc, trace = self.scenario, self.scenario.trace
        goal = self.goal
        return {
            "scenario": {
                "trace": trace.name, "trace_start": trace.start.isoformat() if trace.start else None,
                "samples": len(trace.values), "minutes": trace.duration / 60.0, "peak_rps": trace.peak,
                "capacity_rps": sc.capacity, "delay_s": sc.delay, "interval_s": sc.interval,
                "metric_window_s": sc.metric_window, "min_size": sc.min_size, "max_size": sc.max_size,
                "step_s": self.runs[0].series.step,
            },
            "results": [s.as_dict() | {"initial_size": r.initial}
                        for s, r in zip(self.summaries, self.runs, strict=True)],
            "oracle_instance_hours": self.chosen.oracle_instance_hours,
            "goal": None if goal is None else goal.as_dict(),
        }


def compare(scenario: Scenario, chosen: Policy, hpa_target: float = DEFAULT_TARGET) -> Comparison:
    """``chosen`` and both baselines (once each: a baseline chosen is not repeated), same run, same step;
    HPA-default tracks ``hpa_target`` (give it the chosen policy's target, for a like-for-like cost)."""
    policies: list[Policy] = [chosen]
    for baseline in (hpa_default(hpa_target), seed_step()):
        if baseline.name != chosen.name:
            policies.append(baseline)
    runs = tuple(simulate_all(scenario, policies))
    return Comparison(scenario, runs, tuple(summarize(r) for r in runs))


def _offset(trace: Trace, start: str) -> float:
    try:
        return parse_duration(start)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(f"start {start!r} is neither a duration (2h, 90m) nor a date-time "
                         "(1998-06-30 10:00)") from None
    offset = trace.offset_of(when)
    if not math.isfinite(offset):
        raise TraceError(f"start {start!r} is not a usable time")
    return offset
