"""Heals respect ``dry_run`` (README: a dry-run group records decisions and never acts): through the service
in process (``fake`` provider, the test's clock), a member that would be healed is decided ``dry_run`` with
what would have been done, no heal action is made and the provider is never called; the judgements that were
skips anyway (over budget, ...) keep their own reasons. The same signals in a group without dry_run heal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.config import load_policy
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.fake import FakeConfig, FakeProvider
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore
from tests.api.conftest import TOKEN, Clock
from tests.support.webhooks import alert, body

POLICY = f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 8
    desired: 4
    dry_run: {{dry_run}}
    heal:
      matchers: ['alertname="InstanceDown"']
      grace: 60s
      batch_window: 20s
      budget: 1
"""


@dataclass
class H:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    fake: FakeProvider

    def ids(self) -> list[str]:
        return [m.id for m in self.fake.members()]

    async def decisions(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = list(reversed((await self.client.get(
            "/api/v1/decisions", params={"group": "web"})).json()))
        return data

    async def actions(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/actions")).json()
        return data


async def _alert(h: H, member: str) -> None:
    response = await h.client.post("/api/v1/alerts", json=body(alert("InstanceDown", alertscaler_member=member)),
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text


async def _status(h: H, member: str) -> None:
    h.fake.mark_failed(member)
    await h.engine.live_status("web")


Signal = Callable[[H, str], Awaitable[None]]


@pytest.fixture(params=[False, True], ids=["acting", "dry-run"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[H]:
    policy = load_policy(POLICY.replace("{dry_run}", "true" if request.param else "false"), base_dir=tmp_path)
    assert policy.groups["web"].dry_run is request.param
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    clock = Clock()
    fake = FakeProvider(FakeConfig(type="fake"), ProviderContext("web", tmp_path))
    fake.clock = clock
    fake._resize(4)
    clock.advance(3600)  # the members are past their grace period
    engine = build_engine(policy, store, {"web": fake}, clock=clock, monitoring=lambda: None)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield H(engine, client, clock, fake)
    store.close()


@pytest.mark.parametrize(("signal", "source"), [(_alert, "alert"), (_status, "status")], ids=["alert", "status"])
async def test_a_heal_in_a_dry_run_group_is_decided_dry_run_and_nothing_is_done(h: H, signal: Signal,
                                                                                 source: str) -> None:
    dry_run = h.engine.policy.groups["web"].dry_run
    victim = h.ids()[1]
    before = h.ids()
    await signal(h, victim)
    h.clock.advance(21)  # the batch window closes
    await h.engine.run_once()
    decided = [d for d in await h.decisions() if d["reason"] != "batched"]
    (heal,) = decided
    assert (heal["policy"], heal["trigger"], heal["alerts"]) == (
        "heal", "health", [{"member": victim, "outcome": "heal", "sources": [source]}])
    if dry_run:
        assert (heal["outcome"], heal["reason"]) == ("skipped", "dry_run")
        assert str(heal["message"]).startswith("dry run: would have ") and victim in str(heal["message"])
        assert (heal["from_capacity"], heal["to_capacity"]) == (4, 4)
        assert h.fake.heal_calls == [] and h.ids() == before
        assert await h.actions() == []
    else:
        assert (heal["outcome"], heal["reason"]) == ("acted", "healed")
        assert h.fake.heal_calls == [("replace", victim)] and victim not in h.ids()
        assert [(a["kind"], a["state"]) for a in await h.actions()] == [("heal", "succeeded")]


async def test_skips_keep_their_reasons_in_a_dry_run_group(h: H) -> None:
    dry_run = h.engine.policy.groups["web"].dry_run
    first, second = h.ids()[0], h.ids()[2]
    await _alert(h, first)
    h.clock.advance(5)
    await _alert(h, second)
    h.clock.advance(21)
    await h.engine.run_once()
    reasons = sorted(str(d["reason"]) for d in await h.decisions())
    assert reasons == sorted(["batched", "batched", "dry_run" if dry_run else "healed", "over_budget"])
    assert h.fake.heal_calls == ([] if dry_run else [("replace", first)])
