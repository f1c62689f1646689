"""``alertscaler alerts [GROUP]`` (what alertscaler believes firing: ``GET /api/v1/alerts/active``) and
``alertscaler alerts clear GROUP FINGERPRINT`` (end one by hand, authenticated and recorded as a ``cleared``
decision: ``POST /api/v1/groups/GROUP/alerts/FINGERPRINT/clear``). Called by ``cli.parsing``."""

from __future__ import annotations

import argparse

from rich.table import Table

from alertscaler.cli.common import EXIT_OK, EXIT_USAGE, CliError, out, print_json
from alertscaler.cli.remote import request
from alertscaler.cli.tables import print_table


def alerts(args: argparse.Namespace) -> int:
    words: list[str] = list(args.words)
    if words and words[0] == "clear":
        if len(words) != 3:
            raise CliError("usage: alertscaler alerts clear GROUP FINGERPRINT", EXIT_USAGE)
        _, group, fingerprint = words
        data = request(args, "POST", f"/api/v1/groups/{group}/alerts/{fingerprint}/clear", body={})
        if args.json:
            return print_json(data)
        out.print(f"cleared {fingerprint} of {group} (decision {', '.join(map(str, data['decision_ids']))}): "
                  "no longer believed firing; a new notification makes it fire again", highlight=False)
        return EXIT_OK
    if len(words) > 1:
        raise CliError("usage: alertscaler alerts [GROUP] | alertscaler alerts clear GROUP FINGERPRINT", EXIT_USAGE)
    data = request(args, "GET", "/api/v1/alerts/active", params={"group": words[0]} if words else None)
    if args.json:
        return print_json(data)
    table = Table(title="alerts alertscaler believes firing")
    for col in ("group", "policy", "fingerprint", "alertname", "since", "last seen", "last reason"):
        table.add_column(col, overflow="fold")
    for a in data:
        table.add_row(a["group"], a["policy"], a["fingerprint"], a["labels"].get("alertname", ""),
                      (a["starts_at"] or "")[:19], (a["last_seen_at"] or "")[:19], a["last_reason"] or "")
    print_table(table)
    return EXIT_OK
