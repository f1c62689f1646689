"""Input faults against the real service: bounded schemathesis fuzzing of the served OpenAPI (as served, and
with the parameters and bodies the README documents added where the served document has none), hand-made
malformed bodies, and a poison webhook followed by valid ones. A 5xx caused by input is a violation; every
valid alert answered 200 must be decided."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.fault.harness import AUTH, Run, Sender, alert, notification, scaled
from tests.fault.ledger import Accepted, Answer
from tests.fault.test_faults import verdict

pytestmark = [pytest.mark.fault, pytest.mark.integration]

STRING = {"type": "string"}
LABELS = {"type": "object", "additionalProperties": STRING}
ALERT = {"type": "object", "required": ["status", "labels", "startsAt", "fingerprint"], "properties": {
    "status": {"type": "string", "enum": ["firing", "resolved"]}, "labels": LABELS, "annotations": LABELS,
    "startsAt": {"type": "string", "format": "date-time"}, "endsAt": STRING, "generatorURL": STRING,
    "fingerprint": STRING}}
WEBHOOK = {"type": "object", "required": ["version", "status", "receiver", "groupKey", "alerts"], "properties": {
    "version": {"type": "string", "enum": ["4"]}, "status": {"type": "string", "enum": ["firing", "resolved"]},
    "receiver": STRING, "groupKey": STRING, "groupLabels": LABELS, "commonLabels": LABELS,
    "commonAnnotations": LABELS, "externalURL": STRING, "truncatedAlerts": {"type": "integer"},
    "alerts": {"type": "array", "items": ALERT, "maxItems": 5}}}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "required": False, "schema": STRING} for n in names]


# What the README documents, for operations the served document describes without parameters or body.
DOCUMENTED: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/alerts"): {"requestBody": {"required": True, "content": {
        "application/json": {"schema": WEBHOOK}}}},
    ("post", "/api/v1/groups/{name}/scale"): {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "properties": {"desired": {"type": "integer"}}}}}}},
    ("get", "/api/v1/decisions"): {"parameters": _query("group", "outcome", "reason", "since", "until", "limit")},
    ("get", "/api/v1/actions"): {"parameters": _query("group", "state", "limit")},
}


def documented(served: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(served)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            extra = DOCUMENTED.get((method, path), {})
            if "{name}" in path and not op.get("parameters"):
                op["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": STRING}]
            if extra.get("parameters") and not op.get("parameters"):
                op["parameters"] = extra["parameters"]
            if extra.get("requestBody") and not op.get("requestBody"):
                op["requestBody"] = extra["requestBody"]
    return doc


def fuzz(run: Run, doc: dict[str, Any], examples: int) -> tuple[list[Answer], int]:
    """Every operation of ``doc`` with ``examples`` generated cases (deterministic); the 5xx answers."""
    base = run.api()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=base)
    answers: list[Answer] = []
    calls = 0
    for result in schema.get_all_operations():
        op = result.ok()

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def one(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base, headers=dict(AUTH), timeout=30)
            if response.status_code >= 500:
                answers.append(Answer(f"{case.method} {case.formatted_path} query={case.query!r} "
                                      f"body={str(getattr(case, 'body', ''))[:300]!r}",
                                      response.status_code, response.text))
        one()
    return answers, calls


@pytest.fixture
def fuzz_run(make_run: Callable[..., Run]) -> Run:
    run = make_run(["g0", "g1"], initial=2, max_size=1000, min_size=0)
    run.add_service().start()
    return run


@pytest.mark.slow
def test_schemathesis_on_the_served_openapi(fuzz_run: Run) -> None:
    served = httpx.get(f"{fuzz_run.api()}/openapi.json", timeout=10).json()
    answers, calls = fuzz(fuzz_run, served, scaled(30, 1000))
    assert calls > 0
    verdict(fuzz_run, None, 60, answers, fuzz_calls=calls)


@pytest.mark.slow
def test_schemathesis_with_documented_bodies_and_parameters(fuzz_run: Run) -> None:
    served = httpx.get(f"{fuzz_run.api()}/openapi.json", timeout=10).json()
    answers, calls = fuzz(fuzz_run, documented(served), scaled(60, 1000))
    verdict(fuzz_run, None, 60, answers, fuzz_calls=calls)


def _valid() -> dict[str, Any]:
    return notification(alert("Up", "g0", "ok"))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def malformed() -> list[tuple[str, bytes | str, dict[str, str]]]:
    """(what, body, extra headers): inputs that cannot be stored or make no sense, each must get a 4xx."""
    def with_(mutate: Callable[[dict[str, Any]], None]) -> str:
        body = _valid()
        mutate(body)
        return json.dumps(body)  # ensure_ascii: lone surrogates travel as \\udfff escapes

    json_ct = {"Content-Type": "application/json"}
    return [
        ("deep nesting", _nested(100_000), json_ct),
        ("deep nesting in a label", with_(lambda b: b["alerts"][0]["labels"].update(x=None)).replace(
            "null", _nested(50_000)), json_ct),
        ("integer of 5000 digits", with_(lambda b: None).replace('"truncatedAlerts": 0',
                                                                 '"truncatedAlerts": ' + "9" * 5000), json_ct),
        ("lone surrogate in fingerprint", with_(lambda b: b["alerts"][0].update(fingerprint="\udfff")), json_ct),
        ("lone surrogate in receiver", with_(lambda b: b.update(receiver="r\udfff")), json_ct),
        ("lone surrogate in groupKey", with_(lambda b: b.update(groupKey="{}:\udfff")), json_ct),
        ("NUL in receiver", with_(lambda b: b.update(receiver="r\x00")), json_ct),
        ("NUL in groupKey", with_(lambda b: b.update(groupKey="{}:\x00")), json_ct),
        ("NUL in a label", with_(lambda b: b["alerts"][0]["labels"].update(x="a\x00b")), json_ct),
        ("startsAt year 0001 with offset", with_(lambda b: b["alerts"][0].update(
            startsAt="0001-01-01T00:00:00+01:00")), json_ct),
        ("startsAt year 9999 with negative offset", with_(lambda b: b["alerts"][0].update(
            startsAt="9999-12-31T23:59:59-01:00")), json_ct),
        ("body over the limit", "x" * 2_000_000, json_ct),
        ("not JSON", "{", json_ct),
        ("wrong Content-Type", json.dumps(_valid()), {"Content-Type": "text/plain"}),
        ("invalid UTF-8", b'{"receiver": "\xff\xfe"}', json_ct),
    ]


def test_malformed_input_gets_4xx(fuzz_run: Run) -> None:
    url = fuzz_run.api()
    answers: list[Answer] = []
    client = httpx.Client(headers=AUTH, timeout=60)
    for what, body, headers in malformed():
        r = client.post(f"{url}/api/v1/alerts", content=body, headers=headers)
        if r.status_code >= 500 or (r.status_code == 200 and what == "wrong Content-Type"):
            answers.append(Answer(what, max(r.status_code, 500), r.text))
        elif not 400 <= r.status_code < 500:
            answers.append(Answer(f"{what} (accepted: must be refused at the door)", 500, r.text))
    for what, path in [("5000-digit ?limit= on decisions", "/api/v1/decisions"),
                       ("5000-digit ?limit= on actions", "/api/v1/actions")]:
        r = client.get(f"{url}{path}", params={"limit": "9" * 5000})
        if r.status_code != 422:
            answers.append(Answer(what, max(r.status_code, 500), r.text))
    big = client.post(f"{url}/api/v1/groups/g0/scale", content="[" * 10 + " " * 2_000_000,
                      headers={"Content-Type": "application/json"})
    if big.status_code not in (400, 413):
        answers.append(Answer("/scale body over the limit", max(big.status_code, 500), big.text))
    client.close()
    verdict(fuzz_run, None, 60, answers)


def test_a_poison_webhook_never_blocks_valid_alerts(fuzz_run: Run) -> None:
    url = fuzz_run.api()
    sender = Sender([url])
    poison = notification(alert("Up", "g0", "poison", bad="\udfff"))
    answers: list[Answer] = []
    r = httpx.post(f"{url}/api/v1/alerts", content=json.dumps(poison), headers={**AUTH,
                                                                            "Content-Type": "application/json"})
    if r.status_code == 200:  # accepted: it must then be decided like any other
        sender.accepted.append(Accepted(int(r.json()["notification_id"]), (poison["alerts"][0]["fingerprint"],)))
    elif r.status_code >= 500:
        answers.append(Answer("poison label", r.status_code, r.text))
    threads = [threading.Thread(target=sender.send, args=(notification(alert("Up", f"g{i % 2}", f"v{i}")),))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sender.close()
    verdict(fuzz_run, sender, 60, answers)
