"""Prometheus' HTTP query API → numbers: instant and range PromQL queries, parsed into frozen dataclasses.

Owns: the HTTP conversation with Prometheus' ``/api/v1/query``, ``/api/v1/query_range`` and ``/-/ready`` (auth,
TLS, timeouts), the parsing of its JSON answers (``vector``, ``scalar``, ``matrix``; ``"NaN"``, ``"+Inf"``,
``"-Inf"`` values; ``warnings``), and the translation of every failure into the ``QueryError`` subtree of
``model.errors`` — httpx exceptions never leave this module.

Called by: target-tracking policies (a PromQL expression per group, ``value_of`` every interval), the
``size_by`` / ``guard`` re-checks of alert-triggered policies (``value_of`` when the alert arrives), and the
backtest (``range`` over past days: split into requests of at most ``max_points`` points per series, Prometheus'
own limit being 11,000, and merged back).

Errors (all ``QueryError``, each with the ``query``):

* ``BadQuery`` — Prometheus rejected the PromQL (HTTP 400/422): its ``errorType`` and ``error`` verbatim; also a
  result alertscaler cannot use as numbers (a string, a range vector from an instant query, native histograms).
* ``PrometheusUnavailable`` — connection refused, timeout, HTTP 5xx (503 while Prometheus starts up or when a
  query times out inside it), a refused login (401/403), a wrong URL (404), or a body that is not Prometheus'
  JSON (named: status, content type and its first characters).
* ``EmptyResult`` / ``AmbiguousResult`` — from ``value_of`` only: no series, or several (their labels named).

The parsing is pure and public (``decode``, ``samples_of``, ``series_of``, ``parse_instant``, ``parse_range``):
stand-ins and tests feed it bodies without a network.

Requests are POSTs, form-encoded (as Grafana sends long queries: no URL length limit). One ``httpx.Client`` is
reused (keep-alive), ``trust_env=False`` (no proxy or netrc from the environment), no redirects followed.
Secrets (bearer token, basic-auth password, or credentials written in the URL) are ``SecretStr`` until the
request is built: they never appear in a repr or an error message.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from alertscaler.model.errors import (
    AmbiguousResult,
    BadQuery,
    EmptyResult,
    InputError,
    PrometheusUnavailable,
)
from alertscaler.model.urls import http_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series ("exceeded maximum resolution")
_SNIPPET = 160  # characters of an unexpected body quoted in an error


# -- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: a series' labels (``{}`` for a scalar), its value and its time (UTC)."""

    labels: dict[str, str]
    value: float
    at: datetime


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its ``(time, value)`` points in time order."""

    labels: dict[str, str]
    points: tuple[tuple[datetime, float], ...]


class Samples(list[Sample]):
    """``instant()``'s answer: a list of samples, plus ``result_type`` (``vector`` or ``scalar``) and what
    Prometheus said about it (``warnings``, e.g. partial data; ``infos`` from Prometheus ≥ 2.45)."""

    def __init__(self, samples: Iterable[Sample] = (), *, result_type: str = "vector",
                 warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> None:
        super().__init__(samples)
        self.result_type = result_type
        self.warnings = tuple(warnings)
        self.infos = tuple(infos)


class SeriesList(list[Series]):
    """``range()``'s answer: a list of series, plus Prometheus' ``warnings`` and ``infos`` (of every request)."""

    def __init__(self, series: Iterable[Series] = (), *, warnings: Sequence[str] = (),
                 infos: Sequence[str] = ()) -> None:
        super().__init__(series)
        self.warnings = tuple(warnings)
        self.infos = tuple(infos)


# -- parsing (pure) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A successful answer's ``data`` (``resultType`` and ``result``, not yet checked) and its annotations."""

    result_type: str
    result: Any
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()


def decode(status_code: int, body: bytes, *, query: str, content_type: str = "application/json",
           reason: str = "", source: str = "Prometheus") -> Answer:
    """One HTTP answer of the query API → ``Answer``; ``BadQuery`` / ``PrometheusUnavailable`` otherwise.

    ``source`` starts error messages (the client passes ``Prometheus at <url>``).
    """
    status = f"HTTP {status_code}{' ' + reason if reason else ''}"
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("status") not in ("success", "error"):
        raise PrometheusUnavailable(f"{source} answered {status}{_hint(status_code)}, not Prometheus' query API JSON: "
                                    f"{_describe(content_type, body)}", query, status_code)
    if data["status"] == "error" or not 200 <= status_code < 300:
        error = data.get("error")
        error_type = data.get("errorType")
        message = error if isinstance(error, str) and error else f"no error message ({status})"
        kind = error_type if isinstance(error_type, str) else ""
        if status_code in (400, 422) or (status_code < 500 and kind in ("bad_data", "execution")):
            raise BadQuery(query, message, kind, status_code)
        raise PrometheusUnavailable(f"{source} answered {status}{_hint(status_code)}: "
                                    f"{kind + ': ' if kind else ''}{message}", query, status_code)
    payload = data.get("data")
    if not isinstance(payload, dict) or not isinstance(payload.get("resultType"), str) or "result" not in payload:
        raise _shape(source, query, "data", "expected an object with resultType and result")
    return Answer(payload["resultType"], payload["result"],
                  _strings(data.get("warnings"), "warnings", source, query),
                  _strings(data.get("infos"), "infos", source, query))


def samples_of(answer: Answer, *, query: str, source: str = "Prometheus") -> Samples:
    """An instant query's ``Answer`` → ``Samples``: a ``vector``'s samples, or one unlabelled sample for a
    ``scalar``. A ``string`` or ``matrix`` (range vector) result → ``BadQuery``: alertscaler needs numbers."""
    kind, result = answer.result_type, answer.result
    if kind == "scalar":
        at, value = _point(result, "data.result", source, query)
        samples = [Sample({}, value, at)]
    elif kind == "vector":
        if not isinstance(result, list):
            raise _shape(source, query, "data.result", "expected a list of samples")
        samples = [_sample(item, f"data.result[{i}]", source, query) for i, item in enumerate(result)]
    elif kind == "matrix":
        raise BadQuery(query, "it returns a range vector (like metric[5m]), not a number per series; "
                              "apply a function to it, e.g. rate(...[5m]) or avg_over_time(...[5m])")
    elif kind == "string":
        raise BadQuery(query, "it returns a string, not a number")
    else:
        raise _shape(source, query, "data.resultType", f"unknown result type {kind!r}")
    return Samples(samples, result_type=kind, warnings=answer.warnings, infos=answer.infos)


def series_of(answer: Answer, *, query: str, source: str = "Prometheus") -> SeriesList:
    """A range query's ``Answer`` (always a ``matrix``) → ``SeriesList``."""
    if answer.result_type != "matrix":
        raise _shape(source, query, "data.resultType", f"a range query answers a matrix, got {answer.result_type!r}")
    if not isinstance(answer.result, list):
        raise _shape(source, query, "data.result", "expected a list of series")
    series = [_series(item, f"data.result[{i}]", source, query) for i, item in enumerate(answer.result)]
    return SeriesList(series, warnings=answer.warnings, infos=answer.infos)


def parse_instant(status_code: int, body: bytes, *, query: str, content_type: str = "application/json",
                  reason: str = "", source: str = "Prometheus") -> Samples:
    """``decode`` + ``samples_of``: an ``/api/v1/query`` answer → ``Samples``."""
    answer = decode(status_code, body, query=query, content_type=content_type, reason=reason, source=source)
    return samples_of(answer, query=query, source=source)


def parse_range(status_code: int, body: bytes, *, query: str, content_type: str = "application/json",
                reason: str = "", source: str = "Prometheus") -> SeriesList:
    """``decode`` + ``series_of``: an ``/api/v1/query_range`` answer → ``SeriesList``."""
    answer = decode(status_code, body, query=query, content_type=content_type, reason=reason, source=source)
    return series_of(answer, query=query, source=source)


def _sample(item: Any, where: str, source: str, query: str) -> Sample:
    if not isinstance(item, dict):
        raise _shape(source, query, where, "expected an object with metric and value")
    labels = _labels(item.get("metric"), f"{where}.metric", source, query)
    if "value" not in item:
        if "histogram" in item:
            raise BadQuery(query, f"the series {_selector(labels)} is a native histogram, not a number; "
                                  "use histogram_quantile(), histogram_count() or histogram_sum()")
        raise _shape(source, query, where, "no value")
    at, value = _point(item["value"], f"{where}.value", source, query)
    return Sample(labels, value, at)


def _series(item: Any, where: str, source: str, query: str) -> Series:
    if not isinstance(item, dict):
        raise _shape(source, query, where, "expected an object with metric and values")
    labels = _labels(item.get("metric"), f"{where}.metric", source, query)
    if item.get("histograms"):
        raise BadQuery(query, f"the series {_selector(labels)} holds native histograms, not numbers; "
                              "use histogram_quantile(), histogram_count() or histogram_sum()")
    values = item.get("values", [])
    if not isinstance(values, list):
        raise _shape(source, query, f"{where}.values", "expected a list of [time, value]")
    points = tuple(_point(p, f"{where}.values[{j}]", source, query) for j, p in enumerate(values))
    return Series(labels, points)


def _point(raw: Any, where: str, source: str, query: str) -> tuple[datetime, float]:
    """``[1435781451.781, "1"]`` → (time, value). Values are strings so that "NaN", "+Inf", "-Inf" survive JSON."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise _shape(source, query, where, f"expected [time, \"value\"], got {_clip(json.dumps(raw))}")
    ts, text = raw
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise _shape(source, query, where, f"the time must be a number of seconds, got {ts!r}")
    try:
        at = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        raise _shape(source, query, where, f"time out of range: {ts!r}") from None
    if isinstance(text, str):
        try:
            value = float(text)
        except ValueError:
            raise _shape(source, query, where, f"not a number: {text!r}") from None
    elif isinstance(text, int | float) and not isinstance(text, bool):  # stand-ins may send bare numbers
        value = float(text)
    else:
        raise _shape(source, query, where, f"the value must be a string like \"1.5\" or \"NaN\", got {text!r}")
    return at, value


def _labels(raw: Any, where: str, source: str, query: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise _shape(source, query, where, "expected an object of string label values")
    return dict(raw)


def _strings(raw: Any, where: str, source: str, query: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _shape(source, query, where, "expected a list of strings")
    return tuple(raw)


def _shape(source: str, query: str, where: str, what: str) -> PrometheusUnavailable:
    return PrometheusUnavailable(f"{source} answered JSON that is not a Prometheus query result: {where}: {what}",
                                 query)


def _describe(content_type: str, body: bytes) -> str:
    if not body:
        return f"an empty body ({content_type or 'no content type'})"
    text = body[:_SNIPPET * 4].decode("utf-8", errors="replace")
    return f"{content_type or 'no content type'}, {len(body)} bytes: {_clip(' '.join(text.split()))}"


def _clip(text: str) -> str:
    return repr(text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…")


def _hint(status_code: int) -> str:
    if status_code in (401, 403):
        return " (credentials refused: check the bearer token or basic auth)"
    if status_code == 404:
        return " (is the URL Prometheus' base URL, with its --web.route-prefix if any?)"
    if status_code == 503:
        return " (starting up, shutting down, or overloaded)"
    return ""


def _selector(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


# -- times ------------------------------------------------------------------------------------------------------


def _millis(value: datetime | float, what: str) -> int:
    """A time → Unix milliseconds (Prometheus' resolution). Naive datetimes are refused: local or UTC?"""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InputError("a timezone-aware datetime is required (e.g. datetime.now(UTC))", field=what)
        return round(value.timestamp() * 1000)
    return round(float(value) * 1000)


def _format_time(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"  # floor division: also right before 1970


def _step_millis(step: timedelta | float) -> int:
    seconds = step.total_seconds() if isinstance(step, timedelta) else float(step)
    ms = round(seconds * 1000)
    if not ms >= 1:
        raise InputError(f"must be at least 1 ms, got {seconds!r} s", field="step")
    return ms


# -- the client ------------------------------------------------------------------------------------------------


class Settings(Protocol):
    """What ``PrometheusClient.from_config`` reads: ``config.PrometheusConfig`` has it (``config`` sits above this
    package, so it is not imported here)."""

    @property
    def url(self) -> str: ...
    @property
    def bearer_token(self) -> SecretStr | None: ...
    @property
    def verify(self) -> bool | str: ...
    @property
    def timeout(self) -> float: ...


class PrometheusClient:
    """Synchronous PromQL client for one Prometheus (or a server answering its HTTP API the same way).

    ``url`` is Prometheus' base URL (with its route prefix, if any). At most one of ``bearer_token`` and
    ``username``/``password`` (basic auth); credentials written in the URL are taken as basic auth and removed
    from it. ``verify``: True (system CAs), False, or the path of a CA bundle (PEM). ``timeout`` in seconds
    bounds each connect / read / write and is also sent to Prometheus as the query's own timeout.
    ``max_points``: points per series per range request (Prometheus refuses more than 11,000).
    ``transport``: an httpx transport to use instead of the network (tests).

    Thread-safe (one pooled ``httpx.Client``). Close it (``close()`` or ``with``) when done.
    """

    def __init__(
        self,
        url: str,
        *,
        bearer_token: SecretStr | None = None,
        username: str | None = None,
        password: SecretStr | None = None,
        verify: bool | str | Path = True,
        timeout: float = DEFAULT_TIMEOUT,
        max_points: int = MAX_POINTS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            parsed = httpx.URL(http_url(url))  # the check ``config`` makes of prometheus.url
        except ValueError as exc:
            raise InputError(str(exc), field="url") from None
        except httpx.InvalidURL as exc:
            raise InputError(f"not a URL: {exc}", field="url") from None
        if parsed.userinfo:
            if bearer_token is not None or username is not None or password is not None:
                raise InputError("credentials in the URL and as arguments: give them once", field="url")
            username, password = parsed.username, SecretStr(parsed.password)
            parsed = parsed.copy_with(userinfo=b"")
        if bearer_token is not None and (username is not None or password is not None):
            raise InputError("either a bearer token or basic auth (username/password), not both", field="auth")
        if (username is None) != (password is None):
            raise InputError("basic auth needs both a username and a password", field="auth")
        if not timeout > 0:
            raise InputError(f"must be > 0 seconds, got {timeout!r}", field="timeout")
        if max_points < 1:
            raise InputError(f"must be at least 1, got {max_points!r}", field="max_points")

        self.url = str(parsed).rstrip("/")
        self.timeout = float(timeout)
        self.max_points = max_points
        self._auth_kind = "bearer" if bearer_token is not None else "basic" if username is not None else None
        self._where = f"Prometheus at {self.url}"
        self._timeout_param = f"{max(1, round(self.timeout * 1000))}ms"

        headers = {"Accept": "application/json", "User-Agent": "alertscaler"}
        if bearer_token is not None:
            headers["Authorization"] = f"Bearer {bearer_token.get_secret_value()}"
        auth = (httpx.BasicAuth(username, password.get_secret_value())
                if username is not None and password is not None else None)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            auth=auth,
            verify=_tls(verify),
            timeout=httpx.Timeout(self.timeout),
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )

    @classmethod
    def from_config(cls, settings: Settings, *, url: str | None = None, timeout: float | None = None,
                    transport: httpx.BaseTransport | None = None) -> PrometheusClient:
        """The client of the policy file's ``prometheus`` section: its URL, bearer token, TLS verification (or CA
        bundle) and timeout. ``url`` / ``timeout`` override the section's (a CLI option); ``transport``: tests."""
        return cls(url or settings.url, bearer_token=settings.bearer_token, verify=settings.verify,
                   timeout=settings.timeout if timeout is None else timeout, transport=transport)

    def __repr__(self) -> str:
        return f"PrometheusClient({self.url!r}, auth={self._auth_kind}, timeout={self.timeout:g}s)"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- queries -----------------------------------------------------------------------------------------------

    def instant(self, query: str, at: datetime | float | None = None) -> Samples:
        """``query`` evaluated at ``at`` (an aware datetime or Unix seconds; default: Prometheus' now)."""
        form = {"query": query, "timeout": self._timeout_param}
        if at is not None:
            form["time"] = _format_time(_millis(at, "at"))
        samples = samples_of(self._post("/api/v1/query", form, query), query=query, source=self._where)
        self._log_annotations(query, samples.warnings, samples.infos)
        return samples

    def value_of(self, query: str, at: datetime | float | None = None) -> float:
        """The one value ``query`` gives (a scalar, or a vector of exactly one sample).

        ``EmptyResult`` when no series matches, ``AmbiguousResult`` (naming each series' labels) when several do.
        """
        samples = self.instant(query, at)
        if not samples:
            raise EmptyResult(query)
        if len(samples) > 1:
            raise AmbiguousResult(query, [s.labels for s in samples])
        return samples[0].value

    def range(self, query: str, start: datetime | float, end: datetime | float,
              step: timedelta | float) -> SeriesList:
        """``query`` evaluated at ``start``, ``start + step``, … up to ``end`` (inclusive when on the grid).

        Times are aware datetimes or Unix seconds, ``step`` a timedelta or seconds (at least 1 ms; Prometheus
        works in milliseconds). Spans of more than ``max_points`` steps are fetched in several requests on the
        same grid and merged: each series once, its points in time order.
        """
        start_ms, end_ms, step_ms = _millis(start, "start"), _millis(end, "end"), _step_millis(step)
        if end_ms < start_ms:
            raise InputError("end is before start", field="end")
        total = (end_ms - start_ms) // step_ms + 1
        merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[tuple[datetime, float]]]] = {}
        warnings: list[str] = []
        infos: list[str] = []
        for first in range(0, total, self.max_points):
            last = min(first + self.max_points, total) - 1
            form = {
                "query": query,
                "start": _format_time(start_ms + first * step_ms),
                "end": _format_time(start_ms + last * step_ms),
                "step": f"{step_ms}ms",
                "timeout": self._timeout_param,
            }
            chunk = series_of(self._post("/api/v1/query_range", form, query), query=query, source=self._where)
            for one in chunk:
                key = tuple(sorted(one.labels.items()))
                merged.setdefault(key, (one.labels, []))[1].extend(one.points)
            warnings.extend(w for w in chunk.warnings if w not in warnings)
            infos.extend(i for i in chunk.infos if i not in infos)
        result = SeriesList((Series(labels, tuple(points)) for labels, points in merged.values()),
                            warnings=warnings, infos=infos)
        self._log_annotations(query, result.warnings, result.infos)
        return result

    def ready(self, timeout: float | None = None) -> str | None:
        """None when Prometheus' ``/-/ready`` answers 200 (TSDB loaded, serving queries); otherwise why not.

        ``timeout`` (seconds) replaces the client's for this request (the heal freeze asks with a short one)."""
        limit = self.timeout if timeout is None else timeout
        try:
            response = self._http.get("/-/ready", timeout=httpx.Timeout(limit))
        except httpx.TimeoutException as exc:
            return f"{self._where}: no answer within {limit:g} s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            return f"{self._where} {self._failure(exc)}"
        if response.status_code == 200:
            return None
        text = " ".join(response.text.split())
        return (f"{self._where}/-/ready answered HTTP {response.status_code} {response.reason_phrase}"
                f"{_hint(response.status_code)}" + (f": {_clip(text)}" if text else ""))

    # -- rule files (``confgen.syncing``) ------------------------------------------------------------------------

    def reload(self) -> None:
        """``POST /-/reload``: Prometheus re-reads its configuration and rule files. ``PrometheusUnavailable``
        when it cannot be reached or refuses (403: started without ``--web.enable-lifecycle``; 500: a file it
        cannot load, its message quoted)."""
        operation = "reload"
        response = self._send("POST", "/-/reload", operation)
        if response.status_code == 200:
            return
        text = " ".join(response.text.split())
        hint = (" (start Prometheus with --web.enable-lifecycle)" if response.status_code == 403
                else _hint(response.status_code))
        raise PrometheusUnavailable(f"{self._where} refused the reload: HTTP {response.status_code} "
                                    f"{response.reason_phrase}{hint}" + (f": {_clip(text)}" if text else ""),
                                    operation, response.status_code)

    def rules(self) -> dict[str, Any]:
        """``GET /api/v1/rules``: the rule groups Prometheus has loaded, its JSON answer as is (``data.groups``:
        each with ``name``, ``file`` and ``rules``). ``PrometheusUnavailable`` when there is no such answer."""
        operation = "rules"
        response = self._send("GET", "/api/v1/rules", operation)
        try:
            data = response.json()
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            data = None
        if response.status_code != 200 or not isinstance(data, dict) or data.get("status") != "success":
            raise PrometheusUnavailable(
                f"{self._where}/api/v1/rules answered HTTP {response.status_code} {response.reason_phrase}"
                f"{_hint(response.status_code)}: "
                f"{_describe(response.headers.get('content-type', ''), response.content)}",
                operation, response.status_code)
        return data

    # -- internals ----------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, operation: str) -> httpx.Response:
        """One request; a transport failure → ``PrometheusUnavailable`` naming ``operation``."""
        try:
            return self._http.request(method, path)
        except httpx.TimeoutException as exc:
            raise PrometheusUnavailable(f"{self._where}: no answer within {self.timeout:g} s "
                                        f"({type(exc).__name__})", operation) from exc
        except httpx.TransportError as exc:
            raise PrometheusUnavailable(f"{self._where} {self._failure(exc)}", operation) from exc

    def _post(self, path: str, form: dict[str, str], query: str) -> Answer:
        try:
            response = self._http.post(path, data=form)
        except httpx.TimeoutException as exc:
            raise PrometheusUnavailable(f"{self._where}: no answer within {self.timeout:g} s "
                                        f"({type(exc).__name__})", query) from exc
        except httpx.TransportError as exc:
            raise PrometheusUnavailable(f"{self._where} {self._failure(exc)}", query) from exc
        return decode(response.status_code, response.content, query=query,
                      content_type=response.headers.get("content-type", ""), reason=response.reason_phrase,
                      source=self._where)

    def _failure(self, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text:
                return (f"has a certificate we do not trust: {_cause(exc)} (verify: give the path of the CA bundle "
                        "that signed it)")
            if "SSL" in text:
                return f"failed the TLS handshake: {_cause(exc)}"
            return f"is unreachable: {_cause(exc)}"
        hint = ""
        if self.url.startswith("http://") and isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
            hint = " (if Prometheus serves HTTPS, the URL must start with https://)"
        return f"dropped the connection: {_cause(exc)}{hint}"

    def _log_annotations(self, query: str, warnings: Sequence[str], infos: Sequence[str]) -> None:
        for warning in warnings:
            log.warning("%s: query %s: warning: %s", self._where, _clip(query), warning)
        for info in infos:
            log.debug("%s: query %s: info: %s", self._where, _clip(query), info)


def _tls(verify: bool | str | Path) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    try:
        return ssl.create_default_context(cafile=str(verify))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"cannot load the CA bundle {str(verify)!r}: {exc}", field="verify") from None


def _cause(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
