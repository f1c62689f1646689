"""The whole service as a real process, with the ``local`` provider's real processes.

A real-shaped webhook starts instances; a scale-in alert stops them; ``kill -9`` of alertscaler in the
middle of an action loses no instance and doubles none.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import alertscaler
from alertscaler.providers.common.processes import processes_with_env
from tests.support.waiting import wait_for
from tests.support.webhooks import alert, body

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # each test: a real service, 5-11 s
TOKEN = "integration-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _child_env() -> dict[str, str]:
    """Our environment, with the package importable from the child's working directory."""
    src = str(Path(alertscaler.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}


@dataclass
class Service:
    dir: Path
    url: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir / "service.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alertscaler.cli", "serve", "-c", str(self.dir / "policy.yml")],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, env=_child_env())
        self.wait(lambda: httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200, "readyz")

    def wait(self, predicate: Callable[[], object], what: str, timeout: float = 30.0) -> object:
        """``wait_for`` ``predicate``, an HTTP error meaning "not yet"; gives up at once if the service exits."""
        return wait_for(predicate, timeout=timeout, what=what, retry_on=(httpx.HTTPError,), abort=self._exited)

    def _exited(self) -> str | None:
        code = None if self.proc is None else self.proc.poll()
        if code is None:
            return None
        return f"the service exited with {code}; log:\n{(self.dir / 'service.log').read_text()[-2000:]}"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def post(self, payload: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/api/v1/alerts", json=payload, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def group(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/api/v1/groups/web", timeout=10).json()
        return data

    def decisions(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/decisions", timeout=10).json()
        return data

    def settled(self, size: int) -> bool:
        actions = httpx.get(f"{self.url}/api/v1/actions", timeout=10).json()
        g = self.group()
        running = [m for m in g["members"] if m["state"] == "running"]
        return bool(g["current"] == size and len(running) == size
                    and all(a["state"] in ("succeeded", "failed") for a in actions))


def _instance_pids(state_dir: Path) -> set[int]:
    """Every live process started for this test's group, found through the environment the provider gives
    its instances — so an untracked (leaked or doubled) instance would be counted too."""
    return set(processes_with_env("ALERTSCALER_TEST_MARK", str(state_dir)))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    port = _free_port()
    state = tmp_path / "state"
    (tmp_path / "policy.yml").write_text(f"""
server:
  listen: 127.0.0.1:{port}
  auth: {{bearer_token: {TOKEN}}}
  state_dir: {state}
  reevaluate_interval: 1h
groups:
  web:
    provider:
      type: local
      env: {{ALERTSCALER_TEST_MARK: "{state}"}}
      # a slow start (1.5 s) leaves time to kill alertscaler in the middle of an action
      command: [/bin/sh, -c, "sleep 1.5; exec {sys.executable} -m alertscaler.workload --port {{port}}"]
      start_timeout: 15s
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {{matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 0s}}
    scale_in: {{matchers: ['alertname="LowLoad"'], adjustment: -1, cooldown: 0s}}
    drain: 1s                      # a scale-in's victim runs 1 s out of the targets (default: 55 s)
""")
    svc = Service(tmp_path, f"http://127.0.0.1:{port}")
    try:
        yield svc
    finally:
        svc.stop()
        for pid in _instance_pids(state):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not _instance_pids(state), timeout=10, what="instances gone")


def test_webhooks_start_and_stop_real_instances_across_kill_9(service: Service) -> None:
    state = service.dir / "state"
    service.start()
    service.wait(lambda: service.settled(1), "initial instance (reconcile 0 -> 1)")
    assert len(_instance_pids(state)) == 1

    service.post(body(alert("HighLoad", instance="a")))
    service.wait(lambda: service.settled(2), "scale out to 2")
    members = service.group()["members"]
    for m in members:  # the instances are real servers
        assert httpx.get(f"http://{m['address']}/healthz", timeout=5).status_code == 200
    pids_before = _instance_pids(state)
    assert len(pids_before) == 2

    # kill -9 alertscaler while idle: the instances are not its to lose
    service.kill9()
    assert _instance_pids(state) == pids_before
    service.start()
    service.wait(lambda: service.settled(2), "re-adopted 2")
    assert _instance_pids(state) == pids_before
    assert {m["id"] for m in service.group()["members"]} == {m["id"] for m in members}

    # kill -9 in the middle of a scale-out to 4: after the restart it converges to exactly 4
    service.post(body(alert("HighLoad", instance="b"), alert("HighLoad", instance="c")))
    service.wait(lambda: any(a["state"] == "running" for a in httpx.get(f"{service.url}/api/v1/actions").json()),
                 "action running", timeout=15)
    service.kill9()
    service.start()
    service.wait(lambda: service.settled(3), "converged after kill -9 mid-action")
    assert len(_instance_pids(state)) == 3
    recovered = [d for d in service.decisions() if d["reason"] == "scaled"]
    assert [(d["from_capacity"], d["to_capacity"]) for d in reversed(recovered)] == [(1, 2), (2, 3)]

    # the same notification again (Alertmanager retry): nothing happens
    resent = service.post(body(alert("HighLoad", instance="b"), alert("HighLoad", instance="c")))
    assert resent["duplicates"] == 2 and resent["new"] == 0

    # scale-in: a real instance really stops
    service.post(body(alert("LowLoad", instance="a")))
    service.wait(lambda: service.settled(2), "scale in to 2")
    assert len(_instance_pids(state)) == 2

    # resolved alerts never scale
    service.post(body(dict(alert("LowLoad", instance="a"), status="resolved")))
    service.wait(lambda: service.decisions()[0]["reason"] == "resolved", "resolved decision")
    assert service.settled(2)
    assert json.dumps(service.decisions()).count('"reason": "resolved"') == 1


def test_cli_against_a_running_service(service: Service, capsys: pytest.CaptureFixture[str]) -> None:
    from alertscaler.cli import EXIT_NO, EXIT_OK, main

    config = str(service.dir / "policy.yml")
    service.start()
    service.wait(lambda: service.settled(1), "initial instance")
    assert main(["scale", "-c", config, "web", "3"]) == EXIT_OK
    assert "acted (manual): manual scale 1 -> 3" in capsys.readouterr().out
    service.wait(lambda: service.settled(3), "manual scale to 3")
    assert main(["status", "-c", config]) == EXIT_OK
    table = capsys.readouterr().out
    assert "web" in table and "local" in table
    assert main(["status", "-c", config, "web", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert (data["desired"], data["current"], len(data["members"])) == (3, 3, 3)
    assert main(["decisions", "-c", config, "--json", "--reason", "manual"]) == EXIT_OK
    (decision,) = json.loads(capsys.readouterr().out)
    assert (decision["from_capacity"], decision["to_capacity"]) == (1, 3)
    assert main(["scale", "-c", config, "web", "3"]) == EXIT_OK  # no change is not a failure
    assert main(["scale", "-c", config, "nosuch", "1"]) == EXIT_NO
    assert "no group named 'nosuch'" in capsys.readouterr().err
