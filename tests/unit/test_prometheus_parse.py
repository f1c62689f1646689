"""``ingest.prometheus``: parsing of Prometheus' query API answers (bodies shaped like the documented
``/api/v1/query`` and ``/api/v1/query_range`` responses), and the client's requests, auth, splitting of long
ranges and error translation, over an ``httpx.MockTransport`` (no network; the real Prometheus is in
``tests/integration/test_prometheus_client.py``)."""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from alertscaler.model.errors import (
    AmbiguousResult,
    BadQuery,
    EmptyResult,
    InputError,
    PrometheusUnavailable,
    QueryError,
)
from alertscaler.prometheus.client import PrometheusClient, Sample, Series, parse_instant, parse_range

T0 = 1435781451.781  # the documentation's example time
AT0 = datetime(2015, 7, 1, 20, 10, 51, 781000, tzinfo=UTC)
UP_PROM = {"__name__": "up", "job": "prometheus", "instance": "localhost:9090"}
UP_NODE = {"__name__": "up", "job": "node", "instance": "localhost:9100"}


def body(data: Any = None, **top: Any) -> bytes:
    answer: dict[str, Any] = {"status": "success", **top}
    if data is not None:
        answer["data"] = data
    return json.dumps(answer).encode()


def vector(*items: tuple[dict[str, str], str | float], ts: float = T0) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": m, "value": [ts, v]} for m, v in items]}


def error(error_type: str, message: str) -> bytes:
    return json.dumps({"status": "error", "errorType": error_type, "error": message}).encode()


def values(samples: list[Sample]) -> list[tuple[dict[str, str], str, datetime]]:
    return [(s.labels, str(s.value), s.at) for s in samples]  # str: NaN compares equal to itself


# -- instant answers ------------------------------------------------------------------------------------------

INSTANT_OK = [
    ("doc-vector", body(vector((UP_PROM, "1"), (UP_NODE, "0"))), "vector",
     [(UP_PROM, "1.0", AT0), (UP_NODE, "0.0", AT0)]),
    ("doc-scalar", body({"resultType": "scalar", "result": [T0, "42.5"]}), "scalar", [({}, "42.5", AT0)]),
    ("empty-vector", body({"resultType": "vector", "result": []}), "vector", []),
    ("nan", body(vector(({}, "NaN"))), "vector", [({}, "nan", AT0)]),
    ("plus-inf", body(vector(({"a": "b"}, "+Inf"))), "vector", [({"a": "b"}, "inf", AT0)]),
    ("minus-inf-scalar", body({"resultType": "scalar", "result": [T0, "-Inf"]}), "scalar", [({}, "-inf", AT0)]),
    ("exponent", body(vector(({}, "1.5e-07"))), "vector", [({}, "1.5e-07", AT0)]),
    ("integer-time", body(vector(({}, "3"), ts=1700000000)), "vector",
     [({}, "3.0", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))]),
    ("metric-missing", body({"resultType": "vector", "result": [{"value": [T0, "1"]}]}), "vector",
     [({}, "1.0", AT0)]),
    ("bare-number-value", body(vector(({}, 7))), "vector", [({}, "7.0", AT0)]),  # lenient for stand-ins
]


@pytest.mark.parametrize(("raw", "result_type", "expected"), [c[1:] for c in INSTANT_OK],
                         ids=[c[0] for c in INSTANT_OK])
def test_instant_answers(raw: bytes, result_type: str, expected: list[Any]) -> None:
    samples = parse_instant(200, raw, query="q")
    assert samples.result_type == result_type
    assert values(samples) == expected
    assert all(s.at.tzinfo is UTC for s in samples)


def test_warnings_and_infos_are_kept() -> None:
    raw = body(vector(({}, "1")), warnings=["partial data: store down"], infos=["metric might not be a counter"])
    samples = parse_instant(200, raw, query="q")
    assert samples.warnings == ("partial data: store down",) and samples.infos == ("metric might not be a counter",)


# -- range answers --------------------------------------------------------------------------------------------

DOC_MATRIX = {"resultType": "matrix", "result": [
    {"metric": UP_PROM, "values": [[1435781430.781, "1"], [1435781445.781, "1"], [1435781460.781, "1"]]},
    {"metric": UP_NODE, "values": [[1435781430.781, "0"], [1435781445.781, "0"], [1435781460.781, "1"]]},
]}
T30 = datetime(2015, 7, 1, 20, 10, 30, 781000, tzinfo=UTC)

RANGE_OK = [
    ("doc-matrix", body(DOC_MATRIX), [
        Series(UP_PROM, tuple((T30 + timedelta(seconds=15 * i), 1.0) for i in range(3))),
        Series(UP_NODE, ((T30, 0.0), (T30 + timedelta(seconds=15), 0.0), (T30 + timedelta(seconds=30), 1.0))),
    ]),
    ("empty-matrix", body({"resultType": "matrix", "result": []}), []),
    ("series-without-values", body({"resultType": "matrix", "result": [{"metric": {"a": "b"}, "values": []}]}),
     [Series({"a": "b"}, ())]),
    ("infinities",
     body({"resultType": "matrix", "result": [{"metric": {}, "values": [[T0, "+Inf"], [T0 + 1, "-Inf"]]}]}),
     [Series({}, ((AT0, math.inf), (AT0 + timedelta(seconds=1), -math.inf)))]),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in RANGE_OK], ids=[c[0] for c in RANGE_OK])
def test_range_answers(raw: bytes, expected: list[Series]) -> None:
    assert parse_range(200, raw, query="q") == expected


def test_range_nan_points() -> None:
    [series] = parse_range(200, body({"resultType": "matrix", "result": [{"metric": {}, "values": [[T0, "NaN"]]}]}),
                           query="q")
    assert series.points[0][0] == AT0 and math.isnan(series.points[0][1])


# -- errors -----------------------------------------------------------------------------------------------------

HTML = "text/html; charset=utf-8"
ERRORS: list[tuple[str, int, str, bytes, type[QueryError], list[str]]] = [
    ("doc-bad-data-400", 400, "application/json",
     error("bad_data", 'invalid parameter "query": 1:6: parse error: unclosed left parenthesis'), BadQuery,
     ["Prometheus rejected the query 'q'", 'bad_data: invalid parameter "query": 1:6: parse error: unclosed left']),
    ("execution-422", 422, "application/json",
     error("execution", "many-to-many matching not allowed: matching labels must be unique on one side"), BadQuery,
     ["execution: many-to-many matching not allowed"]),
    ("query-timeout-503", 503, "application/json", error("timeout", "query timed out in expression evaluation"),
     PrometheusUnavailable, ["HTTP 503 Service Unavailable", "timeout: query timed out in expression evaluation"]),
    ("internal-500", 500, "application/json", error("internal", "expanding series: remote read failed"),
     PrometheusUnavailable, ["HTTP 500", "internal: expanding series: remote read failed"]),
    ("starting-503-text", 503, "text/plain; charset=utf-8", b"Service Unavailable", PrometheusUnavailable,
     ["HTTP 503", "starting up", "'Service Unavailable'"]),
    ("html-200", 200, HTML, b"<!doctype html><html><title>Grafana</title>", PrometheusUnavailable,
     ["HTTP 200", "not Prometheus' query API JSON", "text/html", "<!doctype html>"]),
    ("empty-200", 200, "", b"", PrometheusUnavailable, ["an empty body"]),
    ("json-not-prometheus", 200, "application/json", b'{"hello": "world"}', PrometheusUnavailable,
     ["not Prometheus' query API JSON", "'{\"hello\": \"world\"}'"]),
    ("unauthorized-401", 401, "text/plain", b"Unauthorized", PrometheusUnavailable,
     ["HTTP 401", "credentials refused"]),
    ("not-found-404", 404, "text/plain", b"404 page not found", PrometheusUnavailable,
     ["HTTP 404", "--web.route-prefix"]),
    ("no-data", 200, "application/json", body(), PrometheusUnavailable, ["data: expected an object"]),
    ("value-not-a-pair", 200, "application/json", body({"resultType": "vector", "result": [{"value": [T0]}]}),
     PrometheusUnavailable, ["data.result[0].value: expected [time, \"value\"]"]),
    ("value-not-a-number", 200, "application/json", body(vector(({}, "many"))), PrometheusUnavailable,
     ["data.result[0].value: not a number: 'many'"]),
    ("time-not-a-number", 200, "application/json",
     body({"resultType": "vector", "result": [{"value": ["noon", "1"]}]}), PrometheusUnavailable,
     ["the time must be a number"]),
    ("label-not-a-string", 200, "application/json",
     body({"resultType": "vector", "result": [{"metric": {"a": 1}, "value": [T0, "1"]}]}), PrometheusUnavailable,
     ["data.result[0].metric"]),
    ("unknown-result-type", 200, "application/json", body({"resultType": "table", "result": []}),
     PrometheusUnavailable, ["unknown result type 'table'"]),
    ("warnings-not-strings", 200, "application/json", body(vector(({}, "1")), warnings=[1]), PrometheusUnavailable,
     ["warnings: expected a list of strings"]),
    ("string-result", 200, "application/json", body({"resultType": "string", "result": [T0, "hello"]}), BadQuery,
     ["cannot be used: it returns a string"]),
    ("matrix-for-instant", 200, "application/json", body(DOC_MATRIX), BadQuery, ["it returns a range vector"]),
    ("native-histogram", 200, "application/json", body({"resultType": "vector", "result": [
        {"metric": {"__name__": "rpc_seconds"}, "histogram": [T0, {"count": "2", "sum": "0.5", "buckets": []}]}]}),
     BadQuery, ["rpc_seconds{} is a native histogram", "histogram_quantile()"]),
]


@pytest.mark.parametrize(("status", "content_type", "raw", "exc_type", "fragments"), [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])
def test_instant_errors(status: int, content_type: str, raw: bytes, exc_type: type[QueryError],
                        fragments: list[str]) -> None:
    reason = httpx.codes.get_reason_phrase(status)
    with pytest.raises(exc_type) as info:
        parse_instant(status, raw, query="q", content_type=content_type, reason=reason)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.query == "q"


def test_bad_query_keeps_prometheus_fields() -> None:
    with pytest.raises(BadQuery) as info:
        parse_instant(400, error("bad_data", "1:6: parse error: unclosed left parenthesis"), query="sum(x")
    assert (info.value.error, info.value.error_type, info.value.status_code) == (
        "1:6: parse error: unclosed left parenthesis", "bad_data", 400)


def test_a_long_query_is_shortened_in_messages_not_in_the_attribute() -> None:
    query = "sum(" * 200
    with pytest.raises(BadQuery) as info:
        parse_instant(400, error("bad_data", "parse error"), query=query)
    assert info.value.query == query and len(str(info.value)) < 300


RANGE_ERRORS = [
    ("vector-for-range", body(vector(({}, "1"))), "a range query answers a matrix"),
    ("values-not-a-list", body({"resultType": "matrix", "result": [{"metric": {}, "values": "1"}]}),
     "data.result[0].values: expected a list"),
    ("point-not-a-pair", body({"resultType": "matrix", "result": [{"metric": {}, "values": [[T0, "1"], [T0]]}]}),
     "data.result[0].values[1]: expected [time"),
]


@pytest.mark.parametrize(("raw", "fragment"), [c[1:] for c in RANGE_ERRORS], ids=[c[0] for c in RANGE_ERRORS])
def test_range_shape_errors(raw: bytes, fragment: str) -> None:
    with pytest.raises(PrometheusUnavailable, match=fragment.replace("[", r"\[")):
        parse_range(200, raw, query="q")


def test_range_native_histograms_are_bad_queries() -> None:
    raw = body({"resultType": "matrix", "result": [{"metric": {"__name__": "h"}, "histograms": [[T0, {}]]}]})
    with pytest.raises(BadQuery, match="native histograms"):
        parse_range(200, raw, query="h")


# -- the client over a mock transport ----------------------------------------------------------------------------


class Fake:
    """A Prometheus stand-in for httpx.MockTransport: records requests; ``answer`` builds the response."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, content=body(vector(({}, "1")))))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def client(self, url: str = "http://prom.example:9090", **kwargs: Any) -> PrometheusClient:
        return PrometheusClient(url, transport=httpx.MockTransport(self), **kwargs)

    def form(self, i: int = -1) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.requests[i].content.decode()).items()}


def test_instant_posts_a_form_with_time_and_timeout() -> None:
    fake = Fake()
    with fake.client(timeout=2.5) as client:
        client.instant("sum(rate(http_requests_total[1m]))", at=datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC))
        client.instant("up")
    first = fake.requests[0]
    assert first.method == "POST" and first.url.path == "/api/v1/query"
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert fake.form(0) == {"query": "sum(rate(http_requests_total[1m]))", "time": "1704067200.250",
                            "timeout": "2500ms"}
    assert "time" not in fake.form(1)  # Prometheus' own now


def test_times_in_other_zones_and_unix_seconds() -> None:
    fake = Fake()
    with fake.client() as client:
        client.instant("up", at=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
        client.instant("up", at=1704067200.5)
    assert [fake.form(i)["time"] for i in (0, 1)] == ["1704067200.000", "1704067200.500"]


def test_a_route_prefix_is_kept() -> None:
    fake = Fake()
    with fake.client("https://monitoring.example/prometheus/") as client:
        client.instant("up")
        client.ready()
    assert [r.url.path for r in fake.requests] == ["/prometheus/api/v1/query", "/prometheus/-/ready"]


def matrix_answer(request: httpx.Request) -> httpx.Response:
    """Like Prometheus for ``time()`` on two series: points start, start+step, ... <= end."""
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    start, end, step = float(form["start"]), float(form["end"]), int(form["step"].removesuffix("ms")) / 1000
    times = [start + i * step for i in range(round((end - start) / step) + 1)]
    result = [{"metric": {"s": s}, "values": [[t, str(t)] for t in times]} for s in ("x", "y")]
    return httpx.Response(200, content=body({"resultType": "matrix", "result": result}, warnings=["w"]))


def test_range_splits_long_spans_on_the_same_grid_and_merges() -> None:
    fake = Fake(matrix_answer)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with fake.client(max_points=4) as client:
        result = client.range("time()", start, start + timedelta(seconds=9 * 15 + 7), step=timedelta(seconds=15))
    assert [(f["start"], f["end"], f["step"]) for f in map(fake.form, range(3))] == [
        ("1704067200.000", "1704067245.000", "15000ms"),
        ("1704067260.000", "1704067305.000", "15000ms"),
        ("1704067320.000", "1704067335.000", "15000ms"),
    ]
    assert [r.url.path for r in fake.requests] == ["/api/v1/query_range"] * 3
    expected = tuple((start + timedelta(seconds=15 * i), start.timestamp() + 15 * i) for i in range(10))
    assert result == [Series({"s": "x"}, expected), Series({"s": "y"}, expected)]
    assert result.warnings == ("w",)  # once, not once per request


@pytest.mark.parametrize(("step", "sent"), [
    (timedelta(seconds=15), "15000ms"), (0.25, "250ms"), (60, "60000ms"), (timedelta(milliseconds=1), "1ms"),
], ids=["timedelta", "fraction", "int", "one-ms"])
def test_step_is_sent_in_milliseconds(step: timedelta | float, sent: str) -> None:
    fake = Fake(matrix_answer)
    with fake.client() as client:
        client.range("1", 0, 1, step)
    assert fake.form()["step"] == sent


BAD_ARGS: list[tuple[str, Callable[[PrometheusClient], object], str]] = [
    ("naive-at", lambda c: c.instant("up", at=datetime(2024, 1, 1)), "at: a timezone-aware datetime"),
    ("naive-start", lambda c: c.range("up", datetime(2024, 1, 1), datetime.now(UTC), 15), "start: a timezone"),
    ("end-before-start", lambda c: c.range("up", 100, 50, 15), "end: end is before start"),
    ("zero-step", lambda c: c.range("up", 0, 50, 0), "step: must be at least 1 ms"),
    ("negative-step", lambda c: c.range("up", 0, 50, timedelta(seconds=-1)), "step: must be at least 1 ms"),
]


@pytest.mark.parametrize(("call", "fragment"), [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments(call: Callable[[PrometheusClient], object], fragment: str) -> None:
    fake = Fake()
    with fake.client() as client, pytest.raises(InputError, match=fragment):
        call(client)
    assert fake.requests == []


BAD_CONFIG: list[tuple[str, str, dict[str, Any], str]] = [
    ("not-http", "ftp://prom:9090", {}, "url: must be an http:// or https:// URL"),
    ("no-host", "http://", {}, "url: "),
    ("both-auths", "http://p", {"bearer_token": SecretStr("t"), "username": "u", "password": SecretStr("p")},
     "either a bearer token or basic auth"),
    ("user-without-password", "http://p", {"username": "u"}, "needs both a username and a password"),
    ("url-and-argument-credentials", "http://u:p@p", {"bearer_token": SecretStr("t")}, "give them once"),
    ("zero-timeout", "http://p", {"timeout": 0}, "timeout: must be > 0"),
    ("zero-max-points", "http://p", {"max_points": 0}, "max_points: must be at least 1"),
    ("missing-ca", "https://p", {"verify": "/nonexistent/ca.pem"}, "verify: cannot load the CA bundle"),
]


@pytest.mark.parametrize(("url", "kwargs", "fragment"), [c[1:] for c in BAD_CONFIG], ids=[c[0] for c in BAD_CONFIG])
def test_bad_client_arguments(url: str, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        PrometheusClient(url, **kwargs)


# -- auth and secrets ------------------------------------------------------------------------------------------


def refused(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, text="Unauthorized")


@pytest.mark.parametrize(("url", "kwargs", "header", "secret"), [
    ("http://p:9090", {"bearer_token": SecretStr("tok-SECRET-1")}, "Bearer tok-SECRET-1", "tok-SECRET-1"),
    ("http://p:9090", {"username": "bob", "password": SecretStr("pw-SECRET-2")},
     "Basic " + base64.b64encode(b"bob:pw-SECRET-2").decode(), "pw-SECRET-2"),
    ("http://bob:pw-SECRET-3@p:9090", {}, "Basic " + base64.b64encode(b"bob:pw-SECRET-3").decode(), "pw-SECRET-3"),
], ids=["bearer", "basic", "basic-in-url"])
def test_credentials_are_sent_and_never_shown(url: str, kwargs: dict[str, Any], header: str, secret: str) -> None:
    fake = Fake(refused)
    with fake.client(url, **kwargs) as client:
        with pytest.raises(PrometheusUnavailable) as info:
            client.value_of("up")
        reason = client.ready()
        assert client.url == "http://p:9090"
        shown = [repr(client), str(client.__dict__), str(info.value), repr(info.value), str(reason)]
    assert fake.requests[0].headers["authorization"] == header
    assert all(secret not in text for text in shown)
    assert info.value.status_code == 401 and "credentials refused" in str(info.value)


def test_no_credentials_no_authorization_header() -> None:
    fake = Fake()
    with fake.client() as client:
        client.instant("up")
        assert repr(client) == "PrometheusClient('http://prom.example:9090', auth=None, timeout=10s)"
    assert "authorization" not in fake.requests[0].headers


# -- transport failures, value_of, ready, warnings ---------------------------------------------------------------


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc
    return answer


@pytest.mark.parametrize(("exc", "fragment"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), "is unreachable: ConnectError: [Errno 111] Connection"),
    (httpx.ConnectTimeout("timed out"), "no answer within 10 s (ConnectTimeout)"),
    (httpx.ReadTimeout("timed out"), "no answer within 10 s (ReadTimeout)"),
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
     "a certificate we do not trust"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."),
     "dropped the connection: RemoteProtocolError: Server disconnected"),
], ids=["refused", "connect-timeout", "read-timeout", "untrusted-certificate", "disconnected"])
def test_transport_failures_are_unavailable(exc: Exception, fragment: str) -> None:
    fake = Fake(raising(exc))
    with fake.client() as client:
        with pytest.raises(PrometheusUnavailable) as info:
            client.range("up", 0, 60, 15)
        assert fragment in str(info.value) and info.value.__cause__ is exc
        assert "Prometheus at http://prom.example:9090" in str(info.value)
        reason = client.ready()
    assert reason is not None and fragment in reason


VALUE_OF: list[tuple[str, bytes, float | type[QueryError], str]] = [
    ("one-sample", body(vector(({"job": "web"}, "0.75"))), 0.75, ""),
    ("scalar", body({"resultType": "scalar", "result": [T0, "12"]}), 12.0, ""),
    ("empty", body({"resultType": "vector", "result": []}), EmptyResult, "returned no series"),
    ("two", body(vector((UP_PROM, "1"), (UP_NODE, "0"))), AmbiguousResult,
     'returned 2 series, one value expected: up{instance="localhost:9090", job="prometheus"}, '
     'up{instance="localhost:9100", job="node"}'),
    ("seven", body(vector(*(({"i": str(i)}, "1") for i in range(7)))), AmbiguousResult,
     '{i="4"} and 2 more'),
]


@pytest.mark.parametrize(("raw", "expected", "fragment"), [c[1:] for c in VALUE_OF], ids=[c[0] for c in VALUE_OF])
def test_value_of(raw: bytes, expected: float | type[QueryError], fragment: str) -> None:
    with Fake(lambda r: httpx.Response(200, content=raw)).client() as client:
        if isinstance(expected, float):
            assert client.value_of("q") == expected
        else:
            with pytest.raises(expected, match=fragment.replace("{", r"\{").replace("}", r"\}")) as info:
                client.value_of("q")
            assert info.value.query == "q"


def test_ambiguous_result_carries_every_label_set() -> None:
    fake = Fake(lambda r: httpx.Response(200, content=body(vector((UP_PROM, "1"), (UP_NODE, "0")))))
    with fake.client() as c, pytest.raises(AmbiguousResult) as info:
        c.value_of("up")
    assert info.value.labels == (UP_PROM, UP_NODE)


@pytest.mark.parametrize(("status", "text", "expected"), [
    (200, "Prometheus Server is Ready.\n", None),
    (503, "Service Unavailable", "answered HTTP 503 Service Unavailable (starting up, shutting down, or overloaded): "
                                 "'Service Unavailable'"),
    (404, "", "answered HTTP 404 Not Found (is the URL Prometheus' base URL"),
], ids=["ready", "starting", "wrong-url"])
def test_ready(status: int, text: str, expected: str | None) -> None:
    fake = Fake(lambda r: httpx.Response(status, text=text))
    with fake.client() as client:
        reason = client.ready()
    assert fake.requests[0].method == "GET" and fake.requests[0].url.path == "/-/ready"
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason and reason.startswith("Prometheus at http://prom.example")


def test_warnings_are_logged_with_the_query(caplog: pytest.LogCaptureFixture) -> None:
    raw = body(vector(({}, "1")), warnings=["remote read: partial data"])
    with caplog.at_level(logging.WARNING, logger="alertscaler.prometheus.client"), \
            Fake(lambda r: httpx.Response(200, content=raw)).client() as client:
        assert client.instant("sum(up)").warnings == ("remote read: partial data",)
    assert "'sum(up)'" in caplog.text and "remote read: partial data" in caplog.text


def test_samples_and_series_are_frozen() -> None:
    sample = Sample({}, 1.0, AT0)
    with pytest.raises(AttributeError):
        sample.value = 2.0  # type: ignore[misc]
    assert Series({"a": "b"}, ()) == Series({"a": "b"}, ())
