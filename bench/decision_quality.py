"""Decision quality on the WorldCup98 excerpt (issue 6, benchmark 7a): alertscaler's best default policy
against HPA's default behaviour and the seeds' step policy, with the SPEC RG elasticity metrics, scaling
actions, instance-hours and their ratio to an oracle; and whether the goal is met (τU at most half of
HPA-default's at no more instance-hours).

Each scenario replays the bundled excerpt (1998-06-29 to 07-02, per minute; two match days and two quiet
days) scaled so that the busiest minute needs 70 % of max_size, through the three policies in one run of the
simulator (``alertscaler.sim``: the real ``decide`` code). Scenarios: every speed x provisioning delay
given. Faster replays make the same traffic burstier relative to the fixed delays and intervals.

    python bench/decision_quality.py                       # markdown tables on stdout, ~10 s
    python bench/decision_quality.py --speeds 1,4,10 --delays 60,120,180 --json dq.json --plot-dir plots
    python bench/decision_quality.py --candidates          # also the policies not chosen as the default

Deterministic: the same options print the same tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from alertscaler.model.tracking import HPA_SCALE_DOWN  # noqa: E402
from alertscaler.sim.comparing import compare, prepare_trace  # noqa: E402
from alertscaler.sim.metrics import Summary, summarize  # noqa: E402
from alertscaler.sim.plotting import plot_runs  # noqa: E402
from alertscaler.sim.running import simulate_all  # noqa: E402
from alertscaler.sim.scenarios import Metric, Policy, Scenario, alertscaler_step, alertscaler_tracking  # noqa: E402

COLUMNS = ("policy", "θU %", "θO %", "τU %", "τO %", "instability %", "jitter /min", "actions", "instance-h",
           "vs oracle", "unserved %")


def row(s: Summary) -> str:
    cells = (s.policy, f"{s.theta_u:.2f}", f"{s.theta_o:.2f}", f"{s.tau_u:.2f}", f"{s.tau_o:.2f}",
             f"{s.instability:.2f}", f"{s.jitter:.3f}", str(s.actions), f"{s.instance_hours:.1f}",
             f"{s.ratio_to_oracle:.3f}", f"{s.unserved:.2f}")
    return "| " + " | ".join(cells) + " |"


def candidates(target: float, capacity: float, delay: float) -> list[Policy]:
    """Policies tried for the default and not chosen (see --candidates)."""
    chosen = alertscaler_tracking(target, capacity, lookahead=delay)
    return [
        replace(chosen, name="rps-tracking-hpa-windows", lookahead=0.0, scale_down=HPA_SCALE_DOWN,
                description="requests/s per instance, no prediction, HPA's 300 s scale-down window"),
        replace(chosen, name="rps-tracking-no-prediction", lookahead=0.0,
                description="requests/s per instance, no prediction, no scale-down window"),
        replace(chosen, name="predictive-hpa-window", scale_down=HPA_SCALE_DOWN,
                description="the default with HPA's 300 s scale-down window"),
        replace(chosen, name="predictive-cpu", metric=Metric.UTILISATION, target=target,
                description="the default on CPU utilisation (saturates at 100 %)"),
        alertscaler_step(target, cooldown=max(60.0, delay)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default="1,4,10", help="replay speeds (default 1,4,10)")
    parser.add_argument("--delays", default="60,120,180", help="provisioning delays in seconds (default 60,120,180)")
    parser.add_argument("--target", type=float, default=0.7, help="utilisation target of every tracking policy")
    parser.add_argument("--capacity", type=float, default=40.0)
    parser.add_argument("--max", dest="max_size", type=int, default=20)
    parser.add_argument("--candidates", action="store_true", help="also run the policies not chosen as default")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--plot-dir", metavar="DIR", help="write one PNG per scenario")
    args = parser.parse_args()
    speeds = [float(s) for s in args.speeds.split(",")]
    delays = [float(d) for d in args.delays.split(",")]

    started = time.perf_counter()
    results: list[dict[str, object]] = []
    goals: list[str] = []
    print(f"WorldCup98 excerpt (4 days per minute), peak = 0.7 x max x capacity = "
          f"{0.7 * args.max_size * args.capacity:g} req/s, capacity {args.capacity:g} req/s per instance, "
          f"min 1, max {args.max_size}, target {args.target:g}, decisions every 15 s, metrics over 60 s\n")
    for speed in speeds:
        trace = prepare_trace("worldcup98", speed=speed, max_size=args.max_size, capacity=args.capacity)
        for delay in delays:
            scenario = Scenario(trace, capacity=args.capacity, delay=delay, interval=15.0, min_size=1,
                                max_size=args.max_size)
            comparison = compare(scenario, alertscaler_tracking(args.target, args.capacity, lookahead=delay),
                                 hpa_target=args.target)
            summaries = list(comparison.summaries)
            runs = list(comparison.runs)
            if args.candidates:
                extra = simulate_all(scenario, candidates(args.target, args.capacity, delay))
                runs += extra
                summaries += [summarize(r) for r in extra]
            title = f"speed {speed:g}x ({trace.duration / 3600:.1f} h), provisioning delay {delay:g} s"
            print(f"### {title}\n")
            print("| " + " | ".join(COLUMNS) + " |")
            print("|---|" + "--:|" * (len(COLUMNS) - 1))
            for s in summaries:
                print(row(s))
            print(f"| oracle | 0 | 0 | 0 | 0 | | | | {comparison.chosen.oracle_instance_hours:.1f} | 1 | 0 |\n")
            goal = comparison.goal
            assert goal is not None
            goals.append(f"| {speed:g}x | {delay:g} s | {goal.tau_u:.2f} | {goal.hpa_tau_u:.2f} | "
                         f"{goal.instance_hours / goal.hpa_instance_hours:.3f} | "
                         f"{'yes' if goal.half_the_underprovisioning else 'no'} | "
                         f"{'yes' if goal.no_more_instance_hours else 'no'} | {'**met**' if goal.met else 'not met'} |")
            results.append({"speed": speed, "delay": delay, **comparison.as_dict(),
                            "candidates": [s.as_dict() for s in summaries[len(comparison.summaries):]]})
            if args.plot_dir:
                Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
                plot_runs(runs[:3], Path(args.plot_dir) / f"speed{speed:g}-delay{delay:g}.png", title)
    print("### Goal: τU at most half of hpa-default's, at no more instance-hours\n")
    print("| speed | delay | τU alertscaler % | τU hpa-default % | instance-h ratio | τU ≤ ½ | instance-h ≤ | goal |")
    print("|--:|--:|--:|--:|--:|:-:|:-:|:-:|")
    print("\n".join(goals))
    met = sum("**met**" in g for g in goals)
    print(f"\ngoal met in {met} of {len(goals)} scenarios; {time.perf_counter() - started:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
