"""``alertscaler drill GROUP [POLICY]``: a fire drill through the real Alertmanager.

Posts a synthetic alert — the policy's matcher labels plus ``alertscaler_drill="<random id>"`` — to Alertmanager
(``POST /api/v2/alerts``), so its routes and receivers are exercised; reads which receivers Alertmanager routes it
to (``GET /api/v2/alerts?filter=…``) and whether one of them posts to alertscaler (``GET /api/v2/status``: its
running configuration); then polls the running service (``GET /api/v1/decisions?reason=drill``) for the drill's
decision. Prints each hop's time since the start, or names the hop that failed and why (``cli.drill_verdict``
judges). The drill alert is resolved at the end (posted again with ``endsAt`` now; it also ends by itself).

A drill never changes capacity: the service decides drill alerts apart (``act.drills``) and records only a
``drill`` decision. Exit codes: 0 passed, 1 a hop failed (named), 2 usage or configuration error, 3 the service's
API cannot be reached. Called by ``cli.parsing``.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.markup import escape

from alertscaler.alertmanager.client import AlertmanagerClient, AmAlert
from alertscaler.alertmanager.routes import AmConfig, AmRoute, parse_config
from alertscaler.cli import drill_verdict as verdict
from alertscaler.cli.common import EXIT_NO, EXIT_OK, EXIT_USAGE, CliError, load, out, print_json, print_problems
from alertscaler.cli.remote import request
from alertscaler.config import PolicyFile
from alertscaler.model.drills import DRILL_LABEL
from alertscaler.model.errors import AlertmanagerError, ConfigError, InputError
from alertscaler.model.policies import Direction

MARGIN = 15.0          # seconds waited beyond Alertmanager's group_wait / group_interval (delivery, retries)
LISTED_WITHIN = 5.0    # seconds Alertmanager has to list an alert it accepted
POLL = 0.5             # seconds between two questions
LOOKBACK = timedelta(minutes=10)  # decisions read from this long before the start (clocks may differ)


def drill(args: argparse.Namespace) -> int:
    try:
        policy = load(args.config)
    except ConfigError as exc:
        print_problems(exc)
        return EXIT_USAGE
    group, direction = _target(policy, args.group, args.policy)
    config = policy.groups[group]
    step = config.scale_out if direction is Direction.SCALE_OUT else config.scale_in
    assert step is not None
    drill_id = secrets.token_hex(4)
    extra = _extra_labels(args.label or [])
    try:
        labels = verdict.drill_labels([*step.matchers, *policy.alertmanager.matchers], extra, drill_id, group)
    except ValueError as exc:
        raise CliError(f"{group} {direction.value}: {exc}", EXIT_USAGE) from None
    try:
        client = AlertmanagerClient.from_config(policy.alertmanager, url=args.alertmanager)
    except InputError as exc:
        hint = " (give --alertmanager URL)" if policy.alertmanager.url is None and not args.alertmanager else ""
        raise CliError(f"Alertmanager: {exc}{hint}", EXIT_USAGE) from None
    try:
        request(args, "GET", f"/api/v1/groups/{group}")  # the service answers, with these credentials
    except CliError as exc:
        if exc.code == EXIT_NO:
            raise CliError(f"alertscaler's API: {exc}", EXIT_USAGE) from None
        raise
    with client:
        report = Drill(client, lambda params: request(args, "GET", "/api/v1/decisions", params=dict(params)),
                       verdict.Report(drill_id, group, direction.value, labels), args.timeout,
                       max(policy.alertmanager.group_wait, policy.alertmanager.group_interval)).run()
    if args.json:
        print_json(report.as_json())
    else:
        show(report)
    return EXIT_OK if report.passed else EXIT_NO


def _target(policy: PolicyFile, group: str, name: str | None) -> tuple[str, Direction]:
    if group not in policy.groups:
        raise CliError(f"no group {group!r} in the policy file (groups: {', '.join(policy.groups) or 'none'})",
                       EXIT_USAGE)
    have = [d for d, _ in policy.groups[group].policies()]
    if name is None:
        if not have:
            raise CliError(f"group {group!r} has no step policy (scale_out / scale_in): no alert scales it, "
                           "nothing to drill", EXIT_USAGE)
        return group, have[0]
    wanted = next((d for d in Direction if d.value == name), None)
    if wanted is None or wanted not in have:
        raise CliError(f"group {group!r} has no policy {name!r} (it has: {', '.join(d.value for d in have) or 'none'}"
                       "; a drill exercises scale_out and scale_in)", EXIT_USAGE)
    return group, wanted


def _extra_labels(items: list[str]) -> dict[str, str]:
    extra = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or name == DRILL_LABEL:
            raise CliError(f"--label {item!r}: give NAME=VALUE (not {DRILL_LABEL})", EXIT_USAGE)
        extra[name] = value
    return extra


@dataclass
class Drill:
    """One drill: ``am`` (Alertmanager), ``decisions`` (``GET /api/v1/decisions`` with query parameters),
    ``report`` (the drill's id, target and labels), ``timeout`` (None: Alertmanager's wait + ``MARGIN``); the
    clock and sleep are passed in."""

    am: AlertmanagerClient
    decisions: Callable[[Mapping[str, Any]], Any]
    report: verdict.Report
    timeout: float | None = None
    fallback_wait: float = 60.0  # when Alertmanager's configuration cannot be read: the policy file's timing
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> verdict.Report:
        config, why = self._config()
        if why:
            self.report = self.report.with_note(why)
        start = self.clock()
        alert: dict[str, Any] = {
            "labels": dict(self.report.labels),
            "annotations": {"summary": f"alertscaler fire drill {self.report.drill} ({self.report.group} "
                                       f"{self.report.policy}): changes nothing"},
            "startsAt": start.isoformat(),
            "endsAt": (start + timedelta(seconds=max(600.0, (self.timeout or 0) + 120))).isoformat(),
            "generatorURL": "",
        }
        try:
            self.am.post_alerts([alert])
        except AlertmanagerError as exc:
            self.report = self.report.with_hop(verdict.Hop("accepted", False, self._since(start), str(exc)))
            return self.report
        self.report = self.report.with_hop(verdict.Hop("accepted", True, self._since(start),
                                                       "POST /api/v2/alerts: 200"))
        try:
            self._after_accepted(start, config)
        finally:
            self._resolve(alert)
        return self.report

    def _after_accepted(self, start: datetime, config: AmConfig | None) -> None:
        seen = self._listed()
        routes = config.route(self.report.labels) if config is not None else None
        sure, unknown = config.to_alertscaler() if config is not None else (set(), set())
        hop, route = verdict.routed(seen, routes, sure, unknown, self._since(start))
        self.report = self.report.with_hop(hop)
        if not hop.ok:
            return
        joined = self._joined(route) if route is not None else False
        wait = (route.group_interval if joined else route.group_wait) if route is not None else None
        timeout = self.timeout or (wait if wait is not None else self.fallback_wait) + MARGIN
        failures = self._failures()
        deadline = start + timedelta(seconds=(hop.at or 0) + timeout)
        params = {"reason": "drill", "since": (start - LOOKBACK).isoformat(), "limit": 1000}
        while True:
            hit, others = verdict.found(self.decisions(params), self.report.drill, self.report.group,
                                        self.report.policy)
            if hit is not None:
                received, decided = verdict.decided(hit, start)
                self.report = self.report.with_hop(received).with_hop(decided)
                self.report = replace(self.report, decision=dict(hit))
                return
            if self.clock() >= deadline:
                break
            self.sleep(POLL)
        if others:
            received, decided = verdict.elsewhere(others, self.report.group, self.report.policy, start)
            self.report = self.report.with_hop(received).with_hop(decided)
            return
        after = self._failures()
        more = after - failures if after is not None and failures is not None else None
        self.report = self.report.with_hop(verdict.never_received(timeout, route if self.timeout is None else None,
                                                                  joined, MARGIN, more))

    def _config(self) -> tuple[AmConfig | None, str]:
        try:
            return parse_config(self.am.config_text()), ""
        except (AlertmanagerError, InputError) as exc:
            return None, f"Alertmanager's configuration could not be read ({exc}): routing not checked"

    def _listed(self) -> AmAlert | None:
        """The drill alert as Alertmanager lists it (its receivers, its state); None if it does not."""
        until = self.clock() + timedelta(seconds=LISTED_WITHIN)
        while True:
            try:
                found = self.am.alerts([f'{DRILL_LABEL}="{self.report.drill}"'])
            except AlertmanagerError:
                found = []
            if found or self.clock() >= until:
                return found[0] if found else None
            self.sleep(POLL / 5)

    def _joined(self, route: AmRoute) -> bool:
        """Did the drill join an Alertmanager group that already had other alerts (it then waits for the group's
        next flush, group_interval, instead of group_wait)?"""
        if not route.group_by or "..." in route.group_by:
            return False
        filters = [f'{name}="{self.report.labels.get(name, "")}"' for name in route.group_by]
        try:
            alerts = self.am.alerts(filters)
        except AlertmanagerError:
            return False
        return any(route.receiver in a.receivers and a.labels.get(DRILL_LABEL) != self.report.drill for a in alerts)

    def _failures(self) -> float | None:
        try:
            return verdict.webhook_failures(self.am.metrics_text())
        except AlertmanagerError:
            return None

    def _resolve(self, alert: dict[str, Any]) -> None:
        try:
            self.am.post_alerts([{**alert, "endsAt": self.clock().isoformat()}])
            self.report = replace(self.report, resolved=True)
        except AlertmanagerError as exc:
            self.report = self.report.with_note(f"the drill alert could not be resolved ({exc}); it ends by itself "
                                                f"at {alert['endsAt'][:19]} UTC")

    def _since(self, start: datetime) -> float:
        return round((self.clock() - start).total_seconds(), 3)


def show(report: verdict.Report) -> None:
    out.print(f"fire drill {report.drill}: group {report.group}, policy {report.policy}, alert "
              f"{escape(verdict.selector(report.labels))}", highlight=False)
    for hop in report.hops:
        mark = {True: "[green]ok  [/green]", False: "[red]FAIL[/red]", None: "[dim]--  [/dim]"}[hop.ok]
        at = f"+{hop.at:.3f}s" if hop.at is not None else ""
        out.print(f"  {mark} {hop.title:<22} {at:>10}  {escape(hop.detail)}", highlight=False)
    for note in report.notes:
        out.print(f"  note: {escape(note)}", highlight=False)
    failed = report.failed
    if failed is not None:
        out.print(f"[red]drill FAILED[/red] at hop '{failed.title}'", highlight=False)
    elif report.passed and report.decision is not None:
        out.print(f"[green]drill passed[/green]: a real alert like this reaches {report.group} {report.policy} "
                  f"in {max(report.hops[-1].at or 0, 0):.1f}s; nothing was changed", highlight=False)
    if not report.resolved and report.hops[0].ok:
        out.print("the drill alert was not resolved: see the note above", highlight=False)
