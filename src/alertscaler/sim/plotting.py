"""PNG plots of simulated runs: demand against supply over time, one panel per policy.

Needs matplotlib (``pip install 'alertscaler[sim]'``); it is imported only when a plot is drawn, and drawn
without pyplot (a ``Figure`` on the Agg canvas: no display, no global state). Called by the
``alertscaler simulate --plot`` command and ``bench/decision_quality.py --plot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alertscaler.sim.running import Run

__all__ = ["MatplotlibMissing", "PlotError", "plot_runs"]


class PlotError(RuntimeError):
    """The plot cannot be drawn or written (an unwritable path, nothing to plot)."""


class MatplotlibMissing(PlotError):
    """matplotlib is not installed."""


def plot_runs(runs: Sequence[Run], path: str | Path, title: str = "") -> Path:
    """Write a PNG: for each run, the demand in instances (requests/s ÷ capacity), the oracle's ceil of it,
    the ready instances (supply) and the desired ones (ready + booting), against hours since the start."""
    if not runs:
        raise PlotError("nothing to plot")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing("plotting needs matplotlib: pip install 'alertscaler[sim]'") from None
    figure = Figure(figsize=(12, 2.6 * len(runs) + 0.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(runs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        series, capacity = run.series, run.scenario.capacity
        hours = [t / 3600.0 for t in series.times]
        ax.plot(hours, [d / capacity for d in series.demand], color="0.55", linewidth=0.8,
                label="demand (instances)")
        ax.step(hours, series.needed, where="post", color="black", linewidth=0.8, linestyle=":",
                label="oracle: ceil(demand)")
        ax.step(hours, series.desired, where="post", color="tab:orange", linewidth=0.9, alpha=0.8,
                label="desired (incl. booting)")
        ax.step(hours, series.supply, where="post", color="tab:blue", linewidth=1.2, label="supply (ready)")
        short = [(h, d / capacity) for h, d, s in zip(hours, series.demand, series.supply, strict=True)
                 if d > s * capacity]
        if short:
            ax.scatter([h for h, _ in short], [v for _, v in short], s=4, color="tab:red", zorder=3,
                       label="under-provisioned")
        ax.set_title(f"{run.name}: {run.policy.description}", fontsize=9, loc="left")
        ax.set_ylabel("instances")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=5)
    axes[-1].set_xlabel("hours since the start of the replay")
    if title:
        figure.suptitle(title, fontsize=10)
    out = Path(path)
    try:
        figure.savefig(out, format="png")
    except OSError as exc:
        raise PlotError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
