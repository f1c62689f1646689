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
they like (e.g. with ``alertscaler.confgen``), using the ports it allocated. Used by ``demo.running`` and the
integration and end-to-end tests; ``python -m alertscaler.demo.stack --watchdog`` runs the watchdog
(``demo.sweeping``), which the stack starts.

The parts: ``demo.preparing`` (binaries, free ports, a child Python's environment), ``demo.children`` (one
child in its own session, killed with its parent), ``demo.sweeping`` (the marker and the watchdog). Here, the
lifecycle, and why:

* **Stopping in order**: the children are stopped in reverse start order (Prometheus, Alertmanager,
  alertscaler, so no alert is sent to a stopped receiver), each with its whole process group
  (``Child.stop``), then every process carrying the stack's marker (``terminate_marked``).
* **Stopping cannot be interrupted**: while the stack stops, SIGINT/SIGTERM/SIGHUP are ignored (a second
  Ctrl-C would otherwise abort the cleanup half-way and leave orphans); each step is bounded by timeouts.
* **Signals → KeyboardInterrupt**: inside ``with Stack()``, SIGTERM and SIGHUP raise ``Interrupted`` (a
  ``KeyboardInterrupt``) like Ctrl-C does, so ``__exit__`` runs; without that SIGTERM would end the process
  with no cleanup. SIGINT keeps Python's default handler when it has it (``asyncio.run`` then installs its
  own, which cancels the main task); ignored signals (``nohup``) stay ignored. Handlers are installed only
  from the main thread and restored on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from alertscaler.demo.children import Child
from alertscaler.demo.preparing import HOST, find_binary, free_ports, python_env
from alertscaler.demo.sweeping import MARKER_ENV, marked_processes, terminate_marked, watchdog_main

__all__ = ["Interrupted", "Stack"]

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """Raised inside ``with Stack()`` by SIGTERM / SIGHUP (and SIGINT when we handle it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


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



if __name__ == "__main__":
    sys.exit(watchdog_main(sys.argv[1:]))
