#!/usr/bin/env python3
"""Summary of an A/B series run by ``bench/ab_pairs.sh``: per pair, new/old for each chosen figure, and medians.

A helper of the benchmarks (not imported by the service or the tests). Reads /tmp/bench-ab/NAME/old-N.json and
new-N.json (any bench script's ``--json`` output) and the series' log (load average at the start of each run).
A figure is a dotted path into the JSON; a list of objects is entered by each object's ``store`` or ``name``
(``runs.sqlite.steady_cpu_us_per_group``, ``targets.baseline.throughput.ok_per_s``), or by its index::

    python bench/ab_summary.py reaction_burst added_arrival_to_provider_call_ms.p99 \\
        added_arrival_to_decision_ms.p50
    python bench/ab_summary.py tracking runs.sqlite.steady_cpu_us_per_group runs.postgresql.steady_cpu_us_per_group
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path("/tmp/bench-ab")


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in ``value`` by its dotted path (lists of objects keyed by their ``store`` or ``name``)."""
    out: dict[str, float] = {}
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(str(v.get("store") or v.get("name") or i) if isinstance(v, dict) else str(i), v)
                 for i, v in enumerate(value)]
    else:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix] = float(value)
        return out
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    return out


def load(folder: Path, tag: str) -> dict[str, float] | None:
    path = folder / f"{tag}.json"
    if not path.exists():
        return None
    figures = flatten(json.loads(path.read_text()))
    match = re.search(rf"^{tag} start \S+ load (\S+)", (folder / "log").read_text(), re.MULTILINE)
    if match:
        figures["load1"] = float(match.group(1))
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("name", help="the series (folder under /tmp/bench-ab)")
    parser.add_argument("figures", nargs="+", help="dotted paths into the JSON output")
    args = parser.parse_args(argv)
    folder = ROOT / args.name
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    for i in range(1, 100):
        old, new = load(folder, f"old-{i}"), load(folder, f"new-{i}")
        if old is not None and new is not None:
            pairs.append((old, new))
    print(f"{args.name}: {len(pairs)} pairs")
    for figure in [*args.figures, "load1"]:
        olds = [o.get(figure) for o, _ in pairs]
        news = [n.get(figure) for _, n in pairs]
        if not pairs or None in olds or None in news:
            print(f"  {figure}: missing in some runs")
            continue
        o_vals = [v for v in olds if v is not None]
        n_vals = [v for v in news if v is not None]
        ratios = [n / o for o, n in zip(o_vals, n_vals, strict=True) if o]
        print(f"  {figure}: old {[round(v, 2) for v in o_vals]} median {statistics.median(o_vals):.2f}"
              f" | new {[round(v, 2) for v in n_vals]} median {statistics.median(n_vals):.2f}"
              f" | new/old {[round(r, 2) for r in ratios]}"
              + (f" median {statistics.median(ratios):.2f}" if ratios else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
