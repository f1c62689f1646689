"""Commands that talk to a running service over its HTTP API: ``status``, ``decisions``, ``scale``, ``pause``,
``resume``, ``reload`` (the service's URL and credentials from ``--url``, ``ALERTSCALER_TOKEN`` or the policy
file)."""

from __future__ import annotations

import argparse
import os
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table

from alertscaler.cli.common import (
    EXIT_NO,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    err,
    out,
    print_json,
    print_problems,
)
from alertscaler.cli.tables import print_table
from alertscaler.config import load_policy_file
from alertscaler.model.durations import parse_duration
from alertscaler.model.errors import ConfigError


def status(args: argparse.Namespace) -> int:
    if args.group:
        data = request(args, "GET", f"/api/v1/groups/{args.group}")
        if args.json:
            return print_json(data)
        print_groups([data])
        members = Table(title=f"members of {args.group}")
        for col in ("id", "address", "state", "created_at"):
            members.add_column(col)
        for m in data.get("members", []):
            members.add_row(m["id"], m.get("address") or "", m["state"], m.get("created_at") or "")
        print_table(members)
        return EXIT_OK
    data = request(args, "GET", "/api/v1/groups")
    if args.json:
        return print_json(data)
    print_groups(data)
    return EXIT_OK


def decisions(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    for key in ("group", "outcome", "reason"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.since:
        params["since"] = since(args.since)
    data = request(args, "GET", "/api/v1/decisions", params=params)
    if args.json:
        return print_json(data)
    table = Table(title="decisions (newest first)")
    for col in ("id", "time", "group", "policy", "trigger", "outcome", "reason", "from→to", "message"):
        table.add_column(col, overflow="fold")
    for d in data:
        arrow = f"{d['from_capacity']}→{d['to_capacity']}" if d["from_capacity"] is not None else ""
        style = "green" if d["outcome"] == "acted" else "yellow"
        table.add_row(str(d["id"]), (d["decided_at"] or "")[:19], d["group"] or "-", d["policy"] or "-",
                      d["trigger"], f"[{style}]{d['outcome']}[/{style}]", d["reason"], arrow, d["message"])
    print_table(table)
    return EXIT_OK


def scale(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"desired": args.desired}
    if args.hold:
        body["hold"] = args.hold
    data = request(args, "POST", f"/api/v1/groups/{args.group}/scale", body=body)
    if args.json:
        return print_json(data)
    out.print(f"{data['outcome']} ({data['reason']}): {data['message']}", highlight=False)
    if data["reason"] == "paused":
        out.print(f"{args.group} is paused: nothing was executed (alertscaler resume {args.group})", highlight=False)
    elif data.get("held_until"):
        out.print(f"held: policies may not move {args.group} before {data['held_until'][:19]} UTC", highlight=False)
    elif data.get("policies_from"):
        out.print(f"no hold: policies may move {args.group} again from {data['policies_from'][:19]} UTC "
                  f"(scale {args.group} N --hold 30m keeps them off)", highlight=False)
    return EXIT_OK if data["outcome"] == "acted" or data["reason"] == "no_change" else EXIT_NO


def _scope(args: argparse.Namespace, verb: str) -> str:
    if args.all == bool(args.group):
        raise CliError(f"{verb}: name a group, or --all for every group", EXIT_USAGE)
    return "/api/v1" if args.all else f"/api/v1/groups/{args.group}"


def pause(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.duration:
        body["for"] = args.duration
    data = request(args, "POST", f"{_scope(args, 'pause')}/pause", body=body)
    if args.json:
        return print_json(data)
    until = (data["until"] or "")[:19]
    out.print(f"paused {data['group'] or 'every group'} {f'until {until} UTC' if until else 'until resumed'}: "
              "decisions are recorded as paused, nothing is executed", highlight=False)
    return EXIT_OK


def resume(args: argparse.Namespace) -> int:
    data = request(args, "POST", f"{_scope(args, 'resume')}/resume", body={})
    if args.json:
        return print_json(data)
    who = data["group"] or "every group"
    out.print(f"resumed {who}" if data["resumed"] else f"{who} was not paused", highlight=False)
    return EXIT_OK


def reload_policy(args: argparse.Namespace) -> int:
    """``alertscaler reload``: POST /-/reload; what changed, or why the service refused the file (exit 1)."""
    try:
        data = request(args, "POST", "/-/reload", body={}, accept=(422,))
    except ConfigError as exc:  # the file this command reads is the one the service would re-read
        print_problems(exc)
        err.print("not sent: the service would refuse it too, and runs on with its current configuration",
                  highlight=False)
        return EXIT_NO
    if args.json:
        print_json(data)
    elif data.get("status") == "reloaded":
        out.print(f"reloaded: {data.get('message')}", highlight=False, markup=False)
    else:
        err.print(f"[red]refused[/red] ({data.get('reason')}): {escape(str(data.get('error')))}", highlight=False)
        for problem in data.get("problems") or []:
            err.print(f"  {problem.get('path')}: {problem.get('message')}", highlight=False, markup=False)
        err.print("the running configuration stays", highlight=False)
    return EXIT_OK if data.get("status") == "reloaded" else EXIT_NO


def print_groups(groups: list[dict[str, Any]]) -> None:
    table = Table(title="groups")
    for col in ("group", "provider", "min", "desired", "current", "max", "dry run", "paused", "held until",
                "last scale out", "last scale in"):
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
        freeze = (g.get("change_freeze") or {}).get("open")
        if freeze:
            notes.append(f"{g['name']}: CHANGE FREEZE '{freeze['name']}' until {freeze['closes_at'][:19]} UTC"
                         f"{' (' + freeze['reason'] + ')' if freeze['reason'] else ''}: nothing but scale-out runs")
        for a in g.get("pending_approvals") or []:
            notes.append(f"{g['name']}: waits for approval {a['id']}: {a['what']} ({a['why']}) until "
                         f"{a['expires_at'][:19]} UTC: alertscaler approve {a['id']}")
        predicted = g.get("predict")
        if predicted:
            notes.append(f"{g['name']}: {_forecast_note(predicted)}")
        paused = g.get("paused")
        if paused:
            notes.append(f"{g['name']}: PAUSED{' (every group)' if paused['group'] is None else ''} "
                         f"{'until ' + paused['until'][:19] + ' UTC' if paused['until'] else 'until resumed'}"
                         f"{': ' + paused['reason'] if paused['reason'] else ''}")
        table.add_row(g["name"], g["provider"], low, str(g["desired"]), current,
                      high, "yes" if g["dry_run"] else "", "[red]yes[/red]" if paused else "",
                      (g.get("held_until") or "")[:19], (g["last_scale_out_at"] or "")[:19],
                      (g["last_scale_in_at"] or "")[:19])
    print_table(table)
    for note in notes:
        out.print(note)


def _forecast_note(predicted: dict[str, Any]) -> str:
    """One line on a predict group's forecast: what it says, whether it is used, or why there is none."""
    f = predicted.get("forecast")
    problem = predicted.get("problem")
    if f is None:
        return f"no forecast: {problem}"
    band = f"{f.get('band', 0.8) * 100:.0f} % band {f['lower']:.4g}..{f['upper']:.4g}"
    if f["quantile"] != 0.5:
        band += f", planned for its {f['quantile']:g} quantile {f['planned']:.4g}"
    seasons = ", ".join(_season(s) for s in f["seasons_s"]) or "no season learned yet"
    used = ("applied" if f["applied"] else "forecast_only: not applied" if predicted.get("forecast_only")
            else f"not used (skill {f['skill']:.2f}: no better than the last value)")
    text = (f"forecast {f['mean']:.4g} ({band}) at {f['for'][11:19]} UTC needs {f['desired']}: {used}; "
            f"{f['points']} points, seasons: {seasons}")
    return f"{text}; last read failed: {problem}" if problem else text


def _season(seconds: float) -> str:
    return {86400.0: "daily", 604800.0: "weekly"}.get(float(seconds), f"{seconds:g} s")


def since(text: str) -> str:
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


def request(args: argparse.Namespace, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, accept: tuple[int, ...] = ()) -> Any:
    """The service's JSON answer; an HTTP error raises ``CliError`` unless its status is in ``accept``."""
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
    verify: ssl.SSLContext | bool = True
    if policy is not None and policy.server.tls is not None and url == policy.server.url:
        verify = ssl.create_default_context()  # the policy's own HTTPS listener: its certificate is trusted too
        verify.load_verify_locations(policy.server.tls.cert_file)
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers, auth=auth, verify=verify) as client:
            response = client.request(method, path, params=params, json=body)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach alertscaler at {url}: {exc}", EXIT_UNREACHABLE) from None
    try:
        data = response.json()
    except ValueError:
        data = {"error": response.text}
    if response.status_code >= 400 and response.status_code not in accept:
        message = data.get("error") if isinstance(data, dict) else None
        raise CliError(f"{method} {path}: HTTP {response.status_code}: {message or response.text}")
    return data
