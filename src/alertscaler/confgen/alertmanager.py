"""The Alertmanager side: a webhook receiver for alertscaler, a route to it, and a complete
alertmanager.yml.

Alertmanager 0.25's ``webhook_configs`` has ``max_alerts`` but no ``timeout`` (amtool rejects it), so none
is written. With ``matchers``, only matching alerts reach alertscaler (and the alarms' alerts, by a route of their
own: ``alertscaler_alarm=~".+"``): the complete file then routes everything else to a receiver named ``"null"``
that sends nothing.
"""

from __future__ import annotations

from typing import Any

from alertscaler.confgen.yamltext import dump, header
from alertscaler.config.alarms import RULE_GROUP as ALARM_GROUP
from alertscaler.config.render_input import RenderInput
from alertscaler.model.alarms import ALARM_LABEL
from alertscaler.model.durations import format_duration
from alertscaler.model.matchers import Matcher

NULL_RECEIVER = "null"


def receiver(inp: RenderInput) -> dict[str, Any]:
    am = inp.alertmanager
    webhook: dict[str, Any] = {"url": f"{inp.url}/api/v1/alerts", "send_resolved": am.send_resolved,
                               "max_alerts": am.max_alerts}
    auth = inp.http_auth()
    if auth:
        webhook["http_config"] = auth
    return {"name": am.receiver, "webhook_configs": [webhook]}


def _timing(inp: RenderInput) -> dict[str, Any]:
    am = inp.alertmanager
    return {"group_by": list(am.group_by), "group_wait": format_duration(am.group_wait),
            "group_interval": format_duration(am.group_interval),
            "repeat_interval": format_duration(am.repeat_interval)}


def _matchers(inp: RenderInput) -> list[str]:
    return [str(Matcher.parse(m)) for m in inp.alertmanager.matchers]


def child_route(inp: RenderInput) -> dict[str, Any]:
    """The route to alertscaler, for ``route.routes`` of an existing configuration."""
    route: dict[str, Any] = {"receiver": inp.alertmanager.receiver}
    matchers = _matchers(inp)
    if matchers:
        route["matchers"] = matchers
    route.update(_timing(inp))
    return route


def alarm_route(inp: RenderInput) -> dict[str, Any] | None:
    """With ``matchers``, the alarms' alerts (label ``alertscaler_alarm``) still reach alertscaler: their own
    route to the same receiver (None: no matchers, or no alarm)."""
    if not inp.alertmanager.matchers or not any(g.name == ALARM_GROUP for g in (inp.rules.groups if inp.rules
                                                                                 else [])):
        return None
    return {"receiver": inp.alertmanager.receiver, "matchers": [f'{ALARM_LABEL}=~".+"'], **_timing(inp)}


def route_snippet(inp: RenderInput) -> dict[str, Any]:
    alarms = alarm_route(inp)
    return {"route": {"routes": [child_route(inp), *([alarms] if alarms else [])]}, "receivers": [receiver(inp)]}


def alertmanager_config(inp: RenderInput) -> dict[str, Any]:
    if not inp.alertmanager.matchers:
        route = {"receiver": inp.alertmanager.receiver, **_timing(inp)}
        return {"route": route, "receivers": [receiver(inp)]}
    child = {"receiver": inp.alertmanager.receiver, "matchers": _matchers(inp)}
    alarms = alarm_route(inp)
    route = {"receiver": NULL_RECEIVER, **_timing(inp), "routes": [child, *([alarms] if alarms else [])]}
    return {"route": route, "receivers": [{"name": NULL_RECEIVER}, receiver(inp)]}


def alertmanager_text(inp: RenderInput) -> str:
    notes = [] if not inp.alertmanager.matchers else [
        f"alerts not matching alertscaler's matchers go to the receiver {NULL_RECEIVER!r}, which sends nothing"]
    return dump(alertmanager_config(inp), header(inp.source, *notes, *inp.credentials_note()))


def route_snippet_text(inp: RenderInput) -> str:
    first = ("put this route first in route.routes of your alertmanager.yml (or give the route before it "
             "continue: true),")
    head = header(inp.source, first, "and this receiver in receivers", "", *inp.credentials_note())
    return dump(route_snippet(inp), head)
