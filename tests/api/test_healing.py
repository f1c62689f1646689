"""Healing through the service (in process, ``fake`` provider, the test's clock): an alert or the provider's
status names a member → held for the batch window → judged (budget, freeze, flapping, grace) → one heal
action on the group's queue → the provider replaces / quarantines; every judgement is a recorded decision.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
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
    heal:
      matchers: ['alertname="InstanceDown"']
      grace: 60s
      batch_window: 20s
      budget: 1
      flap: {{heals: 2, period: 1h}}
"""


@dataclass
class H:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    fake: FakeProvider
    problem: list[str]   # what the monitoring check says (empty: healthy)

    async def down(self, member: str, status: str = "firing") -> None:
        response = await self.client.post("/api/v1/alerts", json=body(alert(
            "InstanceDown", status=status, alertscaler_member=member)), headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text

    async def decisions(self, **params: str) -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/decisions",
                                                               params={"group": "web", **params})).json()
        return data

    async def reasons(self) -> list[str]:
        return [str(d["reason"]) for d in reversed(await self.decisions())]

    def ids(self) -> list[str]:
        return [m.id for m in self.fake.members()]

    async def window(self) -> None:
        """Let the batch window close and everything due run."""
        self.clock.advance(21)
        await self.engine.run_once()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[H]:
    policy = load_policy(POLICY, base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    clock = Clock()
    fake = FakeProvider(FakeConfig(type="fake"), ProviderContext("web", tmp_path))
    fake.clock = clock
    fake._resize(4)
    clock.advance(3600)  # the members are past their grace period
    problem: list[str] = []
    engine = build_engine(policy, store, {"web": fake}, clock=clock, monitoring=lambda: problem[0] if problem else None)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield H(engine, client, clock, fake, problem)
    store.close()


async def test_a_down_member_is_batched_then_replaced(h: H) -> None:
    victim = h.ids()[1]
    await h.down(victim)
    assert await h.reasons() == ["batched"]
    h.clock.advance(10)
    await h.engine.run_once()  # the window is still open
    assert h.fake.heal_calls == [] and await h.reasons() == ["batched"]
    await h.window()
    assert h.fake.heal_calls == [("replace", victim)]
    assert victim not in h.ids() and len(h.ids()) == 4
    healed = (await h.decisions(reason="healed"))[0]
    assert (healed["outcome"], healed["policy"], healed["trigger"]) == ("acted", "heal", "health")
    (action,) = (await h.client.get("/api/v1/actions")).json()
    assert (action["kind"], action["state"], action["targets"][0]["member_id"]) == ("heal", "succeeded", victim)
    metrics = (await h.client.get("/metrics")).text
    assert 'alertscaler_heals_total{action="replace",alertscaler_group="web"} 1.0' in metrics


async def test_signals_within_the_window_make_one_action_and_the_budget_holds(h: H) -> None:
    first, second = h.ids()[0], h.ids()[2]
    await h.down(first)
    h.clock.advance(5)
    await h.down(second)
    await h.window()
    assert h.fake.heal_calls == [("replace", first)]
    assert sorted(await h.reasons()) == ["batched", "batched", "healed", "over_budget"]
    assert len((await h.client.get("/api/v1/actions")).json()) == 1


async def test_a_storm_freezes_and_destroys_nothing(h: H) -> None:
    for member in h.ids()[:3]:  # 3 of 4 at once: more likely the monitoring than the members
        await h.down(member)
    await h.window()
    assert h.fake.heal_calls == []
    frozen = await h.decisions(reason="frozen")
    assert len(frozen) == 3 and all("nothing destroyed" in str(d["message"]) for d in frozen)
    assert (await h.client.get("/api/v1/actions")).json() == []


async def test_a_sick_monitoring_path_freezes(h: H) -> None:
    h.problem.append("Prometheus at http://127.0.0.1:9090 unreachable (ConnectError)")
    await h.down(h.ids()[0])
    await h.window()
    assert h.fake.heal_calls == []
    (frozen,) = await h.decisions(reason="frozen")
    assert "Prometheus" in str(frozen["message"])


async def test_a_flapping_slot_is_quarantined_and_the_size_restored(h: H) -> None:
    member = h.ids()[0]
    for _ in range(2):  # healed twice: each replacement takes the slot over
        before = set(h.ids())
        await h.down(member)
        await h.window()
        (member,) = set(h.ids()) - before  # the replacement, in the same slot
        h.clock.advance(61)  # past the replacement's grace period
    await h.down(member)
    await h.window()
    assert [c[0] for c in h.fake.heal_calls] == ["replace", "replace", "quarantine"]
    assert [m.id for m in h.fake.quarantined] == [member]
    assert len(h.ids()) == 4 and member not in h.ids()  # out of the group, and the size restored
    (decision,) = await h.decisions(reason="quarantined")
    assert "healed 2 times" in str(decision["message"])


async def test_a_member_within_its_grace_period_is_left_alone(h: H) -> None:
    h.fake._resize(5)  # a new member, created now
    await h.down(h.ids()[-1])
    await h.window()
    assert h.fake.heal_calls == []
    (decision,) = await h.decisions(reason="grace")
    assert "grace period" in str(decision["message"])


async def test_the_providers_own_status_signals_a_failed_member(h: H) -> None:
    victim = h.ids()[3]
    h.fake.mark_failed(victim)
    await h.engine.live_status("web")
    await h.engine.live_status("web")  # a repeat while pending counts once
    await h.window()
    assert h.fake.heal_calls == [("replace", victim)]
    (healed,) = await h.decisions(reason="healed")
    assert healed["alerts"] == [{"member": victim, "outcome": "heal", "sources": ["status"]}]


async def test_unknown_and_resolved_heal_alerts_act_on_nothing(h: H) -> None:
    await h.down("not-a-member")
    await h.down(h.ids()[0], status="resolved")
    await h.window()
    assert h.fake.heal_calls == []
    assert sorted(await h.reasons()) == ["batched", "resolved", "unknown_member"]


def test_check_refuses_a_heal_action_the_provider_lacks(tmp_path: Path) -> None:
    text = POLICY.replace("provider: {type: fake}", "provider: {type: exec, command: [/bin/true]}")
    with pytest.raises(ConfigError) as err:
        load_policy(text, base_dir=tmp_path)
    (problem,) = err.value.problems
    assert problem.path == "groups.web.heal.action" and "cannot replace" in problem.message
