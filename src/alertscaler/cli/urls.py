"""``alertscaler url``: signed URLs, through the running service's API (``api.signals``) — ``url create GROUP
POLICY`` / ``url create --input aodh|monasca`` (prints the URL, once), ``url list``, ``url revoke ID``, ``url keys``
and ``url rotate-key [--retire-old]``. The parser is added by ``cli.parsing`` (``add_parsers``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.table import Table

from alertscaler.cli.common import (
    DEFAULT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    duration_arg,
    err,
    out,
    output_args,
    print_json,
)
from alertscaler.cli.remote import request
from alertscaler.cli.tables import print_table


def add_parsers(sub: Any) -> None:
    """The ``url`` command and its subcommands on ``sub`` (argparse's subparsers)."""
    u = sub.add_parser(
        "url", help="signed URLs: like Heat's alarm_url, a URL any tool can POST to without a token",
        description="Signed per-policy URLs. A POST to one acts like the policy's alert firing (one step; cooldowns, "
                    "bounds, pauses and approvals apply), with no token: the URL's HMAC-SHA256 signature (over POST, "
                    "its path and its expiry) is the credential. Tampered, expired, revoked or retired-key URLs are "
                    "refused (403) and the refusal is recorded. Give one to Aodh's alarm_actions, a Monasca "
                    "notification method, a script or curl.",
        epilog="Examples: alertscaler url create web scale_out --expires 30d; alertscaler url create --input aodh; "
               "alertscaler url list; alertscaler url revoke 3f2a9c1d0b4e5a6f; alertscaler url rotate-key. "
               "Exit codes: 0 ok, 1 refused, 2 usage, 3 service unreachable.")
    cmds = u.add_subparsers(title="url commands", metavar="COMMAND")

    def client(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--config", default=os.environ.get("ALERTSCALER_CONFIG", DEFAULT_CONFIG),
                        help="policy file (default: $ALERTSCALER_CONFIG or ./alertscaler.yml)")
        sp.add_argument("--url", help="service URL (default: from the policy file's server section)")
        output_args(sp, "text")

    c = cmds.add_parser(
        "create", help="hand out a signed URL for GROUP's POLICY (or --input aodh|monasca); printed once",
        description="Print a new signed URL on stdout (the only time it is shown in full; only its id is kept "
                    "with a key id, expiry and note, never the signature). Anyone holding it can trigger the "
                    "policy until it expires or is revoked: treat it as a secret. The URL's host is the policy "
                    "file's server.public_url (else the address this command reached).")
    client(c)
    c.add_argument("group", nargs="?", help="the group")
    c.add_argument("policy", nargs="?", choices=["scale_out", "scale_in"], help="its step policy")
    c.add_argument("--input", choices=["aodh", "monasca"],
                   help="a URL for an alarm service's notifications instead, mapped by the policy file's inputs")
    c.add_argument("--expires", type=_duration, metavar="DURATION",
                   help="lifetime: 30d, 12h (default inputs.signed_urls.default_expires, 30d; at most max_expires)")
    c.add_argument("--note", default="", help="what it is for (shown by url list)")
    c.set_defaults(func=create)

    ls = cmds.add_parser("list", help="the signed URLs handed out (signatures cut short), newest first")
    client(ls)
    ls.add_argument("--group", help="one group's only")
    ls.set_defaults(func=list_urls)

    rv = cmds.add_parser("revoke", help="revoke a signed URL: refused (403) from now on")
    client(rv)
    rv.add_argument("id", help="the URL's id (url list)")
    rv.set_defaults(func=revoke)

    ks = cmds.add_parser("keys", help="the signing keys' ids (never a key)")
    client(ks)
    ks.set_defaults(func=keys)

    rk = cmds.add_parser(
        "rotate-key", help="sign new URLs with a new key; older URLs stay valid unless --retire-old",
        description="Start signing new URLs with a new key (derived from the signing secret and a new key id). "
                    "URLs signed with the older keys stay valid until they expire, unless --retire-old: then they "
                    "are refused from now on (hand out new ones). To invalidate every URL at once, change the "
                    "signing secret (inputs.signed_urls.secret_file) instead.")
    client(rk)
    rk.add_argument("--retire-old", action="store_true", help="refuse the URLs signed with older keys from now on")
    rk.set_defaults(func=rotate_key)
    u.set_defaults(func=lambda args: _usage(u))


def _duration(text: str) -> str:
    if duration_arg(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0s, got {text!r}")
    return text


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def create(args: argparse.Namespace) -> int:
    if args.input:
        if args.group or args.policy:
            raise CliError("url create: give GROUP POLICY, or --input aodh|monasca, not both", EXIT_USAGE)
        body: dict[str, Any] = {"input": args.input}
    else:
        if not args.group or not args.policy:
            raise CliError("url create: name a GROUP and its POLICY (scale_out | scale_in), or --input aodh|monasca",
                           EXIT_USAGE)
        body = {"group": args.group, "policy": args.policy}
    if args.expires:
        body["expires"] = args.expires
    if args.note:
        body["note"] = args.note
    data = request(args, "POST", "/api/v1/urls", body=body)
    if args.json:
        return print_json(data)
    print(data["url"])
    what = f"{data['group']}'s {data['policy']}" if data["target"] == "policy" else f"the {data['target']} input"
    err.print(f"signed URL {data['id']} for {what}, expires {data['expires_at'][:19]} UTC (key {data['key_id']}): "
              "anyone holding it can POST to it without a token; it is shown only now. "
              f"Revoke it with: alertscaler url revoke {data['id']}", highlight=False, markup=False)
    return EXIT_OK


def list_urls(args: argparse.Namespace) -> int:
    data = request(args, "GET", "/api/v1/urls", params={"group": args.group} if args.group else None)
    if args.json:
        return print_json(data)
    table = Table(title="signed URLs (newest first; signatures cut short)")
    for col in ("id", "target", "state", "expires", "uses", "last used", "key", "note", "url"):
        table.add_column(col, overflow="fold")
    styles = {"active": "green", "expired": "yellow", "revoked": "red", "key_retired": "red"}
    for u in data:
        target = f"{u['group']}/{u['policy']}" if u["target"] == "policy" else f"{u['target']} input"
        style = styles.get(u["state"], "white")
        table.add_row(u["id"], target, f"[{style}]{u['state']}[/{style}]", u["expires_at"][:19], str(u["uses"]),
                      (u["last_used_at"] or "")[:19], u["key_id"], u["note"], u["url"])
    print_table(table)
    return EXIT_OK


def revoke(args: argparse.Namespace) -> int:
    data = request(args, "POST", f"/api/v1/urls/{args.id}/revoke", body={})
    if args.json:
        return print_json(data)
    out.print(f"revoked {data['id']} at {data['revoked_at'][:19]} UTC: it is refused (403) from now on",
              highlight=False)
    return EXIT_OK


def keys(args: argparse.Namespace) -> int:
    data = request(args, "GET", "/api/v1/urls/keys")
    if args.json:
        return print_json(data)
    table = Table(title="URL signing keys (ids only; the newest not retired signs new URLs)")
    for col in ("key", "created", "retired"):
        table.add_column(col)
    for k in data:
        table.add_row(k["kid"], k["created_at"][:19], (k["retired_at"] or "")[:19])
    print_table(table)
    return EXIT_OK


def rotate_key(args: argparse.Namespace) -> int:
    data = request(args, "POST", "/api/v1/urls/keys/rotate", body={"retire_old": args.retire_old})
    if args.json:
        return print_json(data)
    out.print(f"new URLs are signed with key {data['key']['kid']}", highlight=False)
    if data["retired"]:
        out.print(f"retired {', '.join(data['retired'])}: the URLs they signed are refused from now on",
                  highlight=False)
    else:
        out.print("URLs signed with older keys stay valid until they expire (--retire-old refuses them)",
                  highlight=False)
    return EXIT_OK
