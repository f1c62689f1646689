"""A Heat signal answered with an error is verified, never blindly retried (at most once), against a REAL Heat 27.

A small forwarding proxy of ours sits between the provider and Heat. It passes everything through, except a
scaling signal: either Heat gets it and acts, but the answer is replaced by a 500 (as Heat does when it fails
after building the member), or Heat never gets it and the proxy answers 500 itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from alertscaler.model.errors import TemporaryProviderError
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.openstack.heat.provider import HeatConfig, HeatProvider
from tests.integration.heat_fixtures import HeatServer, HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]


class _Proxy(ThreadingHTTPServer):
    upstream: str
    signal_mode: str  # "forward-then-500" or "500-only"
    signals: int


class _Handler(BaseHTTPRequestHandler):
    server: _Proxy

    def log_message(self, *args: object) -> None:
        pass

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        is_signal = self.command == "POST" and self.path.rstrip("/").endswith("/signal")
        if is_signal:
            self.server.signals += 1
        if not (is_signal and self.server.signal_mode == "500-only"):
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = httpx.request(self.command, self.server.upstream + self.path, headers=headers, content=body,
                                   timeout=60)
            if not is_signal:
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)
                return
        payload = b'{"code": 500, "title": "Internal Server Error", "explanation": "injected by the test proxy"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay


@pytest.fixture
def proxy(heat: HeatServer) -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _Handler)
    server.upstream, server.signal_mode, server.signals = heat.root_url, "forward-then-500", 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _provider(proxy: _Proxy, stack: HeatStack, state: Path) -> HeatProvider:
    port = proxy.server_address[1]
    config = HeatConfig.model_validate({
        "type": "openstack-heat", "stack": stack.name, "poll_interval": "100ms", "decline_after": "2s",
        "timeout": "60s",
        "auth": {"auth_type": "none", "endpoint_override": {"orchestration": f"http://127.0.0.1:{port}/v1/admin"}}})
    return HeatProvider(config, ProviderContext(group="web", state_dir=state))


def test_a_signal_heat_acted_on_but_answered_500_is_verified_as_done(
        proxy: _Proxy, heat_stacks: Callable[..., HeatStack], tmp_path: Path) -> None:
    stack = heat_stacks({"cooldown": 0})
    provider = _provider(proxy, stack, tmp_path)
    try:
        result = provider.scale(ScaleRequest(group="web", from_capacity=1, desired=2, action_id=501, decision_id=1))
    finally:
        provider.close()
    assert "asg 1 -> 2" in result and "verified: Heat acted although the signal was answered with an error" in result
    assert stack.current_size() == 2
    assert proxy.signals == 1  # signalled once, never re-sent
    assert len(stack.events(resource_name="scaleup_policy", resource_action="SIGNAL")) == 1


def test_a_signal_heat_never_got_stays_a_temporary_error(
        proxy: _Proxy, heat_stacks: Callable[..., HeatStack], tmp_path: Path) -> None:
    stack = heat_stacks({"cooldown": 0})
    proxy.signal_mode = "500-only"
    provider = _provider(proxy, stack, tmp_path)
    try:
        with pytest.raises(TemporaryProviderError, match="HTTP 500"):
            provider.scale(ScaleRequest(group="web", from_capacity=1, desired=2, action_id=502, decision_id=1))
    finally:
        provider.close()
    assert stack.current_size() == 1
    assert proxy.signals == 1
    assert stack.events(resource_name="scaleup_policy", resource_action="SIGNAL") == []
