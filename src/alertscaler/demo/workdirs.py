"""The working directory of ``alertscaler demo`` given with ``--workdir``: made, or cleaned when a previous
demo left it (``prepare_workdir``, refusing any other non-empty directory); private files in it
(``write_private``); and, after a failure, a copy of the logs and configuration out of a temporary working
directory that is about to go (``save_logs``).

Used by ``demo.running``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from alertscaler.demo.stack import Stack

__all__ = ["WORKDIR_MARKER", "WorkdirError", "prepare_workdir", "save_logs", "write_private"]

WORKDIR_MARKER = ".alertscaler-demo"
_OWN_ENTRIES = ("state", "generated", "logs", "prometheus-data", "alertmanager-data", "policy.yml", "token")


def prepare_workdir(path: Path) -> None:
    """Create ``path``, or clean what a previous demo left in it; refuse a non-empty directory of other use."""
    if path.exists() and not path.is_dir():
        raise WorkdirError(f"--workdir {path}: not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not (path / WORKDIR_MARKER).exists():
            raise WorkdirError(f"--workdir {path}: not empty and not a previous demo's directory "
                               f"(no {WORKDIR_MARKER}); give an empty or new directory")
        for name in _OWN_ENTRIES:
            entry = path / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / WORKDIR_MARKER).write_text("a working directory of `alertscaler demo`; reused (cleaned) by it\n")


class WorkdirError(Exception):
    """``--workdir`` names a directory the demo must not use (a usage error)."""


def save_logs(stack: Stack) -> Path | None:
    """Copy the logs, the policy and the generated files out of the temporary working directory."""
    try:
        saved = Path(tempfile.mkdtemp(prefix="alertscaler-demo-logs-"))
        for name in ("logs", "generated"):
            if (stack.workdir / name).is_dir():
                shutil.copytree(stack.workdir / name, saved / name)
        if (stack.workdir / "policy.yml").is_file():
            shutil.copy2(stack.workdir / "policy.yml", saved / "policy.yml")
    except OSError:
        return None
    return saved


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by us only (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
