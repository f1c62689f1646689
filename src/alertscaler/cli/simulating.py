"""``simulate`` and ``backtest``: replay a trace (a file, the bundled WorldCup98 excerpt, or a Prometheus range
query) through a policy and the two baselines with the real decision code (``alertscaler.sim``), and print,
write (``--json``) and plot (``--plot``) the comparison."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alertscaler.cli.common import EXIT_OK, EXIT_USAGE, CliError, load, out

if TYPE_CHECKING:
    from alertscaler.sim.comparing import Comparison


def simulate(args: argparse.Namespace) -> int:
    from alertscaler.sim.comparing import compare, policy_named, prepare_trace  # only for simulate
    from alertscaler.sim.scenarios import Scenario
    from alertscaler.sim.traces import WORLDCUP98

    if args.smooth < 1:
        raise CliError("--smooth: give at least 1 sample", EXIT_USAGE)
    try:
        trace = prepare_trace(args.trace, start=args.start, minutes=args.minutes, smooth=args.smooth,
                              peak=args.peak, speed=args.speed, max_size=args.max_size, capacity=args.capacity)
        scenario = Scenario(trace, capacity=args.capacity, delay=args.delay, interval=args.interval,
                            min_size=args.min_size, max_size=args.max_size, initial=args.initial,
                            metric_window=args.metric_window)
        comparison = compare(scenario, policy_named(args.policy, args.target, args.capacity, args.delay),
                             hpa_target=args.target)
    except ValueError as exc:  # TraceError too: bad trace, bad option values
        raise CliError(escape(str(exc)), EXIT_USAGE) from None
    step = comparison.runs[0].series.step
    heading = (f"{trace.name}: {trace.duration / 3600:.1f} h simulated ({len(trace.values)} samples, peak "
               f"{trace.peak:.0f} req/s), capacity {args.capacity:g} req/s, delay {args.delay:g}s, "
               f"min {args.min_size}, max {args.max_size}, step {step:g}s")
    print_comparison(comparison, heading)
    if args.trace == WORLDCUP98:
        out.print("trace: M. Arlitt and T. Jin, \"1998 World Cup Web Site Access Logs\", August 1998 "
                  "(alertscaler/data/WORLDCUP98-NOTICE.txt)", highlight=False, markup=False)
    write_outputs(comparison, heading, args)
    return EXIT_OK


def backtest(args: argparse.Namespace) -> int:
    from alertscaler.model.errors import InputError, QueryError
    from alertscaler.prometheus.client import PrometheusClient  # only for backtest
    from alertscaler.sim.backtest import NoData, fetch_trace
    from alertscaler.sim.comparing import compare, policy_named
    from alertscaler.sim.scenarios import Scenario

    start, end = backtest_span(args)
    url, options = backtest_prometheus(args)
    try:
        with PrometheusClient(url, **options) as client:
            trace = fetch_trace(client, args.query, start, end, args.step)
    except InputError as exc:
        raise CliError(escape(f"--prometheus {url}: {exc}" if exc.field in ("url", "verify", "auth") else str(exc)),
                       EXIT_USAGE) from None
    except QueryError as exc:
        raise CliError(escape(str(exc))) from None
    except NoData as exc:
        raise CliError(escape(str(exc))) from None
    except ValueError as exc:  # BacktestError: several series, unusable values
        raise CliError(escape(str(exc)), EXIT_USAGE) from None
    try:
        scenario = Scenario(trace, capacity=args.capacity, delay=args.delay, interval=args.interval,
                            min_size=args.min_size, max_size=args.max_size, initial=args.initial,
                            metric_window=args.metric_window)
        comparison = compare(scenario, policy_named(args.policy, args.target, args.capacity, args.delay),
                             hpa_target=args.target)
    except ValueError as exc:
        raise CliError(escape(str(exc)), EXIT_USAGE) from None
    step = comparison.runs[0].series.step
    first = trace.start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if trace.start else "?"
    heading = (f"{trace.name}: {first} UTC, {trace.duration / 3600:.2f} h ({len(trace.values)} samples of "
               f"{args.step:g}s, peak {trace.peak:.1f} req/s), capacity {args.capacity:g} req/s, delay "
               f"{args.delay:g}s, min {args.min_size}, max {args.max_size}, step {step:g}s")
    print_comparison(comparison, heading)
    write_outputs(comparison, heading, args)
    return EXIT_OK


def backtest_span(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """``--since`` / ``--from`` / ``--to`` → aware UTC (start, end); bad input is a usage error."""
    end = instant(args.end, "--to") if args.end else datetime.now(UTC)
    if args.start:
        start = instant(args.start, "--from")
    else:
        since = 7 * 86400.0 if args.since is None else args.since
        if not since > 0:
            raise CliError("--since: give a duration > 0", EXIT_USAGE)
        start = end - timedelta(seconds=since)
    if not start < end:
        raise CliError(f"the range is empty: {start.isoformat()} is not before {end.isoformat()}", EXIT_USAGE)
    if not args.step > 0:
        raise CliError("--step: give a duration > 0", EXIT_USAGE)
    if args.step > (end - start).total_seconds():
        raise CliError(f"--step {args.step:g}s is longer than the range ({(end - start).total_seconds():g} s)",
                       EXIT_USAGE)
    return start, end


def instant(text: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option}: {text!r} is not an ISO 8601 date-time (e.g. 2024-05-01T12:00:00Z)",
                       EXIT_USAGE) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def backtest_prometheus(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The URL and client options: ``--prometheus`` / ``--timeout`` over ``-c FILE``'s prometheus section."""
    options: dict[str, Any] = {}
    url = "http://127.0.0.1:9090"
    if args.config:
        section = load(args.config).prometheus
        url = section.url
        options = {"bearer_token": section.bearer_token, "verify": section.verify, "timeout": section.timeout}
    if args.prometheus:
        url = args.prometheus
    if args.timeout is not None:
        options["timeout"] = args.timeout
    return url, options


def print_comparison(comparison: Comparison, heading: str) -> None:
    """The table of ``simulate`` and ``backtest`` (chosen policy, baselines, oracle), descriptions, goal."""
    table = Table(title=escape(heading))
    for col in ("policy", "θU %", "θO %", "τU %", "τO %", "instability %", "jitter /min", "actions",
                "instance-h", "vs oracle", "unserved %"):
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for s in comparison.summaries:
        table.add_row(s.policy, f"{s.theta_u:.2f}", f"{s.theta_o:.2f}", f"{s.tau_u:.2f}", f"{s.tau_o:.2f}",
                      f"{s.instability:.2f}", f"{s.jitter:.3f}", str(s.actions), f"{s.instance_hours:.1f}",
                      f"{s.ratio_to_oracle:.2f}", f"{s.unserved:.2f}")
    oracle = comparison.chosen.oracle_instance_hours
    table.add_row("oracle", "0.00", "0.00", "0.00", "0.00", "", "", "", f"{oracle:.1f}", "1.00", "0.00",
                  style="dim")
    view = out if out.is_terminal else Console(soft_wrap=True, width=150)  # a file or pipe: columns whole
    view.print(table)
    for s in comparison.summaries:
        view.print(f"{s.policy}: {s.description}", highlight=False, markup=False)
    goal = comparison.goal
    if goal is not None:
        verdict = "[green]met[/green]" if goal.met else "[yellow]not met[/yellow]"
        out.print(f"goal (τU at most half of hpa-default's, at no more instance-hours): {verdict}: τU "
                  f"{goal.tau_u:.2f}% vs {goal.hpa_tau_u:.2f}%, {goal.instance_hours:.1f} vs "
                  f"{goal.hpa_instance_hours:.1f} instance-hours", highlight=False)


def write_outputs(comparison: Comparison, heading: str, args: argparse.Namespace) -> None:
    """``--json`` and ``--plot`` of ``simulate`` and ``backtest``."""
    from alertscaler.sim.plotting import MatplotlibMissing, PlotError, plot_runs

    if args.json:
        try:
            Path(args.json).write_text(json.dumps(comparison.as_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(escape(f"--json: cannot write {args.json}: {exc.strerror or exc}"), EXIT_USAGE) from None
        out.print(f"wrote {args.json}", highlight=False)
    if args.plot:
        try:
            plot_runs(comparison.runs, args.plot, heading)
        except MatplotlibMissing as exc:
            raise CliError(escape(str(exc))) from None
        except PlotError as exc:
            raise CliError(escape(f"--plot: {exc}"), EXIT_USAGE) from None
        out.print(f"wrote {args.plot}", highlight=False)
