"""The command line: ``main`` and the argument parser of every command (their ``--help`` texts); the
commands themselves are in ``cli.local`` (policy files on this machine), ``cli.remote`` (a running service)
and ``cli.simulating`` (simulate, backtest)."""

from __future__ import annotations

import argparse
import os
import sys

from alertscaler import __version__
from alertscaler.cli.alarming import add_parser as add_alarm_parser
from alertscaler.cli.alerting import alerts
from alertscaler.cli.approving import approval_id, approvals, approve, default_by, reject
from alertscaler.cli.common import (
    DEFAULT_CONFIG,
    EXIT_NO,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_USAGE,
    CliError,
    duration_arg,
    duration_text,
    err,
    non_negative,
    output_args,
    positive_float,
    print_problems,
    set_output,
)
from alertscaler.cli.drilling import drill
from alertscaler.cli.local import check, demo, render, rules_sync, serve
from alertscaler.cli.notifying import add_parsers as add_notification_parsers
from alertscaler.cli.remote import decisions, pause, reload_policy, resume, scale, status
from alertscaler.cli.simulating import add_parsers as add_simulating_parsers
from alertscaler.cli.urls import add_parsers as add_url_parsers
from alertscaler.config.render_input import DEFAULT_ALERTMANAGER_URL, DEFAULT_TOKEN_FILE
from alertscaler.model.decisions import Outcome, Reason
from alertscaler.model.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    output = getattr(args, "output", None)
    if output in ("json", "yaml"):
        args.json = True  # the commands print print_json's format (common.set_output) instead of a table
    set_output(output)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return closed_pipe()
    except CliError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return exc.code
    except ConfigError as exc:
        print_problems(exc)
        return EXIT_NO
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
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
        output_args(sp)

    s = sub.add_parser("serve", help="run the service (webhook, API, workers)",
                       description="Run alertscaler: receive Alertmanager webhooks, decide, act. SIGHUP re-reads the "
                                   "policy file (applied whole, or refused and the running one kept: see "
                                   "'alertscaler reload') and, with server.tls, the certificate.")
    config_arg(s)
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    s.add_argument("--log-format", default="text", choices=["text", "logfmt", "json"],
                   help="text (people), logfmt (key=value) or json (one object per line); UTC, milliseconds")
    s.set_defaults(func=serve)

    c = sub.add_parser("check", help="validate a policy file, reporting every problem with its path",
                       description="Validate a policy file. Exit 0 when valid, 1 with every problem listed (or when it "
                                   "runs without authentication, insecure_no_auth, beyond loopback). "
                                   "Then validate the Prometheus side render would write with promtool and amtool "
                                   "(when on PATH). Groups' user data (cloud-init) is checked too: a format "
                                   "cloud-init runs, #cloud-config as a YAML mapping, placeholders, the cloud's size "
                                   "limit; unknown cloud-config keys are warnings.")
    c.add_argument("file", nargs="?", help="policy file (or use -c)")
    config_arg(c)
    render_args(c)
    c.set_defaults(func=check)

    r = sub.add_parser("render", help="write Prometheus rules, prometheus.yml and alertmanager.yml for a policy",
                       description="Generate the Prometheus side of a policy file: rules/alertscaler.rules.yml, "
                                   "prometheus.yml, scrape_configs.yml, alertmanager.yml, alertmanager-route.yml. "
                                   "Secrets are never written: the files point at --token-file.")
    config_arg(r)
    r.add_argument("--out", required=True, metavar="DIR", help="directory to write into (created if missing)")
    render_args(r)
    r.set_defaults(func=render)

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
    rs.set_defaults(func=rules_sync)
    rules.set_defaults(func=lambda args: usage(rules))

    st = sub.add_parser("status", help="groups: desired and current capacity, members")
    client_args(st)
    st.add_argument("group", nargs="?", help="show one group with its members")
    st.set_defaults(func=status)

    d = sub.add_parser("decisions", help="recent decisions with their reasons")
    client_args(d)
    d.add_argument("--group")
    d.add_argument("--outcome", choices=[o.value for o in Outcome])
    d.add_argument("--reason", choices=[r.value for r in Reason], metavar="REASON",
                   help="one of: " + ", ".join(r.value for r in Reason))
    d.add_argument("--since", help="a duration ago (10m, 2h) or an RFC 3339 time")
    d.add_argument("--limit", type=int, default=20)
    d.set_defaults(func=decisions)

    al = sub.add_parser("alerts", help="alerts alertscaler believes firing ([GROUP]); 'clear GROUP FINGERPRINT' "
                                       "ends one by hand (recorded)")
    client_args(al)
    al.add_argument("words", nargs="*", metavar="GROUP | clear GROUP FINGERPRINT")
    al.set_defaults(func=alerts)

    add_alarm_parser(sub, client_args)  # alarms [NAME]: alarm states and history (cli.alarming)

    sc = sub.add_parser("scale", help="set a group's desired capacity (bounds apply, cooldowns do not)")
    client_args(sc)
    sc.add_argument("group")
    sc.add_argument("desired", type=non_negative)
    sc.add_argument("--hold", metavar="DURATION", type=duration_text,
                    help="policies may not move the group for this long (30m, 2h; bounds still apply)")
    sc.set_defaults(func=scale)

    pa = sub.add_parser("pause", help="pause a group (or --all): decisions are recorded as paused, nothing is "
                                      "executed, until resumed or --for ends",
                        epilog="Example: alertscaler pause web --for 2h --reason 'incident 42'")
    client_args(pa)
    pa.add_argument("group", nargs="?")
    pa.add_argument("--all", action="store_true", help="pause every group")
    pa.add_argument("--for", dest="duration", metavar="DURATION", type=duration_text,
                    help="the pause ends by itself after this (default: until resumed)")
    pa.add_argument("--reason", default="", help="why (kept with the pause, shown in status and decisions)")
    pa.set_defaults(func=pause)

    rp = sub.add_parser("resume", help="end a group's pause (or --all: the pause of every group)")
    client_args(rp)
    rp.add_argument("group", nargs="?")
    rp.add_argument("--all", action="store_true", help="end the pause of every group")
    rp.set_defaults(func=resume)

    rl = sub.add_parser(
        "reload", help="make the running service re-read its policy file (like SIGHUP); print what changed",
        description="POST /-/reload: the service re-reads its policy file, validates it completely and applies it "
                    "whole (groups added, changed, removed; an action already running finishes as it started), or "
                    "keeps the configuration it runs and says why: every problem with its path, or a setting that "
                    "needs a restart (store.*, server.listen, server.tls, server.state_dir).",
        epilog="Exit codes: 0 applied (or nothing changed); 1 refused, the running configuration stays; 3 the "
               "service cannot be reached. Credentials come from the file: when the reload changes them, give the "
               "running service's token in ALERTSCALER_TOKEN.")
    client_args(rl)
    rl.set_defaults(func=reload_policy)

    dr = sub.add_parser(
        "drill", help="fire drill: a synthetic alert through the real Alertmanager, timed hop by hop; changes nothing",
        description="Send a synthetic alert with GROUP's POLICY labels (default: its first step policy) and "
                    "alertscaler_drill=\"<random id>\" to Alertmanager (POST /api/v2/alerts), so its routes and "
                    "receivers are exercised; check Alertmanager routes it to a receiver that posts to alertscaler; "
                    "wait for alertscaler's drill decision (GET /api/v1/decisions?reason=drill); print each hop's "
                    "time (Alertmanager accepted, routed, webhook received, decided) and what the policy would have "
                    "done, or name the hop that failed and why. A drill never changes capacity, even in a group "
                    "that is not dry-run: alertscaler records a 'drill' decision and nothing else. The drill alert "
                    "is resolved at the end.",
        epilog="Example: alertscaler drill web scale_out. Exit codes: 0 passed; 1 a hop failed (named); 2 usage or "
               "configuration error; 3 alertscaler's API unreachable.")
    client_args(dr)
    dr.add_argument("group")
    dr.add_argument("policy", nargs="?", choices=["scale_out", "scale_in"],
                    help="the step policy whose alert is drilled (default: scale_out if the group has one)")
    dr.add_argument("--alertmanager", metavar="URL",
                    help="Alertmanager's base URL (default: the policy file's alertmanager.url)")
    dr.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                    help="how long to wait for the webhook (default: the group_wait of the Alertmanager route the "
                         "drill takes, or its group_interval when it joins a group with alerts, + 15 s)")
    dr.add_argument("--label", action="append", metavar="NAME=VALUE",
                    help="a label for the drill alert (repeatable), e.g. when a matcher's regex needs a value")
    dr.set_defaults(func=drill)

    ap = sub.add_parser("approvals", help="changes waiting for an operator's approval ([GROUP]; --all: ended ones too)",
                        description="List the changes that wait for approval (a group's approval rules: a size "
                                    "change over approval.over_change, a heal of a kind in approval.heal), newest "
                                    "first, with why they wait and until when. A change nobody approves in time "
                                    "expires; a newer change of the group supersedes it.",
                        epilog="Then: alertscaler approve ID (the change runs) or alertscaler reject ID.")
    client_args(ap)
    ap.add_argument("group", nargs="?", help="one group's only")
    ap.add_argument("--all", action="store_true", help="also the ended ones (approved, rejected, expired, superseded)")
    ap.add_argument("--limit", type=int, default=50)
    ap.set_defaults(func=approvals)

    for verb, func, text in (
            ("approve", approve, "carry out a change that waits for approval: recorded as an acted 'approved' "
                                 "decision, its action runs. Refused (exit 1, the reason printed) when it expired, "
                                 "was already approved, rejected or superseded, when the group's size moved since "
                                 "the change was planned, its target is outside the bounds in force, or the group "
                                 "is paused"),
            ("reject", reject, "drop a change that waits for approval: recorded as a 'rejected' decision, nothing "
                               "runs")):
        vp = sub.add_parser(verb, help=text.split(":")[0], description=text[0].upper() + text[1:] + ".",
                            epilog=f"Example: alertscaler {verb} 123 (the id alertscaler approvals shows: the "
                                   "pending_approval decision's id)")
        client_args(vp)
        vp.add_argument("id", type=approval_id, help="the approval's id (alertscaler approvals)")
        vp.add_argument("--by", default=default_by(), help="who (shown in the decision; default: your user name)")
        vp.set_defaults(func=func)

    dm = sub.add_parser(
        "demo", help="run the whole pipeline locally on a real traffic shape, with a live view",
        description="Start Prometheus and Alertmanager (Debian packages prometheus and prometheus-alertmanager), "
                    "alertscaler with the local provider and a load generator replaying the World Cup 1998 "
                    "traffic shape, all on 127.0.0.1 with free ports; watch the group scale out and back in. "
                    "Ctrl-C stops everything (exit 0); no process is left behind.",
        epilog="Exit codes: 0 the replay ended or Ctrl-C; 1 Prometheus/Alertmanager missing or a process failed; "
               "2 bad options.")
    timing = dm.add_mutually_exclusive_group()
    timing.add_argument("--duration", type=duration_arg, metavar="DURATION",
                        help="how long one busy-then-quiet cycle lasts: 300, 90s, 5m (default 5m)")
    timing.add_argument("--speed", type=positive_float, metavar="MIN_PER_S",
                        help="trace minutes replayed per second instead (the cycle is 840 trace minutes)")
    dm.add_argument("--max-size", type=non_negative, default=5, metavar="N",
                    help="the group's max_size, 2..10; the peak needs N instances (default 5)")
    dm.add_argument("--workdir", metavar="DIR", help="working directory to use and keep (default: temporary)")
    dm.add_argument("--keep", action="store_true", help="keep the temporary working directory (logs, configs)")
    dm.add_argument("--no-view", dest="view", action="store_false", default=None,
                    help="print status lines instead of the live view (automatic when stdout is not a terminal)")
    dm.add_argument("--no-kill", dest="kill", action="store_false", default=True,
                    help="do not kill an instance half-way through the replay (which shows healing: InstanceDown fires "
                         "and alertscaler replaces the instance)")
    dm.set_defaults(func=demo)

    add_simulating_parsers(sub)  # simulate, backtest: their options live with them (cli.simulating)
    add_url_parsers(sub)  # url create | list | revoke | keys | rotate-key: signed URLs (cli.urls)
    add_notification_parsers(sub)  # notifications [ID]: the outbox of alarm notifications (cli.notifying)

    co = sub.add_parser("completion", help="print the shell completion script (bash, zsh or tcsh)",
                        description="Print a completion script for commands, options and their values.",
                        epilog="bash: alertscaler completion bash > ~/.local/share/bash-completion/completions/"
                               "alertscaler (or: eval \"$(alertscaler completion bash)\"); zsh: alertscaler "
                               "completion zsh > \"${fpath[1]}/_alertscaler\"")
    co.add_argument("shell", choices=["bash", "zsh", "tcsh"])
    co.set_defaults(func=completion)
    return p


def render_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--token-file", default=DEFAULT_TOKEN_FILE, metavar="PATH",
                    help="file Prometheus and Alertmanager read alertscaler's token (or basic-auth password) from "
                         f"(default {DEFAULT_TOKEN_FILE}); its content is never written")
    sp.add_argument("--alertmanager-url", default=DEFAULT_ALERTMANAGER_URL, metavar="URL",
                    help=f"Alertmanager for prometheus.yml's alerting section (default {DEFAULT_ALERTMANAGER_URL})")


def closed_pipe() -> int:
    """stdout's reader went away (``alertscaler decisions --json | head -1``): no traceback, the rest of the output
    goes to /dev/null (also Python's flush at exit), and exit 141 like a command killed by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def completion(args: argparse.Namespace) -> int:
    """``alertscaler completion bash|zsh|tcsh``: the shell completion script (shtab) on stdout."""
    try:
        import shtab
    except ImportError:
        raise CliError("shell completion needs shtab: pip install shtab", EXIT_USAGE) from None
    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return EXIT_OK


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE
