"""Auto-scale by aspect on real providers (issue 16 item 5): Tacker's ``/alert/auto_scaling`` alerts of a VNF's
aspect scale, through the service in process, a Deployment on the Kubernetes API stand-in
(``tests/support/kubernetes_standin.py``, the real ``kubernetes`` client talking to it) and real processes of the
``local`` provider: one step of the aspect = ``step`` instances, the cooldown holds a second SCALE_OUT,
``min_size`` bounds a SCALE_IN; every decision recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.config import load_policy
from alertscaler.providers.base import Provider
from alertscaler.service import build_engine, create_provider
from alertscaler.store.sql import SqlStore
from tests.api.conftest import TOKEN, Clock
from tests.support.kubernetes_standin import KubernetesStandin
from tests.support.webhooks import alert, body

pytestmark = pytest.mark.integration

VNF = "3721ab69-3f33-44bc-85f1-f416ad1b765e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def policy(provider: str) -> str:
    return f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
tacker:
  aspects: [{{vnf_instance_id: {VNF}, aspect_id: VDU1_aspect, group: vdu1, step: 2, cooldown: 60s}}]
groups:
  vdu1:
    provider: {provider}
    min_size: 1
    max_size: 5
    drain: 0s
"""


@dataclass
class K:
    api: KubernetesStandin | None
    provider: Provider
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock

    def replicas(self) -> int:
        if self.api is not None:
            return int(self.api.workload("deployments", "vdu1")["spec"].get("replicas", 0))
        return len(self.provider.status().members)

    async def scale(self, kind: str, status: str = "firing", starts: str | None = None) -> None:
        a: dict[str, Any] = alert(f"Scale{kind}", status=status, receiver_type="tacker", function_type="auto_scale",
                                  vnf_instance_id=VNF, aspect_id="VDU1_aspect", auto_scale_type=kind)
        if starts is not None:
            a["startsAt"] = starts
        response = await self.client.post("/alert/auto_scaling", json=body(a, receiver="auto-scale"), headers=AUTH)
        assert response.status_code == 200, response.text
        await self.engine.run_once()

    async def reasons(self) -> list[tuple[str, str, str]]:
        rows = (await self.client.get("/api/v1/decisions", params={"group": "vdu1"})).json()
        return [(d["policy"], d["outcome"], d["reason"]) for d in reversed(rows)]


@pytest.fixture(params=["kubernetes", "local"])
async def k(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[K]:
    with KubernetesStandin() as api:
        api.add_deployment("vdu1", replicas=1)
        config = (f"{{type: kubernetes, name: vdu1, api_url: '{api.url}', token: {api.token}, port: 8080, "
                  "ready_timeout: 10s, poll_interval: 10ms, request_timeout: 5s}" if request.param == "kubernetes"
                  else "{type: local}")
        loaded = load_policy(policy(config), base_dir=tmp_path)
        store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
        store.migrate()
        clock = Clock()
        provider = create_provider(loaded, "vdu1")
        engine = build_engine(loaded, store, {"vdu1": provider}, clock=clock, monitoring=lambda: None)
        app = create_app(engine, manage_engine=False)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                if request.param == "local":
                    await engine.run_once()  # the reconcile to min_size: one process
                yield K(api if request.param == "kubernetes" else None, provider, engine, client, clock)
        finally:
            await engine.stop()
            provider.close()
            store.close()


async def test_scale_out_and_in_by_aspect_on_a_deployment(k: K) -> None:
    await k.scale("SCALE_OUT")
    assert k.replicas() == 3  # one step of VDU1_aspect = 2 Pods
    k.clock.advance(30)
    await k.scale("SCALE_OUT", starts="2026-11-21T12:00:30Z")  # fires again inside the cooldown
    assert k.replicas() == 3
    k.clock.advance(61)
    await k.scale("SCALE_OUT", status="resolved", starts="2026-11-21T12:00:30Z")
    await k.scale("SCALE_IN")
    assert k.replicas() == 1
    k.clock.advance(61)
    await k.scale("SCALE_IN", starts="2026-11-21T12:03:00Z")  # at min_size: bounded
    assert k.replicas() == 1
    reasons = await k.reasons()
    acted = [r for r in reasons if r[1] == "acted"]
    assert [r[0] for r in acted] == ["scale_out", "scale_in"]
    assert ("scale_out", "skipped", "cooldown") in reasons
    assert reasons[-1][:2] == ("scale_in", "skipped")
    if k.api is None:
        return
    patches = [r for r in k.api.requests if r.method == "PATCH" and r.path.endswith("/deployments/vdu1/scale")]
    assert [p.body["spec"]["replicas"] for p in patches] == [3, 1]
