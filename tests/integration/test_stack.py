"""``alertscaler.demo.stack``: real Prometheus and Alertmanager (and alertscaler) as children, and no orphan
process, ever — on a normal exit, on SIGTERM / Ctrl-C (even repeated), and when the parent is ``kill -9``-ed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.demo.children import Child, ChildError
from alertscaler.demo.preparing import MissingBinary, find_binary, free_port, free_ports, python_env
from alertscaler.demo.stack import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
Script = Callable[[str], "subprocess.Popen[str]"]

HAVE_BINARIES = all(shutil.which(name) for name in ("prometheus", "prometheus-alertmanager"))
needs_prometheus = pytest.mark.skipif(
    not HAVE_BINARIES,
    reason="prometheus / prometheus-alertmanager not installed: apt-get install -y prometheus prometheus-alertmanager",
)


# -- helpers ---------------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) from /proc/<pid>/stat; None when there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not running)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def group_members(pgids: Iterable[int]) -> list[int]:
    """Live processes in any of ``pgids``."""
    wanted = set(pgids)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X") and stat[1] in wanted:
                found.append(int(entry.name))
    return found


# what a read of a server that is still starting may raise: "not yet"
NOT_YET = (httpx.HTTPError, ValueError, KeyError, IndexError)


def assert_all_gone(pids: Iterable[int], timeout: float = 5.0) -> None:
    pids = list(pids)
    wait_for(lambda: not [p for p in pids if alive(p)] and not group_members(pids), timeout=timeout,
             what=f"processes {pids} and their process groups to be gone")  # fmt: skip


@pytest.fixture
def run_script() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start a Python child (with this alertscaler importable) printing JSON lines; killed at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def run(code: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=python_env(),
        )
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # its watchdog stops what it started
        proc.communicate()


def read_json_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> Any:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip():
            return json.loads(line)
        if proc.poll() is not None:
            break
    stderr = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"no output from the script (exit {proc.poll()}): {stderr}")


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"script did not exit in {timeout}s: {err}") from None
    return proc.returncode, out, err


# -- ports and binaries ----------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert 1024 < free_port() < 65536


def test_a_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinary, match=r"'prometheus-alertmanager'.*apt-get install -y prometheus prometheus-"):
        find_binary("prometheus-alertmanager")
    with pytest.raises(MissingBinary, match="no-such-program"):
        find_binary("no-such-program")


@needs_prometheus
def test_find_binary_returns_an_absolute_path() -> None:
    assert Path(find_binary("prometheus")).is_absolute()


# -- children ------------------------------------------------------------------------------------------------


def test_a_child_that_exits_during_start_reports_its_log(tmp_path: Path) -> None:
    code = "print('bad config: no such thing', flush=True); raise SystemExit(3)"
    with Stack(tmp_path, watchdog=False) as stack, pytest.raises(ChildError, match="status 3") as info:
        stack.start("broken", [sys.executable, "-c", code], ready_url=f"http://127.0.0.1:{free_port()}/-/ready")
    assert "bad config: no such thing" in str(info.value)


def test_a_child_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    with Stack(tmp_path, watchdog=False) as stack:
        with pytest.raises(ChildError, match=r"not 200 within 0\.5s"):
            stack.start("mute", ["sleep", "60"], ready_url=f"http://127.0.0.1:{free_port()}/", timeout=0.5)
        pid = stack.children["mute"].pid
        assert pid is not None
        assert not alive(pid)


def test_stop_kills_a_child_that_ignores_sigterm_and_its_whole_group(tmp_path: Path) -> None:
    code = """
import signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen(['sleep', '60'])  # same process group
time.sleep(60)
"""
    child = Child("stubborn", [sys.executable, "-c", code], log_path=tmp_path / "stubborn.log", stop_timeout=0.5)
    child.start()
    assert child.pid is not None
    wait_for(lambda: len(group_members([child.pid or 0])) == 2, timeout=5, what="the grandchild")
    started = time.monotonic()
    assert child.stop() == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert_all_gone([child.pid])
    assert child.stop() == -signal.SIGKILL  # idempotent


# -- the real stack ------------------------------------------------------------------------------------------


@needs_prometheus
@pytest.mark.slow  # ~6 s: waits for Prometheus to scrape and to find the Alertmanager
def test_prometheus_and_alertmanager_start_scrape_a_workload_and_leave_nothing_behind() -> None:
    workload_port = free_port()
    with Stack() as stack:
        workdir = stack.workdir
        prometheus_yml = workdir / "prometheus.yml"
        prometheus_yml.write_text(textwrap.dedent(f"""
            global: {{scrape_interval: 1s, evaluation_interval: 1s}}
            alerting:
              alertmanagers:
                - static_configs: [{{targets: ['127.0.0.1:{stack.alertmanager_port}']}}]
            scrape_configs:
              - job_name: workload
                static_configs: [{{targets: ['127.0.0.1:{workload_port}']}}]
            """))
        alertmanager_yml = workdir / "alertmanager.yml"
        alertmanager_yml.write_text("route: {receiver: devnull}\nreceivers: [{name: devnull}]\n")

        workload = stack.start(
            "workload",
            [sys.executable, "-m", "alertscaler.workload", "--port", str(workload_port)],
            ready_url=f"http://127.0.0.1:{workload_port}/healthz",
            env=python_env(),
        )
        alertmanager = stack.start_alertmanager(alertmanager_yml)
        prometheus = stack.start_prometheus(prometheus_yml)
        assert httpx.get(f"{stack.prometheus_url}/-/ready", trust_env=False).status_code == 200
        assert httpx.get(f"{stack.alertmanager_url}/-/ready", trust_env=False).status_code == 200

        def up() -> bool:
            r = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": 'up{job="workload"}'},
                          trust_env=False)  # fmt: skip
            result = r.json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        wait_for(up, timeout=20, what="Prometheus to scrape the workload (up == 1)", retry_on=NOT_YET)

        def alertmanager_known() -> bool:
            r = httpx.get(f"{stack.prometheus_url}/api/v1/alertmanagers", trust_env=False)
            active = r.json()["data"]["activeAlertmanagers"]
            return any(str(stack.alertmanager_port) in a["url"] for a in active)

        wait_for(alertmanager_known, timeout=10, what="Prometheus to know the Alertmanager", retry_on=NOT_YET)
        children = [workload, alertmanager, prometheus]
        pids = [c.pid for c in children if c.pid is not None]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        assert sorted(pids) == [p for p in stack.pids() if p in pids]
        assert {p.name for p in (workdir / "logs").iterdir()} >= {"prometheus.log", "alertmanager.log"}
    assert_all_gone(pids)  # the groups too
    assert [c.returncode for c in children] == [0, 0, 0]  # stopped gracefully by SIGTERM
    assert not workdir.exists()  # a temporary working directory is removed


def test_alertscaler_and_the_instances_it_starts_are_stopped_with_the_stack(tmp_path: Path) -> None:
    with Stack(tmp_path / "work") as stack:
        policy = stack.workdir / "policy.yml"
        policy.write_text(textwrap.dedent(f"""
            server:
              listen: 127.0.0.1:{stack.alertscaler_port}
              auth: {{insecure_no_auth: true}}
              state_dir: ./state
            groups:
              web:
                provider: {{type: local, workload: {{service_time: 10ms, concurrency: 2}}}}
                min_size: 1
                max_size: 3
                desired: 2
            """))
        service = stack.start_alertscaler(policy)

        def running() -> list[str]:
            targets = httpx.get(f"{stack.alertscaler_url}/api/v1/targets", trust_env=False).json()
            return [t["targets"][0] for t in targets if t["labels"]["alertscaler_state"] == "running"]

        addresses = wait_for(lambda: len(running()) == 2 and running(), timeout=30, what="two running instances",
                             retry_on=NOT_YET)
        for address in addresses:
            assert httpx.get(f"http://{address}/work", trust_env=False).status_code == 200
        pids = stack.pids()
        assert service.pid in pids
        assert len(pids) >= 3  # alertscaler + 2 instances (found through the marker in their environment)
        assert all(os.getpgid(p) != os.getpgrp() for p in pids)
    assert_all_gone(pids)
    assert (tmp_path / "work" / "logs" / "alertscaler.log").exists()  # a given workdir is kept


# -- signals and kill -9 --------------------------------------------------------------------------------------

_STACK_SCRIPT = """
import json, os, signal, sys, time
from alertscaler.demo.stack import Stack
# a stop signal stops, as when started from a terminal, whatever the test runner ignores (under nohup, or as a
# background job of a shell: SIGHUP / SIGINT ignored, inherited, and a stack leaves ignored signals ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
nested = ("import subprocess, sys, time;"
          "p = subprocess.Popen(['sleep', '60'], start_new_session=True);"  # escapes its parent's group
          "print(p.pid, flush=True); time.sleep(60)")
stack = Stack(stop_timeout={stop_timeout})
try:
    with stack:
        sleeper = stack.start("sleeper", ["sleep", "60"])
        {extra}
        runner = stack.start("nested", [sys.executable, "-c", nested])
        while len(stack.pids()) < {count}:
            time.sleep(0.05)
        print(json.dumps({{"pids": stack.pids(), "workdir": str(stack.workdir)}}), flush=True)
        time.sleep(60)
except KeyboardInterrupt as exc:
    print(json.dumps({{"interrupted": type(exc).__name__, "late": stack.interrupted_by}}), flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_stops_everything_cleanly(sig: signal.Signals, run_script: Script) -> None:
    proc = run_script(_STACK_SCRIPT.format(stop_timeout=5, extra="pass", count=3))
    info = read_json_line(proc)
    assert len(info["pids"]) == 3
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == 0, err
    assert json.loads(out)["interrupted"] in ("Interrupted", "KeyboardInterrupt")
    assert_all_gone(info["pids"])
    assert not Path(info["workdir"]).exists()


def test_repeated_signals_do_not_interrupt_the_cleanup(run_script: Script) -> None:
    stubborn = ("stack.start('stubborn', [sys.executable, '-c', "
                "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])")
    proc = run_script(_STACK_SCRIPT.format(stop_timeout=2.5, extra=stubborn, count=4))
    info = read_json_line(proc)
    assert len(info["pids"]) == 4
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the stack is now waiting (2.5 s) for "stubborn" to exit
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        proc.send_signal(sig)
        time.sleep(0.05)
    code, out, err = finish(proc)
    assert code == 0, err
    assert json.loads(out)["late"] in (signal.SIGINT, signal.SIGTERM)
    assert_all_gone(info["pids"])


def test_kill_9_of_the_parent_leaves_no_child_and_no_grandchild(run_script: Script) -> None:
    proc = run_script(_STACK_SCRIPT.format(stop_timeout=5, extra="pass", count=3))
    info = read_json_line(proc)
    pids = info["pids"]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    proc.kill()  # SIGKILL: no handler, no atexit, no __exit__
    proc.wait()
    # the direct children die by PR_SET_PDEATHSIG, the grandchild in its own session by the watchdog
    assert_all_gone(pids, timeout=10)
    wait_for(lambda: not Path(info["workdir"]).exists(), timeout=10,
             what="the watchdog to remove the temporary directory")


def test_pdeathsig_alone_kills_a_child_in_its_own_session_when_the_parent_is_killed(
    tmp_path: Path, run_script: Script
) -> None:
    # No Stack, no watchdog: only prctl(PR_SET_PDEATHSIG) set in preexec_fn, combined with start_new_session.
    proc = run_script(f"""
        import json, os, time
        from alertscaler.demo.children import Child
        child = Child("sleep", ["sleep", "60"], log_path={str(tmp_path / "sleep.log")!r}).start()
        print(json.dumps({{"pid": child.pid, "sid": os.getsid(child.pid), "pgid": os.getpgid(child.pid)}}),
              flush=True)
        time.sleep(60)
        """)
    info = read_json_line(proc)
    assert info["sid"] == info["pgid"] == info["pid"]  # its own session and group
    assert alive(info["pid"])
    proc.kill()
    proc.wait()
    assert_all_gone([info["pid"]], timeout=5)


def test_a_child_of_a_worker_thread_is_not_killed_when_the_thread_ends(tmp_path: Path) -> None:
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits: off by default outside the main thread.
    children: list[Child] = []

    def start() -> None:
        children.append(Child("sleep", ["sleep", "60"], log_path=tmp_path / "sleep.log").start())

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    child = children[0]
    try:
        time.sleep(0.3)
        assert child.running
    finally:
        child.stop()
