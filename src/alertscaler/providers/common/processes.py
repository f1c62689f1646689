"""Reading /proc: a process's state and start time, and the processes whose environment carries a marker.

The ``local`` provider finds (and re-adopts) its instances this way, ``demo.stack`` finds everything its
children started so that nothing outlives it, and tests check that no process leaked.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

PROC = Path("/proc")


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from /proc, or None when there is none."""
    try:
        data = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    try:
        fields = data[data.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime) of proc(5)
    except (ValueError, IndexError):
        return None


def processes_with_env(name: str, value: str, exclude: Collection[int] = ()) -> list[int]:
    """Pids of live processes (not zombies, not this one) whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    me = os.getpid()
    found = []
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me or pid in exclude:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            stat = proc_stat(pid)
            if stat is not None and stat[0] not in ("Z", "X"):
                found.append(pid)
    return sorted(found)
