"""Child processes for ``alertscaler demo`` and the end-to-end tests: Prometheus, Alertmanager, alertscaler
itself (and anything else), on 127.0.0.1 with free ports, in a working directory — and never an orphan.

Use::

    with Stack() as stack:                       # a temporary working directory, removed at the end
        # write configs using stack.prometheus_port / alertmanager_port / alertscaler_port (or *_url)
        stack.start_alertscaler(policy_file)     # ready: GET /readyz == 200
        stack.start_alertmanager(am_file)        # ready: GET /-/ready == 200
        stack.start_prometheus(prom_file)        # ready: GET /-/ready == 200
        ...                                      # Ctrl-C / SIGTERM here raises KeyboardInterrupt
    # every process is gone here, including the instances alertscaler's local provider started

The Stack does not write configuration: it takes file paths, so the demo and the tests generate them as
they like (e.g. with ``alertscaler.confgen``), using the ports it allocated.

Choices, and why:

* **Own session per child** (``start_new_session=True``): Ctrl-C in a terminal goes to the foreground
  process group only, i.e. to us, not to every child at once. We then stop the children in order
  (Prometheus, Alertmanager, alertscaler: reverse start order, so no alert is sent to a stopped receiver),
  each with SIGTERM to its *process group* (so helpers it forked go too), SIGKILL after ``stop_timeout``,
  and ``wait()`` to reap it (no zombies).
* **Stopping cannot be interrupted**: while the stack stops, SIGINT/SIGTERM/SIGHUP are ignored (a second
  Ctrl-C would otherwise abort the cleanup half-way and leave orphans); each step is bounded by timeouts.
* **Signals → KeyboardInterrupt**: inside ``with Stack()``, SIGTERM and SIGHUP raise ``Interrupted`` (a
  ``KeyboardInterrupt``) like Ctrl-C does, so ``__exit__`` runs; without that SIGTERM would end the process
  with no cleanup. SIGINT keeps Python's default handler when it has it (``asyncio.run`` then installs its
  own, which cancels the main task); ignored signals (``nohup``) stay ignored. Handlers are installed only
  from the main thread and restored on exit.
* **A marker in the environment**: every child gets ``ALERTSCALER_STACK=<random token>``, and so does
  everything it starts, in particular the instances of alertscaler's ``local`` provider, which run in
  their own sessions on purpose (they survive a restart of alertscaler). After stopping its children the
  stack finds the processes carrying its token in ``/proc/*/environ`` and stops their process groups.
* **``PR_SET_PDEATHSIG`` = SIGKILL** (Linux, set in a ``preexec_fn`` through ctypes): a child is killed by
  the kernel when its parent dies, even by ``kill -9``. ``preexec_fn`` runs in the forked child *after*
  ``setsid()`` (CPython's ``_posixsubprocess`` does setsid, then preexec_fn, then exec), and the death
  signal survives both setsid and exec (it is only cleared for set-user-ID programs). The child checks
  that its parent is still the process that forked it, to close the race with a parent dying before
  ``prctl``. The function is resolved before the fork, so the child only makes one foreign call. Caveat:
  the kernel sends the signal when the parent *thread* exits, so it is enabled by default only for
  children started from the main thread (``die_with_parent=None``); worker threads get the watchdog only.
* **A watchdog** covers what PDEATHSIG cannot (grandchildren in their own sessions, such as the local
  provider's instances, and children of worker threads): a small process (``python -m
  alertscaler.demo.stack --watchdog``) in its own session blocks reading a pipe whose only write end we
  hold. When we exit — normally or by ``kill -9`` — the read returns EOF and it stops every process
  carrying the token (and removes the temporary directory we would have removed).
* **Free ports**: bound to port 0 on 127.0.0.1 by the kernel (ephemeral range, so not the local
  provider's default 20000-29999), several at once while all are held so they are distinct. A port can be
  taken by someone else between allocation and use; the readiness check then fails with the child's log.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

from alertscaler.providers.processes import processes_with_env

__all__ = [
    "DEBIAN_PACKAGES",
    "HOST",
    "MARKER_ENV",
    "Child",
    "ChildError",
    "Interrupted",
    "MissingBinary",
    "Stack",
    "find_binary",
    "free_port",
    "free_ports",
    "marked_processes",
    "terminate_marked",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MARKER_ENV = "ALERTSCALER_STACK"
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}
_INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager"
_POLL = 0.05
_LOG_TAIL = 2000
_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class MissingBinary(RuntimeError):
    """A program the stack needs is not installed."""


class ChildError(RuntimeError):
    """A child did not start, exited early or did not become ready; the message quotes its log."""


class Interrupted(KeyboardInterrupt):
    """Raised inside ``with Stack()`` by SIGTERM / SIGHUP (and SIGINT when we handle it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


# -- small helpers --------------------------------------------------------------------------------------


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


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
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
                _signal_group(pgid, sig)

    found = marked_processes(token, exclude)
    if not found:
        return []
    signal_all(found, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = found
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL)
        remaining = marked_processes(token, exclude)
    if remaining:
        log.warning("processes %s ignored SIGTERM for %gs, killing", remaining, timeout)
        signal_all(remaining, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while remaining and time.monotonic() < deadline:
            time.sleep(_POLL)
            remaining = marked_processes(token, exclude)
    return found


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
                time.sleep(_POLL)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` (default ``stop_timeout``), reap.

        Idempotent; returns the exit status (None when never started).
        """
        popen = self.popen
        if popen is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        pgid = popen.pid  # start_new_session: the child leads its own group
        if popen.poll() is None or _group_exists(pgid):
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while (popen.poll() is None or _group_exists(pgid)) and time.monotonic() < deadline:
                time.sleep(_POLL)
            if popen.poll() is None or _group_exists(pgid):
                log.warning("%s (pid %d) ignored SIGTERM for %gs, killing", self.name, popen.pid, timeout)
                _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5.0)
        # A group survives its leader while members are alive: wait for them too (SIGKILL cannot be ignored).
        deadline = time.monotonic() + 5.0
        while _group_exists(pgid) and time.monotonic() < deadline:
            _signal_group(pgid, signal.SIGKILL)
            time.sleep(_POLL)
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


# -- the stack ---------------------------------------------------------------------------------------------


class Stack:
    """Children on 127.0.0.1 in ``workdir`` (a temporary directory by default), stopped on exit, always.

    Ports are allocated at construction: ``prometheus_port``, ``alertmanager_port``, ``alertscaler_port``
    (and ``*_url``), for the caller to put in the configuration files it writes. Logs go to
    ``workdir/logs/<name>.log``. ``with Stack() as stack`` (or ``open()`` / ``close()``).
    """

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        keep_workdir: bool = False,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        handle_signals: bool = True,
        watchdog: bool = True,
        python: str = sys.executable,
    ) -> None:
        self._temporary = workdir is None
        self._workdir = None if workdir is None else Path(workdir)  # a temporary one is made by open()
        self.keep_workdir = keep_workdir or not self._temporary  # never delete a directory we did not create
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.handle_signals = handle_signals
        self.use_watchdog = watchdog
        self.python = python
        self.token = secrets.token_hex(8)
        self.prometheus_port, self.alertmanager_port, self.alertscaler_port = free_ports(3)
        self.children: dict[str, Child] = {}
        self.interrupted_by: int | None = None  # a stop signal that arrived while stopping
        self._lock = threading.RLock()
        self._opened = False
        self._stopping = False
        self._saved_handlers: dict[int, Any] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_fd: int | None = None

    # -- URLs ---------------------------------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{HOST}:{self.alertmanager_port}"

    @property
    def alertscaler_url(self) -> str:
        return f"http://{HOST}:{self.alertscaler_port}"

    @property
    def workdir(self) -> Path:
        """The working directory (a temporary one exists from ``open()`` / ``with`` until ``close()``)."""
        if self._workdir is None:
            raise RuntimeError("the stack's temporary working directory is made by open() (or `with Stack()`)")
        return self._workdir

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> Stack:
        """Install signal handlers, start the watchdog, register an ``atexit`` stop. Idempotent."""
        with self._lock:
            if self._opened:
                return self
            self._opened = True
            self._stopping = False
            if self._temporary:
                self._workdir = Path(tempfile.mkdtemp(prefix="alertscaler-stack-"))
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            if self.handle_signals:
                self._install_handlers()
            atexit.register(self.close)
            try:
                if self.use_watchdog:
                    self._start_watchdog()
            except BaseException:
                self.close()
                raise
            return self

    def close(self) -> None:
        """Stop every child (reverse start order), then every process carrying our token; clean up.

        Safe to call more than once and from ``atexit``; not interruptible by SIGINT/SIGTERM/SIGHUP.
        """
        with self._lock:
            if not self._opened:
                return
            self._stopping = True
            shield = self._shield_signals()
            try:
                for child in reversed(list(self.children.values())):
                    try:
                        child.stop()
                    except Exception:
                        log.exception("stopping %s", child.name)
                try:
                    found = terminate_marked(self.token, self.stop_timeout)
                    if found:
                        log.info("stopped %d process(es) started by the children: %s", len(found), found)
                except Exception:
                    log.exception("stopping the children's own processes")
                self._stop_watchdog()
                if not self.keep_workdir:
                    shutil.rmtree(self.workdir, ignore_errors=True)
            finally:
                self._opened = False
                self._restore_signals(shield)
                self._restore_signals(self._saved_handlers)
                self._saved_handlers = {}
                atexit.unregister(self.close)

    stop = close

    # -- children -----------------------------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        timeout: float | None = None,
        stop_timeout: float | None = None,
    ) -> Child:
        """Start ``argv`` as child ``name`` (unique), marked with our token; wait for ``ready_url``.

        On a failed start the child is stopped and ``ChildError`` raised (the stack itself stays up).
        """
        self.open()
        with self._lock:
            if name in self.children:
                raise ValueError(f"a child named {name!r} exists already")
            child_env = dict(os.environ if env is None else env)
            child_env[MARKER_ENV] = self.token
            child = Child(
                name,
                argv,
                log_path=self.logs_dir / f"{name}.log",
                env=child_env,
                cwd=self.workdir if cwd is None else cwd,
                ready_url=ready_url,
                stop_timeout=self.stop_timeout if stop_timeout is None else stop_timeout,
            )
            self.children[name] = child
        try:
            child.start()
            child.wait_ready(self.start_timeout if timeout is None else timeout)
        except BaseException:
            child.stop()
            raise
        return child

    def start_prometheus(self, config_file: Path | str, *, extra_args: Sequence[str] = ()) -> Child:
        """``prometheus`` on ``prometheus_port`` with ``config_file``, data in ``workdir/prometheus-data``."""
        binary = find_binary("prometheus")
        data = self.workdir / "prometheus-data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            f"--config.file={Path(config_file).resolve()}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={HOST}:{self.prometheus_port}",
            f"--web.external-url={self.prometheus_url}/",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=2s",
            *extra_args,
        ]
        return self.start("prometheus", argv, ready_url=f"{self.prometheus_url}/-/ready")

    def start_alertmanager(self, config_file: Path | str, *, extra_args: Sequence[str] = ()) -> Child:
        """``prometheus-alertmanager`` on ``alertmanager_port``, clustering off, data in the workdir."""
        binary = find_binary("prometheus-alertmanager")
        data = self.workdir / "alertmanager-data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            f"--config.file={Path(config_file).resolve()}",
            f"--storage.path={data}",
            f"--web.listen-address={HOST}:{self.alertmanager_port}",
            f"--web.external-url={self.alertmanager_url}/",
            "--cluster.listen-address=",
            *extra_args,
        ]
        return self.start("alertmanager", argv, ready_url=f"{self.alertmanager_url}/-/ready")

    def start_alertscaler(
        self,
        config_file: Path | str,
        *,
        url: str | None = None,
        log_level: str = "info",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Child:
        """``alertscaler serve -c config_file`` with this Python; ready when ``GET <url>/readyz`` is 200.

        ``url`` defaults to ``alertscaler_url``: put ``server.listen: 127.0.0.1:<alertscaler_port>`` in the file.
        """
        base = (url or self.alertscaler_url).rstrip("/")
        argv = [self.python, "-m", "alertscaler.cli", "serve", "-c", str(Path(config_file).resolve()),
                "--log-level", log_level, *extra_args]  # fmt: skip
        return self.start("alertscaler", argv, ready_url=f"{base}/readyz", env=python_env(env))

    def dead(self) -> list[Child]:
        """Children that exited (for a supervising loop: the stack is broken when this is not empty)."""
        return [c for c in self.children.values() if c.popen is not None and c.returncode is not None]

    def pids(self) -> list[int]:
        """Pids of the children and of every live process carrying our token."""
        own = [c.pid for c in self.children.values() if c.pid is not None and c.running]
        return sorted(set(own) | set(marked_processes(self.token)))

    # -- watchdog ----------------------------------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        read_fd, write_fd = os.pipe()  # both non-inheritable; only read_fd is passed on
        argv = [self.python, "-m", "alertscaler.demo.stack", "--watchdog", "--fd", str(read_fd),
                "--token", self.token, "--timeout", repr(self.stop_timeout)]  # fmt: skip
        if not self.keep_workdir:
            argv += ["--remove", str(self.workdir)]
        env = python_env()
        env.pop(MARKER_ENV, None)
        try:
            with open(self.logs_dir / "watchdog.log", "ab") as log_file:
                self._watchdog = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=(read_fd,),
                    start_new_session=True,  # Ctrl-C must not reach it: it has to outlive us
                )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        self._watchdog_fd = write_fd

    def _stop_watchdog(self) -> None:
        if self._watchdog_fd is not None:
            os.close(self._watchdog_fd)  # EOF: it sweeps (nothing is left) and exits
            self._watchdog_fd = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(self.stop_timeout + 5.0)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None

    # -- signals -----------------------------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not the main thread: signal handlers not installed")
            return
        for sig in _STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue  # e.g. nohup: respect it
            if sig == signal.SIGINT and previous is signal.default_int_handler:
                continue  # already raises KeyboardInterrupt, and lets asyncio.run install its handler
            self._saved_handlers[sig] = previous
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self.interrupted_by = signum
            log.info("%s while stopping: ignored, the stack is stopping", signal.Signals(signum).name)
            return
        raise Interrupted(signum)

    def _shield_signals(self) -> dict[int, Any]:
        """While stopping: every stop signal only notes itself. Returns the handlers to restore."""
        saved: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return saved
        for sig in _STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN or previous is None:
                continue
            saved[sig] = previous
            signal.signal(sig, self._on_signal)
        return saved

    @staticmethod
    def _restore_signals(saved: Mapping[int, Any]) -> None:
        if not saved or threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


# -- the watchdog process ----------------------------------------------------------------------------------


def _watchdog_main(argv: Sequence[str]) -> int:
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


if __name__ == "__main__":
    sys.exit(_watchdog_main(sys.argv[1:]))
