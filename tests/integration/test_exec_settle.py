"""Settling an ``exec`` action interrupted by a ``kill -9`` of the service, with real processes.

A child Python process plays the service: it calls ``ExecProvider.scale`` and is killed with SIGKILL while the
command runs (the command lives in a session of its own, so it survives). A new provider on the same state
directory then settles the action: it finds the orphan by its environment marker, waits for it (or kills it
after the timeout) and only then verifies the outcome with ``status_command``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alertscaler.providers.base import ProviderContext, Settler
from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
from alertscaler.providers.exec.runs import MARKER
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")]

# the scale command: says it started, works for $2 seconds, then records the new size
COMMAND = ["/bin/sh", "-c", 'echo $$ > "$1/started"; sleep "$2"; echo "$AS_TO" > "$1/size"', "sh"]
STATUS = ["/bin/sh", "-c", 'cat "$0/size"']


def _config(work: Path, seconds: float, timeout: float, status: bool = True) -> ExecConfig:
    return ExecConfig(type="exec", command=[*COMMAND, str(work), str(seconds)], timeout=timeout,
                      status_command=[STATUS[0], STATUS[1], STATUS[2], str(work)] if status else None)


def _service_killed_mid_command(work: Path, state: Path, seconds: float, timeout: float) -> int:
    """Run ``scale(2 -> 3, action 7)`` in a child process, SIGKILL it once the command has started; returns the
    command's pid (still running, in its own session)."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from alertscaler.providers.base import ProviderContext, ScaleRequest
        from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
        cfg = ExecConfig.model_validate_json({_config(work, seconds, timeout).model_dump_json()!r})
        p = ExecProvider(cfg, ProviderContext(group="web", state_dir=Path({str(state)!r})))
        p.scale(ScaleRequest(group="web", from_capacity=2, desired=3, action_id=7, decision_id=1))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        started = wait_for(lambda: (work / "started").exists() and (work / "started").read_text().strip(),
                           timeout=30, what="the scale command to start")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)  # the "service" dies; the command lives in its own session
        child.wait()
    return int(started)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    state.mkdir()
    (work / "size").write_text("2\n")
    return work, state


def _provider(work: Path, state: Path, seconds: float, timeout: float, status: bool = True) -> ExecProvider:
    return ExecProvider(_config(work, seconds, timeout, status), ProviderContext(group="web", state_dir=state))


def test_exec_provider_is_a_settler(dirs: tuple[Path, Path]) -> None:
    assert isinstance(_provider(*dirs, seconds=0, timeout=5), Settler)


def test_an_orphan_is_waited_for_and_its_success_verified(dirs: tuple[Path, Path]) -> None:
    work, state = dirs
    pid = _service_killed_mid_command(work, state, seconds=1.5, timeout=60)
    provider = _provider(work, state, seconds=1.5, timeout=60)
    assert pid in provider.runs.orphans(7)  # found by its marker (with its child `sleep`) after the service died
    settled = provider.settle(7, 2, 3)
    assert settled.state == "succeeded", settled
    assert "outlived the service: waited for" in settled.message
    assert (work / "size").read_text().strip() == "3"
    assert provider.runs.orphans(7) == []


def test_an_orphan_past_its_timeout_is_killed_and_the_failure_verified(dirs: tuple[Path, Path]) -> None:
    work, state = dirs
    _service_killed_mid_command(work, state, seconds=600, timeout=60)
    provider = _provider(work, state, seconds=600, timeout=0.5)
    settled = provider.settle(7, 2, 3)
    assert settled.state == "failed", settled
    assert "killed after the timeout" in settled.message
    assert provider.runs.orphans(7) == []
    assert (work / "size").read_text().strip() == "2"


def test_without_status_command_the_outcome_is_unknown_not_guessed(dirs: tuple[Path, Path]) -> None:
    work, state = dirs
    _service_killed_mid_command(work, state, seconds=0.2, timeout=60)
    settled = _provider(work, state, seconds=0.2, timeout=60, status=False).settle(7, 2, 3)
    assert settled.state == "unknown"
    assert "cannot be verified" in settled.message


def test_a_command_never_started_is_not_started(dirs: tuple[Path, Path]) -> None:
    settled = _provider(*dirs, seconds=0, timeout=5).settle(99, 2, 3)
    assert settled.state == "not_started"


def test_a_size_neither_before_nor_after_is_unknown(dirs: tuple[Path, Path]) -> None:
    work, state = dirs
    provider = _provider(work, state, seconds=0, timeout=5)
    provider.runs.record(8, 2, 3, 0.0)
    (work / "size").write_text("5\n")
    assert provider.settle(8, 2, 3).state == "unknown"


def test_the_marker_of_another_state_directory_is_not_ours(tmp_path: Path) -> None:
    a = _provider(tmp_path, tmp_path / "a", seconds=0, timeout=5)
    b = _provider(tmp_path, tmp_path / "b", seconds=0, timeout=5)
    assert a.runs.marker(7) != b.runs.marker(7)
    assert a.runs.marker(7).endswith(":7")
    assert MARKER == "ALERTSCALER_EXEC_RUN"
