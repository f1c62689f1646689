"""Finding and stopping what a ``Stack`` started, wherever it ran: every process carrying the stack's marker in
its environment, and the watchdog process that does that when the stack's owner is gone.

Used by ``demo.stack`` (on close, and it starts the watchdog as ``python -m alertscaler.demo.stack
--watchdog``, whose ``__main__`` is ``watchdog_main`` here) and by ``demo.running`` (what was left behind).

* **A marker in the environment**: every child gets ``ALERTSCALER_STACK=<random token>``, and so does
  everything it starts, in particular the instances of alertscaler's ``local`` provider, which run in
  their own sessions on purpose (they survive a restart of alertscaler). After stopping its children the
  stack finds the processes carrying its token in ``/proc/*/environ`` and stops their process groups.
* **A watchdog** covers what PDEATHSIG cannot (grandchildren in their own sessions, such as the local
  provider's instances, and children of worker threads): a small process (``python -m
  alertscaler.demo.stack --watchdog``) in its own session blocks reading a pipe whose only write end the
  stack holds. When the stack's process exits — normally or by ``kill -9`` — the read returns EOF and it
  stops every process carrying the token (and removes the temporary directory the stack would have removed).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Collection, Sequence

from alertscaler.demo.children import POLL, signal_group
from alertscaler.providers.common.processes import processes_with_env

__all__ = ["MARKER_ENV", "marked_processes", "terminate_marked", "watchdog_main"]

log = logging.getLogger(__name__)

MARKER_ENV = "ALERTSCALER_STACK"


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


# -- finding and stopping marked processes ---------------------------------------------------------------


def marked_processes(token: str, exclude: Collection[int] = ()) -> list[int]:
    """Pids of live processes whose environment has ``ALERTSCALER_STACK=token``."""
    return processes_with_env(MARKER_ENV, token, exclude)


def terminate_marked(token: str, timeout: float = 5.0, exclude: Collection[int] = ()) -> list[int]:
    """SIGTERM the process groups of every process marked with ``token``, SIGKILL them after ``timeout``.

    Returns the pids found. A marked process in our own process group is signalled alone.
    """

    def signal_all(pids: list[int], sig: int) -> None:
        own = os.getpgrp()
        for pid in pids:
            pgid = _process_group(pid)
            if pgid is None:
                continue
            if pgid == own or pgid <= 1:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            else:
                signal_group(pgid, sig)

    found = marked_processes(token, exclude)
    if not found:
        return []
    signal_all(found, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = found
    while remaining and time.monotonic() < deadline:
        time.sleep(POLL)
        remaining = marked_processes(token, exclude)
    if remaining:
        log.warning("processes %s ignored SIGTERM for %gs, killing", remaining, timeout)
        signal_all(remaining, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while remaining and time.monotonic() < deadline:
            time.sleep(POLL)
            remaining = marked_processes(token, exclude)
    return found


# -- the watchdog process ----------------------------------------------------------------------------------


def watchdog_main(argv: Sequence[str]) -> int:
    """The watchdog process: block until the stack's pipe is closed, then stop every marked process."""
    parser = argparse.ArgumentParser(prog="python -m alertscaler.demo.stack --watchdog")
    parser.add_argument("--watchdog", action="store_true", required=True)
    parser.add_argument("--fd", type=int, required=True, help="read end of the pipe the stack holds open")
    parser.add_argument("--token", required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--remove", help="directory to remove once everything is stopped")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while os.read(args.fd, 4096):
            pass
    found = terminate_marked(args.token, args.timeout)
    if found:
        print(f"watchdog: the stack's owner is gone; stopped {len(found)} process(es): {found}", flush=True)
    if args.remove:
        shutil.rmtree(args.remove, ignore_errors=True)
    return 0

