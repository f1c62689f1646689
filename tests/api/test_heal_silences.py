"""Silences for heal alerts, through the service in process (``fake`` provider, the test's clock) asking a REAL
Alertmanager (the Debian package, started here; alerts and silences made through its API v2, inhibition by its
own rules): a member whose heal alert is silenced or inhibited is judged ``silenced`` and not healed, the others
in the batch are; once the silence is expired, the alert sent again heals. When Alertmanager cannot be asked, heal
fails closed (``silence_unknown``) unless ``silences.when_unreachable.heal: open``; a member the provider's own
status reports failed is healed either way (not subject to silences).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from alertscaler.api.app import create_app
from alertscaler.config import load_policy
from alertscaler.demo.stack import Stack
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.fake import FakeConfig, FakeProvider
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore
from tests.api.conftest import TOKEN, Clock
from tests.support.waiting import wait_for
from tests.support.webhooks import alert, body

needs_alertmanager = pytest.mark.skipif(not shutil.which("prometheus-alertmanager"),
                                        reason="needs the Debian package prometheus-alertmanager")

AM_CONFIG = """
route: {receiver: "null", group_wait: 1h}
receivers: [{name: "null"}]
inhibit_rules:
  - source_matchers: ['alertname="HostDown"']
    target_matchers: ['alertname="InstanceDown"']
    equal: [host]
"""


def policy(am_url: str, silences: str = "") -> str:
    return f"""
server: {{auth: {{bearer_token: {TOKEN}}}}}
alertmanager: {{url: "{am_url}", timeout: 2s}}
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
      budget: 2
    {silences}
"""


class RealAlertmanager:
    """``prometheus-alertmanager`` on a free port: alerts posted and silences made through its API v2."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.alertmanager_url
        self.http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def post(self, **labels: str) -> None:
        response = self.http.post("/api/v2/alerts", json=[{"labels": labels}])
        assert response.status_code == 200, response.text

    def silence(self, **labels: str) -> str:
        now = datetime.now(UTC)
        response = self.http.post("/api/v2/silences", json={
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in labels.items()],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test", "comment": "maintenance"})
        assert response.status_code == 200, response.text
        silence_id: str = response.json()["silenceID"]
        return silence_id

    def expire(self, silence_id: str) -> None:
        assert self.http.delete(f"/api/v2/silence/{silence_id}").status_code == 200

    def status_of(self, member: str) -> dict[str, Any] | None:
        alerts = self.http.get("/api/v2/alerts", params={"filter": f'alertscaler_member="{member}"'}).json()
        return alerts[0]["status"] if alerts else None


@pytest.fixture(scope="module")
def real_am(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAlertmanager]:
    workdir = tmp_path_factory.mktemp("am")
    (workdir / "alertmanager.yml").write_text(AM_CONFIG)
    with Stack(workdir / "stack", handle_signals=False, start_timeout=30) as stack:
        stack.start_alertmanager(workdir / "alertmanager.yml")
        am = RealAlertmanager(stack)
        yield am
        am.http.close()


@dataclass
class H:
    client: httpx.AsyncClient
    clock: Clock
    fake: FakeProvider
    run_once: Any
    live_status: Any

    async def down(self, member: str, host: str = "") -> None:
        down = (alert("InstanceDown", alertscaler_member=member, host=host) if host
                else alert("InstanceDown", alertscaler_member=member))
        response = await self.client.post("/api/v1/alerts", json=body(down),
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text

    async def window(self) -> None:
        """The batch window closes; the judge runs (it asks Alertmanager, a blocking call: in a thread)."""
        self.clock.advance(21)
        await self.run_once()

    async def decided(self) -> dict[str, tuple[str, str]]:
        """member -> (reason, message) of the heal judgements (the batched intake left out)."""
        data = (await self.client.get("/api/v1/decisions", params={"group": "web", "limit": 100})).json()
        return {d["alerts"][0]["member"]: (d["reason"], d["message"]) for d in reversed(data)
                if d["reason"] != "batched" and d["alerts"] and "member" in d["alerts"][0]}

    def ids(self) -> list[str]:
        return [m.id for m in self.fake.members()]


@asynccontextmanager
async def served(tmp_path: Path, text: str) -> AsyncIterator[H]:
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    clock = Clock()
    fake = FakeProvider(FakeConfig(type="fake"), ProviderContext("web", tmp_path))
    fake.clock = clock
    fake._resize(4)
    clock.advance(3600)  # the members are past their grace period
    engine = build_engine(load_policy(text, base_dir=tmp_path), store, {"web": fake}, clock=clock,
                          monitoring=lambda: None)
    app = create_app(engine, manage_engine=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield H(client, clock, fake, engine.run_once, engine.live_status)
    finally:
        await engine.stop()
        store.close()


@needs_alertmanager
async def test_a_silenced_heal_alert_does_not_heal_until_sent_again_after_the_silence(
        tmp_path: Path, real_am: RealAlertmanager) -> None:
    async with served(tmp_path, policy(real_am.url)) as h:
        silenced_member, other = h.ids()[1], h.ids()[2]
        for member in (silenced_member, other):
            real_am.post(alertname="InstanceDown", alertscaler_member=member)
        silence = real_am.silence(alertscaler_member=silenced_member)
        await h.down(silenced_member)
        await h.down(other)
        await h.window()
        decided = await h.decided()
        assert decided[silenced_member][0] == "silenced" and f"silenced by {silence}" in decided[silenced_member][1]
        assert decided[other][0] == "healed"
        assert h.fake.heal_calls == [("replace", other)]

        real_am.expire(silence)  # the member is still down: Alertmanager sends its alert again
        await h.down(silenced_member)
        await h.window()
        assert (await h.decided())[silenced_member][0] == "healed"
        assert h.fake.heal_calls == [("replace", other), ("replace", silenced_member)]


@needs_alertmanager
async def test_an_inhibited_heal_alert_does_not_heal(tmp_path: Path, real_am: RealAlertmanager) -> None:
    async with served(tmp_path, policy(real_am.url)) as h:
        member = h.ids()[3]
        real_am.post(alertname="HostDown", host="rack-7")
        real_am.post(alertname="InstanceDown", alertscaler_member=member, host="rack-7")
        await anyio.to_thread.run_sync(lambda: wait_for(
            lambda: (real_am.status_of(member) or {}).get("inhibitedBy"), timeout=15,
            what="Alertmanager inhibiting the InstanceDown alert"))
        await h.down(member, host="rack-7")
        await h.window()
        reason, message = (await h.decided())[member]
        assert reason == "silenced" and "inhibited by" in message
        assert h.fake.heal_calls == []


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed


UNREACHABLE = [
    # id, silences setting, how the member is signalled -> reason, in the message, healed?
    ("alert-fails-closed-by-default", "", "alert", "silence_unknown", "heal fails closed", False),
    ("alert-set-open", "silences: {when_unreachable: {heal: open}}", "alert", "healed", "heal fails open", True),
    ("respect-false-never-asks", "silences: {respect: false}", "alert", "healed", "replace", True),
    ("status-is-not-subject-to-silences", "", "status", "healed", "provider reports failed", True),
]


@pytest.mark.parametrize(("setting", "signal", "reason", "said", "healed"), [c[1:] for c in UNREACHABLE],
                         ids=[c[0] for c in UNREACHABLE])
async def test_alertmanager_unreachable(tmp_path: Path, setting: str, signal: str, reason: str, said: str,
                                        healed: bool) -> None:
    async with served(tmp_path, policy(closed_port(), setting)) as h:
        member = h.ids()[0]
        if signal == "alert":
            await h.down(member)
        else:
            h.fake.mark_failed(member)
            await h.live_status("web")
        await h.window()
        got, message = (await h.decided())[member]
        assert (got, said in message) == (reason, True), message
        assert h.fake.heal_calls == ([("replace", member)] if healed else [])
