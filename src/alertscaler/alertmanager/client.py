"""Alertmanager's HTTP API v2 → frozen dataclasses: the alerts it holds (with their silenced / inhibited state),
its silences, posting alerts (fire drills), and what a drill reads: its running configuration and metrics.

Owns: the HTTP conversation with ``GET /api/v2/alerts`` (``filter``, ``silenced``, ``inhibited``, ``active``,
``unprocessed``), ``GET /api/v2/silences``, ``POST /api/v2/alerts``, ``GET /api/v2/status`` and ``GET /metrics``
(auth, TLS, timeouts), the parsing of their
JSON (pure and public: ``parse_alerts``, ``parse_silences``), and the translation of every failure into
``model.errors.AlertmanagerError`` / ``AlertmanagerUnavailable`` — httpx exceptions never leave this module.

Called by: the silence check and phantom-alert reconciliation of ``act.silencing`` (``alerts``, once per
route due, never inside a store transaction), ``alertscaler check`` (is it configured), and the fire drill
(``cli.drilling``: ``post_alerts``, ``alerts``, ``config_text``, ``metrics_text``). Built by
``service.build_engine`` from the ``alertmanager`` section (``AlertmanagerClient.from_config``: URL, bearer token,
TLS verification, timeout), like the Prometheus client.

One ``httpx.Client`` is reused (keep-alive), ``trust_env=False``, no redirects followed. The bearer token (or the
credentials written in the URL) stays a ``SecretStr`` until the request is built: never in a repr or an error.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from alertscaler.model.errors import AlertmanagerError, AlertmanagerUnavailable, InputError
from alertscaler.model.urls import http_url

DEFAULT_TIMEOUT = 5.0
_SNIPPET = 160


@dataclass(frozen=True)
class AmAlert:
    """One alert as Alertmanager holds it. ``state``: ``active``, ``suppressed`` (silenced or inhibited) or
    ``unprocessed`` (just received); ``silenced_by`` / ``inhibited_by``: the silence ids / inhibiting alerts'
    fingerprints."""

    fingerprint: str
    labels: dict[str, str]
    state: str
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    receivers: tuple[str, ...] = ()  # the receivers Alertmanager routes it to (its routing tree, now)

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by) or self.state == "suppressed"

    @property
    def why_suppressed(self) -> str:
        """``silenced by <ids>`` / ``inhibited by <fingerprints>`` (for a decision's message)."""
        parts = []
        if self.silenced_by:
            parts.append(f"silenced by {', '.join(self.silenced_by)}")
        if self.inhibited_by:
            parts.append(f"inhibited by {', '.join(self.inhibited_by)}")
        return " and ".join(parts) or "suppressed"


@dataclass(frozen=True)
class Silence:
    """One silence: its id, state (``active``, ``pending``, ``expired``), matchers as text, time span, who/why."""

    id: str
    state: str
    matchers: tuple[str, ...]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str = ""
    comment: str = ""


def parse_alerts(status_code: int, body: bytes, *, source: str = "Alertmanager",
                 operation: str = "GET /api/v2/alerts") -> list[AmAlert]:
    """The answer of ``GET /api/v2/alerts`` → alerts; ``AlertmanagerError`` (400) / ``...Unavailable`` otherwise."""
    data = _json(status_code, body, source, operation)
    if not isinstance(data, list):
        raise AlertmanagerUnavailable(f"{source}: {operation} answered {_describe_json(data)}, not a list of alerts",
                                      operation, status_code)
    out = []
    for i, item in enumerate(data):
        try:
            status = item.get("status") or {}
            out.append(AmAlert(
                fingerprint=str(item["fingerprint"]),
                labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
                state=str(status.get("state", "")),
                silenced_by=tuple(str(x) for x in status.get("silencedBy") or ()),
                inhibited_by=tuple(str(x) for x in status.get("inhibitedBy") or ()),
                starts_at=_time(item.get("startsAt")), ends_at=_time(item.get("endsAt")),
                receivers=tuple(str(r["name"]) for r in item.get("receivers") or ())))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise AlertmanagerUnavailable(f"{source}: {operation} answered an alert [{i}] it cannot be: "
                                          f"{type(exc).__name__}: {exc}", operation, status_code) from None
    return out


def parse_silences(status_code: int, body: bytes, *, source: str = "Alertmanager",
                   operation: str = "GET /api/v2/silences") -> list[Silence]:
    """The answer of ``GET /api/v2/silences`` → silences."""
    data = _json(status_code, body, source, operation)
    if not isinstance(data, list):
        raise AlertmanagerUnavailable(f"{source}: {operation} answered {_describe_json(data)}, not a list of "
                                      "silences", operation, status_code)
    out = []
    for i, item in enumerate(data):
        try:
            matchers = tuple(_matcher(m) for m in item.get("matchers") or ())
            out.append(Silence(str(item["id"]), str((item.get("status") or {}).get("state", "")), matchers,
                               _time(item.get("startsAt")), _time(item.get("endsAt")),
                               str(item.get("createdBy", "")), str(item.get("comment", ""))))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise AlertmanagerUnavailable(f"{source}: {operation} answered a silence [{i}] it cannot be: "
                                          f"{type(exc).__name__}: {exc}", operation, status_code) from None
    return out


class Settings(Protocol):
    """What ``from_config`` reads (the ``alertmanager`` section of ``config``, which sits above this package)."""

    @property
    def url(self) -> str | None: ...
    @property
    def bearer_token(self) -> SecretStr | None: ...
    @property
    def verify(self) -> bool | str: ...
    @property
    def timeout(self) -> float: ...


class AlertmanagerClient:
    """Synchronous client of one Alertmanager's API v2 (``url``: its base URL, with its route prefix if any).

    ``bearer_token`` or credentials in the URL (basic auth); ``verify``: True, False or a CA bundle path;
    ``timeout`` in seconds for each connect / read / write; ``transport``: an httpx transport (tests).
    Thread-safe (one pooled ``httpx.Client``). Close it (``close()`` or ``with``) when done.
    """

    def __init__(self, url: str, *, bearer_token: SecretStr | None = None, verify: bool | str | Path = True,
                 timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None) -> None:
        try:
            parsed = httpx.URL(http_url(url, example="http://127.0.0.1:9093"))
        except ValueError as exc:
            raise InputError(str(exc), field="url") from None
        except httpx.InvalidURL as exc:
            raise InputError(f"not a URL: {exc}", field="url") from None
        auth: httpx.BasicAuth | None = None
        if parsed.userinfo:
            if bearer_token is not None:
                raise InputError("credentials in the URL and a bearer token: give one", field="url")
            auth = httpx.BasicAuth(parsed.username, parsed.password)
            parsed = parsed.copy_with(userinfo=b"")
        if not timeout > 0:
            raise InputError(f"must be > 0 seconds, got {timeout!r}", field="timeout")
        self.url = str(parsed).rstrip("/")
        self.timeout = float(timeout)
        self._auth_kind = "bearer" if bearer_token is not None else "basic" if auth is not None else None
        self._where = f"Alertmanager at {self.url}"
        headers = {"Accept": "application/json", "User-Agent": "alertscaler"}
        if bearer_token is not None:
            headers["Authorization"] = f"Bearer {bearer_token.get_secret_value()}"
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth, verify=_tls(verify),
                                  timeout=httpx.Timeout(self.timeout), trust_env=False, follow_redirects=False,
                                  transport=transport)

    @classmethod
    def from_config(cls, settings: Settings, *, url: str | None = None,
                    transport: httpx.BaseTransport | None = None) -> AlertmanagerClient:
        """The client of the policy file's ``alertmanager`` section (``url`` overrides its URL: a CLI option)."""
        target = url or settings.url
        if target is None:
            raise InputError("alertmanager.url is not set", field="alertmanager.url")
        return cls(target, bearer_token=settings.bearer_token, verify=settings.verify, timeout=settings.timeout,
                   transport=transport)

    def __repr__(self) -> str:
        return f"AlertmanagerClient({self.url!r}, auth={self._auth_kind}, timeout={self.timeout:g}s)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AlertmanagerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------------------------------------

    def alerts(self, filters: Sequence[str] = (), *, silenced: bool = True, inhibited: bool = True,
               active: bool = True, unprocessed: bool = True) -> list[AmAlert]:
        """``GET /api/v2/alerts``: the alerts Alertmanager holds and has not seen resolved. ``filters``: matchers
        like ``alertname="HighLoad"`` (all must match); ``silenced`` / ``inhibited`` / ``active`` /
        ``unprocessed``: include the alerts in that state (default: all, so a silenced alert is seen as such)."""
        params: list[tuple[str, str]] = [("filter", f) for f in filters]
        params += [("silenced", _flag(silenced)), ("inhibited", _flag(inhibited)), ("active", _flag(active)),
                   ("unprocessed", _flag(unprocessed))]
        operation = "GET /api/v2/alerts"
        response = self._send("GET", "/api/v2/alerts", operation, params=params)
        return parse_alerts(response.status_code, response.content, source=self._where, operation=operation)

    def silences(self, filters: Sequence[str] = ()) -> list[Silence]:
        """``GET /api/v2/silences`` (every state: active, pending, expired), optionally ``filter``-ed."""
        operation = "GET /api/v2/silences"
        response = self._send("GET", "/api/v2/silences", operation, params=[("filter", f) for f in filters])
        return parse_silences(response.status_code, response.content, source=self._where, operation=operation)

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts``: alerts as Prometheus sends them (``labels``, ``annotations``, ``startsAt``,
        ``endsAt``, ``generatorURL``); 200 means accepted. ``AlertmanagerError`` names what it refused."""
        operation = "POST /api/v2/alerts"
        response = self._send("POST", "/api/v2/alerts", operation, body=list(alerts))
        if response.status_code != 200:
            _json(response.status_code, response.content, self._where, operation)  # raises, naming the cause
            raise AlertmanagerUnavailable(f"{self._where}: {operation} answered HTTP {response.status_code}",
                                          operation, response.status_code)

    def config_text(self) -> str:
        """``GET /api/v2/status`` → ``config.original``: the configuration Alertmanager runs (YAML; secrets it
        hides show as ``<secret>``)."""
        operation = "GET /api/v2/status"
        response = self._send("GET", "/api/v2/status", operation)
        data = _json(response.status_code, response.content, self._where, operation)
        text = data.get("config", {}).get("original") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise AlertmanagerUnavailable(f"{self._where}: {operation} answered no config.original", operation,
                                          response.status_code)
        return text

    def metrics_text(self) -> str:
        """``GET /metrics``: Alertmanager's own metrics (Prometheus text format), e.g. its failed notifications."""
        operation = "GET /metrics"
        response = self._send("GET", "/metrics", operation)
        if response.status_code != 200:
            _json(response.status_code, response.content, self._where, operation)
        return response.text

    def _send(self, method: str, path: str, operation: str, params: list[tuple[str, str]] | None = None,
              body: Any = None) -> httpx.Response:
        try:
            return self._http.request(method, path, params=httpx.QueryParams(tuple(params or ())), json=body)
        except httpx.TimeoutException as exc:
            raise AlertmanagerUnavailable(f"{self._where}: no answer within {self.timeout:g} s "
                                          f"({type(exc).__name__})", operation) from exc
        except httpx.TransportError as exc:
            text = str(exc)
            what = ("has a certificate we do not trust" if "CERTIFICATE_VERIFY_FAILED" in text
                    else "is unreachable" if isinstance(exc, httpx.ConnectError) else "dropped the connection")
            raise AlertmanagerUnavailable(f"{self._where} {what}: {text or type(exc).__name__}", operation) from exc


def _json(status_code: int, body: bytes, source: str, operation: str) -> Any:
    try:
        data = json.loads(body) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = _Unparsable(body)
    if 200 <= status_code < 300 and not isinstance(data, _Unparsable):
        return data
    text = data.text if isinstance(data, _Unparsable) else (
        data if isinstance(data, str) else json.dumps(data) if data is not None else "")
    detail = f": {_clip(' '.join(str(text).split()))}" if text else ""
    if status_code == 400:
        raise AlertmanagerError(f"{source} refused {operation}: HTTP 400{detail}", operation, status_code)
    hint = {401: " (credentials refused: check alertmanager.bearer_token)",
            403: " (credentials refused: check alertmanager.bearer_token)",
            404: " (is alertmanager.url Alertmanager's base URL, with its route prefix?)"}.get(status_code, "")
    if 200 <= status_code < 300:
        raise AlertmanagerUnavailable(f"{source}: {operation} answered HTTP {status_code} with a body that is not "
                                      f"JSON{detail}", operation, status_code)
    raise AlertmanagerUnavailable(f"{source}: {operation} answered HTTP {status_code}{hint}{detail}", operation,
                                  status_code)


class _Unparsable:
    def __init__(self, body: bytes) -> None:
        self.text = body[:_SNIPPET].decode("utf-8", "replace")


def _describe_json(data: Any) -> str:
    return f"a JSON {type(data).__name__}"


def _clip(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _time(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))


def _matcher(m: Mapping[str, Any]) -> str:
    equal = m.get("isEqual", True)
    op = ("=~" if equal else "!~") if m.get("isRegex") else ("=" if equal else "!=")
    return f"{m['name']}{op}{json.dumps(str(m['value']))}"


def _tls(verify: bool | str | Path) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    return ssl.create_default_context(cafile=str(verify))
