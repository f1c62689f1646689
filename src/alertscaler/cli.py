"""The ``alertscaler`` command. ``serve`` runs the service; ``check`` validates a policy file (and the
Prometheus side generated from it, with promtool and amtool when installed); ``render`` writes that
Prometheus side; ``status``, ``decisions`` and ``scale`` talk to a running service over its HTTP API;
``demo`` runs the whole pipeline locally on a real traffic shape (``alertscaler.demo.running``).

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
from typing import Any

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
from alertscaler.model.durations import parse_duration
from alertscaler.model.errors import ConfigError

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
    dm.set_defaults(func=_demo)
    return p


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
    from alertscaler.demo.running import DemoOptions, run_demo  # heavy imports only for the demo

    return run_demo(DemoOptions(duration=args.duration, speed=args.speed, max_size=args.max_size,
                                workdir=Path(args.workdir) if args.workdir else None, keep=args.keep,
                                view=args.view))


def _check(args: argparse.Namespace) -> int:
    path = args.file or args.config
    policy = _load(path)
    out.print(f"[green]ok[/green] {path}: {len(policy.groups)} group(s): "
              + ", ".join(f"{n} ({g.provider_type}, {g.min_size}..{g.max_size})" for n, g in policy.groups.items()),
              highlight=False)
    return _check_generated(policy, path, args)


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
        err.print(f"[red]invalid[/red] {path}: {sum(len(r.problems) for r in failed)} problem(s) in the generated "
                  "Prometheus side", highlight=False)
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
    for g in groups:
        current = "?" if g.get("current") is None else str(g["current"])
        if g.get("current") is not None and g["current"] != g["desired"]:
            current = f"[yellow]{current}[/yellow]"
        table.add_row(g["name"], g["provider"], str(g["min_size"]), str(g["desired"]), current,
                      str(g["max_size"]), "yes" if g["dry_run"] else "", (g["last_scale_out_at"] or "")[:19],
                      (g["last_scale_in_at"] or "")[:19])
    out.print(table)


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
