"""In-process API fixtures: real SQLite store, the in-memory ``fake`` provider, a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.config import PolicyFile, load_policy
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.fake import FakeConfig, FakeProvider
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore

TOKEN = "test-token-123"

POLICY = f"""
server:
  auth: {{bearer_token: {TOKEN}}}
  max_body_bytes: 20000
  alert_stale_after: 1h
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {{matchers: ['alertname="HighLoad"', 'service="web"'], adjustment: 1, cooldown: 60s}}
    scale_in: {{matchers: ['alertname="LowLoad"', 'service="web"'], adjustment: -1, cooldown: 60s}}
  batch:
    provider: {{type: fake}}
    min_size: 0
    max_size: 10
    dry_run: true
    scale_out: {{matchers: ['alertname="QueueDeep"'], adjustment_type: exact_capacity, adjustment: 5}}
"""


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 21, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Harness:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    providers: dict[str, FakeProvider]
    store: SqlStore
    policy: PolicyFile

    async def post_alerts(self, payload: object, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post("/api/v1/alerts", json=payload, headers=headers)

    async def decisions(self, **params: str) -> list[dict[str, object]]:
        response = await self.client.get("/api/v1/decisions", params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, object]] = response.json()
        return data


def make_harness(tmp_path: Path, policy_text: str = POLICY) -> tuple[Engine, Clock, dict[str, FakeProvider],
                                                                     SqlStore, PolicyFile]:
    policy = load_policy(policy_text, base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    providers = {name: FakeProvider(FakeConfig(type="fake"), ProviderContext(name, tmp_path))
                 for name in policy.groups}
    clock = Clock()
    engine = build_engine(policy, store, dict(providers), clock=clock)
    return engine, clock, providers, store, policy


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    engine, clock, providers, store, policy = make_harness(tmp_path)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Harness(engine, client, clock, providers, store, policy)
    store.close()


@dataclass
class Served:
    """An engine on a policy, its API client, the clock it reads, its fake providers and its store."""

    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    providers: dict[str, FakeProvider]
    store: SqlStore

    async def decisions(self, group: str) -> list[dict[str, object]]:
        """The group's decisions, oldest first."""
        response = await self.client.get("/api/v1/decisions", params={"group": group, "limit": 1000})
        assert response.status_code == 200, response.text
        data: list[dict[str, object]] = response.json()
        return list(reversed(data))


@asynccontextmanager
async def served(tmp_path: Path, policy_text: str, *, now: datetime | None = None,
                 sizes: dict[str, int] | None = None, **engine_options: Any) -> AsyncIterator[Served]:
    """Serve ``policy_text`` in process: SQLite store under ``tmp_path`` (the same file on each call: a
    second call is a restart), every group on a ``fake`` provider of the given size, the API on an ASGI client.
    ``engine_options`` go to ``service.build_engine`` (e.g. ``query=``). The engine is stopped and the store
    closed after."""
    policy = load_policy(policy_text, base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    providers = {name: FakeProvider(FakeConfig(type="fake"), ProviderContext(name, tmp_path))
                 for name in policy.groups}
    for name, size in (sizes or {}).items():
        providers[name]._resize(size)
    clock = Clock(now) if now is not None else Clock()
    engine = build_engine(policy, store, dict(providers), clock=clock, **engine_options)
    app = create_app(engine, manage_engine=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Served(engine, client, clock, providers, store)
    finally:
        await engine.stop()
        store.close()
