"""``alertscaler notifications [ID]``: the notifications of alarm transitions (webhook, email, log) and their
delivery attempts, through the running service's API (``GET /api/v1/notifications``, ``/api/v1/notifications/ID``;
``api.notifications``). The parser is added by ``cli.parsing`` (``add_parsers``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.table import Table

from alertscaler.cli.common import DEFAULT_CONFIG, EXIT_OK, out, output_args, print_json
from alertscaler.cli.remote import request
from alertscaler.cli.tables import print_table

_STYLE = {"delivered": "green", "pending": "yellow", "failed": "red"}


def notification_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a notification's id (a positive integer: alertscaler "
                                         "notifications lists them)")
    return int(text)


def add_parsers(sub: Any) -> None:
    """The ``notifications`` command on ``sub`` (argparse's subparsers)."""
    n = sub.add_parser(
        "notifications", help="notifications of alarm transitions (webhook, email, log) and their delivery attempts",
        description="List the notifications alarm transitions sent through notification_methods (notify:NAME) and "
                    "URL actions, newest first: their status (pending: the next attempt is due at the time shown; "
                    "delivered; failed: every attempt failed), and each attempt (HTTP status, SMTP reply or error). "
                    "With an ID: that notification and all its attempts.",
        epilog="Examples: alertscaler notifications; alertscaler notifications --status failed; alertscaler "
               "notifications 12. Exit codes: 0 ok, 1 refused (e.g. no such notification), 2 usage, 3 service "
               "unreachable.")
    n.add_argument("-c", "--config", default=os.environ.get("ALERTSCALER_CONFIG", DEFAULT_CONFIG),
                   help="policy file (default: $ALERTSCALER_CONFIG or ./alertscaler.yml)")
    n.add_argument("--url", help="service URL (default: from the policy file's server section)")
    output_args(n)
    n.add_argument("id", nargs="?", type=notification_id, help="one notification (its attempts in full)")
    n.add_argument("--alarm", help="one alarm's only")
    n.add_argument("--status", choices=["pending", "delivered", "failed"], help="only these")
    n.add_argument("--method", help="one notification method's only (url: URL actions)")
    n.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    n.set_defaults(func=notifications)


def notifications(args: argparse.Namespace) -> int:
    if args.id is not None:
        return _one(args)
    params: dict[str, str | int] = {"limit": args.limit}
    for key in ("alarm", "status", "method"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    data = request(args, "GET", "/api/v1/notifications", params=params)
    if args.json:
        return print_json(data)
    if not data:
        out.print("no notification" + (" matches" if len(params) > 1 else " yet"), highlight=False)
        return EXIT_OK
    table = Table(title="notifications (newest first)")
    for col in ("id", "alarm", "transition", "method", "status", "attempts", "last result", "next / finished (UTC)"):
        table.add_column(col, overflow="fold")
    for n in data:
        style = _STYLE.get(n["status"], "")
        when = n["next_attempt_at"] if n["status"] == "pending" else n["finished_at"]
        table.add_row(str(n["id"]), n["alarm"] or "-", f"{n['transition']['old']} -> {n['transition']['new']}",
                      f"{n['method']} ({n['kind']})", f"[{style}]{n['status']}[/{style}]",
                      f"{n['attempts']}/{n['max_attempts']}", n["last_result"] or "-", (when or "-")[:19])
    print_table(table)
    return EXIT_OK


def _one(args: argparse.Namespace) -> int:
    n = request(args, "GET", f"/api/v1/notifications/{args.id}")
    if args.json:
        return print_json(n)
    dims = ", ".join(f"{k}={v}" for k, v in sorted(n["dimensions"].items()))
    t = n["transition"]
    out.print(f"notification {n['id']} ({n['uid']}): alarm {n['alarm']}{' {' + dims + '}' if dims else ''} "
              f"{t['old']} -> {t['new']} at {t['at'][:19]} UTC, via {n['method']} ({n['kind']}, {n['target']}): "
              f"{n['status']}, {n['attempts']}/{n['max_attempts']} attempt(s)", highlight=False)
    if n["status"] == "pending":
        out.print(f"next attempt at {n['next_attempt_at'][:19]} UTC", highlight=False)
    table = Table(title="attempts")
    for col in ("#", "at (UTC)", "replica", "result", "detail", "ms"):
        table.add_column(col, overflow="fold")
    for a in n["attempt_history"]:
        style = "green" if a["ok"] else "red"
        table.add_row(str(a["attempt"]), a["at"][:19], a["replica"], f"[{style}]{a['status']}[/{style}]",
                      a["detail"], str(a["duration_ms"]))
    if n["attempt_history"]:
        print_table(table)
    return EXIT_OK
