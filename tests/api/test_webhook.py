"""POST /api/v1/alerts: durable, idempotent, and never a 500 for a client's mistake."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from alertscaler.act.lifecycle import reconcile_groups
from alertscaler.model.errors import PermanentProviderError, ProviderDeclined, TemporaryProviderError
from tests.api.conftest import TOKEN, Harness
from tests.support.webhooks import alert, body

HIGH = alert("HighLoad", service="web")
LOW = alert("LowLoad", service="web")


async def test_firing_alert_is_recorded_then_scales(harness: Harness) -> None:
    response = await harness.post_alerts(body(HIGH))
    assert response.status_code == 200
    assert response.json()["new"] == 1 and response.json()["duplicates"] == 0
    # decided in the transaction that recorded it, before the 200; the provider is not called before the ack
    (decided,) = await harness.decisions(group="web")
    assert (decided["outcome"], decided["to_capacity"]) == ("acted", 2)
    assert harness.providers["web"].calls == []
    await harness.engine.run_once()
    (decision,) = await harness.decisions(group="web")
    assert (decision["outcome"], decision["reason"], decision["from_capacity"], decision["to_capacity"]) == \
        ("acted", "scaled", 1, 2)
    assert decision["trigger"] == "notification" and decision["policy"] == "scale_out"
    assert decision["alerts"][0]["labels"]["alertname"] == "HighLoad"  # type: ignore[index]
    assert harness.providers["web"].status().current == 2
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert (action["state"], action["desired"], action["attempts"]) == ("succeeded", 2, 1)
    timing = decision["timing_ms"]
    assert isinstance(timing, dict) and timing["arrival_to_decision"] is not None


async def test_resend_and_ha_peer_copy_never_act_twice(harness: Harness) -> None:
    await harness.post_alerts(body(HIGH))
    again = await harness.post_alerts(body(HIGH))
    peer = await harness.post_alerts(body(HIGH))  # a second Alertmanager of an HA pair sends the same
    assert again.json()["duplicates"] == 1 and peer.json()["duplicates"] == 1
    harness.clock.advance(1)
    await harness.engine.run_once()
    acted = await harness.decisions(outcome="acted")
    dups = await harness.decisions(reason="duplicate")
    assert len(acted) == 1 and len(dups) == 2
    assert len(harness.providers["web"].calls) == 1


async def test_alert_that_stays_firing_steps_once_per_cooldown_to_max(harness: Harness) -> None:
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    sizes = [harness.providers["web"].status().current]
    for _ in range(6):
        harness.clock.advance(30)  # half a cooldown: nothing
        await harness.engine.run_once()
        harness.clock.advance(30)  # cooldown over: the timer steps without any re-send
        await harness.engine.run_once()
        sizes.append(harness.providers["web"].status().current)
    assert sizes == [2, 3, 4, 4, 4, 4, 4]
    reasons = [d["reason"] for d in reversed(await harness.decisions(group="web"))]
    assert reasons == ["scaled", "scaled", "scaled", "at_max"]  # cooldown skips are not rows; at_max once
    timer = await harness.decisions(group="web")
    assert {d["trigger"] for d in timer[:3]} == {"timer"}


async def test_resolved_alert_stops_stepping_and_never_scales(harness: Harness) -> None:
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    resolved = dict(HIGH, status="resolved", endsAt="2026-11-21T12:01:00Z")
    await harness.post_alerts(body(resolved))
    harness.clock.advance(10)
    await harness.engine.run_once()
    harness.clock.advance(600)
    await harness.engine.run_once()
    assert harness.providers["web"].status().current == 2
    assert [d["reason"] for d in await harness.decisions(group="web")] == ["resolved", "scaled"]


async def test_scale_in_alert_and_bounds(harness: Harness) -> None:
    await harness.post_alerts(body(LOW))
    await harness.engine.run_once()
    (decision,) = await harness.decisions(group="web")
    assert (decision["outcome"], decision["reason"]) == ("skipped", "at_min")


async def test_unknown_labels_are_accepted_and_recorded_as_no_group(harness: Harness) -> None:
    response = await harness.post_alerts(body(alert("DiskFull", service="db")))
    assert response.status_code == 200
    await harness.engine.run_once()
    (decision,) = await harness.decisions()
    assert (decision["group"], decision["reason"]) == (None, "no_group")


async def test_dry_run_group_records_without_acting(harness: Harness) -> None:
    await harness.post_alerts(body(alert("QueueDeep")))
    await harness.engine.run_once()
    (decision,) = await harness.decisions(group="batch")
    assert (decision["outcome"], decision["reason"], decision["to_capacity"]) == ("skipped", "dry_run", 5)
    assert harness.providers["batch"].calls == []


async def test_temporary_errors_retry_with_backoff_permanent_fail(harness: Harness) -> None:
    harness.providers["web"].fail_next(TemporaryProviderError("HTTP 503 from cloud", delay=None),
                                       TemporaryProviderError("HTTP 429", delay=7))
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert (action["state"], action["attempts"], action["error"]) == ("pending", 1, "HTTP 503 from cloud")
    harness.clock.advance(1)  # backoff_initial 1s
    await harness.engine.run_once()
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert (action["state"], action["attempts"]) == ("pending", 2)
    harness.clock.advance(6)  # provider asked for 7s: not yet
    await harness.engine.run_once()
    assert (await harness.client.get("/api/v1/actions")).json()[0]["attempts"] == 2
    harness.clock.advance(1)
    await harness.engine.run_once()
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert (action["state"], action["attempts"]) == ("succeeded", 3)
    harness.providers["web"].fail_next(PermanentProviderError("flavor not found"))
    harness.clock.advance(60)
    await harness.engine.run_once()  # the alert still fires: next step, which fails for good
    latest = (await harness.client.get("/api/v1/actions")).json()[0]
    assert (latest["state"], latest["error"]) == ("failed", "flavor not found")


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        (b"{oops", 400, "not valid JSON"),
        (json.dumps({**body(HIGH), "version": "3"}).encode(), 422, "version"),
        (json.dumps({k: v for k, v in body(HIGH).items() if k != "alerts"}).encode(), 422, "alerts"),
        (json.dumps({**body(HIGH), "alerts": [{**HIGH, "startsAt": "soon"}]}).encode(), 422, "alerts[0].startsAt"),
        (b"x" * 20001, 413, "over the limit"),
    ],
    ids=["malformed-json", "wrong-version", "missing-alerts", "bad-time", "too-large"],
)
async def test_bad_input_gets_4xx_naming_the_problem(harness: Harness, raw: bytes, status: int,
                                                     fragment: str) -> None:
    response = await harness.client.post("/api/v1/alerts", content=raw,
                                         headers={"Authorization": "Bearer test-token-123",
                                                  "Content-Type": "application/json"})
    assert response.status_code == status
    assert fragment in response.json()["error"]
    assert await harness.decisions() == []


async def test_body_over_limit_without_content_length_is_refused(harness: Harness) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(30):
            yield b"x" * 1000

    response = await harness.client.post("/api/v1/alerts", content=chunks(),
                                         headers={"Authorization": "Bearer test-token-123",
                                                  "Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong-token-xyz", 401), ("Basic Zm9vOmJhcg==", 401), ("Bearer test-token-123", 200)],
    ids=["none", "wrong-token", "wrong-scheme", "right-token"],
)
async def test_webhook_requires_auth(harness: Harness, header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header else {}
    response = await harness.client.post("/api/v1/alerts", json=body(HIGH), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert "WWW-Authenticate" in response.headers
        assert "test-token-123" not in response.text


async def test_store_unavailable_gives_503_so_alertmanager_retries(harness: Harness, tmp_path: Path) -> None:
    harness.store.engine.dispose()
    (tmp_path / "db").rename(tmp_path / "db.away")
    (tmp_path / "db").write_text("not a directory")  # the database cannot be opened (even by root)
    response = await harness.post_alerts(body(HIGH))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "retry later" in response.json()["error"]
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 503
    (tmp_path / "db").unlink()
    (tmp_path / "db.away").rename(tmp_path / "db")
    retried = await harness.post_alerts(body(HIGH))  # Alertmanager's retry: nothing was lost or doubled
    assert retried.status_code == 200 and retried.json()["new"] == 1
    await harness.engine.run_once()
    assert len(await harness.decisions(outcome="acted")) == 1


async def test_a_decision_keeps_at_most_50_alerts(harness: Harness) -> None:
    many = [alert("HighLoad", service="web", instance=f"i{n}") for n in range(60)]
    await harness.post_alerts(body(*many))
    await harness.engine.run_once()
    (decision,) = await harness.decisions(group="web")
    assert len(decision["alerts"]) == 50  # type: ignore[arg-type]
    assert "60 alerts, the first 50 kept" in str(decision["message"])
    assert len(harness.providers["web"].calls[0].alerts) == 50


async def test_the_event_loop_never_waits_for_a_write_transaction(harness: Harness) -> None:
    """A background thread's write transaction (re-evaluation, manual scale) must not freeze the API."""
    await harness.post_alerts(body(HIGH))
    held, release = threading.Event(), threading.Event()
    released_by_test: list[bool] = []

    def hold() -> None:
        with harness.store.transaction():
            held.set()
            released_by_test.append(release.wait(3))  # False: the loop was frozen and never got to release

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    assert harness.store.write_busy()
    task = asyncio.create_task(harness.engine.run_once())
    for _ in range(5):
        await asyncio.sleep(0)  # the loop keeps running: processing waits in a thread, not here
    assert (await harness.client.get("/healthz")).status_code == 200
    assert not task.done()
    release.set()
    await task
    holder.join()
    assert released_by_test == [True]
    assert len(await harness.decisions(outcome="acted")) == 1


async def test_a_declined_change_brings_desired_back_to_the_group_size(harness: Harness) -> None:
    """Heat-like clouds answer but keep the size (their own cooldown or limits): alertscaler records why and
    its desired capacity follows the group, so the next step starts from the truth."""
    harness.providers["web"].fail_next(ProviderDeclined("Heat: cooldown in progress (asg stays at 1)", current=1))
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert action["state"] == "failed"
    assert action["error"] == "declined: Heat: cooldown in progress (asg stays at 1)"
    group = (await harness.client.get("/api/v1/groups/web")).json()
    assert group["desired"] == 1
    harness.clock.advance(60)
    await harness.engine.run_once()  # still firing: the next step goes 1 -> 2, not 2 -> 3
    assert harness.providers["web"].status().current == 2
    assert (await harness.client.get("/api/v1/actions")).json()[0]["from_capacity"] == 1


async def test_the_provider_is_told_when_a_decision_sets_an_exact_capacity(harness: Harness) -> None:
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    response = await harness.client.post("/api/v1/groups/web/scale", json={"desired": 4},
                                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (200, 202), response.text
    await harness.engine.run_once()
    calls = harness.providers["web"].calls
    assert [(c.desired, c.exact) for c in calls] == [(2, False), (4, True)]


@pytest.mark.parametrize(("adopts", "desired", "outcome", "actions"),
                         [(True, 3, "skipped", 0), (False, 1, "acted", 1)], ids=["adopts-size", "converges"])
async def test_at_start_a_provider_that_decides_the_size_is_followed_not_converged(
    harness: Harness, adopts: bool, desired: int, outcome: str, actions: int,
) -> None:
    """Heat in signal mode steps on its own policies: after a restart alertscaler takes its size instead of
    signalling until the stack agrees; other providers are converged to the desired capacity."""
    fake = harness.providers["web"]
    fake.adopts_size = adopts
    fake._resize(3)  # the group changed while alertscaler was down
    created = reconcile_groups(harness.policy, harness.store, dict(harness.providers), harness.clock())
    assert len(created) == actions
    assert (await harness.client.get("/api/v1/groups/web")).json()["desired"] == desired
    (decision,) = await harness.decisions(group="web")
    assert (decision["reason"], decision["outcome"], decision["from_capacity"], decision["to_capacity"]) == \
        ("reconcile", outcome, 1 if adopts else 3, 3 if adopts else 1)
    assert fake.calls == []


async def test_a_permanently_failed_action_brings_desired_back_to_where_it_started(harness: Harness) -> None:
    """E.g. the Heat provider refusing a stack outside the allowlist: the group never reached the new size, so
    the next decision must not start from it."""
    harness.providers["web"].fail_next(PermanentProviderError("refused: stack not in allowed_stacks"))
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    (action,) = (await harness.client.get("/api/v1/actions")).json()
    assert (action["state"], action["from_capacity"], action["desired"]) == ("failed", 1, 2)
    assert (await harness.client.get("/api/v1/groups/web")).json()["desired"] == 1
    harness.clock.advance(60)
    await harness.engine.run_once()  # still firing: the next step is 1 -> 2 again, not 2 -> 3
    assert harness.providers["web"].status().current == 2
    assert (await harness.client.get("/api/v1/actions")).json()[0]["from_capacity"] == 1
