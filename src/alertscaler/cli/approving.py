"""``alertscaler approvals [GROUP] [--all]`` (the changes that wait for an operator's approval:
``GET /api/v1/approvals``), ``alertscaler approve ID`` and ``alertscaler reject ID`` (authenticated, recorded as an
``approved`` / ``rejected`` decision: ``POST /api/v1/approvals/ID/approve|reject``). Called by ``cli.parsing``."""

from __future__ import annotations

import argparse
import getpass

from rich.table import Table

from alertscaler.cli.common import EXIT_OK, out, print_json
from alertscaler.cli.remote import request
from alertscaler.cli.tables import print_table


def approval_id(text: str) -> int:
    """An approval's id on the command line: the id of its ``pending_approval`` decision."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an approval's id (a positive integer: alertscaler "
                                         "approvals lists them)")
    return int(text)


def default_by() -> str:
    """Who approves when ``--by`` is not given: the local user's name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an operator (CLI)"


def approvals(args: argparse.Namespace) -> int:
    params: dict[str, str | int] = {"limit": args.limit}
    if args.group:
        params["group"] = args.group
    if args.all:
        params["all"] = "true"
    data = request(args, "GET", "/api/v1/approvals", params=params)
    if args.json:
        return print_json(data)
    if not data:
        out.print("no change waits for approval" + (f" in {args.group}" if args.group else ""), highlight=False)
        return EXIT_OK
    table = Table(title="approvals (newest first)" if args.all else "changes waiting for approval (newest first)")
    for col in ("id", "group", "change", "state", "why", "expires (UTC)", "policy", "ended by"):
        table.add_column(col, overflow="fold")
    for a in data:
        style = "yellow" if a["state"] == "pending" else "green" if a["state"] == "approved" else "dim"
        table.add_row(str(a["id"]), a["group"], a["what"], f"[{style}]{a['state']}[/{style}]", a["why"],
                      a["expires_at"][:19], a["policy"] or "-", a.get("resolved_by") or "")
    print_table(table)
    if any(a["state"] == "pending" for a in data):
        out.print("alertscaler approve ID carries a change out; alertscaler reject ID drops it", highlight=False)
    return EXIT_OK


def approve(args: argparse.Namespace) -> int:
    return _decide(args, "approve")


def reject(args: argparse.Namespace) -> int:
    return _decide(args, "reject")


def _decide(args: argparse.Namespace, verb: str) -> int:
    data = request(args, "POST", f"/api/v1/approvals/{args.id}/{verb}", body={"by": args.by})
    if args.json:
        return print_json(data)
    a = data["approval"]
    if verb == "approve":
        action = f", action {data['action_id']}" if data.get("action_id") is not None else ""
        out.print(f"approved {a['id']}: {a['what']} of {a['group']} (decision {data['decision_id']}: "
                  f"{data['outcome']}, {data['reason']}{action})", highlight=False)
    else:
        out.print(f"rejected {a['id']}: {a['what']} of {a['group']} is not carried out (decision "
                  f"{data['decision_id']})", highlight=False)
    return EXIT_OK
