"""The real pipeline on one machine, for end-to-end tests: Prometheus and Alertmanager (Debian packages)
configured by ``alertscaler render``'s own output, alertscaler with the ``local`` provider, and a small
"control" exporter whose values the test sets (a real scrape target for alerts the test switches on/off).
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alertscaler.confgen import render_all, write_files
from alertscaler.config import load_policy
from alertscaler.demo.stack import Stack
from tests.support.waiting import wait_for

TOKEN = "e2e-token-0123456789"

needs_stack = pytest.mark.skipif(
    not all(shutil.which(b) for b in ("prometheus", "prometheus-alertmanager")),
    reason="needs the Debian packages prometheus and prometheus-alertmanager (apt-get install -y prometheus "
           "prometheus-alertmanager; .ci/run installs them)",
)


class ControlExporter:
    """``control_value{name="..."} V`` at /metrics, values set by the test."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = "".join(f'control_value{{name="{k}"}} {v}\n' for k, v in sorted(exporter.values.items()))
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def set(self, name: str, value: float) -> None:
        self.values[name] = value

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Pipeline:
    """Stack + generated config + control exporter. ``policy`` is a policy file body WITHOUT ``server:``;
    ``$ALERTMANAGER_URL`` in it becomes the stack's Alertmanager (for ``alertmanager.url``)."""

    def __init__(self, tmp: Path, policy: str, reevaluate_interval: str = "1s") -> None:
        self.tmp = tmp
        self.control = ControlExporter()
        self.stack = Stack(tmp / "stack", handle_signals=False, start_timeout=60)
        state = tmp / "state"
        token_file = tmp / "token"
        token_file.write_text(TOKEN)
        self.policy_file = tmp / "policy.yml"
        self.policy_file.write_text(
            f"server:\n  listen: 127.0.0.1:{self.stack.alertscaler_port}\n  auth: {{bearer_token: {TOKEN}}}\n"
            f"  state_dir: {state}\n  reevaluate_interval: {reevaluate_interval}\n"
            f"prometheus: {{url: \"{self.stack.prometheus_url}\"}}\n"
            + policy.replace("$ALERTMANAGER_URL", self.stack.alertmanager_url))
        parsed = load_policy(self.policy_file.read_text(), base_dir=tmp)
        files = render_all(parsed.render_input(str(self.policy_file), str(token_file), self.stack.alertmanager_url))
        gen = tmp / "generated"
        write_files(gen, files)
        prom = yaml.safe_load((gen / "prometheus.yml").read_text())
        prom["scrape_configs"].append({"job_name": "control", "static_configs": [{"targets": [self.control.address]}]})
        (gen / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))
        self.generated = gen
        self.http = httpx.Client(base_url=self.stack.alertscaler_url, timeout=10, trust_env=False)

    def __enter__(self) -> Pipeline:
        self.stack.open()
        try:  # receiver first, so that no alert is sent to a process that is not there yet
            self.stack.start_alertscaler(self.policy_file)
            self.stack.start_alertmanager(self.generated / "alertmanager.yml")
            self.stack.start_prometheus(self.generated / "prometheus.yml")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.stack.close()
        self.control.close()

    def restart_alertscaler(self) -> None:
        """Stop alertscaler (SIGTERM, a clean stop) and start it again on the same policy file and store."""
        self.stack.children["alertscaler"].stop()
        del self.stack.children["alertscaler"]  # a stopped child is not a dead one (``wait`` aborts on those)
        self.stack.start_alertscaler(self.policy_file)

    # --- reading state ----------------------------------------------------------------------------------
    def group(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(f"/api/v1/groups/{name}").json()
        return data

    def decisions(self, **params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.http.get("/api/v1/decisions", params={"limit": 1000, **params}).json()
        return list(reversed(data))  # oldest first

    def actions(self, **params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.http.get("/api/v1/actions", params={"limit": 1000, **params}).json()
        return list(reversed(data))

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.stack.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def metrics(self) -> str:
        return self.http.get("/metrics").text

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """``wait_for`` ``predicate``: gives up at once when a child of the stack died; a timeout shows
        alertscaler's log."""
        return wait_for(predicate, timeout=timeout, what=what, interval=0.25, abort=self._death,
                        details=lambda: f"alertscaler log:\n{self.stack.children['alertscaler'].log_tail()}")

    def _death(self) -> str | None:
        dead = self.stack.dead()
        return f"{dead[0].name} died: {dead[0].log_tail()}" if dead else None


def breakdown(decisions: list[dict[str, Any]]) -> str:
    """The reaction-time table the e2e suite prints: alert start → arrival → decision → provider call."""
    lines = [f"{'decision':>8} {'group':<6} {'from→to':<7} {'trigger':<12} {'alert→arrival':>14} "
             f"{'arrival→decision':>17} {'decision→call':>14} {'arrival→call':>13}  (ms)"]
    for d in decisions:
        if d["outcome"] != "acted":
            continue
        t = d["timing_ms"]

        def ms(key: str, t: dict[str, Any] = t) -> str:
            return "-" if t[key] is None else f"{t[key]:.1f}"

        lines.append(f"{d['id']:>8} {d['group']:<6} {d['from_capacity']}→{d['to_capacity']:<5} {d['trigger']:<12} "
                     f"{ms('alert_to_arrival'):>14} {ms('arrival_to_decision'):>17} "
                     f"{ms('decision_to_provider_call'):>14} {ms('arrival_to_provider_call'):>13}")
    return "\n".join(lines)
