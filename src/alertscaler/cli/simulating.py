"""``simulate`` and ``backtest``: replay a trace (a file, a bundled trace, or a Prometheus range query) through a
policy — a built-in one or the user's own group of a policy file (``-c FILE GROUP``) — and the baselines, with
the real decision code (``alertscaler.sim``); print, write (``--json``) and plot (``--plot``) the comparison.
Owns both commands' arguments (``add_parsers``, called by ``cli.parsing``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alertscaler.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    duration_arg,
    err,
    load,
    non_negative,
    out,
    positive_float,
)

if TYPE_CHECKING:
    from alertscaler.sim.comparing import Comparison
    from alertscaler.sim.group import GroupPolicy
    from alertscaler.sim.running import Progress
    from alertscaler.sim.scenarios import Policy
    from alertscaler.sim.traces import Trace

POLICY_NAMES = ("tracking", "forecast", "predictive", "step", "sized", "hpa-rps", "hpa-cpu", "seed")
_DEFAULT_MIN, _DEFAULT_MAX = 1, 20


def add_parsers(sub: Any) -> None:
    """The ``simulate`` and ``backtest`` subcommands on ``sub`` (argparse's subparsers)."""
    sm = sub.add_parser(
        "simulate", help="replay a load trace through a policy (or your own group) and the baselines",
        description="Replay a load trace (the group's requests/s over time) through a scaling policy with "
                    "alertscaler's real decision code, and through baselines in the same run: Kubernetes' HPA "
                    "default behaviour on requests/s per pod (the same metric as alertscaler's tracking) and on "
                    "CPU (which can pass 100 %% of the request up to --cpu-limit), and the seeds' step policy. "
                    "With -c FILE GROUP, the policy is your own group: its track section, step policies (their "
                    "alerts from the file's rules section: thresholds, for, cooldowns, guard, size_by), "
                    "schedule and bounds. New instances serve only after --delay; scale-in is immediate. "
                    "Prints time under/over the oracle (τU/τO: the oracle holds --target utilisation with no "
                    "delay, within the bounds) and how far (θU/θO), scaling actions and actions per day, "
                    "instance-hours and their ratio to the oracle's, the share of requests unserved at full "
                    "capacity, the share of time with instances booting. Deterministic.",
        epilog="Policies: tracking = the service's default track section (requests/s per member at --target x "
               "--capacity, the service's track defaults); forecast = the same with a predict section at its "
               "defaults (the load forecast from the trace replayed so far, one --delay ahead: the larger of "
               "forecast and metric wins); predictive = not the "
               "default: the rate now and predicted one --delay ahead, no scale-down window; step = +50%% while "
               "CPU > --target for 1m, -10%% below half of it for 5m; sized = the same alerts, steps sized with "
               "size_by; hpa-rps; hpa-cpu; seed. "
               "Trace: CSV rows, comma, semicolon, tab or space separated, optional header; the value column is "
               "the second of two, else --column; the time column is one named like a time or the first, in "
               "seconds, Unix time or ISO 8601 (none: give --stride); values in requests/s, or request counts per "
               "row under a 'count' header; empty/NaN values hold the previous one; gzip allowed. A trace that "
               "never needs more than --min instances is refused (give --peak to scale it). "
               "Examples: alertscaler simulate --speed 10 --delay 3m --plot sim.png; alertscaler simulate -c "
               "alertscaler.yml web --trace load.csv --column rps --capacity 80 --delay 2m. "
               "Exit codes: 0 ok; 1 plotting needs matplotlib (pip install 'alertscaler[sim]'), or an invalid "
               "policy file; 2 bad options or trace.")
    sm.add_argument("group", nargs="?", metavar="GROUP", help="replay this group of -c FILE instead of --policy")
    sm.add_argument("-c", "--config", metavar="FILE", help="policy file holding GROUP")
    sm.add_argument("--trace", default="worldcup98", metavar="NAME|FILE",
                    help="worldcup98 (bundled: the 1998 World Cup web site, 4 days per minute), electricity "
                         "(bundled: half-hourly electricity demand, 12 weeks; both scaled so that the busiest "
                         "sample needs 70%% of --max at --capacity) or a CSV file (default worldcup98)")
    sm.add_argument("--column", metavar="NAME|N",
                    help="the value column of a CSV with more than two columns: its header name or number (1 = "
                         "the first)")
    sm.add_argument("--stride", type=duration_arg, metavar="DURATION",
                    help="time between rows, for a file without timestamps (its timestamps are then ignored)")
    sm.add_argument("--peak", type=positive_float, metavar="RPS",
                    help="scale the trace so that its busiest sample is RPS requests/s (files are replayed as "
                         "they are unless given)")
    sm.add_argument("--start", metavar="WHEN",
                    help="start this long into the trace (2h, 1d) or at this date-time of it (1998-06-30 10:00)")
    sm.add_argument("--minutes", type=positive_float, metavar="N", help="replay N minutes of the trace")
    sm.add_argument("--speed", type=positive_float, default=1.0, metavar="X",
                    help="replay X times faster than real time: with 10, a trace minute lasts 6 s while delays "
                         "and intervals stay as given (default 1)")
    sm.add_argument("--smooth", type=non_negative, default=1, metavar="SAMPLES",
                    help="moving average over this many samples first (default 1: none)")
    policy_options(sm)
    sm.set_defaults(func=simulate)

    bt = sub.add_parser(
        "backtest", help="what would this policy have done last week? simulate on a Prometheus range query",
        description="Fetch the group's demand in requests/s from Prometheus (a range query, one series) and "
                    "replay it like 'simulate' does: the chosen policy, or your own group (-c FILE GROUP), and "
                    "the baselines in one run, with the real decision code; same table, --json and --plot.",
        epilog="Example: alertscaler backtest -c alertscaler.yml web --query "
               "'sum(rate(http_requests_total{job=\"web\"}[1m]))' --since 7d --step 60s --capacity 40 --delay 3m. "
               "Each point holds until the next (a gap keeps the last value); NaN points are dropped. Exit codes: "
               "0 ok; 1 Prometheus unreachable, PromQL rejected, no data, or plotting needs matplotlib; 2 bad "
               "options (several series: aggregate them).")
    bt.add_argument("group", nargs="?", metavar="GROUP", help="replay this group of -c FILE instead of --policy")
    bt.add_argument("-c", "--config", metavar="FILE",
                    help="policy file: its prometheus section (url, bearer_token, verify, timeout), and GROUP")
    bt.add_argument("--prometheus", metavar="URL",
                    help="Prometheus base URL (default: -c FILE's prometheus.url, else http://127.0.0.1:9090)")
    bt.add_argument("--query", required=True, metavar="PROMQL",
                    help="the group's demand in requests/s as one series, e.g. "
                         "'sum(rate(http_requests_total{job=\"web\"}[1m]))'")
    span = bt.add_mutually_exclusive_group()
    span.add_argument("--since", type=duration_arg, metavar="DURATION",
                      help="replay the last DURATION up to --to (default 7d)")
    span.add_argument("--from", dest="start", metavar="ISO",
                      help="replay from this date-time (ISO 8601; without a zone: UTC)")
    bt.add_argument("--to", dest="end", metavar="ISO", help="replay up to this date-time (default: now)")
    bt.add_argument("--step", type=duration_arg, default=60.0, metavar="DURATION",
                    help="resolution of the range query (default 60s)")
    bt.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                    help="per request to Prometheus (default: -c FILE's prometheus.timeout, else 10)")
    policy_options(bt)
    bt.set_defaults(func=backtest)


def policy_options(parser: argparse.ArgumentParser) -> None:
    """The scenario and output options ``simulate`` and ``backtest`` share."""
    parser.add_argument("--policy", choices=POLICY_NAMES, default=None,
                        help="the built-in policy to compare with the baselines when no GROUP is given "
                             "(default tracking)")
    parser.add_argument("--target", type=positive_float, default=None, metavar="UTIL",
                        help="target utilisation in (0, 1] of the oracle, the built-in policies and the HPA "
                             "baselines (default 0.7; with GROUP: its track target)")
    parser.add_argument("--capacity", type=positive_float, default=40.0, metavar="RPS",
                        help="requests/s one instance serves at 100%% of its CPU request (default 40)")
    parser.add_argument("--cpu-limit", type=positive_float, default=2.0, metavar="X",
                        help="CPU limit / CPU request of an instance: CPU utilisation can reach X (default 2: "
                             "200%% of the request; 1 = limits equal requests, CPU saturates at 100%%)")
    parser.add_argument("--delay", type=duration_arg, default=60.0, metavar="DURATION",
                        help="start-up delay: a new instance serves this long after it was asked for (default 60s)")
    parser.add_argument("--interval", type=duration_arg, default=15.0, metavar="DURATION",
                        help="how often a built-in policy decides (default 15s; the baselines always use 15s)")
    parser.add_argument("--min", dest="min_size", type=non_negative, metavar="N",
                        help=f"min size (default {_DEFAULT_MIN}; with GROUP: its min_size)")
    parser.add_argument("--max", dest="max_size", type=non_negative, metavar="N",
                        help=f"max size (default {_DEFAULT_MAX}; with GROUP: its max_size, or a larger one a "
                             "schedule window sets)")
    parser.add_argument("--initial", type=non_negative, metavar="N",
                        help="size of every policy at the start (default: the oracle's for the first sample)")
    parser.add_argument("--metric-window", type=duration_arg, default=60.0, metavar="DURATION",
                        help="policies see the demand averaged over this window, like rate(...[1m]) (default 60s)")
    parser.add_argument("--as", dest="kinds", action="append", default=[], metavar="NAME=KIND",
                        help="with GROUP: what a query of the group measures, for an alert NAME or track.N (the "
                             "N-th track metric): rps (requests/s per member), rps-ready (per serving member), "
                             "cpu (utilisation of the request; above 1.5 read as percent), total (the group's "
                             "requests/s). Default: guessed, and the guess is printed")
    parser.add_argument("--when", action="append", default=[], metavar="ALERT=CONDITION",
                        help="with GROUP: the condition of an alert the rules section does not have (or replace "
                             "it), e.g. --when HighLoad='cpu > 0.8 for 1m'")
    parser.add_argument("--progress", action="store_true",
                        help="show progress on stderr even when it is not a terminal (always shown on one)")
    parser.add_argument("--plot", metavar="OUT.png", help="write a PNG of demand vs supply for each policy")
    parser.add_argument("--json", metavar="OUT.json", help="write the scenario and every figure as JSON")


def simulate(args: argparse.Namespace) -> int:
    from alertscaler.sim.comparing import prepare_trace  # only for simulate
    from alertscaler.sim.traces import ATTRIBUTION

    if args.smooth < 1:
        raise CliError("--smooth: give at least 1 sample", EXIT_USAGE)
    _check_group_args(args)
    try:
        max_size = args.max_size if args.max_size is not None else _group_max(args) or _DEFAULT_MAX
        trace = prepare_trace(args.trace, start=args.start, minutes=args.minutes, smooth=args.smooth,
                              peak=args.peak, speed=args.speed, max_size=max_size, capacity=args.capacity,
                              column=args.column, stride=args.stride)
    except ValueError as exc:  # TraceError: bad trace, bad option values
        raise CliError(escape(str(exc)), EXIT_USAGE) from None
    if trace.skipped:
        err.print(f"warning: {trace.name}: {trace.skipped} empty or NaN value(s) read as gaps (the previous value "
                  "holds)", highlight=False, markup=False)
    comparison, heading, notes = _run(args, trace)
    print_comparison(comparison, heading, notes)
    if args.trace in ATTRIBUTION:
        out.print(f"trace: {ATTRIBUTION[args.trace]} (alertscaler/data/: its notice)", highlight=False,
                  markup=False)
    write_outputs(comparison, heading, args)
    return EXIT_OK


def backtest(args: argparse.Namespace) -> int:
    from alertscaler.model.errors import InputError, QueryError
    from alertscaler.prometheus.client import PrometheusClient  # only for backtest
    from alertscaler.sim.backtest import NoData, fetch_trace

    _check_group_args(args)
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
    comparison, heading, notes = _run(args, trace, f"samples of {args.step:g}s")
    print_comparison(comparison, heading, notes)
    write_outputs(comparison, heading, args)
    return EXIT_OK


def _check_group_args(args: argparse.Namespace) -> None:
    if args.group and not args.config:
        raise CliError(f"GROUP {args.group}: give the policy file that holds it with -c FILE", EXIT_USAGE)
    if args.group and args.policy:
        raise CliError(f"--policy {args.policy} and GROUP {args.group}: replay one or the other", EXIT_USAGE)
    if not args.group and (args.kinds or args.when):
        raise CliError("--as and --when describe a group's queries: give -c FILE GROUP", EXIT_USAGE)


def _run(args: argparse.Namespace, trace: Trace, samples: str = "") -> tuple[Comparison, str, list[str]]:
    """The scenario from the options (and the group), the comparison, its heading and the notes to print."""
    from alertscaler.sim.comparing import baselines, compare, policy_named, scale_problems
    from alertscaler.sim.group import GroupError
    from alertscaler.sim.scenarios import Scenario

    notes: list[str] = []
    try:
        group = _group(args, trace) if args.group else None
        if group is not None:
            notes += group.notes
            bounds = group.widest_bounds()
            min_size = bounds.min_size if args.min_size is None else args.min_size
            max_size = bounds.max_size if args.max_size is None else args.max_size
            target = args.target if args.target is not None else _group_target(group, args.capacity)
        else:
            min_size = _DEFAULT_MIN if args.min_size is None else args.min_size
            max_size = _DEFAULT_MAX if args.max_size is None else args.max_size
            target = 0.7 if args.target is None else args.target
        scenario = Scenario(trace, capacity=args.capacity, delay=args.delay, interval=args.interval,
                            min_size=min_size, max_size=max_size, initial=args.initial,
                            metric_window=args.metric_window, target=target, cpu_limit=args.cpu_limit)
        for problem in scale_problems(scenario):
            err.print(f"warning: {problem}", highlight=False, markup=False)
        chosen: Policy
        if group is not None:
            chosen = group
            others = baselines(scenario, rps_target=group.rps_target, cpu_target=group.cpu_target)
        else:
            chosen = policy_named(args.policy or "tracking", scenario)
            others = baselines(scenario)
        with _Progress(args.progress) as progress:
            comparison = compare(scenario, chosen, others, progress)
    except (GroupError, ValueError) as exc:  # TraceError too
        raise CliError(escape(str(exc)), EXIT_USAGE) from None
    step = comparison.runs[0].series.step
    first = trace.start.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC, ") if trace.start else ""
    what = f"{len(trace.values)} {samples or 'samples'}"
    heading = (f"{trace.name}: {first}{trace.duration / 3600:.1f} h simulated ({what}, peak {trace.peak:.1f} "
               f"req/s); capacity {args.capacity:g} req/s, delay {args.delay:g}s, bounds {min_size}..{max_size}, "
               f"target {target:g}, step {step:g}s")
    return comparison, heading, notes


def _group(args: argparse.Namespace, trace: Trace) -> GroupPolicy:
    from alertscaler.sim.group import GroupError, group_policy

    policy = load(args.config)
    kinds = _pairs(args.kinds, "--as")
    when = _pairs(args.when, "--when")
    start = trace.start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    group = policy.groups.get(args.group)
    if group is not None and group.schedule is not None:
        if start is None:
            raise GroupError(f"group {args.group} has a schedule and the trace has no dates: give a trace with "
                             "date-times or Unix timestamps")
        if args.speed != 1:
            err.print(f"warning: group {args.group} has a schedule: at --speed {args.speed:g} its windows open at "
                      "simulated times, not at the trace's", highlight=False, markup=False)
    return group_policy(policy, args.group, start=start, kinds=kinds, when=when)


def _group_max(args: argparse.Namespace) -> int | None:
    """The largest size GROUP of -c FILE can have (a bundled trace is scaled to it), None without GROUP."""
    if not args.group:
        return None
    group = load(args.config).groups.get(args.group)
    if group is None:
        return None  # said when the group is replayed
    sizes = [group.max_size, *(size for w in (group.schedule.windows if group.schedule else ())
                               for size in (w.max_size, w.min_size) if size is not None)]
    return max(sizes)


def _group_target(group: GroupPolicy, capacity: float) -> float:
    """The oracle's target utilisation from the group's track targets (else 0.7)."""
    from alertscaler.sim.group import GroupError

    if group.rps_target is not None:
        target = group.rps_target / capacity
        if target > 1:
            raise GroupError(f"the group's track target is {group.rps_target:g} req/s per member, more than "
                             f"--capacity {capacity:g}: give the requests/s one instance serves with --capacity")
        return target
    if group.cpu_target is not None:
        return min(1.0, group.cpu_target)
    return 0.7


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CliError(f"{option} {item!r}: give NAME=VALUE", EXIT_USAGE)
        pairs[name.strip()] = value.strip()
    return pairs


class _Progress:
    """Progress of a long run on stderr: on a terminal a line rewritten in place, else (with --progress) a line
    every 10 %; nothing otherwise. Only runs longer than a moment show anything."""

    def __init__(self, forced: bool) -> None:
        self.terminal = err.is_terminal
        self.on = self.terminal or forced
        self.shown = -1

    def __enter__(self) -> Progress | None:
        return self.update if self.on else None

    def update(self, done: float) -> None:
        percent = int(done * 100)
        if self.terminal:
            if percent != self.shown:
                sys.stderr.write(f"\rsimulating: {percent:3d} %")
                sys.stderr.flush()
        elif percent // 10 != self.shown // 10 or self.shown < 0:
            sys.stderr.write(f"simulating: {percent} %\n")
            sys.stderr.flush()
        self.shown = percent

    def __exit__(self, *exc: object) -> None:
        if self.on and self.terminal and self.shown >= 0:
            sys.stderr.write("\r" + " " * 20 + "\r")
            sys.stderr.flush()


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


COLUMNS = ("policy", "τU %", "τO %", "θU %", "θO %", "actions", "actions/day", "instance-h", "vs oracle",
           "unserved %", "booting %")


def print_comparison(comparison: Comparison, heading: str, notes: Sequence[str] = ()) -> None:
    """The table of ``simulate`` and ``backtest`` (chosen policy, baselines, oracle), then what each row is."""
    table = Table(title=escape(heading))
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for s in (*comparison.summaries, comparison.oracle):
        table.add_row(s.policy, f"{s.tau_u:.2f}", f"{s.tau_o:.2f}", f"{s.theta_u:.2f}", f"{s.theta_o:.2f}",
                      str(s.actions), f"{s.actions_per_day:.1f}", f"{s.instance_hours:.1f}",
                      f"{s.ratio_to_oracle:.3f}", f"{s.unserved:.2f}", f"{s.booting:.1f}",
                      style="dim" if s is comparison.oracle else None)
    view = out if out.is_terminal else Console(soft_wrap=True, width=160)  # a file or pipe: columns whole
    view.print(table)
    for s in (*comparison.summaries, comparison.oracle):
        view.print(f"{s.policy}: {s.description}", highlight=False, markup=False)
    view.print("τU/τO: % of the time with fewer/more ready instances than the oracle; θU/θO: by how much (% of "
               "the oracle's); unserved: % of requests above the ready instances' full capacity",
               highlight=False, markup=False)
    for note in notes:
        view.print(f"note: {note}", highlight=False, markup=False)


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
