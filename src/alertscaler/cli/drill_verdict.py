"""The fire drill's verdict, pure (time passed in): the drill alert's labels, and each hop judged from what
Alertmanager and alertscaler said. ``cli.drilling`` asks them and prints; this module decides what it means.

Hops, in order: ``accepted`` (Alertmanager took ``POST /api/v2/alerts``), ``routed`` (its routing tree sends the
drill to a receiver whose webhook is alertscaler's), ``received`` (alertscaler recorded the webhook: the drill
decision's ``received_at``), ``decided`` (the ``drill`` decision for the group and policy: ``decided_at`` and what
the policy would have done). A drill passes when every hop did; otherwise the first that did not is named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from alertscaler.alertmanager.client import AmAlert
from alertscaler.alertmanager.routes import AmRoute
from alertscaler.model.drills import DRILL_LABEL
from alertscaler.model.durations import format_duration
from alertscaler.model.matchers import Matcher, Op

HOPS = ("accepted", "routed", "received", "decided")
TITLES = {"accepted": "Alertmanager accepted", "routed": "Alertmanager routed", "received": "webhook received",
          "decided": "decided"}
DRILL_ALERTNAME = "AlertscalerDrill"  # the alertname a drill gets when the policy's matchers do not name one
_LITERAL = re.compile(r"^[A-Za-z0-9_:\-./ ]+$")


@dataclass(frozen=True)
class Hop:
    """One hop: ``ok`` (None: not reached), seconds since the drill started (``at``), what was seen."""

    name: str
    ok: bool | None = None
    at: float | None = None
    detail: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.name]


@dataclass(frozen=True)
class Report:
    drill: str
    group: str
    policy: str
    labels: Mapping[str, str]
    hops: tuple[Hop, ...] = tuple(Hop(name) for name in HOPS)
    decision: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    resolved: bool = False

    @property
    def passed(self) -> bool:
        return all(h.ok for h in self.hops)

    @property
    def failed(self) -> Hop | None:
        return next((h for h in self.hops if h.ok is False), None)

    def with_hop(self, hop: Hop) -> Report:
        return replace(self, hops=tuple(hop if h.name == hop.name else h for h in self.hops))

    def with_note(self, note: str) -> Report:
        return replace(self, notes=(*self.notes, note))

    def as_json(self) -> dict[str, Any]:
        failed = self.failed
        return {"drill": self.drill, "group": self.group, "policy": self.policy, "labels": dict(self.labels),
                "passed": self.passed, "failed_hop": failed.name if failed else None,
                "hops": [{"name": h.name, "title": h.title, "ok": h.ok, "at_s": h.at, "detail": h.detail}
                         for h in self.hops],
                "decision": dict(self.decision) if self.decision is not None else None,
                "resolved": self.resolved, "notes": list(self.notes)}


# --- the drill alert's labels -------------------------------------------------------------------------------
def drill_labels(matchers: Sequence[str], extra: Mapping[str, str], drill: str, group: str) -> dict[str, str]:
    """Labels that every one of ``matchers`` (the policy's, and the Alertmanager route's alertscaler generates)
    matches, ``extra`` (``--label``) winning, plus ``DRILL_LABEL=drill``. ``ValueError`` names the label no value
    could be found for, or the matcher the labels miss."""
    parsed = [Matcher.parse(m) for m in matchers]
    labels: dict[str, str] = {}
    for name in dict.fromkeys(m.name for m in parsed):
        if name in extra:
            continue
        mine = [m for m in parsed if m.name == name]
        value = next((v for v in _candidates(mine, group) if all(m.matches({name: v}) for m in mine)), None)
        if value is None:
            raise ValueError(f"no value found for label {name!r} that matches "
                             f"{', '.join(str(m) for m in mine)}: give one with --label {name}=VALUE")
        if value:
            labels[name] = value
    labels.update(extra)
    labels[DRILL_LABEL] = drill
    if "alertname" not in labels and all(m.matches({**labels, "alertname": DRILL_ALERTNAME}) for m in parsed):
        labels["alertname"] = DRILL_ALERTNAME
    missed = [str(m) for m in parsed if not m.matches(labels)]
    if missed:
        raise ValueError(f"the drill's labels do not match {', '.join(missed)}")
    return dict(sorted(labels.items()))


def _candidates(matchers: Sequence[Matcher], group: str) -> list[str]:
    """Values to try for one label: the equal matchers' values, a regex's literal alternatives, absent (""),
    then a few plain words."""
    out = [m.value for m in matchers if m.op is Op.EQ]
    for m in matchers:
        if m.op is Op.RE:
            body = m.value[1:-1] if m.value.startswith("(") and m.value.endswith(")") else m.value
            out += [part for part in body.split("|") if _LITERAL.match(part)]
    return [*out, "", group, "drill", "x", "1"]


def selector(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


# --- hop verdicts -------------------------------------------------------------------------------------------
def routed(alert: AmAlert | None, routes: Sequence[AmRoute] | None, to_alertscaler: set[str], unknown: set[str],
           at: float) -> tuple[Hop, AmRoute | None]:
    """The ``routed`` hop from Alertmanager's view of the drill alert (``alert``; None: it does not list it),
    the routes its configuration sends it down (None: the configuration could not be read) and the receivers that
    send to alertscaler (``unknown``: webhooks whose URL cannot be read). Returns the route taken to alertscaler."""
    if alert is None:
        return Hop("routed", False, at, "Alertmanager accepted the drill but does not list it "
                                        f"(GET /api/v2/alerts?filter={DRILL_LABEL}=…)"), None
    if alert.suppressed:
        return Hop("routed", False, at, f"Alertmanager holds the drill {alert.why_suppressed}: it sends no "
                                        "notification, and would not for the real alert either"), None
    receivers = list(alert.receivers)
    if routes is None:  # Alertmanager's configuration unreadable: its receivers are all we know
        return Hop("routed", True, at, f"to receiver {_names(receivers)} (Alertmanager's configuration could not "
                                       "be read: not checked that it sends to alertscaler)"), None
    ours = [r for r in receivers if r in to_alertscaler]
    maybe = [r for r in receivers if r in unknown]
    chosen = next(iter(ours or maybe), None)
    route = next((r for r in routes if r.receiver == chosen), None)
    if chosen is None:
        taken = "; ".join(r.describe() for r in routes) or "no route"
        target = (f"alertscaler's webhook is in receiver {_names(sorted(to_alertscaler))}" if to_alertscaler
                  else "no receiver posts to alertscaler's /api/v1/alerts")
        return Hop("routed", False, at, f"Alertmanager routed the drill to receiver {_names(receivers)}, which "
                                        f"does not send to alertscaler ({taken}); {target}"), None
    how = route.describe() if route is not None else f"receiver {chosen!r}"
    note = "" if ours else " (its webhook URL cannot be read: assumed to be alertscaler's)"
    return Hop("routed", True, at, f"to receiver {chosen!r}{note}: {how}"), route


def found(decisions: Sequence[Mapping[str, Any]], drill: str, group: str,
          policy: str) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """Among ``decisions`` (the API's, any order), the drill's decision for (group, policy) of its firing alert
    (the first), and its other decisions (another group or policy, or none matched)."""
    mine = sorted((d for d in decisions if d.get("reason") == "drill" and _carries(d, drill)),
                  key=lambda d: int(d.get("id") or 0))
    hit = next((d for d in mine if d.get("group") == group and d.get("policy") == policy
                and d.get("to_capacity") is not None), None)
    return hit, [d for d in mine if d.get("group") != group or d.get("policy") != policy]


def decided(decision: Mapping[str, Any], start: datetime) -> tuple[Hop, Hop]:
    """The ``received`` and ``decided`` hops of the drill's decision, timed from ``start`` (the drill's clock;
    the service's clock may differ a little)."""
    received = _time(decision.get("received_at"))
    at = _time(decision.get("decided_at"))
    note = f"notification {decision.get('notification_id')}"
    return (Hop("received", True, _since(received, start), note),
            Hop("decided", True, _since(at, start),
                f"{decision.get('message', '')} (decision {decision.get('id')}, "
                f"{decision.get('from_capacity')} -> {decision.get('to_capacity')})"))


def elsewhere(others: Sequence[Mapping[str, Any]], group: str, policy: str, start: datetime) -> tuple[Hop, Hop]:
    """alertscaler received the drill but decided it only for other (group, policy)s, or for none."""
    first = others[0]
    where = ", ".join(sorted({f"{d.get('group') or 'no group'}"
                              f"{' ' + str(d['policy']) if d.get('policy') else ''}" for d in others}))
    return (Hop("received", True, _since(_time(first.get("received_at")), start),
                f"notification {first.get('notification_id')}"),
            Hop("decided", False, _since(_time(first.get("decided_at")), start),
                f"alertscaler decided the drill for {where}, not {group} {policy}: {first.get('message', '')} "
                "(does the running service load the same policy file?)"))


def never_received(waited: float, route: AmRoute | None, joined: bool, margin: float,
                   failures: float | None) -> Hop:
    """The ``received`` hop when no decision came within ``waited`` seconds: what was waited for, and why it may
    be (``failures``: Alertmanager's failed webhook notifications meanwhile; None: unknown)."""
    if route is None:
        timing = f"{format_duration(waited)}"
    elif joined:
        timing = (f"{format_duration(waited)}: the drill joined an Alertmanager group that already had alerts, "
                  f"so it goes with the group's next flush (group_interval {format_duration(route.group_interval)}"
                  f" + {format_duration(margin)} margin)")
    else:
        timing = (f"{format_duration(waited)} (group_wait {format_duration(route.group_wait)} "
                  f"+ {format_duration(margin)} margin)")
    why = ""
    if failures:
        why = (f"; Alertmanager's webhook requests failed {failures:g} time(s) meanwhile (its log says why: "
               "\"Notify attempt failed\")")
    return Hop("received", False, waited,
               f"webhook never received within {timing}: check the receiver's url, its credentials (auth) and the "
               f"network between Alertmanager and alertscaler{why}")


def webhook_failures(metrics: str) -> float | None:
    """Alertmanager's failed webhook attempts: ``alertmanager_notification_requests_failed_total{integration=
    "webhook"}`` (each attempt; else ``alertmanager_notifications_failed_total``, after the retries), summed over
    its series; None when neither is there."""
    for name in ("alertmanager_notification_requests_failed_total", "alertmanager_notifications_failed_total"):
        total, seen = 0.0, False
        for line in metrics.splitlines():
            if line.startswith(name + "{") and 'integration="webhook"' in line:
                try:
                    total += float(line.rsplit(" ", 1)[1])
                    seen = True
                except (IndexError, ValueError):
                    continue
        if seen:
            return total
    return None


def _carries(decision: Mapping[str, Any], drill: str) -> bool:
    return any(isinstance(a, dict) and (a.get("labels") or {}).get(DRILL_LABEL) == drill
               for a in decision.get("alerts") or ())


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "(none)"


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _since(when: datetime | None, start: datetime) -> float | None:
    return None if when is None else round((when - start).total_seconds(), 3)

