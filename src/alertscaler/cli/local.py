"""Commands on a policy file on this machine: ``serve``, ``demo``, ``check`` (with promtool and amtool on
what ``render`` would write, the schedule and change-freeze windows' next openings, the approval rules),
``render`` and ``rules sync``."""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from alertscaler.cli.common import EXIT_NO, EXIT_OK, EXIT_USAGE, CliError, err, load, out
from alertscaler.confgen import render_all, write_files
from alertscaler.confgen.scrape import alertmanager_target
from alertscaler.confgen.syncing import SyncError, sync_rules
from alertscaler.confgen.validate import validate
from alertscaler.config import PolicyFile
from alertscaler.config.render_input import RenderInput
from alertscaler.decide.schedules import next_opening, open_span
from alertscaler.model.durations import format_duration
from alertscaler.model.errors import InputError
from alertscaler.prometheus.client import PrometheusClient


def serve(args: argparse.Namespace) -> int:
    from alertscaler import service  # heavy imports only when serving

    policy = load(args.config)
    service.setup_logging(args.log_level, args.log_format)
    service.serve(policy, args.log_level, source=args.config)
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from alertscaler.demo.running import KILL_AT, DemoOptions, run_demo  # heavy imports only for the demo

    return run_demo(DemoOptions(duration=args.duration, speed=args.speed, max_size=args.max_size,
                                workdir=Path(args.workdir) if args.workdir else None, keep=args.keep,
                                view=args.view, kill_at=KILL_AT if args.kill else None))


def check(args: argparse.Namespace) -> int:
    path = args.file or args.config
    policy = load(path)
    out.print(f"[green]ok[/green] {path}: {len(policy.groups)} group(s): "
              + ", ".join(f"{n} ({g.provider_type}, {g.min_size}..{g.max_size})" for n, g in policy.groups.items()),
              highlight=False)
    print_schedules(policy, datetime.now(UTC))
    print_freezes(policy, datetime.now(UTC))
    print_freeze_warnings(policy)
    print_drain_warnings(policy)
    print_silence_note(policy)
    print_user_data(policy)
    exposed = print_auth_warning(policy)
    code = check_generated(policy, path, args)
    if exposed and code == EXIT_OK:
        err.print(f"[red]refused[/red] {path}: server.auth.insecure_no_auth with server.listen {policy.server.listen} "
                  "(beyond loopback): anyone who reaches it can act; set credentials or listen on 127.0.0.1",
                  highlight=False)
        return EXIT_NO
    return code


def print_auth_warning(policy: PolicyFile) -> bool:
    """``insecure_no_auth: true``: a warning on loopback; beyond it a loud one, and True (``check`` then exits 1,
    after everything else is reported). No authentication at all never gets here: the loader refused it."""
    warning = policy.server.insecure_warning()
    if warning is None:
        return False
    if policy.server.loopback_only:
        err.print(f"  WARNING: {warning}", highlight=False, markup=False)
        return False
    err.print(f"  [bold red]DANGER[/bold red]: {escape(warning)}", highlight=False)
    return True


def print_user_data(policy: PolicyFile) -> None:
    """Each group's user data (validated at load): its format, size against the cloud's limit, and warnings
    (cloud-config keys no cloud-init module reads). Read through the provider config's ``user_data_report``."""
    for name, group in policy.groups.items():
        report = getattr(group.provider, "user_data_report", None)
        found = report() if callable(report) else None
        if found is None:
            continue
        out.print(f"  {name}: user data {found.summary()}", highlight=False, markup=False)
        for warning in found.warnings:
            err.print(f"  {name}: WARNING: groups.{name}.provider.{found.key}: {warning}", highlight=False,
                      markup=False)


def print_silence_note(policy: PolicyFile) -> None:
    """Without ``alertmanager.url`` nobody is asked about silences, nor are believed-firing alerts reconciled."""
    if policy.alertmanager.url is not None:
        return
    out.print("  note: alertmanager.url is not set: Alertmanager's silences are not respected and alerts "
              "believed firing are not reconciled against it (only alert_stale_after ends a lost one)",
              highlight=False, markup=False)


def print_freeze_warnings(policy: PolicyFile) -> None:
    """A heal freeze that would ask Prometheus while the policy file names none: the freeze is off for it."""
    if policy.prometheus.url_set:
        return
    for name, group in policy.groups.items():
        if group.heal is not None and group.heal.freeze.prometheus:
            err.print(f"  {name}: WARNING: heal.freeze.prometheus is on but prometheus.url is not set, so heals "
                      "are not frozen while Prometheus is down (set prometheus.url, or heal.freeze.prometheus: "
                      "false to say so)", highlight=False, markup=False)


def print_drain_warnings(policy: PolicyFile) -> None:
    """A group's ``drain`` shorter than the time the generated Prometheus needs to drop a member that left
    discovery: its scale-in victims are stopped while still scraped, and rules on ``up`` fire for them."""
    lag = policy.scrape.discovery_lag()
    for name, group in policy.groups.items():
        if group.drain is not None and group.drain < lag:
            err.print(f"  {name}: WARNING: drain {format_duration(group.drain)} is shorter than the "
                      f"{format_duration(lag)} Prometheus needs to drop a member that left discovery (the scrape "
                      "section's slowest refresh_interval + 10s of Prometheus' own throttling + scrape_interval): "
                      "members a scale-in stops are still scraped, so alerts on up == 0 fire for them (alertscaler "
                      "drops them as removed_member, but Alertmanager sends them); default: "
                      f"{format_duration(policy.scrape.default_drain())}", highlight=False, markup=False)


def print_schedules(policy: PolicyFile, now: datetime) -> None:
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


def print_freezes(policy: PolicyFile, now: datetime) -> None:
    """Each change-freeze window with when it is open now or next opens, and each group's approval rules."""
    for name, group in policy.groups.items():
        if group.approval is not None:
            rules = group.approval
            waits = [f"a change of more than {rules.over_change}" + ("" if rules.scale_out else " (scale-in only)")
                     ] if rules.over_change is not None else []
            waits += [f"heals by {', '.join(a.value for a in rules.heal)}"] if rules.heal else []
            out.print(f"  {name} approval: {' and '.join(waits)} wait up to {format_duration(rules.expire_after)} "
                      "for an operator", highlight=False, markup=False)
        if group.change_freeze is None:
            continue
        freeze = group.change_freeze
        for w in freeze.windows:
            text = f"  {name} change freeze {w.name}: '{w.cron}' for {format_duration(w.duration)}; "
            opened = open_span(w, freeze.zone, now)
            upcoming = next_opening(w, freeze.zone, now)
            if opened is not None:
                closes = opened[1].astimezone(freeze.zone)
                out.print(f"{text}OPEN now, until {closes:%a %Y-%m-%d %H:%M} {freeze.timezone}", highlight=False,
                          markup=False)
            elif upcoming is None:
                err.print(f"{text}WARNING: never opens (no date in the next 400 days matches)",
                          highlight=False, markup=False)
            else:
                out.print(f"{text}next opens {upcoming.astimezone(freeze.zone):%a %Y-%m-%d %H:%M} {freeze.timezone}",
                          highlight=False, markup=False)


def render_input(policy: PolicyFile, source: str, args: argparse.Namespace) -> RenderInput:
    try:
        alertmanager_target(args.alertmanager_url)
    except ValueError as exc:
        raise CliError(f"--alertmanager-url: {exc}", EXIT_USAGE) from None
    return policy.render_input(source, args.token_file, args.alertmanager_url)


def render(args: argparse.Namespace) -> int:
    policy = load(args.config)
    inp = render_input(policy, args.config, args)
    try:
        written = write_files(args.out, render_all(inp))
    except OSError as exc:
        raise CliError(f"cannot write into {args.out}: {exc.strerror or exc}") from None
    for path in written:
        out.print(f"wrote {path}", highlight=False)
    out.print(" ".join(inp.credentials_note()), highlight=False)
    out.print(f"validate with: alertscaler check {args.config}", highlight=False)
    return EXIT_OK


def rules_sync(args: argparse.Namespace) -> int:
    policy = load(args.config)
    rules_dir = Path(args.rules_dir) if args.rules_dir else policy.rules_dir()
    if rules_dir is None:
        raise CliError("no rules directory: set prometheus.rules_dir in the policy file or pass --rules-dir",
                       EXIT_USAGE)
    try:
        prometheus = PrometheusClient.from_config(policy.prometheus, url=args.prometheus_url)
    except InputError as exc:
        raise CliError(escape(f"--prometheus-url: {exc}"), EXIT_USAGE) from None
    try:
        with prometheus:
            result = sync_rules(policy.render_input(args.config), rules_dir, policy.prometheus.rule_file,
                                prometheus, require_promtool=not args.no_promtool)
    except SyncError as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        raise CliError(f"rules sync: {exc}") from None
    for step in result.steps:
        out.print(step, highlight=False)
    out.print(f"[green]ok[/green] {result.path}: {result.groups} group(s), {result.rules} rule(s)"
              + ("" if result.changed else " (unchanged)"), highlight=False)
    return EXIT_OK


def check_generated(policy: PolicyFile, path: str, args: argparse.Namespace) -> int:
    """Run promtool / amtool on what ``render`` would write; exit 1 if they reject it."""
    inp = render_input(policy, path, args)
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
