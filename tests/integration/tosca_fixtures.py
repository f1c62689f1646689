"""The real xOpera for the test suite: find it, and groups of the test service ``tests/tosca/service``.

Imported by ``tests/integration/test_tosca_provider.py`` and by the contract suite's ``tosca`` factory
(``tests/contract/provider_fixtures.py``), hence PYTEST_DONT_REWRITE (``pytest.fail``, not ``assert``).

opera is ``ALERTSCALER_OPERA`` (path of an ``opera`` executable), else ``<repo>/.opera-venv/bin/opera``
(``make opera-venv``). Without it the tests that need it are skipped with a hint, unless
``ALERTSCALER_REQUIRE_OPERA=1`` (set by ``.ci/run``): then they fail.

A :class:`ToscaGroup` is one deployment of the test service: its alertscaler state directory, a run directory
for the servers' pid files and logs, and a block of free ports (server ``web-I`` listens on
``127.0.0.1:base_port+I``). Every server carries ``ALERTSCALER_TEST_RUN=<RUN_MARKER>`` in its environment (the
provider's ``env`` reaches opera, Ansible and the processes the playbooks start), so the contract suite's
``no_leftover_processes`` sees any that survives. :meth:`ToscaGroup.teardown` runs ``opera undeploy`` (which
stops every server), then SIGKILLs whatever a pid file still names as a last resort.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alertscaler.providers.base import ProviderContext
from alertscaler.providers.tosca.provider import ToscaConfig, ToscaProvider, create
from tests.contract.provider_fixtures import MARKER_VAR, RUN_MARKER

REPO = Path(__file__).resolve().parents[2]
SERVICE_DIR = REPO / "tests" / "tosca" / "service"
SERVICE_TEMPLATE = SERVICE_DIR / "service.yaml"

OPERA_VAR = "ALERTSCALER_OPERA"
REQUIRE_VAR = "ALERTSCALER_REQUIRE_OPERA"
DEFAULT_OPERA = REPO / ".opera-venv" / "bin" / "opera"
PORTS_PER_GROUP = 4
UNDEPLOY_TIMEOUT = 60.0


def opera_path() -> Path | None:
    configured = os.environ.get(OPERA_VAR)
    path = Path(configured) if configured else DEFAULT_OPERA
    return path if path.exists() else None


def require_opera() -> Path:
    """The opera executable; skips the test (fails it under ``ALERTSCALER_REQUIRE_OPERA=1``) without one."""
    path = opera_path()
    if path is None:
        where = os.environ.get(OPERA_VAR) or str(DEFAULT_OPERA)
        message = f"no opera at {where}: run `make opera-venv` (or set {OPERA_VAR})"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{message}; {REQUIRE_VAR}=1 requires the tosca tests", pytrace=False)
        pytest.skip(message)
    return path


def free_port_block(size: int = PORTS_PER_GROUP, attempts: int = 200) -> int:
    """A first port P such that P .. P+size-1 can all be bound on 127.0.0.1 right now."""
    for _ in range(attempts):
        base = random.randrange(20000, 60000 - size)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    pytest.fail(f"no block of {size} free ports found")
    raise AssertionError("unreachable")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def http_body(port: int, path: str = "/") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").split("\r\n\r\n", 1)[-1]


def server_command_line(pid: int) -> list[str]:
    """The command line of a live (non-zombie) process, [] otherwise."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return []
    return [] if state in ("Z", "X") else raw.decode(errors="replace").split("\0")


@dataclass
class ToscaGroup:
    """One deployment of the test service (see the module docstring)."""

    opera: Path
    state_dir: Path
    run_dir: Path
    base_port: int
    group: str = "tosca-test"

    def config(self, **overrides: Any) -> ToscaConfig:
        values: dict[str, Any] = {
            "type": "tosca",
            "service_template": str(SERVICE_TEMPLATE),
            "opera": str(self.opera),
            "inputs": {"base_port": self.base_port, "run_dir": str(self.run_dir)},
            "members_output": "members",
            "heal_event": "heal_member",
            "timeout": "120s",
            "env": {MARKER_VAR: RUN_MARKER},
        }
        extra_inputs = overrides.pop("inputs", {})
        values.update(overrides)
        values["inputs"] = {**values["inputs"], **extra_inputs}
        return ToscaConfig.model_validate(values)

    def provider(self, **overrides: Any) -> ToscaProvider:
        return create(self.config(**overrides), ProviderContext(group=self.group, state_dir=self.state_dir))

    def port(self, index: int) -> int:
        return self.base_port + index

    def pid(self, index: int) -> int | None:
        """The pid in ``web-INDEX.pid`` if that process is this group's server, else None."""
        try:
            pid = int((self.run_dir / f"web-{index}.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        argv = server_command_line(pid)
        return pid if "http.server" in argv and str(self.port(index)) in argv else None

    def server_pids(self) -> dict[int, int]:
        """{index: pid} of the servers running now (by pid file and command line)."""
        found = {}
        for index in range(PORTS_PER_GROUP):
            pid = self.pid(index)
            if pid is not None:
                found[index] = pid
        return found

    def opera_command(self, *args: str, timeout: float = UNDEPLOY_TIMEOUT) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PATH=f"{self.opera.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        env[MARKER_VAR] = RUN_MARKER
        return subprocess.run(
            [str(self.opera), *args], capture_output=True, text=True, timeout=timeout, env=env,
            cwd=self.state_dir, stdin=subprocess.DEVNULL, check=False,
        )

    def opera_status(self) -> str:
        result = self.opera_command("info", "-p", str(self.state_dir / "opera"), "--format", "json")
        for line in result.stdout.splitlines():
            if '"status"' in line:
                return line.split(":", 1)[1].strip().strip(",").strip('"')
        return f"(no status: exit {result.returncode}) {result.stdout[-300:]} {result.stderr[-300:]}"

    def teardown(self) -> list[int]:
        """``opera undeploy`` when anything was deployed, then SIGKILL every server a pid file still names;
        returns the pids that had to be killed."""
        opera_dir = self.state_dir / "opera"
        if (opera_dir / "instances").exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.opera_command("undeploy", "-p", str(opera_dir), "--resume", "--force")
        killed = []
        for index, pid in self.server_pids().items():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            deadline = time.monotonic() + 5
            while self.pid(index) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        return killed


def new_group(state_dir: Path, group: str = "tosca-test") -> ToscaGroup:
    """A group on ``state_dir`` (created), its servers' run directory beside it, fresh ports; skips (or fails,
    see :func:`require_opera`) without opera."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return ToscaGroup(
        opera=require_opera(),
        state_dir=state_dir,
        run_dir=state_dir.parent / f"{state_dir.name}-run",
        base_port=free_port_block(),
        group=group,
    )
