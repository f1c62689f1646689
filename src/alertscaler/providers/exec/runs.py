"""Runs of the ``exec`` scale command that can outlive the service, and how they are found again.

A command runs in a session of its own, so a ``kill -9`` of alertscaler does not stop it. Before a command
is started (``Popen``), a run record ``<state_dir>/exec-runs/<action id>.json`` is written and fsync'd: its
presence later proves the command was (or was about to be) started; its absence proves it never was. The
command's environment carries ``ALERTSCALER_EXEC_RUN=<token>:<action id>`` (the token is derived from the
provider's state directory, so two deployments on one machine never confuse their runs); every process the
command starts inherits it unless it clears its environment. At recovery (``ExecProvider.settle``) the live
processes carrying the marker are the orphans of that action: they are waited for — at most the configured
``timeout``, as if the service had never died — and then their process groups are killed. Only then is the
outcome judged from ``status_command`` (``act.lifecycle`` runs any reconcile after that, never before).

Used by ``providers.exec.provider``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from alertscaler.providers.common.processes import processes_with_env

MARKER = "ALERTSCALER_EXEC_RUN"
KEEP_RECORDS = 200  # run records kept per group (the newest); older ones are deleted when a new one is written


class RunRecords:
    """The run records and orphan processes of one ``exec`` group (one state directory)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "exec-runs"
        self.token = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]

    def marker(self, action_id: int) -> str:
        return f"{self.token}:{action_id}"

    def record(self, action_id: int, from_capacity: int, desired: int, now: float) -> None:
        """Durably note that the command of ``action_id`` is about to start (write, fsync file and directory)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{action_id}.json"
        tmp = path.with_name(f".{action_id}.{os.getpid()}.{threading.get_ident()}.tmp")
        data = json.dumps({"action_id": action_id, "from": from_capacity, "desired": desired, "started": now})
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._prune()

    def started(self, action_id: int) -> bool:
        return (self.dir / f"{action_id}.json").exists()

    def orphans(self, action_id: int) -> list[int]:
        """Pids of live processes started by the command of ``action_id`` (not this process)."""
        return processes_with_env(MARKER, self.marker(action_id))

    def settle_orphans(self, action_id: int, wait: float, clock: Callable[[], float] = time.monotonic,
                       pause: Callable[[float], None] = time.sleep) -> tuple[int, bool]:
        """Wait up to ``wait`` s for the orphans of ``action_id`` to exit, then kill what is left (SIGTERM, then
        SIGKILL to each process group). Returns (how many orphans were found, whether any had to be killed)."""
        found = self.orphans(action_id)
        if not found:
            return 0, False
        deadline = clock() + wait
        while clock() < deadline and self.orphans(action_id):
            pause(0.1)
        left = self.orphans(action_id)
        if not left:
            return len(found), False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), sig)
            grace = clock() + 5.0
            while clock() < grace and (left := self.orphans(action_id)):
                pause(0.05)
            if not left:
                break
        return len(found), True

    def _prune(self) -> None:
        try:
            records = sorted(self.dir.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        except OSError:
            return
        for old in records[:-KEEP_RECORDS]:
            with contextlib.suppress(OSError):
                old.unlink()
