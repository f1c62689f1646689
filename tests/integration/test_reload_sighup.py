"""SIGHUP to a real ``alertscaler serve`` (HTTPS): one signal re-reads the TLS certificate and the policy file; a bad
file is refused and the running configuration stays; ``alertscaler reload`` does the same over the API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import alertscaler
from tests.api.test_tls import make_pair
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration]
TOKEN = "sighup-token-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _child_env() -> dict[str, str]:
    src = str(Path(alertscaler.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}


def policy(port: int, state: Path, groups: list[str], max_size: int = 3) -> str:
    body = "".join(f"  {name}:\n    provider: {{type: fake}}\n    min_size: 0\n    max_size: {max_size}\n"
                   for name in groups)
    return f"""
server:
  listen: 127.0.0.1:{port}
  auth: {{bearer_token: {TOKEN}}}
  state_dir: {state}
  tls: {{cert_file: tls/server.crt, key_file: tls/server.key}}
groups:
{body}"""


@dataclass
class Serving:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    trusted: ssl.SSLContext

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def write(self, groups: list[str], max_size: int = 3) -> None:
        (self.dir / "policy.yml").write_text(policy(self.port, self.dir / "state", groups, max_size))

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", verify=self.trusted, timeout=5,
                         headers={"Authorization": f"Bearer {TOKEN}"})

    def groups(self) -> list[str]:
        return sorted(g["name"] for g in self.get("/api/v1/groups").json())

    def gauge(self, name: str) -> float:
        (line,) = [ln for ln in self.get("/metrics").text.splitlines() if ln.startswith(f"{name} ")]
        return float(line.split()[1])

    def log(self) -> str:
        return (self.dir / "service.log").read_text()

    def wait(self, predicate: Callable[[], object], what: str) -> object:
        return wait_for(predicate, timeout=20, what=what, retry_on=(httpx.HTTPError,), abort=self._exited,
                        details=lambda: self.log()[-3000:])

    def _exited(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"the service exited with {code}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alertscaler.cli", *args, "-c", str(self.dir / "policy.yml")],
                              capture_output=True, text=True, timeout=30, env=_child_env(), cwd=self.dir)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    first, first_key = make_pair(tmp_path / "ca", "first")
    second, _ = make_pair(tmp_path / "ca", "second")
    (tmp_path / "tls").mkdir()
    shutil.copy(first, tmp_path / "tls" / "server.crt")
    shutil.copy(first_key, tmp_path / "tls" / "server.key")
    trusted = ssl.create_default_context(cafile=str(first))
    trusted.load_verify_locations(str(second))
    port = _free_port()
    (tmp_path / "policy.yml").write_text(policy(port, tmp_path / "state", ["web"]))
    log = open(tmp_path / "service.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen([sys.executable, "-m", "alertscaler.cli", "serve", "-c", str(tmp_path / "policy.yml")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_child_env())
    served = Serving(tmp_path, port, proc, trusted)
    try:
        served.wait(lambda: served.get("/readyz").status_code == 200, "readyz")
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def served_certificate(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port))


def test_sighup_reloads_the_certificate_and_the_policy_file_and_keeps_it_when_bad(serving: Serving) -> None:
    tls = serving.dir / "tls"
    first = (tls / "server.crt").read_text()
    assert served_certificate(serving.port).strip() == first.strip()
    assert serving.groups() == ["web"]
    shutil.copy(serving.dir / "ca" / "second.crt", tls / "server.crt")
    shutil.copy(serving.dir / "ca" / "second.key", tls / "server.key")
    serving.write(["web", "api"])

    serving.proc.send_signal(signal.SIGHUP)

    serving.wait(lambda: serving.groups() == ["api", "web"], "the group added by the reload")
    assert served_certificate(serving.port).strip() == (tls / "server.crt").read_text().strip()
    assert serving.gauge("alertscaler_config_last_reload_successful") == 1
    assert "policy reloaded (SIGHUP): groups added: api" in serving.log()
    assert "TLS certificate reloaded" in serving.log()

    serving.write(["web", "api", "db"], max_size=-1)  # invalid: refused whole
    serving.proc.send_signal(signal.SIGHUP)

    serving.wait(lambda: serving.gauge("alertscaler_config_last_reload_successful") == 0, "the refusal")
    assert serving.groups() == ["api", "web"]
    refused = [ln for ln in serving.log().splitlines() if "policy reload (SIGHUP) refused" in ln]
    assert len(refused) == 1 and "groups.db.max_size" in refused[0] and "groups.web.max_size" in refused[0]


def test_the_reload_command(serving: Serving) -> None:
    serving.write(["web"], max_size=-1)
    refused = serving.cli("reload")
    assert refused.returncode == 1, refused
    assert "groups.web.max_size" in refused.stderr and "not sent" in refused.stderr

    serving.write(["web", "api"])
    done = serving.cli("reload")

    assert (done.returncode, done.stdout.strip()) == (0, "reloaded: groups added: api"), done
    assert serving.groups() == ["api", "web"]
    again = serving.cli("reload", "--json")
    assert again.returncode == 0 and '"message": "no change"' in again.stdout
