"""Decision quality on a bank of traces (issue 14): alertscaler's defaults — the service's default ``track``
section with a ``predict`` section at its defaults (``default+predict``, planning one start-up delay ahead, as a
user sets ``lead``), and the ``track`` section alone (``alertscaler-default``) — against the FAIR HPA baseline
(HPA's default behaviour on the same metric, requests/s per pod, booting pods as Kubernetes' replica calculator
treats them), HPA on CPU and the seeds' step policy, every figure beside the oracle's (the oracle holds the
target utilisation with no delay).

The bank, every trace scaled so that its busiest sample needs 70 % of max_size at 100 % capacity (560 req/s
with the defaults, as ``--peak 560``), replayed at every provisioning delay given:

* ``worldcup98`` (bundled: 4 days per minute) at each of ``--speeds`` (1 = real time);
* ``electricity`` (bundled: 12 weeks, half-hourly, daily and weekly seasonality) at real time;
* synthetic traces at 10 s resolution (``sim.synthetic``): steps, spikes, ramps, sawtooth, noise, flat.

Per scenario the goal of issue 14 is checked for both defaults against hpa-rps: τU ≤ 0.5 x HPA's where HPA's τU
≥ 0.1 %, else τU ≤ 0.1 %; instance-hours ≤ 1.0 x HPA's (≤ 0.95 x on the seasonal trace); actions ≤ 1.5 x
HPA's; instance-hours ≤ 1.15 x the oracle's. Every scenario is reported, met or not.

    nice python bench/decision_quality.py                         # the bank, markdown on stdout, ~2-3 min
    python bench/decision_quality.py --traces worldcup98 --speeds 10 --delays 180
    python bench/decision_quality.py --candidates --json dq.json  # also the policies that are not the default

Deterministic: the same options print the same tables (except the elapsed time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from alertscaler.model.tracking import DirectionRules  # noqa: E402
from alertscaler.sim.comparing import Comparison, baselines, compare, prepare_trace  # noqa: E402
from alertscaler.sim.metrics import Summary, summarize  # noqa: E402
from alertscaler.sim.plotting import plot_runs  # noqa: E402
from alertscaler.sim.running import simulate_all  # noqa: E402
from alertscaler.sim.scenarios import (  # noqa: E402
    Policy,
    Scenario,
    alertscaler_forecasting,
    alertscaler_predictive,
    alertscaler_sized,
    alertscaler_step,
    alertscaler_tracking,
)
from alertscaler.sim.synthetic import SHAPES, synthetic  # noqa: E402
from alertscaler.sim.traces import Trace  # noqa: E402

COLUMNS = ("policy", "τU %", "τO %", "θU %", "θO %", "actions", "actions/day", "instance-h", "vs oracle",
           "unserved %", "booting %")
SYNTHETIC = (*SHAPES, "noise")
SEASONAL = {"electricity"}


def row(s: Summary) -> str:
    cells = (s.policy, f"{s.tau_u:.2f}", f"{s.tau_o:.2f}", f"{s.theta_u:.2f}", f"{s.theta_o:.2f}", str(s.actions),
             f"{s.actions_per_day:.1f}", f"{s.instance_hours:.1f}", f"{s.ratio_to_oracle:.3f}", f"{s.unserved:.2f}",
             f"{s.booting:.1f}")
    return "| " + " | ".join(cells) + " |"


def candidates(target: float, capacity: float, delay: float) -> list[Policy]:
    """Policies that are not the default, measured with --candidates."""
    default = alertscaler_tracking(target, capacity)
    return [
        alertscaler_predictive(target, capacity, lookahead=delay),
        replace(default, name="no-window", scale_down=DirectionRules(0.0, default.scale_down.limits),
                description="the default without its 300 s scale-down window"),
        alertscaler_step(target, cooldown=max(60.0, delay)),
        alertscaler_sized(target, capacity, cooldown=max(60.0, delay)),
    ]


@dataclass(frozen=True)
class Verdict:
    """Issue 14's goal for the default against hpa-rps in one scenario."""

    tau_u: bool
    cost: bool
    actions: bool
    oracle: bool

    @property
    def met(self) -> bool:
        return self.tau_u and self.cost and self.actions and self.oracle


def judge(ours: Summary, hpa: Summary, seasonal: bool) -> Verdict:
    tau_ok = ours.tau_u <= 0.5 * hpa.tau_u + 1e-9 if hpa.tau_u >= 0.1 else ours.tau_u <= 0.1 + 1e-9
    cost_ok = ours.instance_hours <= (0.95 if seasonal else 1.0) * hpa.instance_hours + 1e-9
    actions_ok = ours.actions <= 1.5 * hpa.actions + 1e-9
    oracle_ok = ours.instance_hours <= 1.15 * ours.oracle_instance_hours + 1e-9
    return Verdict(tau_ok, cost_ok, actions_ok, oracle_ok)


def bank(names: list[str], speeds: list[float], peak: float) -> list[tuple[str, Trace]]:
    """(label, trace) of every trace of the bank asked for, scaled to ``peak``."""
    out: list[tuple[str, Trace]] = []
    for name in names:
        if name == "worldcup98":
            for speed in speeds:
                out.append((f"worldcup98 {speed:g}x", prepare_trace("worldcup98", peak=peak, speed=speed)))
        elif name == "electricity":
            out.append(("electricity", prepare_trace("electricity", peak=peak)))
        elif name in SYNTHETIC:
            out.append((f"synthetic {name}", synthetic(name).scaled_to_peak(peak)))
        else:
            raise SystemExit(f"unknown trace {name!r}: worldcup98, electricity, {', '.join(SYNTHETIC)}")
    return out


def floor_ratio(hpa: Summary, ours: Summary) -> float:
    """The least instance-hours, over HPA's, of ANY policy within the τU part of the goal that is never above the
    oracle and at most one instance below it: the oracle's instance-hours less one instance for the share of the
    time τU may be (½ HPA's, or 0.1 %). Above 1.0 (0.95 on the seasonal trace) the cost part cannot be met without
    being short by more than one instance (or being under more often)."""
    tau_limit = 0.5 * hpa.tau_u if hpa.tau_u >= 0.1 else 0.1
    floor = ours.oracle_instance_hours - tau_limit / 100.0 * ours.minutes / 60.0
    return floor / hpa.instance_hours


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--traces", default=",".join(["worldcup98", "electricity", *SYNTHETIC]),
                        help="traces of the bank (default: all)")
    parser.add_argument("--speeds", default="1,4,10", help="WorldCup98 replay speeds (default 1,4,10)")
    parser.add_argument("--delays", default="60,120,180", help="provisioning delays in seconds (default 60,120,180)")
    parser.add_argument("--target", type=float, default=0.7, help="target utilisation (policies and oracle)")
    parser.add_argument("--capacity", type=float, default=40.0)
    parser.add_argument("--max", dest="max_size", type=int, default=20)
    parser.add_argument("--cpu-limit", type=float, default=2.0, help="CPU limit / request of hpa-cpu's pods")
    parser.add_argument("--candidates", action="store_true", help="also run the policies that are not the default")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--plot-dir", metavar="DIR", help="write one PNG per scenario")
    args = parser.parse_args()
    speeds = [float(s) for s in args.speeds.split(",")]
    delays = [float(d) for d in args.delays.split(",")]
    peak = 0.7 * args.max_size * args.capacity

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    goals: list[str] = []
    goals_track: list[str] = []
    print(f"Every trace scaled to a peak of 0.7 x max x capacity = {peak:g} req/s; capacity {args.capacity:g} req/s "
          f"per instance, min 1, max {args.max_size}, target {args.target:g} (oracle: ceil(demand / "
          f"({args.capacity:g} x {args.target:g})) within 1..{args.max_size}), decisions every 15 s, metrics over "
          f"60 s, CPU limit {args.cpu_limit:g} x request\n")
    for label, trace in bank(args.traces.split(","), speeds, peak):
        for delay in delays:
            scenario = Scenario(trace, capacity=args.capacity, delay=delay, interval=15.0, min_size=1,
                                max_size=args.max_size, target=args.target, cpu_limit=args.cpu_limit)
            comparison: Comparison = compare(scenario, alertscaler_forecasting(args.target, args.capacity, delay),
                                             [alertscaler_tracking(args.target, args.capacity), *baselines(scenario)])
            summaries = list(comparison.summaries)
            runs = list(comparison.runs)
            if args.candidates:
                extra = simulate_all(scenario, candidates(args.target, args.capacity, delay))
                runs += extra
                summaries += [summarize(r) for r in extra]
            title = f"{label} ({trace.duration / 3600:.1f} h), provisioning delay {delay:g} s"
            print(f"### {title}\n")
            print("| " + " | ".join(COLUMNS) + " |")
            print("|---|" + "--:|" * (len(COLUMNS) - 1))
            for s in (*summaries, comparison.oracle):
                print(row(s))
            print()
            hpa = comparison.summary("hpa-rps")
            verdict = judge(comparison.chosen, hpa, label in SEASONAL)
            for table, ours in ((goals, comparison.chosen), (goals_track, comparison.summary("alertscaler-default"))):
                v = judge(ours, hpa, label in SEASONAL)
                table.append(
                    f"| {label} | {delay:g} s | {ours.tau_u:.2f} | {hpa.tau_u:.2f} | "
                    f"{ours.instance_hours / hpa.instance_hours:.3f} | "
                    f"{floor_ratio(hpa, ours):.3f} | {ours.actions} / {hpa.actions} | "
                    f"{ours.ratio_to_oracle:.3f} | {hpa.ratio_to_oracle:.3f} | {mark(v.tau_u)} | "
                    f"{mark(v.cost)} | {mark(v.actions)} | {mark(v.oracle)} | "
                    f"{'**met**' if v.met else 'not met'} |")
            track_verdict = judge(comparison.summary("alertscaler-default"), hpa, label in SEASONAL)
            results.append({"trace": label, "delay": delay, **comparison.as_dict(), "goal": verdict.__dict__
                            | {"met": verdict.met},
                            "goal_track_alone": track_verdict.__dict__ | {"met": track_verdict.met},
                            "candidates": [s.as_dict() for s in summaries[len(comparison.summaries):]]})
            if args.plot_dir:
                Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
                name = label.replace(" ", "-")
                plot_runs(runs[:3], Path(args.plot_dir) / f"{name}-delay{delay:g}.png", title)
    for title, table in (("default+predict (track and predict at their defaults)", goals),
                         ("alertscaler-default (track alone, at its defaults)", goals_track)):
        print(f"### Goal (issue 14): {title} against hpa-rps\n")
        print("τU ≤ ½ HPA's (≤ 0.1 % where HPA's < 0.1 %); instance-h ≤ HPA's (≤ 0.95 x on the seasonal trace); "
              "actions ≤ 1.5 x HPA's; instance-h ≤ 1.15 x the oracle's. floor / HPA: the least instance-hours of "
              "any policy within the τU part, never above the oracle and at most one instance below it\n")
        print("| trace | delay | τU % | τU HPA % | instance-h / HPA | floor / HPA | actions / HPA | vs oracle | "
              "HPA vs oracle | τU | cost | actions | oracle | goal |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|:-:|:-:|:-:|")
        print("\n".join(table))
        met = sum("**met**" in g for g in table)
        print(f"\ngoal met in {met} of {len(table)} scenarios\n")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
