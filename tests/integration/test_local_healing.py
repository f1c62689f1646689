"""Healing with the ``local`` provider and real processes: detection (killed, zombie, hung), heal (replace),
reboot, quarantine and release, crash recovery of an interrupted heal, the health probe's deadline.

Every instance started here carries the test marker (``local_config``); ``no_leftover_processes`` fails the
module if any survives it.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.api.app import create_app
from alertscaler.config import load_policy
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.base import Healer, ProviderContext, Quarantiner, Rebooter
from alertscaler.providers.local.health import probe
from alertscaler.providers.local.provider import LocalProvider
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore
from tests.contract.provider_fixtures import (
    CASE_VAR,
    GROUP,
    local_config,
    local_provider,
    marked_processes,
    scale_to,
)
from tests.support.waiting import wait_for

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("no_leftover_processes"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

MakeLocal = Callable[..., LocalProvider]

# A tiny server that refuses to start while the file named by its first argument exists.
FLAKY_SERVER = """
import http.server, os, sys
if os.path.exists(sys.argv[1]):
    print("refusing to start: flag file present", flush=True)
    sys.exit(3)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"""


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_local(state_dir: Path) -> Iterator[MakeLocal]:
    """``make_local(**config overrides)`` -> a LocalProvider on ``state_dir``; everything stopped afterwards
    (quarantined instances too: the cleanup kills every recorded process)."""
    cleanups: list[Callable[[], None]] = []

    def make(**overrides: Any) -> LocalProvider:
        env = {CASE_VAR: str(state_dir), **overrides.pop("env", {})}  # own_processes(state_dir) finds them
        provider, cleanup = local_provider(state_dir, env=env, **overrides)
        cleanups.append(cleanup)
        return provider

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


def pid_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``Z`` for a zombie), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def own_processes(state_dir: Path) -> list[int]:
    """The live processes this test started through ``make_local`` (not another test's, nor another run's)."""
    return marked_processes(str(state_dir), CASE_VAR)


def pid_alive(pid: int) -> bool:
    return pid_state(pid) not in (None, "Z", "X")


def kill9(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is dead (a zombie or gone)."""
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), timeout=5, interval=0.05, what=f"pid {pid} to die of SIGKILL")


def pid_of(member: Member) -> int:
    return int(member.labels["pid"])


def running(members: list[Member]) -> list[Member]:
    return [m for m in members if m.state is MemberState.RUNNING]


def healthz(member: Member) -> int:
    return httpx.get(f"http://{member.address}/healthz", timeout=5, trust_env=False).status_code


class CapacityWatch:
    """Polls ``members()`` from another thread while the block runs: the fewest RUNNING members seen."""

    def __init__(self, provider: LocalProvider) -> None:
        self.provider = provider
        self.lowest: int | None = None
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            count = len(running(self.provider.members()))
            self.lowest = count if self.lowest is None else min(self.lowest, count)
            self.polls += 1

    def __enter__(self) -> CapacityWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -- abilities ----------------------------------------------------------------------------------------------


def test_local_provider_has_every_heal_ability(state_dir: Path) -> None:
    provider = LocalProvider(local_config(), ProviderContext(group=GROUP, state_dir=state_dir))
    assert isinstance(provider, Healer) and isinstance(provider, Rebooter) and isinstance(provider, Quarantiner)


# -- detection ----------------------------------------------------------------------------------------------


def test_killed_member_is_failed_not_counted_and_healed_back(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 3)
    victim = provider.members()[1]
    kill9(pid_of(victim))

    wait_for(lambda: provider.status().current == 2, timeout=5, interval=0.05, what="2 running")
    status = provider.status()
    (failed,) = [m for m in status.members if m.state is MemberState.FAILED]
    assert failed.id == victim.id and failed.labels["problem"] == "process not running"
    assert "2 live, 1 failed" in status.detail

    with CapacityWatch(provider) as watch:
        message = provider.heal(victim.id)
    assert watch.polls >= 3 and watch.lowest is not None and watch.lowest >= 2, (watch.polls, watch.lowest)
    members = provider.members()
    assert len(running(members)) == 3 and victim.id not in {m.id for m in members}
    (new,) = [m for m in members if m.labels.get("replaces") == victim.id]
    assert message == f"replaced {victim.id} (dead) by {new.id} ({new.address})"
    assert healthz(new) == 200


def test_zombie_member_is_failed(make_local: MakeLocal, state_dir: Path) -> None:
    """An instance started by another (still living) alertscaler process that does not reap it: killed, it
    stays a zombie — alive for ``kill -0`` — and must still count as failed."""
    provider = make_local()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, provider.config.model_dump_json(), GROUP, str(state_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        (member,) = provider.members()
        assert member.state is MemberState.RUNNING
        os.kill(pid_of(member), signal.SIGKILL)
        wait_for(lambda: pid_state(pid_of(member)) == "Z", timeout=5, interval=0.05,
                 what="the instance to be an unreaped zombie")
        status = provider.status()
        assert status.current == 0 and [m.state for m in status.members] == [MemberState.FAILED]
    finally:
        holder.communicate("", timeout=30)  # EOF: the holder exits (and its zombie child is reaped by init)


_HOLDER = """
import sys
from pathlib import Path
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.local.provider import LocalConfig, LocalProvider
config = LocalConfig.model_validate_json(sys.argv[1])
provider = LocalProvider(config, ProviderContext(group=sys.argv[2], state_dir=Path(sys.argv[3])))
provider.scale(ScaleRequest(group=sys.argv[2], from_capacity=0, desired=1, action_id=1, decision_id=1))
print("ready", flush=True)
sys.stdin.read()  # never reaps its child until told to exit
"""


def _child_env() -> dict[str, str]:
    src = str(Path(__file__).parents[2] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}


def test_hung_members_are_failed_within_one_probe_timeout(make_local: MakeLocal) -> None:
    provider = make_local(probe_timeout="1s")
    scale_to(provider, 3)
    first, second, third = provider.members()
    started = time.monotonic()
    assert provider.status().current == 3
    assert time.monotonic() - started < 1.0, "healthy members answer within the probe timeout"

    stopped = [pid_of(first), pid_of(third)]
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        status = provider.status()
        elapsed = time.monotonic() - started
        # both hung members together cost ONE probe timeout (probed concurrently), not two
        assert 0.95 <= elapsed < 1.9, elapsed  # sequential probes would take 2.0 s
        states = {m.id: m.state for m in status.members}
        assert states == {first.id: MemberState.FAILED, second.id: MemberState.RUNNING,
                          third.id: MemberState.FAILED}
        assert status.current == 1
        hung = next(m for m in status.members if m.id == first.id)
        assert hung.labels["problem"] == "no answer to GET /healthz within 1s"
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert [m.state for m in provider.members()] == [MemberState.RUNNING] * 3, "no cache: seen again at once"


def test_without_health_path_a_hung_member_is_not_probed(make_local: MakeLocal) -> None:
    provider = make_local(health_path=None)
    scale_to(provider, 1)
    (member,) = provider.members()
    os.kill(pid_of(member), signal.SIGSTOP)
    try:
        assert [m.state for m in provider.members()] == [MemberState.RUNNING]
    finally:
        os.kill(pid_of(member), signal.SIGCONT)


def test_a_stopped_hung_member_is_healed_and_stops_despite_sigstop(make_local: MakeLocal) -> None:
    provider = make_local(probe_timeout="300ms")
    scale_to(provider, 2)
    hung, other = provider.members()
    os.kill(pid_of(hung), signal.SIGSTOP)  # stays stopped: the provider's SIGCONT after SIGTERM lets it exit
    assert [m.state for m in provider.members()] == [MemberState.FAILED, MemberState.RUNNING]
    started = time.monotonic()
    message = provider.heal(hung.id)
    assert message.startswith(f"replaced {hung.id} by ")
    assert not pid_alive(pid_of(hung))
    elapsed = time.monotonic() - started
    assert elapsed < provider.config.stop_timeout, f"{elapsed:.1f}s: SIGTERM must work on a stopped process"
    members = provider.members()
    assert len(running(members)) == 2 and other.id in {m.id for m in members}


# -- heal ---------------------------------------------------------------------------------------------------


def test_heal_starts_the_replacement_before_stopping_the_member(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 3)
    before = provider.members()
    victim = before[0]

    with CapacityWatch(provider) as watch:
        message = provider.heal(victim.id)

    assert watch.polls >= 3, "the watch must have seen the heal"
    assert watch.lowest is not None and watch.lowest >= 3, f"RUNNING dropped to {watch.lowest} during the heal"
    after = provider.members()
    assert len(after) == 3 and all(m.state is MemberState.RUNNING for m in after)
    (new,) = [m for m in after if m.id not in {b.id for b in before}]
    assert message == f"replaced {victim.id} by {new.id} ({new.address})"
    assert new.labels["replaces"] == victim.id and new.labels["port"] != victim.labels["port"]
    assert not pid_alive(pid_of(victim)) and healthz(new) == 200
    assert not (state_dir / f"{victim.id}.json").exists() and (state_dir / f"{victim.id}.log").exists()
    assert provider.heal(victim.id) == f"{victim.id} was already replaced by {new.id} ({new.address})"
    assert len(own_processes(state_dir)) == 3


def test_heal_of_a_replacement_that_cannot_start_keeps_the_member(make_local: MakeLocal, tmp_path: Path,
                                                                   state_dir: Path) -> None:
    flag = tmp_path / "broken"
    provider = make_local(command=[sys.executable, "-c", FLAKY_SERVER, str(flag), "{port}"], health_path="/")
    scale_to(provider, 1)
    (member,) = provider.members()
    flag.touch()
    with pytest.raises(TemporaryProviderError, match=r"did not become healthy: exited during start.*refusing"):
        provider.heal(member.id)
    assert [(m.id, m.state, m.labels["pid"]) for m in provider.members()] == [
        (member.id, MemberState.RUNNING, member.labels["pid"])]
    assert [p.stem for p in state_dir.glob("*.json")] == [member.id]
    assert own_processes(state_dir) == [pid_of(member)]


@pytest.mark.parametrize("interrupted_at", ["spawning", "starting", "running"])
def test_heal_after_a_crash_reuses_the_recorded_replacement(make_local: MakeLocal, state_dir: Path,
                                                            interrupted_at: str) -> None:
    """alertscaler killed during a heal, after the replacement's process was started: between fork and record
    (``spawning``, the intent only), before it was healthy (``starting``) or before the old one was stopped
    (``running``). The heal run again adopts that replacement instead of starting a second one."""
    provider = make_local()
    scale_to(provider, 1)
    (old,) = provider.members()
    half_done = provider._instances.spawn(replaces=old.id)  # what the interrupted heal had done
    if interrupted_at == "running":
        assert provider._instances.await_healthy([half_done]) == {}
    path = state_dir / f"{half_done.id}.json"
    if interrupted_at == "spawning":
        path.write_text(json.dumps({**json.loads(path.read_text()), "pid": 0, "start_time": None,
                                    "phase": "spawning"}))

    restarted = make_local()
    message = restarted.heal(old.id)

    assert message == f"replaced {old.id} by {half_done.id} ({half_done.address})"
    (member,) = restarted.members()
    assert (member.id, member.labels["pid"], member.state) == (half_done.id, str(half_done.pid), MemberState.RUNNING)
    assert own_processes(state_dir) == [half_done.pid]


def test_scale_in_after_an_interrupted_heal_stops_the_replaced_member(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 2)
    old, newer = provider.members()
    replacement = provider._instances.spawn(replaces=old.id)
    assert provider._instances.await_healthy([replacement]) == {}  # then alertscaler died

    message = scale_to(make_local(), 2)

    assert message == f"stopped 1 ({old.id}), now 2"  # not the newest (the replacement): the replaced one
    assert {m.id for m in provider.members()} == {newer.id, replacement.id}


def test_a_member_left_stopping_is_not_counted_and_finished_by_scale(make_local: MakeLocal, state_dir: Path) -> None:
    provider = make_local()
    scale_to(provider, 2)
    keep, leaving = provider.members()
    path = state_dir / f"{leaving.id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "phase": "stopping"}))  # a stop was interrupted
    status = provider.status()
    assert status.current == 1 and "1 stopping" in status.detail
    assert {m.id: m.state for m in status.members}[leaving.id] is MemberState.STOPPING
    message = scale_to(provider, 2)
    assert f"finished stopping 1 ({leaving.id})" in message and message.endswith("now 2"), message
    assert not pid_alive(pid_of(leaving)) and keep.id in {m.id for m in provider.members()}


@pytest.mark.parametrize("member_id", ["nope", "../../../etc/passwd", "$(touch /tmp/pwned-heal)", ""],
                         ids=["unknown", "path", "shell", "empty"])
def test_healing_a_non_member_is_permanent_and_touches_nothing(make_local: MakeLocal, state_dir: Path,
                                                               member_id: str) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (member,) = provider.members()
    for action in (provider.heal, provider.reboot, provider.quarantine, provider.release):
        with pytest.raises(PermanentProviderError, match="is not"):
            action(member_id)
    assert provider.members() == [member] and own_processes(state_dir) == [pid_of(member)]
    assert not Path("/tmp/pwned-heal").exists()


# -- reboot -------------------------------------------------------------------------------------------------


def test_reboot_restarts_in_place(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 2)
    member, other = provider.members()
    message = provider.reboot(member.id)
    again = next(m for m in provider.members() if m.id == member.id)
    assert message == f"rebooted {member.id} ({member.address}): pid {pid_of(member)} -> pid {pid_of(again)}"
    assert (again.address, again.created_at, again.state) == (member.address, member.created_at, MemberState.RUNNING)
    assert pid_of(again) != pid_of(member) and not pid_alive(pid_of(member)) and healthz(again) == 200
    assert other in provider.members()

    kill9(pid_of(again))  # a dead member is started again too
    wait_for(lambda: provider.status().current == 1, timeout=5, interval=0.05, what="1 running")
    assert provider.reboot(member.id).endswith("not running -> pid " + str(pid_of(provider.members()[0])))
    assert provider.status().current == 2


def test_reboot_that_does_not_come_back_leaves_the_member_failed(make_local: MakeLocal, tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    provider = make_local(command=[sys.executable, "-c", FLAKY_SERVER, str(flag), "{port}"], health_path="/")
    scale_to(provider, 1)
    (member,) = provider.members()
    flag.touch()
    with pytest.raises(TemporaryProviderError, match=rf"{member.id} did not come back.*refusing to start"):
        provider.reboot(member.id)
    assert [(m.id, m.state) for m in provider.members()] == [(member.id, MemberState.FAILED)]
    flag.unlink()
    assert provider.heal(member.id).startswith(f"replaced {member.id} (dead) by ")
    assert len(running(provider.members())) == 1


# -- quarantine ---------------------------------------------------------------------------------------------


def test_quarantine_keeps_the_instance_running_outside_the_group(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 2)
    suspect, other = provider.members()

    message = provider.quarantine(suspect.id)

    assert message.startswith(f"quarantined {suspect.id} ({suspect.address}, pid {pid_of(suspect)} left running)")
    assert pid_alive(pid_of(suspect)) and healthz(suspect) == 200, "kept running for inspection"
    status = provider.status()
    assert status.current == 1 and [m.id for m in status.members] == [other.id]
    assert "1 quarantined" in status.detail
    (held,) = provider.quarantined()
    assert (held.id, held.state, held.address) == (suspect.id, MemberState.RUNNING, suspect.address)
    assert "quarantined_at" in held.labels
    assert provider.quarantine(suspect.id).startswith(f"{suspect.id} is already quarantined")
    for action in (provider.heal, provider.reboot):
        with pytest.raises(PermanentProviderError, match="not a member"):
            action(suspect.id)

    restarted = make_local()  # a new alertscaler on the same state directory
    assert [m.id for m in restarted.quarantined()] == [suspect.id]
    assert [m.id for m in restarted.members()] == [other.id]
    assert scale_to(restarted, 2).startswith("started 1 (")  # the quarantined one is not capacity
    assert suspect.address not in {m.address for m in restarted.members()}, "its port is never reused"
    assert scale_to(restarted, 0).startswith("stopped 2 (")  # ... and never a scale-in victim
    assert pid_alive(pid_of(suspect)) and restarted.status().current == 0

    assert restarted.release(suspect.id).startswith(f"released {suspect.id}: stopped, log kept in ")
    assert not pid_alive(pid_of(suspect)) and restarted.quarantined() == []
    with pytest.raises(PermanentProviderError, match="is not quarantined"):
        restarted.release(suspect.id)


async def test_quarantined_instance_is_not_an_http_sd_target(make_local: MakeLocal, tmp_path: Path) -> None:
    provider = make_local()
    scale_to(provider, 2)
    suspect, other = provider.members()
    provider.quarantine(suspect.id)
    policy = load_policy(f"server: {{auth: {{insecure_no_auth: true}}}}\n"
                         f"groups:\n  {GROUP}:\n    provider: {{type: local}}\n    min_size: 0\n    max_size: 4\n",
                         base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'db' / 'state.db'}")
    store.migrate()
    try:
        engine = build_engine(policy, store, {GROUP: provider})
        app = create_app(engine, manage_engine=False)
        await engine.live_status(GROUP)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            targets = (await client.get("/api/v1/targets")).json()
    finally:
        store.close()
    assert [(t["targets"], t["labels"]["alertscaler_member"]) for t in targets] == [([other.address], other.id)]


def test_a_dead_member_can_be_quarantined_and_released(make_local: MakeLocal) -> None:
    provider = make_local()
    scale_to(provider, 1)
    (member,) = provider.members()
    kill9(pid_of(member))
    assert provider.status().current == 0
    assert "not running, log kept" in provider.quarantine(member.id)
    assert [m.state for m in provider.quarantined()] == [MemberState.FAILED]
    assert provider.members() == []
    assert scale_to(provider, 0) == "no change, 0 running"  # a dead quarantined instance is not "removed dead"
    assert provider.release(member.id).startswith(f"released {member.id}: was not running")


# -- the probe itself ---------------------------------------------------------------------------------------


def test_probe_reports_why_each_target_is_unhealthy_within_one_deadline() -> None:
    listeners = []
    answers = {b"HTTP/1.1 200 OK\r\n\r\n": "", b"HTTP/1.0 503 Busy\r\n\r\n": "GET /healthz answered 503",
               b"SSH-2.0-OpenSSH\r\n": "GET /healthz: not an HTTP answer", b"": "connection closed without an answer"}

    def serve(sock: socket.socket, answer: bytes) -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer)

    ports: dict[str, int] = {}
    expected: dict[str, str] = {}
    threads = []
    try:
        for n, (answer, why) in enumerate(answers.items()):
            sock = socket.create_server(("127.0.0.1", 0))
            listeners.append(sock)
            ports[f"answers-{n}"] = sock.getsockname()[1]
            if why:
                expected[f"answers-{n}"] = why if why.startswith("GET") else f"GET /healthz: {why}"
            threads.append(threading.Thread(target=serve, args=(sock, answer), daemon=True))
        for i in range(5):  # listening, never accepting, never answering: hung
            sock = socket.create_server(("127.0.0.1", 0))
            listeners.append(sock)
            ports[f"hung-{i}"] = sock.getsockname()[1]
            expected[f"hung-{i}"] = "no answer to GET /healthz within 0.5s"
        closed = socket.create_server(("127.0.0.1", 0))
        ports["closed"] = closed.getsockname()[1]
        closed.close()
        expected["closed"] = "not listening (connection refused)"
        for thread in threads:
            thread.start()
        started = time.monotonic()
        problems = probe(ports, "/healthz", 0.5)
        elapsed = time.monotonic() - started
    finally:
        for sock in listeners:
            sock.close()
    assert problems == expected
    assert 0.49 <= elapsed < 1.5, f"five hung targets must cost one timeout (not 2.5 s), took {elapsed:.2f}s"
