"""``alertscaler alarms`` (every alarm with its state: ``GET /api/v1/alarms``) and ``alertscaler alarms NAME`` (its
state per dimension set and its transitions, newest first: ``GET /api/v1/alarms/NAME/history``). States are
named as the alarm's own system names them (Aodh: ok / alarm / insufficient data; Monasca: OK / ALARM /
UNDETERMINED). Called by ``cli.parsing`` (``add_parser``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.table import Table

from alertscaler.cli.common import EXIT_NO, EXIT_OK, out, print_json
from alertscaler.cli.remote import request
from alertscaler.cli.tables import print_table

_STYLE = {"alarm": "red", "insufficient_data": "yellow", "ok": "green"}


def _state(state: str, text: str) -> str:
    return f"[{_STYLE.get(state, 'white')}]{escape(text)}[/]"


def _dims(dimensions: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(dimensions.items())) or "-"


def alarms(args: argparse.Namespace) -> int:
    params = {"state": args.state} if args.state else None
    data: list[dict[str, Any]] = request(args, "GET", "/api/v1/alarms", params=params)
    if args.name:
        return _one(args, data)
    if args.json:
        return print_json(data)
    table = Table(title="alarms")
    for col in ("alarm", "kind", "severity", "state", "since", "condition", "actions on alarm"):
        table.add_column(col, overflow="fold")
    for a in data:
        since = max((s["since"] or "" for s in a["states"]), default="")
        shown = a["shown"] if a["enabled"] else f"{a['shown']} (disabled)"
        sets = len(a["states"])
        if a["match_by"]:
            shown += f" ({sets} set{'s' if sets != 1 else ''} of {','.join(a['match_by'])})"
        table.add_row(escape(a["name"]), a["style"], a["severity"], _state(a["state"], shown), since[:19],
                      escape(a["condition"]), escape(", ".join(a["actions"]["alarm"]) or "-"))
    print_table(table)
    return EXIT_OK


def _one(args: argparse.Namespace, listed: list[dict[str, Any]]) -> int:
    alarm = next((a for a in listed if a["name"] == args.name), None)
    history: list[dict[str, Any]] = request(args, "GET", f"/api/v1/alarms/{args.name}/history",
                                            params={"limit": args.limit})
    if alarm is None:  # filtered out by --state
        if args.json:
            print_json({"alarm": None, "history": history})
        else:
            out.print(f"{args.name} is not in state {args.state}", highlight=False, markup=False)
        return EXIT_NO
    if args.json:
        return print_json({"alarm": alarm, "history": history})
    out.print(f"{escape(alarm['name'])} ({alarm['style']}, severity {alarm['severity']}): "
              f"{escape(alarm['condition'])}", highlight=False)
    if alarm["description"]:
        out.print(escape(alarm["description"]), highlight=False)
    states = Table(title="state per dimension set" if alarm["match_by"] else "state")
    for col in ("dimensions", "state", "since", "updated", "reason"):
        states.add_column(col, overflow="fold")
    for s in alarm["states"]:
        states.add_row(escape(_dims(s["dimensions"])), _state(s["state"], s["shown"]), (s["since"] or "")[:19],
                       (s["updated_at"] or "")[:19], escape(s["reason"]))
    print_table(states)
    table = Table(title="transitions (newest first)")
    for col in ("at", "dimensions", "from", "to", "actions", "reason"):
        table.add_column(col, overflow="fold")
    for t in history:
        table.add_row(t["at"][:19], escape(_dims(t["dimensions"])), _state(t["old"], t["old_shown"]),
                      _state(t["new"], t["new_shown"]), escape(", ".join(t["actions"]) or "-"), escape(t["reason"]))
    print_table(table)
    return EXIT_OK


def add_parser(sub: Any, client_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``alarms`` command, its options and --help."""
    p = sub.add_parser(
        "alarms", help="alarms (Aodh / Monasca style) with their state; NAME: its states and transitions",
        description="List the alarms of the policy file's alarms section with their state, derived from the "
                    "alerts of their generated rules: ALARM while the condition's alert fires, OK once it resolves, "
                    "INSUFFICIENT_DATA (Monasca: UNDETERMINED) while its missing-data alert fires. With NAME: the "
                    "alarm's state per match_by dimension set and its transitions, newest first, with the actions "
                    "due on each.",
        epilog="Examples: alertscaler alarms; alertscaler alarms --state alarm; alertscaler alarms cpu_high "
               "--limit 50. Exit codes: 0 ok; 1 NAME is not in --state; 3 the service cannot be reached.")
    client_args(p)
    p.add_argument("name", nargs="?", metavar="NAME", help="one alarm: its states and history")
    p.add_argument("--state", metavar="STATE",
                   help="only alarms in this state: ok, alarm, insufficient_data (or insufficient data, UNDETERMINED)")
    p.add_argument("--limit", type=int, default=20, help="transitions shown with NAME (default 20)")
    p.set_defaults(func=alarms)
