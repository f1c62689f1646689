"""Nothing can block the queue (issue 12, points 4 and 5): a notification that cannot be processed is set
aside with a ``rejected`` decision and the valid ones behind it are decided, also after a restart; the
recorder that group-commits webhooks never dies silently — a failure is the answer of that batch's webhooks
(503 only for an unavailable store, else a generic 500), and the next webhook is recorded and decided."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alertscaler.act import processing
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.ingest.routing import Route
from alertscaler.model.errors import StoreUnavailable
from tests.api.conftest import POLICY, TOKEN, Harness, Served, served
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = 20


def fail_once(real: Callable[..., Any], exc: Exception) -> Callable[..., Any]:
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            raise exc
        return real(*args, **kwargs)
    return failing


async def decided(s: Served | Harness) -> dict[int, str]:
    """Each notification's decision reason (every alert here is of no group: one decision each)."""
    response = await s.client.get("/api/v1/decisions", params={"limit": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    reasons = {int(d["notification_id"]): str(d["reason"]) for d in rows}
    assert len(reasons) == len(rows)
    return reasons


# (id, what fails, the exception, the first webhook's answer, is the first webhook recorded, logged by the recorder)
RECORDER = [
    ("bug-after-the-commit", "engine._decided", RuntimeError("secret-ish detail"), 500, True, 1),
    ("bug-while-deciding", "processor.process_recorded", RuntimeError("boom"), 200, True, 0),
    ("store-unavailable", "processor.process_recorded", StoreUnavailable("database down"), 503, False, 0),
]


@pytest.mark.parametrize(("target", "exc", "status", "recorded", "logged"), [c[1:] for c in RECORDER],
                         ids=[c[0] for c in RECORDER])
async def test_the_recorder_answers_every_webhook_and_lives_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, target: str,
    exc: Exception, status: int, recorded: bool, logged: int,
) -> None:
    owner_name, attr = target.split(".")
    owner = harness.engine if owner_name == "engine" else harness.engine.processor
    monkeypatch.setattr(owner, attr, fail_once(getattr(owner, attr), exc))

    with caplog.at_level(logging.ERROR, logger="alertscaler.act.engine"):
        first = await harness.post_alerts(body(alert("Up", v="first")))
        second = await harness.post_alerts(body(alert("Up", v="second")))
    await harness.engine.run_once()

    assert first.status_code == status
    if status == 500:  # generic: the details are in the log, once
        assert first.json() == {"error": "internal error while recording the notification (see the service log)"}
    assert second.status_code == 200
    reasons = await decided(harness)
    assert reasons[int(second.json()["notification_id"])] == "no_group"
    assert len(reasons) == (2 if recorded else 1)
    assert harness.store.pending_notifications() == []
    assert sum("webhook(s) failed" in r.getMessage() for r in caplog.records) == logged


def failing_route(real: Callable[..., list[Route]]) -> Callable[..., list[Route]]:
    def route(labels: dict[str, str], routes: list[Route]) -> list[Route]:
        if "poison" in labels:
            raise RuntimeError("cannot route this")
        return real(labels, routes)
    return route


# (id, the poison: "unparseable" stored body, or "bug" while deciding; how the valid ones arrive)
POISON = [
    ("unparseable-then-webhooks", "unparseable", "api"),
    ("unparseable-then-stored", "unparseable", "stored"),
    ("bug-then-webhooks", "bug", "api"),
    ("bug-then-stored", "bug", "stored"),
]


@pytest.mark.parametrize(("poison", "valid_via"), [c[1:] for c in POISON], ids=[c[0] for c in POISON])
async def test_a_poison_first_in_line_never_blocks_the_valid_ones_also_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poison: str, valid_via: str,
) -> None:
    """The poison is stored directly (bypassing the API, as an older version might have); 20 valid
    notifications follow, by webhook or stored too (left undecided by a crash): 20 decided + 1 rejected,
    nothing pending, and the same after a restart on the same store."""
    if poison == "bug":
        monkeypatch.setattr(processing, "route", failing_route(processing.route))
    async with served(tmp_path, POLICY) as s:
        n = parse_notification(body(alert("Up", poison="yes")))
        if poison == "unparseable":
            n = replace(n, raw={**n.raw, "version": "3"})
        poison_id = s.store.record_notification(n, s.clock()).notification_id
        valid: list[int] = []
        for i in range(VALID):
            payload = body(alert("Up", v=str(i)))
            if valid_via == "api":
                response = await s.client.post("/api/v1/alerts", json=payload, headers=AUTH)
                assert response.status_code == 200, response.text
                valid.append(int(response.json()["notification_id"]))
            else:
                valid.append(s.store.record_notification(parse_notification(payload), s.clock()).notification_id)
        s.clock.advance(1)
        await s.engine.run_once()
        before = await decided(s)
        assert s.store.pending_notifications() == []
    assert before == {poison_id: "rejected", **{i: "no_group" for i in valid}}

    async with served(tmp_path, POLICY) as again:  # a restart: a new engine on the same SQLite store
        again.clock.advance(2)
        await again.engine.run_once()
        assert await decided(again) == before
        assert again.store.pending_notifications() == []
        (rejected,) = (await again.client.get("/api/v1/decisions", params={"reason": "rejected"})).json()
    why = "RuntimeError: cannot route this" if poison == "bug" else "InputError: version"
    assert rejected["message"].startswith(f"notification {poison_id} set aside: ") and why in rejected["message"]
