"""One child process of the demo's ``Stack``: ``Child`` starts a program in its own session, logging to a file,
waits for its HTTP readiness URL, and stops its whole process group; ``ChildError`` says why a child did not
start, quoting its log. Also the process-group helpers that ``demo.sweeping`` uses to stop marked processes.

Made by ``demo.stack`` (``Stack.start``); the tests make their own too.

* **Own session per child** (``start_new_session=True``): Ctrl-C in a terminal goes to the foreground
  process group only, i.e. to us, not to every child at once. The stack then stops the children in order,
  each with SIGTERM to its *process group* (so helpers it forked go too), SIGKILL after ``stop_timeout``,
  and ``wait()`` to reap it (no zombies).
* **``PR_SET_PDEATHSIG`` = SIGKILL** (Linux, set in a ``preexec_fn`` through ctypes): a child is killed by
  the kernel when its parent dies, even by ``kill -9``. ``preexec_fn`` runs in the forked child *after*
  ``setsid()`` (CPython's ``_posixsubprocess`` does setsid, then preexec_fn, then exec), and the death
  signal survives both setsid and exec (it is only cleared for set-user-ID programs). The child checks
  that its parent is still the process that forked it, to close the race with a parent dying before
  ``prctl``. The function is resolved before the fork, so the child only makes one foreign call. Caveat:
  the kernel sends the signal when the parent *thread* exits, so it is enabled by default only for
  children started from the main thread (``die_with_parent=None``); worker threads get the watchdog
  (``demo.sweeping``) only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

__all__ = ["POLL", "Child", "ChildError", "group_exists", "signal_group"]

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between two looks at a child or a process group
_LOG_TAIL = 2000
_PR_SET_PDEATHSIG = 1


class ChildError(RuntimeError):
    """A child did not start, exited early or did not become ready; the message quotes its log."""


# -- process groups ------------------------------------------------------------------------------------------


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group(pgid: int, sig: int) -> None:
    """Signal a process group, never our own (or 0/1, which would mean every process)."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


_prctl: Any = None


def _death_signal_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` setting ``PR_SET_PDEATHSIG`` to SIGKILL, or None where prctl is not available."""
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            prctl = libc.prctl
        except (OSError, AttributeError):
            return None
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        _prctl = prctl
    prctl_fn = _prctl
    parent = os.getpid()

    def preexec() -> None:  # runs in the forked child, between setsid() and exec
        prctl_fn(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the signal will never come
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# -- one child --------------------------------------------------------------------------------------------


class Child:
    """One child process in its own session, logging to a file, with an optional HTTP readiness URL.

    ``start()`` launches it; ``wait_ready()`` polls ``ready_url`` until 200; ``stop()`` sends SIGTERM to its
    process group, SIGKILL after ``stop_timeout``, and reaps it. ``die_with_parent`` sets
    ``PR_SET_PDEATHSIG`` (default: when started from the main thread, see the module docstring).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path | str,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_url: str | None = None,
        stop_timeout: float = 5.0,
        die_with_parent: bool | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv must name a program")
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = None if cwd is None else Path(cwd)
        self.ready_url = ready_url
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self.popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Child({self.name!r}, pid={self.pid}, returncode={self.returncode})"

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    @property
    def returncode(self) -> int | None:
        """None while running (or not started); the exit status once it exited (reaped)."""
        return None if self.popen is None else self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Child:
        if self.popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        die = self.die_with_parent
        if die is None:
            die = threading.current_thread() is threading.main_thread()
        preexec = _death_signal_preexec() if die else None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=preexec,
                    close_fds=True,
                )
            except OSError as exc:
                raise ChildError(f"{self.name}: cannot run {self.argv!r}: {exc}") from exc
        log.info("%s: started (pid %d): %s", self.name, self.popen.pid, " ".join(self.argv))
        return self

    def wait_ready(self, timeout: float = 30.0) -> Child:
        """Poll ``ready_url`` until it answers 200; ``ChildError`` (quoting the log) on exit or timeout."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        if self.ready_url is None:
            return self
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(trust_env=False) as client:
            while True:
                code = self.popen.poll()
                if code is not None:
                    raise ChildError(f"{self.name} exited with status {code} during start{self._tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChildError(
                        f"{self.name}: GET {self.ready_url} not 200 within {timeout:g}s ({last}){self._tail()}"
                    )
                try:
                    response = client.get(self.ready_url, timeout=max(0.05, min(1.0, remaining)))
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        return self
                    last = f"HTTP {response.status_code}"
                time.sleep(POLL)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` (default ``stop_timeout``), reap.

        Idempotent; returns the exit status (None when never started).
        """
        popen = self.popen
        if popen is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        pgid = popen.pid  # start_new_session: the child leads its own group
        if popen.poll() is None or group_exists(pgid):
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while (popen.poll() is None or group_exists(pgid)) and time.monotonic() < deadline:
                time.sleep(POLL)
            if popen.poll() is None or group_exists(pgid):
                log.warning("%s (pid %d) ignored SIGTERM for %gs, killing", self.name, popen.pid, timeout)
                signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5.0)
        # A group survives its leader while members are alive: wait for them too (SIGKILL cannot be ignored).
        deadline = time.monotonic() + 5.0
        while group_exists(pgid) and time.monotonic() < deadline:
            signal_group(pgid, signal.SIGKILL)
            time.sleep(POLL)
        return popen.returncode

    def log_tail(self, chars: int = _LOG_TAIL) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - chars))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _tail(self) -> str:
        tail = self.log_tail().strip()
        return f"; log {self.log_path}:\n{tail}" if tail else f"; log {self.log_path} is empty"
