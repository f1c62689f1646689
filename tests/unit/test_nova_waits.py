"""The waits of the ``openstack-nova`` provider (boot, delete) with a fake clock and a fake connection: the
deadlines hold without sleeping for real, and what timed out is deleted."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("openstack")

from alertscaler.model.errors import TemporaryProviderError
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.openstack.nova.provider import NovaConfig, NovaProvider


class Gone(Exception):
    status_code = 404


class Busy(Exception):
    status_code = 503
    details = "Service Unavailable"


class FakeCompute:
    """Servers that take ``build_polls`` reads to become ACTIVE (never, when None) and ``delete_polls`` reads to
    disappear after DELETE (never, when None); ``errors`` are raised by the next reads."""

    def __init__(self, build_polls: int | None, delete_polls: int | None = 0) -> None:
        self.build_polls, self.delete_polls = build_polls, delete_polls
        self.servers_: dict[str, dict[str, Any]] = {}
        self.errors: list[Exception] = []
        self.deleted: list[str] = []
        self._ids = itertools.count(1)

    def _view(self, s: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(id=s["id"], name=s["name"], status=s["status"], task_state=s["task"],
                               metadata=s["metadata"], addresses={}, created_at="2026-11-21T12:00:00Z", fault=None)

    def servers(self, details: bool = True) -> list[SimpleNamespace]:
        return [self._view(s) for s in self.servers_.values()]

    def find_flavor(self, name: str, ignore_missing: bool = False) -> SimpleNamespace:
        return SimpleNamespace(id="2")

    def create_server(self, **attrs: Any) -> SimpleNamespace:
        server_id = f"s-{next(self._ids)}"
        self.servers_[server_id] = {"id": server_id, "name": attrs["name"], "status": "BUILD", "task": None,
                                    "metadata": attrs["metadata"], "reads": 0}
        return SimpleNamespace(id=server_id)

    def get_server(self, server_id: str) -> SimpleNamespace:
        if self.errors:
            raise self.errors.pop(0)
        s = self.servers_.get(server_id)
        if s is None:
            raise Gone(server_id)
        s["reads"] += 1
        if s["task"] == "deleting":
            if self.delete_polls is not None and s["reads"] > self.delete_polls:
                del self.servers_[server_id]
                raise Gone(server_id)
        elif s["status"] == "BUILD" and self.build_polls is not None and s["reads"] >= self.build_polls:
            s["status"] = "ACTIVE"
        return self._view(s)

    def delete_server(self, server_id: str, ignore_missing: bool = True) -> None:
        self.deleted.append(server_id)
        self.servers_[server_id].update(task="deleting", reads=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def provider(compute: FakeCompute, clock: Clock, **overrides: Any) -> NovaProvider:
    config = NovaConfig.model_validate({"type": "openstack-nova", "image": "70a599e0-31e7-49b7-b260-868f441e862b",
                                        "flavor": "m1.small", "boot_timeout": "5m", "delete_timeout": "1m",
                                        "poll_interval": "5s", **overrides})
    conn = SimpleNamespace(compute=compute, close=lambda: None)
    return NovaProvider(config, ProviderContext(group="web", state_dir=Path("/nonexistent")), clock=clock,
                        sleep=clock.sleep, connect=lambda auth: conn)


def request(desired: int, action_id: int = 1) -> ScaleRequest:
    return ScaleRequest(group="web", from_capacity=0, desired=desired, action_id=action_id, decision_id=action_id)


def test_waits_until_active_polling_every_interval() -> None:
    compute, clock = FakeCompute(build_polls=3), Clock()
    assert provider(compute, clock).scale(request(2)) == "created 2 (web-1-1, web-1-2), now 2"
    assert clock.sleeps == [5.0, 5.0]


def test_boot_timeout_is_a_deadline_and_the_server_is_deleted() -> None:
    compute, clock = FakeCompute(build_polls=None), Clock()
    with pytest.raises(TemporaryProviderError, match=r"0 of 1 servers ACTIVE: web-1-1: not ACTIVE within 5m "
                                                     r"\(BUILD\) \(deleted\)"):
        provider(compute, clock).scale(request(1))
    assert sum(clock.sleeps[:60]) == 300.0 and clock.sleeps[:60] == [5.0] * 60
    assert compute.deleted == ["s-1"] and compute.servers_ == {}


def test_last_sleep_is_cut_to_the_deadline() -> None:
    compute, clock = FakeCompute(build_polls=None), Clock()
    with pytest.raises(TemporaryProviderError):
        provider(compute, clock, boot_timeout="12s").scale(request(1))
    assert clock.sleeps[:3] == [5.0, 5.0, 2.0]


def test_api_errors_while_polling_are_retried_until_the_deadline() -> None:
    compute, clock = FakeCompute(build_polls=1), Clock()
    compute.errors = [Busy(), Busy()]
    assert provider(compute, clock).scale(request(1)).startswith("created 1")
    assert clock.sleeps == [5.0, 5.0]


def test_delete_timeout_is_a_deadline() -> None:
    compute, clock = FakeCompute(build_polls=1, delete_polls=None), Clock()
    nova = provider(compute, clock)
    nova.scale(request(1))
    clock.sleeps.clear()
    with pytest.raises(TemporaryProviderError, match="servers not gone 1m after DELETE: web-1-1"):
        nova.scale(request(0, action_id=2))
    assert sum(clock.sleeps) == 60.0
    assert nova.status().current == 0  # being deleted: no longer counted


def test_a_stuck_error_server_does_not_block_scaling() -> None:
    compute, clock = FakeCompute(build_polls=1, delete_polls=None), Clock()
    compute.servers_["s-0"] = {"id": "s-0", "name": "web-0-1", "status": "ERROR", "task": None, "reads": 0,
                               "metadata": {"alertscaler_group": "web"}}
    message = provider(compute, clock).scale(request(1))
    assert message == "created 1 (web-1-1), deleted 1 failed (web-0-1), now 1"
    assert compute.deleted == ["s-0"]
