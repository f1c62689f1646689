"""One comparison, as ``alertscaler simulate`` / ``backtest`` and ``bench/decision_quality.py`` run it: a chosen
policy and the baselines (HPA on requests/s per pod, HPA on CPU, the seeds' step policy) on the same scenario
in the same run, with their summaries and the oracle's.

Also builds the scenario's trace from the command's options (``prepare_trace``), the policies from their
names (``policy_named``), and checks that a trace is scaled to the group at all (``scale_problems``: a
utilisation column replayed as requests/s would need one instance throughout, and every policy would look
perfect).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alertscaler.model.durations import parse_duration
from alertscaler.sim.metrics import Summary, oracle_summary, summarize
from alertscaler.sim.running import Progress, Run, simulate_all
from alertscaler.sim.scenarios import (
    Policy,
    Scenario,
    alertscaler_forecasting,
    alertscaler_predictive,
    alertscaler_sized,
    alertscaler_step,
    alertscaler_tracking,
    hpa_cpu,
    hpa_rps,
    seed_step,
)
from alertscaler.sim.traces import BUNDLED, Trace, TraceError, load_trace

__all__ = ["DEFAULT_PEAK_FRACTION", "POLICIES", "Comparison", "baselines", "compare", "policy_named",
           "prepare_trace", "scale_problems"]

#: A bundled trace is scaled so that its busiest sample needs this share of max_size's capacity.
DEFAULT_PEAK_FRACTION = 0.7
POLICIES = ("tracking", "forecast", "predictive", "step", "sized", "hpa-rps", "hpa-cpu", "seed")


def policy_named(name: str, scenario: Scenario) -> Policy:
    """``tracking`` (the service's default ``track``), ``forecast`` (the same with a ``predict`` section at its
    defaults, planning one start-up delay ahead), ``predictive`` (not the default: a second metric
    predicted one start-up delay ahead), ``step`` (alertscaler's step policy, scale-out cooldown = max(60 s,
    delay)), ``sized`` (the same alerts, steps sized live with ``size_by``), ``hpa-rps``, ``hpa-cpu``,
    ``seed``; all at the scenario's target utilisation and capacity."""
    target, capacity, delay = scenario.target, scenario.capacity, scenario.delay
    if name == "tracking":
        return alertscaler_tracking(target, capacity)
    if name == "forecast":
        return alertscaler_forecasting(target, capacity, lead=delay)
    if name == "predictive":
        return alertscaler_predictive(target, capacity, lookahead=delay)
    if name == "step":
        return alertscaler_step(target, cooldown=max(60.0, delay))
    if name == "sized":
        return alertscaler_sized(target, capacity, cooldown=max(60.0, delay))
    if name == "hpa-rps":
        return hpa_rps(target * capacity)
    if name == "hpa-cpu":
        return hpa_cpu(target, scenario.cpu_limit)
    if name == "seed":
        return seed_step()
    raise ValueError(f"unknown policy {name!r}: choose one of {', '.join(POLICIES)}")


def baselines(scenario: Scenario, rps_target: float | None = None, cpu_target: float | None = None) -> list[Policy]:
    """HPA on requests/s per pod (``rps_target``, default target x capacity), HPA on CPU (``cpu_target``,
    default the scenario's target) and the seeds' step policy."""
    rps = scenario.per_instance if rps_target is None else rps_target
    cpu = scenario.target if cpu_target is None else cpu_target
    return [hpa_rps(rps), hpa_cpu(cpu, scenario.cpu_limit), seed_step()]


def prepare_trace(spec: str, *, start: str | None = None, minutes: float | None = None, smooth: int = 1,
                  peak: float | None = None, speed: float = 1.0, max_size: int = 20, capacity: float = 40.0,
                  column: str | None = None, stride: float | None = None) -> Trace:
    """Load (``column``, ``stride``: see ``traces.load_trace``), cut (``start``: a date-time of the trace or
    a duration after its start; ``minutes`` of trace time), smooth (a moving average over ``smooth``
    samples), scale (busiest sample = ``peak`` requests/s; bundled traces default to
    ``DEFAULT_PEAK_FRACTION`` x ``max_size`` x ``capacity``) and compress (``speed`` trace seconds per
    simulated second), in that order."""
    trace = load_trace(spec, column=column, stride=stride)
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


def scale_problems(scenario: Scenario) -> list[str]:
    """Warnings about a trace that does not fit the group: its peak needs more than max_size (every policy
    under-provisioned at the peak), or it uses little of the group. Raises ``TraceError`` when the trace
    never needs more than min_size: every policy would sit at min_size and the comparison would say
    nothing (typically a utilisation or a per-instance column replayed as the group's requests/s)."""
    trace = scenario.trace
    per = scenario.per_instance
    if trace.peak <= 0:
        raise TraceError(f"{trace.name}: every value is 0: nothing to replay")
    wanted = math.ceil(round(trace.peak / per, 9))
    example = DEFAULT_PEAK_FRACTION * scenario.max_size * scenario.capacity
    scale = (f"give --peak RPS to scale the trace (e.g. --peak {example:g}: its busiest sample needs "
             f"{DEFAULT_PEAK_FRACTION:g} x max_size's capacity)")
    if wanted <= scenario.min_size:
        raise TraceError(
            f"{trace.name}: the busiest sample is {trace.peak:g} req/s, which {wanted} instance(s) carry at "
            f"{per:g} req/s each (capacity {scenario.capacity:g} x target {scenario.target:g}): every policy "
            f"would stay at min_size {scenario.min_size} and the comparison would say nothing. If the column "
            f"is not the group's requests/s (a utilisation, a per-instance rate), {scale}, or give the "
            "capacity in the trace's unit with --capacity")
    problems: list[str] = []
    if wanted > scenario.max_size:
        problems.append(f"{trace.name}: the busiest sample ({trace.peak:g} req/s) needs {wanted} instances at the "
                        f"target, max_size is {scenario.max_size}: every policy is short at the peak; {scale}")
    elif wanted * 4 < scenario.max_size:
        problems.append(f"{trace.name}: the busiest sample ({trace.peak:g} req/s) needs {wanted} of max_size "
                        f"{scenario.max_size} instances: the replay uses little of the group; {scale}")
    return problems


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    runs: tuple[Run, ...]               # the chosen policy first, then the baselines
    summaries: tuple[Summary, ...]
    oracle: Summary

    @property
    def chosen(self) -> Summary:
        return self.summaries[0]

    def summary(self, policy: str) -> Summary:
        return next(s for s in self.summaries if s.policy == policy)

    def as_dict(self) -> dict[str, Any]:
        sc, trace = self.scenario, self.scenario.trace
        return {
            "scenario": {
                "trace": trace.name, "trace_start": trace.start.isoformat() if trace.start else None,
                "samples": len(trace.values), "minutes": trace.duration / 60.0, "peak_rps": trace.peak,
                "capacity_rps": sc.capacity, "target": sc.target, "cpu_limit": sc.cpu_limit, "delay_s": sc.delay,
                "interval_s": sc.interval, "metric_window_s": sc.metric_window, "min_size": sc.min_size,
                "max_size": sc.max_size, "step_s": self.runs[0].series.step,
            },
            "results": [s.as_dict() | {"initial_size": r.initial}
                        for s, r in zip(self.summaries, self.runs, strict=True)],
            "oracle": self.oracle.as_dict(),
            "oracle_instance_hours": self.oracle.instance_hours,
        }


def compare(scenario: Scenario, chosen: Policy, others: Sequence[Policy] | None = None,
            progress: Progress | None = None) -> Comparison:
    """``chosen`` and ``others`` (default: ``baselines(scenario)``; one that has the chosen policy's name is
    not run twice) on the same scenario, same step, same start."""
    policies: list[Policy] = [chosen]
    for baseline in baselines(scenario) if others is None else others:
        if baseline.name != chosen.name:
            policies.append(baseline)
    runs = tuple(simulate_all(scenario, policies, progress))
    return Comparison(scenario, runs, tuple(summarize(r) for r in runs), oracle_summary(runs[0]))


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
