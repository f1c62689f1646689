"""alertscaler's service (engine + API) with the REAL ``openstack-heat`` provider, in process.

What the provider tests cannot show alone: when Heat is unreachable the webhook is still answered 200
(it is stored; Alertmanager must not retry what alertscaler already holds), the action stays pending and
is retried with backoff until Heat answers; a decision acts on the real stack once Heat is back.
Time is the test's clock (``run_once``), except for Heat's own work.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.config import PolicyFile, load_policy
from alertscaler.providers import registry
from alertscaler.providers.base import ProviderContext
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore
from tests.integration.heat_fixtures import HeatServer, HeatStack
from tests.support.webhooks import alert, body

pytest_plugins = ["tests.integration.heat_fixtures"]
pytestmark = pytest.mark.integration

TOKEN = "heat-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 22, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy_for(endpoint: str, stack: str) -> str:
    return f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
actions: {{backoff_initial: 1s, backoff_max: 5s, max_attempts: 20}}
groups:
  tenant:
    provider:
      type: openstack-heat
      auth: {{auth_type: none, endpoint_override: {{orchestration: "{endpoint}"}}, timeout: 5s}}
      stack: {stack}
      poll_interval: 200ms
    min_size: 1
    max_size: 3
    desired: 1
    scale_out: {{matchers: ['alertname="TenantBusy"'], adjustment: 1, cooldown: 1h}}
"""


@dataclass
class Service:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    policy: PolicyFile

    async def actions(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/actions")).json()
        return data


async def open_service(tmp_path: Path, policy: PolicyFile, store: SqlStore, clock: Clock) -> AsyncIterator[Service]:
    group = policy.groups["tenant"]
    provider = registry.create(group.provider, ProviderContext("tenant", tmp_path / "provider"))
    engine = build_engine(policy, store, {"tenant": provider}, clock=clock)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Service(engine, client, clock, policy)
    await engine.stop(grace_s=0)  # a clean stop: this replica hands its groups back (the next one drives them)
    provider.close()


async def test_heat_unreachable_keeps_the_decision_pending_and_never_503s(
    tmp_path: Path, heat: HeatServer, heat_stacks: Callable[..., HeatStack],
) -> None:
    stack = heat_stacks({"cooldown": 1})
    clock = Clock()
    down = f"http://127.0.0.1:{closed_port()}/v1/admin"
    policy = load_policy(policy_for(down, stack.name), base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    try:
        async for service in open_service(tmp_path, policy, store, clock):
            response = await service.client.post("/api/v1/alerts", json=body(alert("TenantBusy")), headers=AUTH)
            assert response.status_code == 200, response.text  # stored: Alertmanager must not retry it
            await service.engine.run_once()
            (action,) = await service.actions()
            assert action["state"] == "pending" and action["attempts"] == 1
            error = str(action["error"])  # the SDK's own words: Heat's endpoint refused the connection
            assert f"ConnectFailure: Unable to establish connection to {down}" in error, error
            assert "Connection refused" in error, error
            clock.advance(5)
            await service.engine.run_once()
            (action,) = await service.actions()
            assert (action["state"], action["attempts"]) == ("pending", 2)
        assert stack.current_size() == 1  # nothing reached Heat

        # Heat is back (the same store, a provider pointed at the real endpoint): the pending action completes
        policy = load_policy(policy_for(heat.base_url, stack.name), base_dir=tmp_path)
        async for service in open_service(tmp_path, policy, store, clock):
            clock.advance(5)
            await service.engine.run_once()
            (action,) = await service.actions()
            assert (action["state"], action["attempts"]) == ("succeeded", 3), action
            assert "scaleup_policy" in str(action["result"])
        assert stack.current_size() == 2
    finally:
        store.close()
