"""alertmanager.client: the API v2 requests it makes (paths, filter and state params, auth) and how each answer
or failure comes out (parsed alerts and silences; AlertmanagerError / AlertmanagerUnavailable), with an httpx
MockTransport (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from alertscaler.alertmanager.client import AlertmanagerClient
from alertscaler.model.errors import AlertmanagerError, AlertmanagerUnavailable

ALERT = {
    "fingerprint": "1a2b", "labels": {"alertname": "HighLoad", "service": "web"}, "annotations": {},
    "startsAt": "2026-12-01T12:00:00.000Z", "endsAt": "2026-12-01T12:04:00.000Z", "updatedAt": "x",
    "receivers": [{"name": "alertscaler"}],
    "status": {"state": "suppressed", "silencedBy": ["s-1"], "inhibitedBy": []},
}
SILENCE = {
    "id": "s-1", "status": {"state": "active"}, "createdBy": "oncall", "comment": "incident 42",
    "startsAt": "2026-12-01T12:00:00Z", "endsAt": "2026-12-01T14:00:00Z",
    "matchers": [{"name": "alertname", "value": "HighLoad", "isRegex": False, "isEqual": True},
                 {"name": "instance", "value": "web-.*", "isRegex": True, "isEqual": False}],
}


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> AlertmanagerClient:
    return AlertmanagerClient("http://am.test:9093/prefix", transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


def test_alerts_sends_filters_and_states_and_parses_silenced_alerts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[ALERT])

    with client(handler, bearer_token=SecretStr("tok-123456")) as am:
        alerts = am.alerts(['alertname="HighLoad"', 'service="web"'], inhibited=False)
    request = seen[0]
    assert (request.method, request.url.path) == ("GET", "/prefix/api/v2/alerts")
    assert request.url.params.get_list("filter") == ['alertname="HighLoad"', 'service="web"']
    assert (request.url.params["silenced"], request.url.params["inhibited"], request.url.params["active"]) == (
        "true", "false", "true")
    assert request.headers["Authorization"] == "Bearer tok-123456"
    (alert,) = alerts
    assert (alert.fingerprint, alert.suppressed, alert.why_suppressed) == ("1a2b", True, "silenced by s-1")


def test_silences_and_post_alerts() -> None:
    posted: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(json.loads(request.content))
            return httpx.Response(200)
        return httpx.Response(200, json=[SILENCE])

    with client(handler) as am:
        (silence,) = am.silences()
        am.post_alerts([{"labels": {"alertname": "Drill"}}])
    assert (silence.id, silence.state, silence.matchers) == (
        "s-1", "active", ('alertname="HighLoad"', 'instance!~"web-.*"'))
    assert posted == [[{"labels": {"alertname": "Drill"}}]]


@pytest.mark.parametrize(
    ("respond", "error", "words"),
    [
        (lambda r: httpx.Response(500, text="boom"), AlertmanagerUnavailable, "HTTP 500"),
        (lambda r: httpx.Response(401, text="no"), AlertmanagerUnavailable, "credentials refused"),
        (lambda r: httpx.Response(404, text="not found"), AlertmanagerUnavailable, "route prefix"),
        (lambda r: httpx.Response(400, json="bad matcher"), AlertmanagerError, "refused GET /api/v2/alerts"),
        (lambda r: httpx.Response(200, text="<html>"), AlertmanagerUnavailable, "not JSON"),
        (lambda r: httpx.Response(200, json={"data": []}), AlertmanagerUnavailable, "not a list"),
        (lambda r: httpx.Response(200, json=[{"labels": {}}]), AlertmanagerUnavailable, "alert [0]"),
    ],
    ids=["5xx", "401", "404", "400-bad-filter", "html", "wrong-shape", "alert-without-fingerprint"],
)
def test_failures_come_out_as_alertmanager_errors(respond: Callable[[httpx.Request], httpx.Response],
                                                  error: type[Exception], words: str) -> None:
    with client(respond) as am, pytest.raises(error) as info:
        am.alerts()
    assert type(info.value) is error
    assert words in str(info.value)


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")], ids=["connect", "timeout"])
def test_transport_failures_are_unavailable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with client(handler) as am, pytest.raises(AlertmanagerUnavailable) as info:
        am.alerts()
    assert "Alertmanager at http://am.test:9093/prefix" in str(info.value)


def test_credentials_in_the_url_never_show() -> None:
    am = AlertmanagerClient("http://user:s3cret@am.test:9093")
    assert "s3cret" not in repr(am) and am.url == "http://am.test:9093"
    am.close()
