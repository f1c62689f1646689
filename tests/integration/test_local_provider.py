"""The ``local`` provider beyond the contract: real processes, ports, failures, signals, restarts.

Every process started here carries a marker in its environment; ``no_leftover_processes`` fails the module
if any survives it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers import registry
from alertscaler.providers.base import Healer, ProviderContext, Quarantiner, Rebooter
from alertscaler.providers.local.provider import LocalConfig, LocalProvider
from tests.contract.provider_fixtures import (
    CASE_VAR,
    GROUP,
    MARKER_VAR,
    RUN_MARKER,
    kill_marked,
    local_provider,
    marked_processes,
    scale_to,
)
from tests.support.waiting import wait_for

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leftover_processes")]

DATA = Path(__file__).parent / "data"
METRICS = (
    "workload_requests_total",
    "workload_in_flight",
    "workload_queue_length",
    "workload_utilisation",
    "workload_capacity_rps",
    "workload_request_duration_seconds_bucket",
)

MakeLocal = Callable[..., LocalProvider]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_local(state_dir: Path) -> Iterator[MakeLocal]:
    """``make_local(**config overrides)`` -> a LocalProvider on ``state_dir``; all scaled to 0 afterwards."""
    cleanups: list[Callable[[], None]] = []

    def make(**overrides: Any) -> LocalProvider:
        env = {CASE_VAR: str(state_dir), **overrides.pop("env", {})}  # own_processes(state_dir) finds them
        provider, cleanup = local_provider(state_dir, env=env, **overrides)
        cleanups.append(cleanup)
        return provider

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def url(member: Member, path: str) -> str:
    return f"http://{member.address}{path}"


def own_processes(state_dir: Path) -> list[int]:
    """The live processes this test started through ``make_local`` (not another test's, nor another run's)."""
    return marked_processes(str(state_dir), CASE_VAR)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


# -- config ---------------------------------------------------------------------------------------------------


def test_config_model_and_defaults() -> None:
    assert registry.config_model("local") is LocalConfig
    config = LocalConfig.model_validate({"type": "local"})
    assert config.command is None
    assert config.port_range == (20000, 29999)
    assert config.health_path == "/healthz"
    assert (config.start_timeout, config.stop_timeout) == (10.0, 5.0)
    assert (config.workload.service_time, config.workload.concurrency, config.workload.queue_limit) == (0.05, 4, 64)
    parsed = LocalConfig.model_validate({"type": "local", "workload": {"service_time": "20ms"}, "stop_timeout": "2s"})
    assert (parsed.workload.service_time, parsed.stop_timeout) == (0.02, 2.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "local", "unknown": 1},
        {"type": "exec"},
        {"type": "local", "port_range": [3000, 2000]},
        {"type": "local", "port_range": [0, 10]},
        {"type": "local", "health_path": "healthz"},
        {"type": "local", "command": []},
        {"type": "local", "workload": {"service_time": 0}},
        {"type": "local", "workload": {"concurrency": 0}},
        {"type": "local", "workload": {"extra": 1}},
    ],
)
def test_config_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LocalConfig.model_validate(bad)


def test_registry_creates_a_local_provider(state_dir: Path) -> None:
    provider = registry.create(LocalConfig(), ProviderContext(group="web", state_dir=state_dir))
    assert isinstance(provider.inner, LocalProvider)
    assert isinstance(provider, Healer) and isinstance(provider, Rebooter) and isinstance(provider, Quarantiner)
    assert provider.idempotent is True
    assert provider.status().current == 0


# -- instances ------------------------------------------------------------------------------------------------


def test_members_serve_work_health_and_metrics(make_local: MakeLocal, http: httpx.Client) -> None:
    provider = make_local(workload={"service_time": "20ms", "concurrency": 3}, port_range=[21000, 21999])
    message = scale_to(provider, 2)
    assert message.startswith("started 2 (") and message.endswith("now 2"), message
    for member in provider.members():
        host, port = member.address.rsplit(":", 1) if member.address else ("", "")
        assert host == "127.0.0.1"
        assert member.labels["port"] == port and 21000 <= int(port) <= 21999
        assert pid_alive(int(member.labels["pid"]))
        assert member.id.startswith(f"{GROUP}-") and len(member.id) == len(GROUP) + 9
        assert member.created_at is not None and member.created_at.tzinfo is not None
        assert member.state is MemberState.RUNNING

        health = http.get(url(member, "/healthz"))
        assert (health.status_code, health.text) == (200, "ok\n")
        for path in ("/", "/work"):
            assert http.get(url(member, path)).status_code == 200
        metrics = http.get(url(member, "/metrics"))
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        for name in METRICS:
            assert name in metrics.text
        assert metric_value(metrics.text, "workload_capacity_rps") == pytest.approx(150.0)
        assert 'workload_requests_total{code="200"} 2.0' in metrics.text


def test_instance_records_are_json_files(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (member,) = provider.members()
    record = json.loads((state_dir / f"{member.id}.json").read_text())
    assert record["id"] == member.id and record["group"] == GROUP
    assert record["pid"] == int(member.labels["pid"]) and record["port"] == int(member.labels["port"])
    assert isinstance(record["start_time"], int) and record["phase"] == "running"
    assert (state_dir / f"{member.id}.log").exists()
    assert not list(state_dir.glob(".*.tmp"))


def test_scale_in_stops_newest_first(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (oldest,) = provider.members()
    scale_to(provider, 3)
    message = scale_to(provider, 1)
    assert message.startswith("stopped 2 (") and message.endswith("now 1"), message
    assert [m.id for m in provider.members()] == [oldest.id]


def test_killed_instance_is_reported_failed_and_replaced(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 2)
    victim, survivor = provider.members()
    os.kill(int(victim.labels["pid"]), signal.SIGKILL)

    # wait until the process is gone, not merely failing its health check: a process still exiting after
    # SIGKILL (its sockets closed, not yet a zombie) is counted out by the probe but alive to a scale
    def victim_gone() -> bool:
        status = provider.status()
        gone = any(m.id == victim.id and m.labels.get("problem") == "process not running" for m in status.members)
        return gone and status.current == 1

    wait_for(victim_gone, timeout=30, interval=0.05, what="the victim's process gone and counted out")
    states = {m.id: m.state for m in provider.status().members}
    assert states == {victim.id: MemberState.FAILED, survivor.id: MemberState.RUNNING}

    message = scale_to(provider, 2)
    assert f"removed 1 dead ({victim.id})" in message, message
    members = provider.members()
    assert len(members) == 2 and all(m.state is MemberState.RUNNING for m in members)
    assert survivor.id in {m.id for m in members} and victim.id not in {m.id for m in members}
    assert not (state_dir / f"{victim.id}.json").exists()
    assert (state_dir / f"{victim.id}.log").exists(), "a dead instance's log is kept for inspection"


def test_scale_in_lets_in_flight_requests_finish(make_local: MakeLocal, http: httpx.Client) -> None:
    provider = make_local(workload={"service_time": "600ms", "concurrency": 1})
    scale_to(provider, 1)
    (member,) = provider.members()
    result: dict[str, int] = {}
    worker = threading.Thread(target=lambda: result.update(code=http.get(url(member, "/work")).status_code))
    worker.start()
    wait_for(lambda: metric_value(http.get(url(member, "/metrics")).text, "workload_in_flight") == 1, timeout=5,
             interval=0.01, what="the request to hold the instance's slot")
    scale_to(provider, 0)
    worker.join(5)
    assert result == {"code": 200}
    assert not pid_alive(int(member.labels["pid"]))


def test_stop_escalates_to_sigkill(make_local: MakeLocal) -> None:
    provider = make_local(command=[sys.executable, str(DATA / "ignore_sigterm_server.py"), "{port}"], stop_timeout="1s")
    scale_to(provider, 1)
    (member,) = provider.members()
    pid = int(member.labels["pid"])
    started = time.monotonic()
    scale_to(provider, 0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4, elapsed
    assert not pid_alive(pid)
    assert provider.status().current == 0


def test_instance_left_starting_is_health_checked_by_the_next_scale(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (member,) = provider.members()
    path = state_dir / f"{member.id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "phase": "starting"}))  # as if we crashed
    assert [m.state for m in provider.members()] == [MemberState.STARTING]
    assert provider.status().current == 1
    assert scale_to(provider, 1) == "no change, 1 running"
    assert [(m.id, m.state) for m in provider.members()] == [(member.id, MemberState.RUNNING)]


# -- failures -------------------------------------------------------------------------------------------------


def test_missing_command_is_permanent(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local(command=["/nonexistent/alertscaler-no-such-program", "--port", "{port}"])
    with pytest.raises(PermanentProviderError, match="alertscaler-no-such-program"):
        scale_to(provider, 1)
    assert provider.status().current == 0
    assert not list(state_dir.glob("*.json"))


def test_never_healthy_is_temporary_and_leaves_nothing(make_local: MakeLocal, state_dir: Path) -> None:
    case = uuid.uuid4().hex
    provider = make_local(command=["sleep", "60"], start_timeout="1s", env={"CASE": case})
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match="not healthy within 1s"):
        scale_to(provider, 1)
    assert time.monotonic() - started < 5
    assert provider.members() == []
    assert not list(state_dir.glob("*.json"))
    assert marked_processes(case, "CASE") == []


def test_instance_exiting_at_start_fails_fast(make_local: MakeLocal) -> None:
    script = "import sys; print('cannot start: bad config'); sys.exit(3)"
    provider = make_local(command=[sys.executable, "-c", script], start_timeout="20s")
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match=r"exited during start.*cannot start: bad config"):
        scale_to(provider, 1)
    assert time.monotonic() - started < 5
    assert provider.status().current == 0


def test_partial_start_keeps_the_healthy_instances(make_local: MakeLocal, state_dir: Path) -> None:
    low = _free_port_pair()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", low))
        blocker.listen()
        provider = make_local(port_range=[low, low + 1])
        message = scale_to(provider, 1)
        (member,) = provider.members()
        assert member.labels["port"] == str(low + 1), "an occupied port must be skipped"
        with pytest.raises(TemporaryProviderError, match="no free port"):
            scale_to(provider, 2)
        assert provider.status().current == 1, message


def _free_port_pair() -> int:
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and all(_bindable(p) for p in (port, port + 1)):
            return port
    raise RuntimeError("no two consecutive free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_record_of_a_reused_pid_is_not_trusted(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    finished = subprocess.Popen(["true"])
    finished.wait()
    state_dir.mkdir(exist_ok=True)
    for instance_id, pid in ((f"{GROUP}-00000001", os.getpid()), (f"{GROUP}-00000002", finished.pid)):
        record = {
            "id": instance_id,
            "group": GROUP,
            "pid": pid,  # our own pid: alive, but started at another time than recorded
            "port": 1,
            "created_at": "2026-01-01T00:00:00+00:00",
            "start_time": 1,
            "phase": "running",
            "command": ["gone"],
        }
        (state_dir / f"{instance_id}.json").write_text(json.dumps(record))
    status = provider.status()
    assert status.current == 0
    assert [m.state for m in status.members] == [MemberState.FAILED, MemberState.FAILED]
    message = scale_to(provider, 0)
    assert message.startswith("removed 2 dead"), message
    assert provider.members() == []


def test_health_check_can_be_disabled_and_placeholders_substituted(make_local: MakeLocal, tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    script = "import json, os, sys, time; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:])); time.sleep(60)"
    provider = make_local(
        command=[sys.executable, "-c", script, str(out), "{port}", "{host}", "{id}", "{group}"], health_path=None
    )
    scale_to(provider, 1)
    (member,) = provider.members()
    assert member.state is MemberState.RUNNING
    wait_for(lambda: out.exists() and out.read_text(), timeout=5, interval=0.05, what=f"{out} written")
    assert json.loads(out.read_text()) == [member.labels["port"], "127.0.0.1", member.id, GROUP]


# -- restart --------------------------------------------------------------------------------------------------

_OTHER_PROCESS = """
import json, sys
from pathlib import Path
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.local.provider import LocalConfig, LocalProvider
config = LocalConfig.model_validate_json(sys.argv[1])
provider = LocalProvider(config, ProviderContext(group=sys.argv[2], state_dir=Path(sys.argv[3])))
print(provider.scale(ScaleRequest(group=sys.argv[2], from_capacity=0, desired=2, action_id=1, decision_id=1)))
provider.close()
"""


def test_instances_survive_the_process_that_started_them(make_local: MakeLocal, state_dir: Path) -> None:
    """A real restart: another process starts 2 instances and exits; this one adopts, scales and stops them."""
    provider = make_local()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, provider.config.model_dump_json(), GROUP, str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "now 2" in done.stdout
    adopted = provider.members()
    assert len(adopted) == 2 and all(m.state is MemberState.RUNNING for m in adopted)
    assert scale_to(provider, 2) == "no change, 2 running"
    scale_to(provider, 3)
    assert {m.id for m in adopted} < {m.id for m in provider.members()}
    pids = [int(m.labels["pid"]) for m in adopted]
    scale_to(provider, 0)  # stops processes that are not our children
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=5, interval=0.05, what=f"{pids} stopped")
    assert provider.status().current == 0


def test_leak_check_sees_marked_processes() -> None:
    """The safety net itself: a marked process is found and killed (a marker of this test's own, so that
    neither finds nor kills another test's processes)."""
    marker = f"{RUN_MARKER}-leak-check"
    proc = subprocess.Popen(["sleep", "30"], env={**os.environ, MARKER_VAR: marker})
    try:
        assert marked_processes(marker) == [proc.pid]
        assert kill_marked(marker) == [proc.pid]
        assert not pid_alive(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_instance_started_but_unrecorded_by_a_killed_alertscaler_is_adopted(make_local: MakeLocal,
                                                                             state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (member,) = provider.members()
    path = state_dir / f"{member.id}.json"
    record = json.loads(path.read_text())
    # what the state dir holds if alertscaler is killed -9 between fork and the pid being recorded
    path.write_text(json.dumps({**record, "pid": 0, "start_time": None, "phase": "spawning"}))

    restarted = make_local()
    assert restarted.status().current == 0  # not counted until settled...
    scale_to(restarted, 1)  # ...and then adopted, not doubled
    (again,) = restarted.members()
    assert (again.id, again.labels["pid"]) == (member.id, member.labels["pid"])
    assert len(own_processes(state_dir)) == 1


def test_intent_record_without_a_process_is_dropped(make_local: MakeLocal, state_dir: Path) -> None:
    (state_dir).mkdir(parents=True, exist_ok=True)
    (state_dir / "web-deadbeef.json").write_text(json.dumps({
        "id": "web-deadbeef", "group": GROUP, "pid": 0, "port": 1, "created_at": "2026-11-21T12:00:00+00:00",
        "start_time": None, "phase": "spawning", "command": ["never-started"]}))
    provider = make_local()
    message = scale_to(provider, 1)
    assert "removed 1 dead (web-deadbeef)" in message
    assert [m.id for m in provider.members()] != ["web-deadbeef"] and len(provider.members()) == 1
