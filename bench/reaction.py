"""Reaction-time breakdown through the REAL pipeline: how much latency alertscaler adds (notification
arrival → provider call) compared with the Prometheus pipeline delay (alert startsAt → arrival).

Real Prometheus + Alertmanager (Debian packages) configured by ``alertscaler render``; N groups, each with
its own alert on a control gauge the benchmark flips; ``fake`` provider (the provider call itself is not
measured, only how long alertscaler takes to get there) and cooldown 0 so every new firing alert acts (the
re-evaluation timer is set to 1h so that only notifications act).

    python bench/reaction.py [--groups 20] [--cycles 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.e2e.harness import Pipeline  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def counted(metrics: str, reason: str) -> float:
    """Sum of alertscaler_decisions_total for ``reason`` (cheap to poll, unlike the decisions list)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("alertscaler_decisions_total{") and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def policy(groups: int) -> str:
    lines = ["scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 5s}",
             "alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 1h}", "groups:"]
    for i in range(groups):
        lines += [f"  g{i}:", "    provider: {type: fake}", "    min_size: 1", "    max_size: 1000",
                  f"    scale_out: {{matchers: ['alertname=\"Fire\"', 'alertscaler_group=\"g{i}\"'], adjustment: 1,"
                  " cooldown: 0s}"]
    lines += ["rules:", "  groups:", "    - name: bench", "      rules:"]
    for i in range(groups):
        lines += ["        - alert: Fire", f"          expr: control_value{{name=\"g{i}\"}} > 0", "          for: 0s",
                  f"          group: g{i}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--stagger", type=float, default=0.25,
                        help="seconds between switching on successive groups' alerts (0: all at once, a burst)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alertscaler-reaction-") as tmp, \
            Pipeline(Path(tmp), policy(args.groups), reevaluate_interval="1h") as p:
        names = [f"g{i}" for i in range(args.groups)]
        for cycle in range(args.cycles):
            for n in names:
                p.control.set(n, 1)
                time.sleep(args.stagger)
            p.wait(lambda c=cycle: counted(p.metrics(), "scaled") >= (c + 1) * len(names), 60, f"cycle {cycle} acted")
            for n in names:
                p.control.set(n, 0)
            p.wait(lambda c=cycle: counted(p.metrics(), "resolved") >= (c + 1) * len(names), 60,
                   f"cycle {cycle} resolved")
            time.sleep(1)
        acted = [d for d in p.decisions(outcome="acted", reason="scaled") if d["trigger"] == "notification"]
    pipeline = [d["timing_ms"]["alert_to_arrival"] for d in acted]
    added = [d["timing_ms"]["arrival_to_provider_call"] for d in acted]
    to_decision = [d["timing_ms"]["arrival_to_decision"] for d in acted]
    rows: dict[str, object] = {
        "groups": args.groups, "cycles": args.cycles, "stagger_s": args.stagger,
        "samples": len(acted),
        "pipeline_delay_ms": {"p50": percentile(pipeline, 0.5), "p99": percentile(pipeline, 0.99)},
        "added_arrival_to_decision_ms": {"p50": percentile(to_decision, 0.5), "p99": percentile(to_decision, 0.99)},
        "added_arrival_to_provider_call_ms": {"p50": percentile(added, 0.5), "p99": percentile(added, 0.99),
                                              "max": max(added), "mean": statistics.fmean(added)},
    }
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    goal = percentile(added, 0.99) <= 50
    print(f"goal p99 added <= 50 ms: {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
