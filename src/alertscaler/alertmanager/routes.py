"""Alertmanager's configuration as it runs (``GET /api/v2/status`` → ``config.original``): its routing tree and
which receivers send webhooks to alertscaler. Pure (text in, values out); no HTTP.

Used by the fire drill (``cli.drilling``): Alertmanager's API tells which receivers an alert is routed to, this
module says which of them reach alertscaler (a ``webhook_configs`` URL ending in ``/api/v1/alerts``), which route
took the alert (to name it when the drill goes nowhere), and that route's ``group_by`` / ``group_wait`` /
``group_interval`` (how long to wait for the webhook).

Routing follows Alertmanager's rules: the root route takes every alert; a route's children are tried in order, the
first that matches takes the alert (and the ones after it too while a matching child says ``continue: true``); a
route none of whose children match is where the alert ends. A child inherits ``receiver``, ``group_by``,
``group_wait`` and ``group_interval`` from its parent. Matchers: ``matchers`` (Alertmanager's syntax, several per
string allowed, in braces or not), the older ``match`` and ``match_re``. Time intervals (mute / active) are not
evaluated. Alertmanager's defaults: group_wait 30s, group_interval 5m.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from alertscaler.model.durations import parse_duration
from alertscaler.model.errors import InputError
from alertscaler.model.matchers import Matcher, Op

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
WEBHOOK_PATH = "/api/v1/alerts"  # alertscaler's webhook


@dataclass(frozen=True)
class AmRoute:
    """Where a route leaves an alert: its receiver and effective timing, ``matchers`` as text (its own, and
    ``path``: every route's from the root down, for a message)."""

    receiver: str
    matchers: tuple[str, ...]
    path: tuple[tuple[str, ...], ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float

    def describe(self) -> str:
        """``route {alertname="X"} → receiver "null"``, or ``the root route → receiver "null"``."""
        own = [m for m in self.path if m]
        where = " > ".join("{" + ", ".join(m) + "}" for m in own) if own else "the root route"
        return f"{'route ' if own else ''}{where} → receiver {self.receiver!r}"


@dataclass(frozen=True)
class Receiver:
    """A receiver: its name and the URLs its ``webhook_configs`` post to (None: not readable: ``url_file`` or a
    URL Alertmanager hides as ``<secret>``)."""

    name: str
    webhooks: tuple[str | None, ...]

    def sends_to_alertscaler(self) -> bool | None:
        """True: a webhook posts to ``…/api/v1/alerts``; None: a webhook whose URL cannot be read; False: neither."""
        if any(url is not None and urlsplit(url).path.rstrip("/").endswith(WEBHOOK_PATH) for url in self.webhooks):
            return True
        return None if any(url is None for url in self.webhooks) else False


@dataclass(frozen=True)
class AmConfig:
    root: dict[str, Any]
    receivers: Mapping[str, Receiver]

    def route(self, labels: Mapping[str, str]) -> list[AmRoute]:
        """The routes that take an alert with ``labels`` (at least the root route), in Alertmanager's order."""
        top = AmRoute(str(self.root.get("receiver", "")), (), (), _group_by(self.root.get("group_by"), ()),
                      _duration(self.root.get("group_wait"), DEFAULT_GROUP_WAIT, "route.group_wait"),
                      _duration(self.root.get("group_interval"), DEFAULT_GROUP_INTERVAL, "route.group_interval"))
        return _walk(self.root, top, labels, "route")

    def to_alertscaler(self) -> tuple[set[str], set[str]]:
        """(receivers that send to alertscaler's webhook, receivers with a webhook whose URL cannot be read)."""
        sure = {r.name for r in self.receivers.values() if r.sends_to_alertscaler()}
        unknown = {r.name for r in self.receivers.values() if r.sends_to_alertscaler() is None}
        return sure, unknown


def parse_config(text: str) -> AmConfig:
    """``config.original`` → ``AmConfig``; ``InputError`` naming what cannot be read."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"Alertmanager's configuration is not YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("route"), dict):
        raise InputError("Alertmanager's configuration has no route")
    receivers: dict[str, Receiver] = {}
    for item in data.get("receivers") or ():
        if not isinstance(item, dict) or "name" not in item:
            continue
        hooks = tuple(_url(w) for w in item.get("webhook_configs") or () if isinstance(w, dict))
        receivers[str(item["name"])] = Receiver(str(item["name"]), hooks)
    return AmConfig(data["route"], receivers)


def _url(webhook: Mapping[str, Any]) -> str | None:
    url = webhook.get("url")
    return url if isinstance(url, str) and url and url != "<secret>" else None


def _walk(node: Mapping[str, Any], here: AmRoute, labels: Mapping[str, str], where: str) -> list[AmRoute]:
    out: list[AmRoute] = []
    for i, child in enumerate(node.get("routes") or ()):
        if not isinstance(child, dict):
            continue
        at = f"{where}.routes[{i}]"
        own = _matchers(child, at)
        if not all(m.matches(labels) for m in own):
            continue
        texts = tuple(str(m) for m in own)
        route = AmRoute(str(child.get("receiver") or here.receiver), texts, (*here.path, texts),
                        _group_by(child.get("group_by"), here.group_by),
                        _duration(child.get("group_wait"), here.group_wait, f"{at}.group_wait"),
                        _duration(child.get("group_interval"), here.group_interval, f"{at}.group_interval"))
        out.extend(_walk(child, route, labels, at))
        if not child.get("continue"):
            break
    return out or [here]


def _matchers(route: Mapping[str, Any], where: str) -> list[Matcher]:
    found: list[Matcher] = []
    try:
        for name, value in (route.get("match") or {}).items():
            found.append(Matcher(str(name), Op.EQ, str(value)))
        for name, value in (route.get("match_re") or {}).items():
            found.append(Matcher.parse(f"{name}=~{_quoted(str(value))}"))
        for text in route.get("matchers") or ():
            found.extend(Matcher.parse(part) for part in split_matchers(str(text)))
    except (ValueError, AttributeError) as exc:
        raise InputError(f"Alertmanager's {where}: cannot read its matchers: {exc}") from None
    return found


def split_matchers(text: str) -> list[str]:
    """``{a="1", b=~"x,y"}`` / ``a=1,b="2"`` → one string per matcher (commas inside quotes kept)."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    parts, current, quoted, escaped = [], "", False, False
    for ch in body:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            current, escaped = current + ch, True
        elif ch == '"':
            current, quoted = current + ch, not quoted
        elif ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _group_by(value: Any, inherited: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else tuple(inherited)


def _duration(value: Any, inherited: float, where: str) -> float:
    if value is None:
        return inherited
    try:
        return parse_duration(value)
    except ValueError:
        raise InputError(f"Alertmanager's {where}: not a duration: {value!r}") from None
