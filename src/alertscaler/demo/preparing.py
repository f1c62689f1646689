"""What a child of the demo's ``Stack`` needs before it starts: its program on ``PATH`` (``find_binary``, naming
the Debian package when it is missing), free ports on 127.0.0.1 (``free_ports``) and an environment in which a
child Python imports this copy of alertscaler (``python_env``).

Used by ``demo.stack`` (ports at construction, binaries and environments when starting children), by
``demo.running`` (checks the binaries before anything starts) and by the tests that start their own processes.

* **Free ports**: bound to port 0 on 127.0.0.1 by the kernel (ephemeral range, so not the local
  provider's default 20000-29999), several at once while all are held so they are distinct. A port can be
  taken by someone else between allocation and use; the readiness check then fails with the child's log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import site
import socket
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DEBIAN_PACKAGES",
    "HOST",
    "MissingBinary",
    "find_binary",
    "free_port",
    "free_ports",
    "python_env",
]

HOST = "127.0.0.1"
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}
_INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager"


class MissingBinary(RuntimeError):
    """A program the stack needs is not installed."""


def find_binary(name: str) -> str:
    """The absolute path of ``name`` on ``PATH``; ``MissingBinary`` naming the Debian package otherwise."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name)
        hint = f" (Debian package {package!r}): {_INSTALL_HINT}" if package else ""
        raise MissingBinary(f"{name!r} is not installed or not on PATH{hint}")
    return path


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct ports that were free a moment ago (all bound at once, then released)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (picked by the kernel)."""
    return free_ports(1, host)[0]


def _site_dirs() -> set[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return {str(Path(d).resolve()) for d in dirs}


def python_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) with this copy of alertscaler importable by a child Python."""
    out = dict(os.environ if env is None else env)
    package_root = str(Path(__file__).resolve().parents[2])
    if package_root not in _site_dirs():  # running from a source tree
        out["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, out.get("PYTHONPATH")) if p)
    out.setdefault("PYTHONUNBUFFERED", "1")
    return out
