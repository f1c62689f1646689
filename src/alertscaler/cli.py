"""The ``alertscaler`` command. ``serve`` runs the service; ``check`` validates a policy file (and the
Prometheus side generated from it, with promtool and amtool when installed); ``render`` writes that
Prometheus side; ``status``, ``decisions`` and ``scale`` talk to a running service over its HTTP API;
``demo`` runs the whole pipeline locally on a real traffic shape (``alertscaler.demo.running``); ``simulate``
replays a load trace through a policy and the baselines (``alertscaler.sim``); ``backtest`` does the same on
a Prometheus range query (``alertscaler.sim.backtest``).

Exit codes: 0 success; 1 the command ran but the answer is "no" (invalid file, refused request);
2 usage error; 3 the service cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alertscaler import __version__
from alertscaler.confgen import DEFAULT_ALERTMANAGER_URL, DEFAULT_TOKEN_FILE, RenderInput, render_all, write_files
from alertscaler.confgen.scrape import alertmanager_target
from alertscaler.confgen.syncing import SyncError, sync_rules
from alertscaler.confgen.validate import validate
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.model.durations import format_duration, parse_duration
from alertscaler.model.errors import ConfigError

if TYPE_CHECKING:
    from alertscaler.sim.comparing import Comparison

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_CONFIG = "alertscaler.yml"

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_NO) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        return code
    except CliError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return exc.code
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_NO
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alertscaler",
        description="Turn Prometheus alerts into safe, durable scaling actions on groups of instances.",
        epilog="Exit codes: 0 ok, 1 refused/invalid, 2 usage error, 3 service unreachable. "
               "Docs: README.md",
    )
    p.add_argument("--version", action="version", version=f"alertscaler {__version__}")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    def config_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--config", default=os.environ.get("ALERTSCALER_CONFIG", DEFAULT_CONFIG),
                        help="policy file (default: $ALERTSCALER_CONFIG or ./alertscaler.yml)")

    def client_args(sp: argparse.ArgumentParser) -> None:
        config_arg(sp)
        sp.add_argument("--url", help="service URL (default: from the policy file's server section)")
        sp.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = sub.add_parser("serve", help="run the service (webhook, API, workers)",
                       description="Run alertscaler: receive Alertmanager webhooks, decide, act.")
    config_arg(s)
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    s.add_argument("--log-format", default="text", choices=["text", "json"])
    s.set_defaults(func=_serve)

    c = sub.add_parser("check", help="validate a policy file, reporting every problem with its path",
                       description="Validate a policy file. Exit 0 when valid, 1 with every problem listed. "
                                   "Then validate the Prometheus side render would write with promtool and amtool "
                                   "(when on PATH).")
    c.add_argument("file", nargs="?", help="policy file (or use -c)")
    config_arg(c)
    _render_args(c)
    c.set_defaults(func=_check)

    r = sub.add_parser("render", help="write Prometheus rules, prometheus.yml and alertmanager.yml for a policy",
                       description="Generate the Prometheus side of a policy file: rules/alertscaler.rules.yml, "
                                   "prometheus.yml, scrape_configs.yml, alertmanager.yml, alertmanager-route.yml. "
                                   "Secrets are never written: the files point at --token-file.")
    config_arg(r)
    r.add_argument("--out", required=True, metavar="DIR", help="directory to write into (created if missing)")
    _render_args(r)
    r.set_defaults(func=_render)

    rules = sub.add_parser("rules", help="manage the generated rules in a running Prometheus")
    rules_sub = rules.add_subparsers(title="rules commands", metavar="COMMAND")
    rs = rules_sub.add_parser(
        "sync", help="install the generated rule file into Prometheus safely (validate, reload, confirm, roll back)",
        description="Validate the generated rules with promtool, write them atomically into prometheus.rules_dir, "
                    "POST /-/reload, confirm through Prometheus' API that they loaded; on any failure restore the "
                    "previous file. Prometheus is never left with a broken rule file.")
    config_arg(rs)
    rs.add_argument("--rules-dir", metavar="DIR", help="override prometheus.rules_dir")
    rs.add_argument("--prometheus-url", metavar="URL", help="override prometheus.url")
    rs.add_argument("--no-promtool", action="store_true",
                    help="sync even when promtool is not installed (Prometheus' reload still guards)")
    rs.set_defaults(func=_rules_sync)
    rules.set_defaults(func=lambda args: _usage(rules))

    st = sub.add_parser("status", help="groups: desired and current capacity, members")
    client_args(st)
    st.add_argument("group", nargs="?", help="show one group with its members")
    st.set_defaults(func=_status)

    d = sub.add_parser("decisions", help="recent decisions with their reasons")
    client_args(d)
    d.add_argument("--group")
    d.add_argument("--outcome", choices=["acted", "skipped"])
    d.add_argument("--reason")
    d.add_argument("--since", help="a duration ago (10m, 2h) or an RFC 3339 time")
    d.add_argument("--limit", type=int, default=20)
    d.set_defaults(func=_decisions)

    sc = sub.add_parser("scale", help="set a group's desired capacity (bounds apply, cooldowns do not)")
    client_args(sc)
    sc.add_argument("group")
    sc.add_argument("desired", type=_non_negative)
    sc.set_defaults(func=_scale)

    dm = sub.add_parser(
        "demo", help="run the whole pipeline locally on a real traffic shape, with a live view",
        description="Start Prometheus and Alertmanager (Debian packages prometheus and prometheus-alertmanager), "
                    "alertscaler with the local provider and a load generator replaying the World Cup 1998 "
                    "traffic shape, all on 127.0.0.1 with free ports; watch the group scale out and back in. "
                    "Ctrl-C stops everything (exit 0); no process is left behind.",
        epilog="Exit codes: 0 the replay ended or Ctrl-C; 1 Prometheus/Alertmanager missing or a process failed; "
               "2 bad options.")
    timing = dm.add_mutually_exclusive_group()
    timing.add_argument("--duration", type=_duration_arg, metavar="DURATION",
                        help="how long one busy-then-quiet cycle lasts: 300, 90s, 5m (default 5m)")
    timing.add_argument("--speed", type=_positive_float, metavar="MIN_PER_S",
                        help="trace minutes replayed per second instead (the cycle is 840 trace minutes)")
    dm.add_argument("--max-size", type=_non_negative, default=5, metavar="N",
                    help="the group's max_size, 2..10; the peak needs N instances (default 5)")
    dm.add_argument("--workdir", metavar="DIR", help="working directory to use and keep (default: temporary)")
    dm.add_argument("--keep", action="store_true", help="keep the temporary working directory (logs, configs)")
    dm.add_argument("--no-view", dest="view", action="store_false", default=None,
                    help="print status lines instead of the live view (automatic when stdout is not a terminal)")
    dm.add_argument("--no-kill", dest="kill", action="store_false", default=True,
                    help="do not kill an instance half-way through the replay (which shows healing: InstanceDown fires "
                         "and alertscaler replaces the instance)")
    dm.set_defaults(func=_demo)

    sm = sub.add_parser(
        "simulate", help="replay a load trace through a policy and both baselines; print decision-quality metrics",
        description="Replay a load trace (requests/s over time) through a scaling policy with the real decision "
                    "code, and through two baselines in the same run: Kubernetes' HPA default behaviour (CPU "
                    "utilisation target --target, every 15 s) and the seeds' step policy (+1 if utilisation > "
                    "0.8 for 1m, cooldown 30s; -1 if < 0.2 for 1m, cooldown 60s). New instances serve only after "
                    "--delay; scale-in is immediate. Prints the SPEC RG elasticity metrics (under/over-"
                    "provisioning accuracy and timeshare, instability, jitter), scaling actions, instance-hours "
                    "and their ratio to an oracle that always has ceil(demand / capacity) instances. "
                    "Deterministic: the same options give the same figures.",
        epilog="Policies: tracking = alertscaler's default, target tracking on requests/s per instance "
               "(--target x --capacity) now and predicted one --delay ahead; step = alertscaler step policy "
               "(+50%% above --target for 1m, -10%% below half of it for 5m); sized = the same alerts, each step sized "
               "live to ceil(requests/s / (--target x --capacity)) with size_by; hpa; seed. "
               "Trace CSV: timestamp,value rows (seconds or ISO 8601 date-times; values in requests/s, or "
               "request counts per row under a 'count' header), optional header, gzip allowed. "
               "Example: alertscaler simulate --speed 10 --delay 3m --plot sim.png. "
               "Exit codes: 0 ok; 1 plotting needs matplotlib (pip install 'alertscaler[sim]'); 2 bad options "
               "or trace.")
    sm.add_argument("--trace", default="worldcup98", metavar="NAME|FILE",
                    help="worldcup98 (bundled: the 1998 World Cup web site, 4 days per minute, scaled so that its "
                         "busiest minute needs 70%% of --max at --capacity) or a CSV file (default worldcup98)")
    sm.add_argument("--peak", type=_positive_float, metavar="RPS",
                    help="scale the trace so that its busiest sample is RPS requests/s (files are replayed as "
                         "they are unless given)")
    sm.add_argument("--start", metavar="WHEN",
                    help="start this long into the trace (2h, 1d) or at this date-time of it (1998-06-30 10:00)")
    sm.add_argument("--minutes", type=_positive_float, metavar="N", help="replay N minutes of the trace")
    sm.add_argument("--speed", type=_positive_float, default=1.0, metavar="X",
                    help="replay X times faster than real time: with 10, a trace minute lasts 6 s while delays "
                         "and intervals stay as given (default 1)")
    sm.add_argument("--smooth", type=_non_negative, default=1, metavar="SAMPLES",
                    help="moving average over this many samples first (default 1: none)")
    _policy_options(sm)
    sm.set_defaults(func=_simulate)

    bt = sub.add_parser(
        "backtest", help="what would this policy have done last week? simulate on a Prometheus range query",
        description="Fetch the group's demand in requests/s from Prometheus (a range query, one series) and "
                    "replay it like 'simulate' does: the chosen policy and both baselines (HPA default, the "
                    "seeds' step policy) in one run, with the real decision code; same table, --json and --plot.",
        epilog="Example: alertscaler backtest --query 'sum(rate(http_requests_total{job=\"web\"}[1m]))' "
               "--since 7d --step 60s --capacity 40 --delay 3m. Each point holds until the next (a gap keeps the "
               "last value); NaN points are dropped. Exit codes: 0 ok; 1 Prometheus unreachable, PromQL "
               "rejected, no data, or plotting needs matplotlib; 2 bad options (several series: aggregate them).")
    bt.add_argument("-c", "--config", metavar="FILE",
                    help="policy file whose prometheus section (url, bearer_token, verify, timeout) is used")
    bt.add_argument("--prometheus", metavar="URL",
                    help="Prometheus base URL (default: -c FILE's prometheus.url, else http://127.0.0.1:9090)")
    bt.add_argument("--query", required=True, metavar="PROMQL",
                    help="the group's demand in requests/s as one series, e.g. "
                         "'sum(rate(http_requests_total{job=\"web\"}[1m]))'")
    span = bt.add_mutually_exclusive_group()
    span.add_argument("--since", type=_duration_arg, metavar="DURATION",
                      help="replay the last DURATION up to --to (default 7d)")
    span.add_argument("--from", dest="start", metavar="ISO",
                      help="replay from this date-time (ISO 8601; without a zone: UTC)")
    bt.add_argument("--to", dest="end", metavar="ISO", help="replay up to this date-time (default: now)")
    bt.add_argument("--step", type=_duration_arg, default=60.0, metavar="DURATION",
                    help="resolution of the range query (default 60s)")
    bt.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                    help="per request to Prometheus (default: -c FILE's prometheus.timeout, else 10)")
    _policy_options(bt)
    bt.set_defaults(func=_backtest)
    return p


def _policy_options(parser: argparse.ArgumentParser) -> None:
    """The scenario and output options ``simulate`` and ``backtest`` share."""
    parser.add_argument("--policy", choices=["tracking", "step", "sized", "hpa", "seed"], default="tracking",
                        help="the policy to compare with the baselines (default tracking)")
    parser.add_argument("--target", type=_positive_float, default=0.7, metavar="UTIL",
                        help="target utilisation in (0, 1] for tracking, step and hpa (default 0.7)")
    parser.add_argument("--capacity", type=_positive_float, default=40.0, metavar="RPS",
                        help="requests/s one instance serves at 100%% (default 40)")
    parser.add_argument("--delay", type=_duration_arg, default=60.0, metavar="DURATION",
                        help="provisioning delay: a new instance serves this long after it was asked for (default 60s)")
    parser.add_argument("--interval", type=_duration_arg, default=15.0, metavar="DURATION",
                        help="how often the chosen policy decides (default 15s; the baselines always use 15s)")
    parser.add_argument("--min", dest="min_size", type=_non_negative, default=1, metavar="N",
                        help="min size (default 1)")
    parser.add_argument("--max", dest="max_size", type=_non_negative, default=20, metavar="N",
                        help="max size (default 20)")
    parser.add_argument("--initial", type=_non_negative, metavar="N",
                        help="size at the start (default: what each policy wants for the first sample)")
    parser.add_argument("--metric-window", type=_duration_arg, default=60.0, metavar="DURATION",
                        help="policies see the demand averaged over this window, like rate(...[1m]) (default 60s)")
    parser.add_argument("--plot", metavar="OUT.png", help="write a PNG of demand vs supply for each policy")
    parser.add_argument("--json", metavar="OUT.json", help="write the scenario and every figure as JSON")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return int(text)


def _duration_arg(text: str) -> float:
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a duration like 300, 90s or 5m, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


# --- commands -----------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    from alertscaler import service  # heavy imports only when serving

    policy = _load(args.config)
    service.setup_logging(args.log_level, args.log_format)
    service.serve(policy, args.log_level, source=args.config)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from alertscaler.demo.running import KILL_AT, DemoOptions, run_demo  # heavy imports only for the demo

    return run_demo(DemoOptions(duration=args.duration, speed=args.speed, max_size=args.max_size,
                                workdir=Path(args.workdir) if args.workdir else None, keep=args.keep,
                                view=args.view, kill_at=KILL_AT if args.kill else None))


def _simulate(args: argparse.Namespace) -> int:
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
    _print_comparison(comparison, heading)
    if args.trace == WORLDCUP98:
        out.print("trace: M. Arlitt and T. Jin, \"1998 World Cup Web Site Access Logs\", August 1998 "
                  "(alertscaler/data/WORLDCUP98-NOTICE.txt)", highlight=False, markup=False)
    _write_outputs(comparison, heading, args)
    return EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    from alertscaler.ingest.prometheus import PrometheusClient  # only for backtest
    from alertscaler.model.errors import InputError, QueryError
    from alertscaler.sim.backtest import NoData, fetch_trace
    from alertscaler.sim.comparing import compare, policy_named
    from alertscaler.sim.scenarios import Scenario

    start, end = _backtest_span(args)
    url, options = _backtest_prometheus(args)
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
    _print_comparison(comparison, heading)
    _write_outputs(comparison, heading, args)
    return EXIT_OK


def _backtest_span(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """``--since`` / ``--from`` / ``--to`` → aware UTC (start, end); bad input is a usage error."""
    end = _instant(args.end, "--to") if args.end else datetime.now(UTC)
    if args.start:
        start = _instant(args.start, "--from")
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


def _instant(text: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option}: {text!r} is not an ISO 8601 date-time (e.g. 2024-05-01T12:00:00Z)",
                       EXIT_USAGE) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _backtest_prometheus(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The URL and client options: ``--prometheus`` / ``--timeout`` over ``-c FILE``'s prometheus section."""
    options: dict[str, Any] = {}
    url = "http://127.0.0.1:9090"
    if args.config:
        section = _load(args.config).prometheus
        url = section.url
        options = {"bearer_token": section.bearer_token, "verify": section.verify, "timeout": section.timeout}
    if args.prometheus:
        url = args.prometheus
    if args.timeout is not None:
        options["timeout"] = args.timeout
    return url, options


def _print_comparison(comparison: Comparison, heading: str) -> None:
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


def _write_outputs(comparison: Comparison, heading: str, args: argparse.Namespace) -> None:
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


def _check(args: argparse.Namespace) -> int:
    path = args.file or args.config
    policy = _load(path)
    out.print(f"[green]ok[/green] {path}: {len(policy.groups)} group(s): "
              + ", ".join(f"{n} ({g.provider_type}, {g.min_size}..{g.max_size})" for n, g in policy.groups.items()),
              highlight=False)
    _print_schedules(policy, datetime.now(UTC))
    return _check_generated(policy, path, args)


def _print_schedules(policy: PolicyFile, now: datetime) -> None:
    """Each schedule window with what it sets and when it next opens: a cron typo shows at once."""
    for name, group in policy.groups.items():
        if group.schedule is None:
            continue
        zone = group.schedule.zone
        local = now.astimezone(zone).replace(tzinfo=None)
        for w in group.schedule.windows:
            sets = ", ".join(f"{k} {v}" for k, v in (("min_size", w.min_size), ("max_size", w.max_size),
                                                      ("desired", w.desired)) if v is not None)
            upcoming = w.expr.next_after(local)
            text = f"  {name} window {w.name}: '{w.cron}' for {format_duration(w.duration)}: {sets}; "
            if upcoming is None:
                err.print(f"{text}WARNING: never opens (no date in the next 400 days matches)",
                          highlight=False, markup=False)
                continue
            out.print(f"{text}next opens {upcoming:%a %Y-%m-%d %H:%M} {group.schedule.timezone}",
                      highlight=False, markup=False)


def _render_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--token-file", default=DEFAULT_TOKEN_FILE, metavar="PATH",
                    help="file Prometheus and Alertmanager read alertscaler's token (or basic-auth password) from "
                         f"(default {DEFAULT_TOKEN_FILE}); its content is never written")
    sp.add_argument("--alertmanager-url", default=DEFAULT_ALERTMANAGER_URL, metavar="URL",
                    help=f"Alertmanager for prometheus.yml's alerting section (default {DEFAULT_ALERTMANAGER_URL})")


def _render_input(policy: PolicyFile, source: str, args: argparse.Namespace) -> RenderInput:
    try:
        alertmanager_target(args.alertmanager_url)
    except ValueError as exc:
        raise CliError(f"--alertmanager-url: {exc}", EXIT_USAGE) from None
    return policy.render_input(source, args.token_file, args.alertmanager_url)


def _render(args: argparse.Namespace) -> int:
    policy = _load(args.config)
    inp = _render_input(policy, args.config, args)
    try:
        written = write_files(args.out, render_all(inp))
    except OSError as exc:
        raise CliError(f"cannot write into {args.out}: {exc.strerror or exc}") from None
    for path in written:
        out.print(f"wrote {path}", highlight=False)
    out.print(" ".join(inp.credentials_note()), highlight=False)
    out.print(f"validate with: alertscaler check {args.config}", highlight=False)
    return EXIT_OK


def _rules_sync(args: argparse.Namespace) -> int:
    policy = _load(args.config)
    rules_dir = Path(args.rules_dir) if args.rules_dir else policy.rules_dir()
    if rules_dir is None:
        raise CliError("no rules directory: set prometheus.rules_dir in the policy file or pass --rules-dir",
                       EXIT_USAGE)
    url = args.prometheus_url or policy.prometheus.url
    try:
        result = sync_rules(policy.render_input(args.config), rules_dir, policy.prometheus.rule_file, url,
                            require_promtool=not args.no_promtool)
    except SyncError as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        raise CliError(f"rules sync: {exc}") from None
    for step in result.steps:
        out.print(step, highlight=False)
    out.print(f"[green]ok[/green] {result.path}: {result.groups} group(s), {result.rules} rule(s)"
              + ("" if result.changed else " (unchanged)"), highlight=False)
    return EXIT_OK


def _check_generated(policy: PolicyFile, path: str, args: argparse.Namespace) -> int:
    """Run promtool / amtool on what ``render`` would write; exit 1 if they reject it."""
    inp = _render_input(policy, path, args)
    with tempfile.TemporaryDirectory(prefix="alertscaler-check-") as tmp:
        try:
            reports = validate(inp, Path(tmp))
        except OSError as exc:
            raise CliError(f"cannot render into a temporary directory: {exc.strerror or exc}") from None
    failed = [r for r in reports if r.status == "failed"]
    for report in reports:
        style = {"ok": "green", "failed": "red"}.get(report.status, "yellow")
        label = {"missing": "skipped"}.get(report.status, report.status)
        (err if report.status == "failed" else out).print(
            f"[{style}]{label}[/{style}] {report.check}: {escape(report.summary)}", highlight=False)
        for problem in report.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
    if failed:
        where = ("the generated Prometheus side" if all(r.check != "promtool check rules (queries)" for r in failed)
                 else "the Prometheus side (generated files, the policy file's queries)")
        err.print(f"[red]invalid[/red] {path}: {sum(len(r.problems) for r in failed)} problem(s) in {where}",
                  highlight=False)
        return EXIT_NO
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    if args.group:
        data = _request(args, "GET", f"/api/v1/groups/{args.group}")
        if args.json:
            return _print_json(data)
        _print_groups([data])
        members = Table(title=f"members of {args.group}")
        for col in ("id", "address", "state", "created_at"):
            members.add_column(col)
        for m in data.get("members", []):
            members.add_row(m["id"], m.get("address") or "", m["state"], m.get("created_at") or "")
        out.print(members)
        return EXIT_OK
    data = _request(args, "GET", "/api/v1/groups")
    if args.json:
        return _print_json(data)
    _print_groups(data)
    return EXIT_OK


def _decisions(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    for key in ("group", "outcome", "reason"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.since:
        params["since"] = _since(args.since)
    data = _request(args, "GET", "/api/v1/decisions", params=params)
    if args.json:
        return _print_json(data)
    table = Table(title="decisions (newest first)")
    for col in ("id", "time", "group", "policy", "trigger", "outcome", "reason", "from→to", "message"):
        table.add_column(col, overflow="fold")
    for d in data:
        arrow = f"{d['from_capacity']}→{d['to_capacity']}" if d["from_capacity"] is not None else ""
        style = "green" if d["outcome"] == "acted" else "yellow"
        table.add_row(str(d["id"]), (d["decided_at"] or "")[:19], d["group"] or "-", d["policy"] or "-",
                      d["trigger"], f"[{style}]{d['outcome']}[/{style}]", d["reason"], arrow, d["message"])
    out.print(table)
    return EXIT_OK


def _scale(args: argparse.Namespace) -> int:
    data = _request(args, "POST", f"/api/v1/groups/{args.group}/scale", body={"desired": args.desired})
    if args.json:
        return _print_json(data)
    out.print(f"{data['outcome']} ({data['reason']}): {data['message']}", highlight=False)
    return EXIT_OK if data["outcome"] == "acted" or data["reason"] == "no_change" else EXIT_NO


# --- helpers ------------------------------------------------------------------------------------------
def _load(path: str) -> PolicyFile:
    if not os.path.exists(path):
        raise CliError(f"policy file {path} not found (give one with -c FILE)", EXIT_USAGE)
    return load_policy_file(path)


def _print_problems(exc: ConfigError) -> None:
    where = f"{exc.source}: " if exc.source else ""
    err.print(f"[red]invalid[/red] {where}{len(exc.problems)} problem(s)", highlight=False)
    for p in exc.problems:
        err.print(f"  {p}", highlight=False, markup=False)


def _print_json(data: Any) -> int:
    print(json.dumps(data, indent=2))
    return EXIT_OK


def _print_groups(groups: list[dict[str, Any]]) -> None:
    table = Table(title="groups")
    for col in ("group", "provider", "min", "desired", "current", "max", "dry run", "last scale out", "last scale in"):
        table.add_column(col)
    notes = []
    for g in groups:
        current = "?" if g.get("current") is None else str(g["current"])
        if g.get("current") is not None and g["current"] != g["desired"]:
            current = f"[yellow]{current}[/yellow]"
        low, high = str(g["min_size"]), str(g["max_size"])
        sched = g.get("schedule")
        if sched:  # the bounds in force, the configured ones in brackets when a window overrides them
            low = low if sched["min_size"] == g["min_size"] else f"{sched['min_size']} ({low})"
            high = high if sched["max_size"] == g["max_size"] else f"{sched['max_size']} ({high})"
            names = ", ".join(w["name"] for w in sched["open"]) or "none"
            notes.append(f"{g['name']}: schedule windows open: {names}; next change "
                         f"{(sched['next_change'] or 'none')[:19]} UTC")
        table.add_row(g["name"], g["provider"], low, str(g["desired"]), current,
                      high, "yes" if g["dry_run"] else "", (g["last_scale_out_at"] or "")[:19],
                      (g["last_scale_in_at"] or "")[:19])
    out.print(table)
    for note in notes:
        out.print(note)


def _since(text: str) -> str:
    """``10m`` (a duration ago) or an RFC 3339 time, checked here so a typo is a usage error."""
    try:
        return (datetime.now(UTC) - timedelta(seconds=parse_duration(text))).isoformat()
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since: {text!r} is neither a duration (10m, 2h) nor an RFC 3339 time", EXIT_USAGE) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _request(args: argparse.Namespace, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None) -> Any:
    url = args.url
    headers = {}
    policy = None
    if os.path.exists(args.config):
        policy = load_policy_file(args.config)
    if url is None:
        if policy is None:
            raise CliError(f"no --url and no policy file {args.config} to find the service", EXIT_USAGE)
        url = policy.server.url
    token = os.environ.get("ALERTSCALER_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif policy is not None and policy.server.auth.bearer_token is not None:
        headers["Authorization"] = f"Bearer {policy.server.auth.bearer_token.get_secret_value()}"
    basic = policy.server.auth.basic if policy is not None else None
    auth = (basic.username, basic.password.get_secret_value()) if basic and "Authorization" not in headers else None
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers, auth=auth) as client:
            response = client.request(method, path, params=params, json=body)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach alertscaler at {url}: {exc}", EXIT_UNREACHABLE) from None
    try:
        data = response.json()
    except ValueError:
        data = {"error": response.text}
    if response.status_code >= 400:
        message = data.get("error") if isinstance(data, dict) else None
        raise CliError(f"{method} {path}: HTTP {response.status_code}: {message or response.text}")
    return data


if __name__ == "__main__":
    sys.exit(main())
