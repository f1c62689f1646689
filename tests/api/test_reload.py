"""Reloading the policy file in a running service (``POST /-/reload``, ``act.reloading``): the service as
``service.build`` makes it from a file, its engine started (timers, workers, heartbeat), a real SQLite store,
``exec`` groups whose command waits for a gate file the test creates (an action that runs as long as the test
wants, no sleeps) and ``fake`` groups; and (``served``: the test's clock) what the timer loops remember."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.config import load_policy, load_policy_file
from alertscaler.service import Service, build
from tests.api.conftest import served
from tests.support.waiting import until

TOKEN = "reload-token-123"
NEW_TOKEN = "reload-token-456"


def gated(gate: Path, says: str) -> str:
    """An exec provider whose command waits for ``gate`` to exist, then prints ``says``."""
    script = f'while [ ! -e "{gate}" ]; do sleep 0.01; done; echo {says}'
    return f"{{type: exec, command: [/bin/sh, -c, '{script}'], timeout: 60s}}"


def policy(tmp: Path, groups: str, token: str = TOKEN, listen: str = "127.0.0.1:18080") -> str:
    return f"""
server:
  listen: {listen}
  auth: {{bearer_token: {token}}}
  state_dir: {tmp / "state"}
groups:
{groups}"""


def group(name: str, provider: str, max_size: int = 5) -> str:
    return f"""  {name}:
    provider: {provider}
    min_size: 0
    max_size: {max_size}
    desired: 1
"""


@dataclass
class Running:
    service: Service
    client: httpx.AsyncClient
    file: Path

    async def post(self, path: str, body: Any = None, token: str = TOKEN) -> httpx.Response:
        return await self.client.post(path, json={} if body is None else body,
                                      headers={"Authorization": f"Bearer {token}"})

    async def reload(self, text: str | None = None, token: str = TOKEN) -> httpx.Response:
        if text is not None:
            self.file.write_text(text)
        return await self.post("/-/reload", token=token)

    async def scale(self, name: str, desired: int) -> int:
        response = await self.post(f"/api/v1/groups/{name}/scale", {"desired": desired})
        assert response.status_code == 202, response.text
        action: int = response.json()["action_id"]
        return action

    async def action(self, action_id: int) -> dict[str, Any]:
        response = await self.client.get("/api/v1/actions", params={"limit": 1000})
        (found,) = [a for a in response.json() if a["id"] == action_id]
        return dict(found)

    async def in_state(self, action_id: int, state: str) -> dict[str, Any] | None:
        found = await self.action(action_id)
        return found if found["state"] == state else None

    async def gauge(self, name: str) -> float:
        text = (await self.client.get("/metrics")).text
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"{name} ")]
        return float(line.split()[1])


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    file = tmp_path / "policy.yml"
    file.write_text(policy(tmp_path, group("web", gated(tmp_path / "gate", "v1"))))
    service = build(load_policy_file(file), source=file)
    await service.engine.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as client:
            yield Running(service, client, file)
    finally:
        (tmp_path / "gate").touch()  # nothing left waiting
        await service.engine.stop(grace_s=10)
        service.store.close()


async def test_reload_adds_a_group_and_keeps_a_running_action(running: Running, tmp_path: Path) -> None:
    """web's action runs (its command waits for the gate) while a reload adds api and gives web a new command:
    api exists and is driven at once, web's running action finishes with the command it started with, the next
    one runs the new command."""
    first = await running.scale("web", 2)
    await until(lambda: running.in_state(first, "running"), timeout=10, what="web's action running")
    web_worker = running.service.engine.workers["web"]

    response = await running.reload(policy(tmp_path, group("web", "{type: exec, command: [/bin/echo, v2]}", 6)
                                           + group("api", "{type: fake}")))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["added"], body["changed"], body["removed"], body["new_providers"]) == (
        "reloaded", ["api"], ["web"], [], ["web"])
    assert body["message"] == "groups added: api; changed: web (new provider)"
    engine = running.service.engine
    assert engine.workers["web"] is web_worker and web_worker.busy  # the same worker, still on its action
    assert (await running.client.get("/api/v1/groups/api")).status_code == 200
    assert engine.ownership.drives("api", engine.clock())
    api_action = await running.scale("api", 3)
    done = await until(lambda: running.in_state(api_action, "succeeded"), timeout=10, what="api's action")
    assert done["desired"] == 3
    assert (await running.action(first))["state"] == "running"  # web's command still waits for its gate
    second = await running.scale("web", 3)  # queued behind the running one: it will run the new command

    (tmp_path / "gate").touch()

    finished = await until(lambda: running.in_state(first, "succeeded"), timeout=10, what="web's first action")
    assert finished["result"] == "exit 0: v1"  # the command it started with
    after = await until(lambda: running.in_state(second, "succeeded"), timeout=10, what="web's next action")
    assert after["result"] == "exit 0: v2"  # the new provider
    assert await running.gauge("alertscaler_config_last_reload_successful") == 1


async def test_a_removed_group_finishes_its_action_and_its_queued_ones_fail(running: Running,
                                                                            tmp_path: Path) -> None:
    await running.reload(policy(tmp_path, group("web", gated(tmp_path / "gate", "v1"))
                                + group("api", "{type: fake}")))
    first = await running.scale("web", 2)
    await until(lambda: running.in_state(first, "running"), timeout=10, what="web's action running")
    queued = await running.scale("web", 3)

    response = await running.reload(policy(tmp_path, group("api", "{type: fake}")))

    assert (response.status_code, response.json()["removed"]) == (200, ["web"])
    assert (await running.client.get("/api/v1/groups/web")).status_code == 404
    assert (await running.action(first))["state"] == "running"
    (tmp_path / "gate").touch()
    await until(lambda: running.in_state(first, "succeeded"), timeout=10, what="web's running action")
    failed = await until(lambda: running.in_state(queued, "failed"), timeout=10, what="web's queued action")
    assert "removed from the policy file" in failed["error"]
    assert not running.service.engine.draining


@pytest.mark.parametrize(("edit", "reason", "says"), [
    ("invalid", "invalid", ["groups.web.max_size", "groups.api.provider.type"]),
    ("needs-restart", "needs_restart", ["needs a restart: server.listen changed"]),
    ("not-yaml", "invalid", ["not valid YAML"]),
], ids=["invalid", "needs-restart", "not-yaml"])
async def test_a_refused_file_keeps_the_running_configuration(running: Running, tmp_path: Path, edit: str,
                                                              reason: str, says: list[str]) -> None:
    engine = running.service.engine
    before = engine.policy
    text = {
        "invalid": policy(tmp_path, group("web", gated(tmp_path / "gate", "v1"), max_size=-1)
                          + group("api", "{type: nosuch}")),
        "needs-restart": policy(tmp_path, group("web", gated(tmp_path / "gate", "v1")) + group("api", "{type: fake}"),
                                listen="127.0.0.1:18081"),
        "not-yaml": "groups: [",
    }[edit]

    response = await running.reload(text)

    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["status"], body["reason"]) == ("refused", reason)
    shown = " ".join([body["error"], *(f"{p['path']}: {p['message']}" for p in body["problems"])])
    for part in says:
        assert part in shown
    assert engine.policy is before
    assert [g["name"] for g in (await running.client.get("/api/v1/groups")).json()] == ["web"]
    assert await running.gauge("alertscaler_config_last_reload_successful") == 0
    fixed = await running.reload(policy(tmp_path, group("web", gated(tmp_path / "gate", "v1"))
                                        + group("api", "{type: fake}")))
    assert (fixed.status_code, fixed.json()["added"]) == (200, ["api"])
    assert await running.gauge("alertscaler_config_last_reload_successful") == 1


async def test_reload_needs_credentials_and_the_new_ones_apply_after_it(running: Running, tmp_path: Path) -> None:
    assert (await running.reload(token="wrong-token-000")).status_code == 401
    before = await running.gauge("alertscaler_config_last_reload_success_timestamp_seconds")

    response = await running.reload(policy(tmp_path, group("web", gated(tmp_path / "gate", "v1")), token=NEW_TOKEN))

    assert (response.status_code, response.json()["settings"]) == (200, ["server.auth"])
    assert (await running.post("/api/v1/pause", token=TOKEN)).status_code == 401
    assert (await running.post("/api/v1/pause", token=NEW_TOKEN)).status_code == 200
    assert await running.gauge("alertscaler_config_last_reload_success_timestamp_seconds") >= before
    unchanged = await running.reload(token=NEW_TOKEN)
    assert (unchanged.status_code, unchanged.json()["message"]) == (200, "no change")


TRACKED = """
server: {{auth: {{bearer_token: {token}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: {max_size}
    desired: 2
    track: {{metrics: [{{query: 'load', target: 100}}], interval: 15s}}
{extra}"""


@pytest.mark.parametrize(("max_size", "evaluated_at_once"), [(10, False), (12, True)],
                         ids=["unchanged-keeps-its-memory", "changed-starts-afresh"])
async def test_tracking_memory_across_a_reload(tmp_path: Path, max_size: int, evaluated_at_once: bool) -> None:
    """A group a reload leaves unchanged keeps what target tracking remembers (its next evaluation, its
    stabilization window); a changed one starts as after a restart: evaluated at once."""
    asked: list[str] = []

    def metric(query: str) -> float:
        asked.append(query)
        return 100.0

    async with served(tmp_path, TRACKED.format(token=TOKEN, max_size=10, extra=""), query=metric) as s:
        await s.engine.run_once()
        assert len(asked) == 1
        new = load_policy(TRACKED.format(token=TOKEN, max_size=max_size, extra="""  api:
    provider: {type: fake}
    min_size: 0
    max_size: 3
"""), base_dir=tmp_path)
        assert s.engine.reloader is not None

        done = await s.engine.reloader.apply(new, "test")

        assert done.applied and done.diff is not None and done.diff.added == ("api",)
        s.clock.advance(1)
        await s.engine.run_once()
        assert len(asked) == (2 if evaluated_at_once else 1)
        assert (await s.client.get("/api/v1/groups/api")).status_code == 200
