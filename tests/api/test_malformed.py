"""Input that cannot be stored is refused at the door (4xx naming the field), never a 500 or a 503, and never
fails the valid webhooks recorded in the same group-commit batch."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import TOKEN, Harness
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
Edit = Callable[[dict[str, Any]], object]


def verbatim(text: str) -> str:
    """A placeholder that ``webhook`` replaces by ``text`` as JSON (for what json.dumps will not write)."""
    return f"@verbatim@{text}@"


def nested(depth: int) -> str:
    return verbatim("[" * depth + "1" + "]" * depth)


def webhook(edit: Edit | None = None, **labels: str) -> bytes:
    """A valid webhook (one unrouted alert, so each gets its own decision), changed by ``edit``."""
    data = body(alert("DiskFull", service="db", **labels))
    if edit is not None:
        edit(data)
    text = json.dumps(data)  # ensure_ascii: "\udfff" and "\x00" travel as JSON escapes
    text = re.sub(r'"@verbatim@([^"@]*)@"', lambda m: m.group(1), text)
    return text.encode()


def first(data: dict[str, Any]) -> dict[str, Any]:
    alert_: dict[str, Any] = data["alerts"][0]
    return alert_


BAD_WEBHOOKS: list[tuple[str, bytes, int, str]] = [
    ("label-surrogate", webhook(lambda d: first(d)["labels"].update(instance="a\udfff")), 422,
     "alerts[0].labels.instance: lone surrogate not allowed"),
    ("label-key-surrogate", webhook(lambda d: first(d)["labels"].update({"\ud800x": "v"})), 422,
     "alerts[0].labels.\\ud800x: lone surrogate not allowed (in a key)"),
    ("annotation-surrogate", webhook(lambda d: first(d)["annotations"].update(summary="\udc00")), 422,
     "alerts[0].annotations.summary: lone surrogate not allowed"),
    ("fingerprint-surrogate", webhook(lambda d: first(d).update(fingerprint="\udfff")), 422,
     "alerts[0].fingerprint: lone surrogate not allowed"),
    ("receiver-surrogate", webhook(lambda d: d.update(receiver="am\udfff")), 422,
     "receiver: lone surrogate not allowed"),
    ("groupKey-surrogate", webhook(lambda d: d.update(groupKey="{}:\ud83d")), 422,
     "groupKey: lone surrogate not allowed"),
    ("commonLabels-surrogate", webhook(lambda d: d["commonLabels"].update(service="\udfff")), 422,
     "commonLabels.service: lone surrogate not allowed"),
    ("externalURL-surrogate", webhook(lambda d: d.update(externalURL="http://\udfff")), 422,
     "externalURL: lone surrogate not allowed"),
    ("generatorURL-surrogate", webhook(lambda d: first(d).update(generatorURL="http://\udfff")), 422,
     "alerts[0].generatorURL: lone surrogate not allowed"),
    ("unknown-field-surrogate", webhook(lambda d: d.update(extra={"x": [1, "\udfff"]})), 422,
     "extra.x[1]: lone surrogate not allowed"),
    ("label-nul", webhook(lambda d: first(d)["labels"].update(instance="a\x00b")), 422,
     "alerts[0].labels.instance: NUL character not allowed"),
    ("receiver-nul", webhook(lambda d: d.update(receiver="am\x00")), 422, "receiver: NUL character not allowed"),
    ("groupKey-nul", webhook(lambda d: d.update(groupKey="\x00")), 422, "groupKey: NUL character not allowed"),
    ("fingerprint-nul", webhook(lambda d: first(d).update(fingerprint="ab\x00")), 422,
     "alerts[0].fingerprint: NUL character not allowed"),
    ("nested-33-deep", webhook(lambda d: d.update(extra=nested(32))), 422,
     "extra" + "[0]" * 31 + ": nested deeper than 32 levels"),
    ("nested-past-the-parser", webhook(lambda d: first(d).update(extra=nested(3000))), 422,
     "alerts[0].extra" + "[0]" * 29 + ": nested deeper than 32 levels"),
    ("int-5000-digits", webhook(lambda d: d.update(truncatedAlerts=verbatim("1" + "0" * 4999))), 422,
     "truncatedAlerts: an integer of 5000 digits is not allowed (at most 4300)"),
    ("negative-int-5000-digits-in-label",
     webhook(lambda d: first(d)["labels"].update(n=verbatim("-" + "1" * 5000))), 422,
     "alerts[0].labels.n: an integer of 5000 digits is not allowed (at most 4300)"),
    ("truncatedAlerts-over-int64", webhook(lambda d: d.update(truncatedAlerts=verbatim(str(2**63)))), 422,
     "truncatedAlerts"),
    ("startsAt-past-9999-in-utc", webhook(lambda d: first(d).update(startsAt="9999-12-31T23:00:00-05:00")), 422,
     "alerts[0].startsAt: out of range"),
    ("startsAt-before-1970", webhook(lambda d: first(d).update(startsAt="0002-01-01T00:00:00+05:00")), 422,
     "alerts[0].startsAt: out of range"),
    ("endsAt-past-3000", webhook(lambda d: first(d).update(endsAt="3000-01-01T00:00:00Z")), 422,
     "alerts[0].endsAt: out of range"),
    ("not-json", b"{oops", 400, "body is not valid JSON"),
    ("utf8-encoded-surrogate", webhook(lambda d: d.update(receiver="@")).replace(b'"@"', b'"\xed\xbf\xbf"'), 422,
     "receiver: lone surrogate not allowed"),
    ("utf16-surrogate", webhook(lambda d: d.update(receiver="\udfff")).decode().encode("utf-16"), 422,
     "receiver: lone surrogate not allowed"),
    ("invalid-utf8", b'{"receiver": "\xff"}', 400, "body is not valid JSON"),
]


@pytest.mark.parametrize(("raw", "status", "message"), [c[1:] for c in BAD_WEBHOOKS], ids=[c[0] for c in BAD_WEBHOOKS])
async def test_a_webhook_that_cannot_be_stored_is_refused_naming_the_field(harness: Harness, raw: bytes,
                                                                          status: int, message: str) -> None:
    response = await harness.client.post("/api/v1/alerts", content=raw, headers=JSON)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert harness.store.pending_notifications() == []
    assert await harness.decisions() == []


GOOD_WEBHOOKS: list[tuple[str, Edit, dict[str, str]]] = [
    ("non-ascii-label", lambda d: first(d)["labels"].update(zone="Zürich 東京"), {"zone": "Zürich 東京"}),
    ("surrogate-pair-escape", lambda d: first(d)["labels"].update(mood="\U0001f600"), {"mood": "\U0001f600"}),
    ("backslash-u0000-text", lambda d: first(d)["labels"].update(path="C:\\u0000"), {"path": "C:\\u0000"}),
    ("nested-32-deep", lambda d: d.update(extra=nested(31)), {}),
    ("int-4300-digits", lambda d: d.update(extra=verbatim("7" * 4300)), {}),
    ("times-with-offsets", lambda d: first(d).update(startsAt="2026-11-21T13:00:00+01:00",
                                                     endsAt="2999-12-31T23:00:00Z"), {}),
]


@pytest.mark.parametrize(("edit", "labels"), [c[1:] for c in GOOD_WEBHOOKS], ids=[c[0] for c in GOOD_WEBHOOKS])
async def test_unusual_but_storable_webhooks_are_recorded_and_decided(harness: Harness, edit: Edit,
                                                                     labels: dict[str, str]) -> None:
    response = await harness.client.post("/api/v1/alerts", content=webhook(edit), headers=JSON)
    assert response.status_code == 200, response.text
    (decision,) = await harness.decisions()
    assert decision["reason"] == "no_group"
    recorded = decision["alerts"][0]["labels"]  # type: ignore[index]
    assert {k: recorded[k] for k in labels} == labels


@pytest.mark.parametrize("bad", [c[1] for c in BAD_WEBHOOKS if c[2] == 422][::4],
                         ids=[c[0] for c in BAD_WEBHOOKS if c[2] == 422][::4])
async def test_one_bad_webhook_among_20_concurrent_valid_ones_fails_none_of_them(harness: Harness,
                                                                                 bad: bytes) -> None:
    valid = [webhook(instance=f"i{n}") for n in range(20)]
    sent = [*valid[:10], bad, *valid[10:]]  # all in flight together: one group-commit batch (or a few)
    responses = await asyncio.gather(*(harness.client.post("/api/v1/alerts", content=raw, headers=JSON)
                                       for raw in sent))
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 10 + [422] + [200] * 10
    ids = {r.json()["notification_id"] for r in responses if r.status_code == 200}
    assert len(ids) == 20
    assert harness.store.pending_notifications() == []  # every one decided when it was recorded
    decided = {d["notification_id"] for d in await harness.decisions(limit="1000")}
    assert decided == ids


@pytest.mark.parametrize(
    ("content_type", "status"),
    [(None, 415), ("text/plain", 415), ("application/x-www-form-urlencoded", 415), ("multipart/form-data", 415),
     ("application/json", 200), ("application/json; charset=utf-8", 200), ("Application/JSON", 200)],
    ids=["none", "text-plain", "form", "multipart", "json", "json-charset", "json-upper-case"],
)
@pytest.mark.parametrize("route", ["/api/v1/alerts", "/api/v1/groups/web/scale"], ids=["webhook", "scale"])
async def test_json_routes_require_a_json_content_type(harness: Harness, route: str, content_type: str | None,
                                                       status: int) -> None:
    raw = webhook() if route.endswith("alerts") else b'{"desired": 2}'
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    request = harness.client.build_request("POST", route, content=raw, headers=headers)
    assert content_type is not None or "Content-Type" not in request.headers
    response = await harness.client.send(request)
    expected = status if status != 200 or route.endswith("alerts") else 202
    assert response.status_code == expected, response.text
    if status == 415:
        assert "Content-Type: must be application/json" in response.json()["error"]
        assert harness.providers["web"].calls == [] and await harness.decisions() == []


BAD_SCALES: list[tuple[str, bytes, int, str]] = [
    ("not-json", b"{", 400, "body is not valid JSON"),
    ("over-the-size-limit", b'{"desired": 2, "pad": "' + b"x" * 20000 + b'"}', 413, "over the limit"),
    ("desired-5000-digits", b'{"desired": ' + b"9" * 5000 + b"}", 422,
     "desired: an integer of 5000 digits is not allowed"),
    ("desired-over-int32", b'{"desired": 2147483648}', 422, "desired: required: an integer from 0 to 2147483647"),
    ("desired-negative", b'{"desired": -1}', 422, "desired: required: an integer from 0 to"),
    ("desired-float", b'{"desired": 2.5}', 422, "desired: required"),
    ("desired-bool", b'{"desired": true}', 422, "desired: required"),
    ("deep", b'{"desired": 2, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}", 422, "x[0]"),
    ("surrogate", b'{"desired": 2, "why": "\\udfff"}', 422, "why: lone surrogate not allowed"),
    ("nul", b'{"desired": 2, "why": "\\u0000"}', 422, "why: NUL character not allowed"),
    ("not-an-object", b"[2]", 422, "desired"),
]


@pytest.mark.parametrize(("raw", "status", "message"), [c[1:] for c in BAD_SCALES], ids=[c[0] for c in BAD_SCALES])
async def test_bad_scale_bodies_are_refused_naming_the_field(harness: Harness, raw: bytes, status: int,
                                                             message: str) -> None:
    response = await harness.client.post("/api/v1/groups/web/scale", content=raw, headers=JSON)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert await harness.decisions() == []


async def test_scale_body_without_content_length_is_read_up_to_the_limit(harness: Harness) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"desired": 2, "pad": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    response = await harness.client.post("/api/v1/groups/web/scale", content=chunks(), headers=JSON)
    assert response.status_code == 413


BAD_QUERIES: list[tuple[str, str, dict[str, str], str]] = [
    ("limit-5000-digits", "decisions", {"limit": "9" * 5000}, "limit: must be an integer from 1 to 1000"),
    ("limit-5000-digits", "actions", {"limit": "1" * 5000}, "limit: must be an integer from 1 to 1000"),
    ("limit-zero", "decisions", {"limit": "0"}, "limit"),
    ("limit-1001", "actions", {"limit": "1001"}, "limit"),
    ("limit-negative", "decisions", {"limit": "-1"}, "limit"),
    ("limit-superscript-digit", "decisions", {"limit": "\u00b2"}, "limit"),
    ("limit-arabic-digits", "actions", {"limit": "\u0665\u0660"}, "limit"),
    ("since-past-9999-in-utc", "decisions", {"since": "9999-12-31T23:59:59-01:00"}, "since: out of range"),
    ("until-year-1-with-offset", "decisions", {"until": "0001-01-01T00:00:00+01:00"}, "until: out of range"),
    ("since-not-a-time", "decisions", {"since": "yesterday"}, "since: not an RFC 3339 time"),
    ("group-nul", "decisions", {"group": "web\x00"}, "group: NUL character not allowed"),
    ("group-nul", "actions", {"group": "\x00"}, "group: NUL character not allowed"),
    ("state-unknown", "actions", {"state": "exploded"}, "state: must be one of"),
]


@pytest.mark.parametrize(("route", "params", "message"), [c[1:] for c in BAD_QUERIES],
                         ids=[f"{c[1]}-{c[0]}" for c in BAD_QUERIES])
async def test_bad_list_queries_are_422_naming_the_parameter(harness: Harness, route: str,
                                                             params: dict[str, str], message: str) -> None:
    response = await harness.client.get(f"/api/v1/{route}", params=params)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


async def test_refusals_never_echo_an_unsendable_character(harness: Harness) -> None:
    """A field name holding a lone surrogate is shown escaped: the error itself can always be encoded."""
    data = copy.deepcopy(body(alert("DiskFull")))
    data["extra"] = {"\udfff" * 200: 1}
    response = await harness.client.post("/api/v1/alerts", content=json.dumps(data).encode(), headers=JSON)
    assert response.status_code == 422
    assert response.json()["error"].startswith("extra." + "\\udfff" * 64 + "…: lone surrogate")


async def test_a_permanent_store_error_is_not_retry_later(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from alertscaler.model.errors import StoreError

    def refuse(*args: object, **kwargs: object) -> object:
        raise StoreError("database sqlite:///x: DataError: cannot store that")

    monkeypatch.setattr(harness.store, "list_actions", refuse)
    response = await harness.client.get("/api/v1/actions")
    assert response.status_code == 500 and "Retry-After" not in response.headers

