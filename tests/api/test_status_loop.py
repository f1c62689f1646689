"""The status loop survives any exception from a provider's ``status()`` (not only ``ProviderError``): the
failure shows in the group's view and is logged once, and the next refresh reads the provider again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from alertscaler.act import engine as engine_module
from alertscaler.model.errors import TemporaryProviderError
from alertscaler.model.groups import GroupStatus
from tests.api.conftest import POLICY, served

FAILURES: list[tuple[str, Callable[[], Exception]]] = [
    ("a provider bug (KeyError)", lambda: KeyError("members")),
    ("a provider bug (TypeError)", lambda: TypeError("'NoneType' object is not subscriptable")),
    ("a documented provider error", lambda: TemporaryProviderError("HTTP 503 from cloud")),
]


async def _until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait on the event loop until ``condition`` holds (the loops run meanwhile)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize(("kind", "error"), FAILURES, ids=[k for k, _ in FAILURES])
async def test_the_status_loop_survives_a_failing_status_and_refreshes_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        kind: str, error: Callable[[], Exception]) -> None:
    monkeypatch.setattr(engine_module, "STATUS_INTERVAL_S", 0.01)
    async with served(tmp_path, POLICY) as t:
        fake = t.providers["web"]
        real_status = fake.status
        failing = {"on": True, "calls": 0}

        def status() -> GroupStatus:
            failing["calls"] += 1
            if failing["on"]:
                raise error()
            return real_status()

        monkeypatch.setattr(fake, "status", status)
        await t.engine.start()
        await _until(lambda: failing["calls"] >= 3, "three failed refreshes")
        (during,) = [g for g in (await t.client.get("/api/v1/groups")).json() if g["name"] == "web"]
        failing["on"] = False
        await _until(lambda: t.engine.statuses["web"].current is not None, "a refresh after the failures")
        (after,) = [g for g in (await t.client.get("/api/v1/groups")).json() if g["name"] == "web"]
        assert (during["current"], after["current"]) == (None, real_status().current)
        status_task = next(task for task in t.engine._tasks if task.get_name() == "status")
        assert not status_task.done()
        unexpected = [r for r in caplog.records if "raised unexpectedly" in r.getMessage()]
        assert len(unexpected) == (0 if isinstance(error(), TemporaryProviderError) else 1), kind
