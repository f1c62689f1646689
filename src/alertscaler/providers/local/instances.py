"""Instances of the ``local`` provider as files and processes. Used by ``local.provider``
(scaling) and ``local.healing``.

One instance = one detached process (own session and process group, output to ``<state_dir>/<id>.log``) and its
record ``<state_dir>/<id>.json`` (``Record``, written atomically): pid, port, creation time, the process start
time from ``/proc/<pid>/stat`` (defends against pid reuse), its ``phase`` — ``spawning`` (the intent, written
BEFORE the fork, so that a crash never leaves an unrecorded process), ``starting`` until healthy, ``running``,
``stopping`` —, ``replaces`` (the member a heal started it to replace), ``quarantined_at`` (out of the group,
kept running) and ``leaving_at`` (a scale-in's victim: ``stopping`` and draining since then).

``Instances`` owns one state directory: reading and writing records, the lock that serializes every change
(a thread lock, and ``flock`` on ``<state_dir>/.lock`` across processes), starting an instance and waiting
until it is healthy, and stopping instances (SIGTERM then SIGCONT to the process group — a stopped process
must be able to act on the SIGTERM —, SIGKILL after ``stop_timeout``). The process primitives below are shared
by every ``Instances`` of this process (which children it started, which ports are being taken).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import signal
import site
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.common import userdata
from alertscaler.providers.common.processes import proc_stat, processes_with_env
from alertscaler.providers.local.config import LocalConfig

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_POLL = 0.1  # seconds between liveness / health polls
_LOG_TAIL = 400  # characters of an instance's log quoted in errors
_KEPT_LOGS = 20  # logs of dead / failed instances kept for inspection, newest first
_PROC = Path("/proc")


@dataclass(frozen=True)
class Record:
    """What ``<state_dir>/<id>.json`` holds about one instance."""

    id: str
    group: str
    pid: int
    port: int
    created_at: str  # ISO 8601, UTC
    start_time: int | None  # field 22 of /proc/<pid>/stat (clock ticks since boot); None without /proc
    phase: str  # "spawning" (intent, no pid yet), "starting" until healthy, "running", "stopping"
    command: list[str]
    replaces: str | None = None  # the member this instance was started to replace (heal)
    quarantined_at: str | None = None  # ISO 8601: out of the group since then, left running
    leaving_at: str | None = None  # ISO 8601: a scale-in's victim, out of discovery and draining since then

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


RECORD_FIELDS = frozenset(Record.__dataclass_fields__)

# -- process bookkeeping shared by every provider of this process ----------------------------------------

_children_lock = threading.Lock()
_children: dict[int, subprocess.Popen[bytes]] = {}  # pid -> Popen of instances this process started
_reserved_ports: set[int] = set()  # ports allocated to instances still starting, across groups


def try_reap(pid: int) -> None:
    """``waitpid`` a zombie if it is our child (it is not when it was adopted from a previous run)."""
    with _children_lock:
        popen = _children.pop(pid, None)
    if popen is not None:
        popen.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def find_instance_process(instance_id: str) -> int | None:
    """The live process whose environment says it is ``instance_id`` (see ``Instances.command``)."""
    found = processes_with_env("ALERTSCALER_INSTANCE_ID", instance_id)
    return found[0] if found else None


def is_alive(record: Record) -> bool:
    """True when the recorded process still runs and is the same process (not a reused pid, not a zombie)."""
    if record.pid <= 0:  # "spawning": no process known yet
        return False
    with _children_lock:
        popen = _children.get(record.pid)
    if popen is not None and popen.poll() is not None:  # poll() reaps our own dead children
        with _children_lock:
            _children.pop(record.pid, None)
        return False
    if _PROC.is_dir():
        stat = proc_stat(record.pid)
        if stat is None:
            return False
        state, start_time = stat
        if state in ("Z", "X"):
            try_reap(record.pid)
            return False
        return record.start_time is None or start_time == record.start_time
    try:  # no /proc (not Linux): existence only
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: our pid was reused
    return True


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def signal_group(pgid: int, sig: signal.Signals) -> None:
    if pgid <= 1:  # never our own process group (0) or every process (-1 / 1)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind (asyncio, uvicorn)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def reap(record: Record, timeout: float = 5.0) -> None:
    """Wait (up to ``timeout``) until the recorded process is gone; ``wait`` it when it is our child."""
    with _children_lock:
        popen = _children.get(record.pid)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout)
        with _children_lock:
            _children.pop(record.pid, None)
        return
    deadline = time.monotonic() + timeout
    while is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.02)


def release_port(port: int) -> None:
    with _children_lock:
        _reserved_ports.discard(port)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Instances:
    """The instances recorded in one state directory, and how to start and stop them. Thread-safe."""

    def __init__(self, config: LocalConfig, group: str, state_dir: Path) -> None:
        self.config = config
        self.group = group
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of ``exclusive`` in the thread holding ``_lock``
        self._id_prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", group).strip("-.") or "group"

    # -- records ----------------------------------------------------------------------------------------

    def record_path(self, instance_id: str) -> Path:
        return self.state_dir / f"{instance_id}.json"

    def log_path(self, instance_id: str) -> Path:
        return self.state_dir / f"{instance_id}.log"

    def user_data_path(self, instance_id: str) -> Path:
        """The instance's rendered user data (``user_data`` of the config), named by ``ALERTSCALER_USER_DATA_FILE``."""
        return self.state_dir / f"{instance_id}.user-data"

    def write_user_data(self, instance_id: str, index: int, keep: bool = False) -> None:
        """Render the config's user data for this instance into its file (mode 0600: it may hold secrets), unless
        ``keep`` and the file is there (a reboot keeps what the instance was started with)."""
        template = self.config.template
        path = self.user_data_path(instance_id)
        if template is None or (keep and path.exists()):
            return
        text = userdata.render_for(template, self.group, instance_id, index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)

    def load(self) -> list[Record]:
        """Every record of the directory (members, quarantined ones, intents). Never blocks on the lock."""
        records: list[Record] = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                records.append(Record(**{k: v for k, v in data.items() if k in RECORD_FIELDS}))
            except FileNotFoundError:
                continue  # removed meanwhile
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable instance record %s: %s", path, exc)
        return records

    def save(self, record: Record) -> None:
        path = self.record_path(record.id)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as fh:
            json.dump(asdict(record), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def forget(self, record: Record, keep_log: bool) -> None:
        self.record_path(record.id).unlink(missing_ok=True)
        self.user_data_path(record.id).unlink(missing_ok=True)
        if not keep_log:
            self.log_path(record.id).unlink(missing_ok=True)

    def settle_spawning(self, record: Record) -> Record:
        """A record left "spawning" by a killed alertscaler: adopt its process if it was started."""
        if record.phase != "spawning":
            return record
        pid = find_instance_process(record.id)
        stat = proc_stat(pid) if pid else None
        if pid is None or stat is None:
            return record  # never started: pid 0 is not alive, the record is dropped as dead
        adopted = replace(record, pid=pid, start_time=stat[1], phase="starting")
        self.save(adopted)
        log.warning("%s: adopted %s (pid %d) left unrecorded by an interrupted start", self.group, record.id, pid)
        return adopted

    def prune_logs(self) -> None:
        """Keep the newest ``_KEPT_LOGS`` logs of instances that are gone."""
        orphans = []
        for path in self.state_dir.glob("*.log"):
            if not path.with_suffix(".json").exists():
                with contextlib.suppress(OSError):
                    orphans.append((path.stat().st_mtime, path))
        for _, path in sorted(orphans, reverse=True)[_KEPT_LOGS:]:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Serialize changes with other threads, providers and processes working on this state directory.
        Re-entrant in one thread (the ``flock`` is taken once, by the outermost call)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with open(self.state_dir / ".lock", "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def log_tail(self, instance_id: str) -> str:
        try:
            with open(self.log_path(instance_id), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL))
                tail = fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f" (log: ...{tail[-_LOG_TAIL:]})" if tail else ""

    # -- starting ---------------------------------------------------------------------------------------

    def command(self, instance_id: str, port: int) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.config.command is None:
            w = self.config.workload
            template = [
                sys.executable, "-m", "alertscaler.workload", "--port", "{port}", "--host", "{host}",
                "--service-time", repr(w.service_time), "--concurrency", str(w.concurrency),
                "--queue-limit", str(w.queue_limit),
                "--drain-timeout", repr(max(0.1, self.config.stop_timeout * 0.8)),
            ]  # fmt: skip
            # Let the child import alertscaler from wherever this process did (e.g. a source tree on sys.path).
            package_root = str(Path(__file__).resolve().parents[2])
            if package_root not in _site_dirs():
                env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
            env.setdefault("PYTHONUNBUFFERED", "1")
        else:
            template = list(self.config.command)
        values = {"{port}": str(port), "{host}": HOST, "{id}": instance_id, "{group}": self.group}
        argv = [_substitute(arg, values) for arg in template]
        env.update({k: _substitute(v, values) for k, v in self.config.env.items()})
        env.update(
            {
                "ALERTSCALER_GROUP": self.group,
                "ALERTSCALER_INSTANCE_ID": instance_id,
                "ALERTSCALER_PORT": str(port),
                "ALERTSCALER_HOST": HOST,
            }
        )
        if self.config.template is not None:
            env["ALERTSCALER_USER_DATA_FILE"] = str(self.user_data_path(instance_id))
        return argv, env

    def allocate_port(self) -> int:
        """A bindable port of ``port_range`` that is neither in our records nor reserved by a starting one."""
        low, high = self.config.port_range
        ours = {r.port for r in self.load()}  # quarantined instances keep their port
        size = high - low + 1
        offset = secrets.randbelow(size)  # spread groups sharing the default range
        with _children_lock:
            for i in range(size):
                port = low + (offset + i) % size
                if port in ours or port in _reserved_ports:
                    continue
                if port_free(port):
                    _reserved_ports.add(port)
                    return port
        raise TemporaryProviderError(f"{self.group}: no free port in {low}-{high}")

    def spawn(self, *, replaces: str | None = None, again: Record | None = None, index: int = 1) -> Record:
        """Start one instance: a new one (new id and port; ``replaces`` names the member it is for; the ``index``-th
        of its action, for its user data), or ``again`` — an instance that was stopped — with its id, port and
        creation time (reboot)."""
        if again is None:
            instance_id, port, created_at = f"{self._id_prefix}-{secrets.token_hex(4)}", self.allocate_port(), now_iso()
        else:
            instance_id, port, created_at, replaces = again.id, again.port, again.created_at, again.replaces
            with _children_lock:
                _reserved_ports.add(port)
        argv, env = self.command(instance_id, port)
        try:
            self.write_user_data(instance_id, index, keep=again is not None)
        except OSError as exc:
            release_port(port)
            raise TemporaryProviderError(f"{self.group}: cannot write the user data of {instance_id}: {exc}") from exc
        # Intent first: if alertscaler is killed between the fork and the record below, the next scale
        # finds the process by its ALERTSCALER_INSTANCE_ID and adopts it instead of starting a double.
        self.save(Record(id=instance_id, group=self.group, pid=0, port=port, created_at=created_at, start_time=None,
                         phase="spawning", command=argv, replaces=replaces))
        try:
            with open(self.log_path(instance_id), "ab") as log_file:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # own session and process group: survives our restart
                    close_fds=True,
                )
        except OSError as exc:
            release_port(port)
            if again is None:
                self.log_path(instance_id).unlink(missing_ok=True)
                self.record_path(instance_id).unlink(missing_ok=True)
            else:
                self.save(again)  # the stopped instance stays recorded (and reported failed)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR):
                raise PermanentProviderError(f"{self.group}: cannot run command {argv!r}: {exc}") from exc
            raise TemporaryProviderError(f"{self.group}: cannot start command {argv!r}: {exc}") from exc
        with _children_lock:
            _children[popen.pid] = popen
        stat = proc_stat(popen.pid)
        record = Record(id=instance_id, group=self.group, pid=popen.pid, port=port, created_at=created_at,
                        start_time=stat[1] if stat else None, phase="starting", command=argv, replaces=replaces)
        self.save(record)
        log.info("%s: started %s (pid %d, port %d): %s", self.group, instance_id, popen.pid, port, argv)
        return record

    def await_healthy(self, records: list[Record], forget_failed: bool = True) -> dict[str, str]:
        """Poll until every record is healthy or ``start_timeout``; stop the failed ones (and forget them,
        unless ``forget_failed`` is False: then they stay recorded, dead, i.e. reported failed).

        Returns ``{id: reason}`` of the failures; healthy records are saved as ``running``.
        """
        failures: dict[str, str] = {}
        pending = {r.id: r for r in records}
        deadline = time.monotonic() + self.config.start_timeout
        try:
            with httpx.Client(trust_env=False) as client:
                while pending:
                    for record in list(pending.values()):
                        if not is_alive(record):
                            failures[record.id] = "exited during start" + self.log_tail(record.id)
                        elif self._healthy(client, record, deadline):
                            self.save(replace(record, phase="running"))
                        else:
                            continue
                        del pending[record.id]
                    if not pending:
                        break
                    if time.monotonic() >= deadline:
                        for record in pending.values():
                            what = f"GET {self.config.health_path}" if self.config.health_path else "start"
                            failures[record.id] = (
                                f"{what} not healthy within {self.config.start_timeout:g}s" + self.log_tail(record.id)
                            )
                        break
                    time.sleep(_POLL)
        finally:
            for record in records:
                release_port(record.port)
        failed = [r for r in records if r.id in failures]
        self.stop(failed, keep_log=True, forget=forget_failed)
        for record in failed:
            log.warning("%s: instance %s failed to start: %s", self.group, record.id, failures[record.id])
        return failures

    def _healthy(self, client: httpx.Client, record: Record, deadline: float) -> bool:
        if self.config.health_path is None:
            return True
        timeout = max(0.05, min(1.0, deadline - time.monotonic()))
        try:
            response = client.get(f"http://{HOST}:{record.port}{self.config.health_path}", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    # -- stopping ---------------------------------------------------------------------------------------

    def stop(self, records: list[Record], keep_log: bool = False, forget: bool = True) -> None:
        """Mark each live one ``stopping``; SIGTERM (+ SIGCONT) each process group, wait up to ``stop_timeout``,
        SIGKILL what is left, reap; then forget the records (or, with ``forget=False``, keep them, dead)."""
        targets = [r for r in records if is_alive(r)]  # never signal a pid that is no longer ours
        for record in targets:
            if record.phase != "stopping":
                self.save(replace(record, phase="stopping"))
            signal_group(record.pid, signal.SIGTERM)
            signal_group(record.pid, signal.SIGCONT)  # a stopped (SIGSTOP) process could not act on SIGTERM
        deadline = time.monotonic() + self.config.stop_timeout
        remaining = list(targets)
        while remaining and time.monotonic() < deadline:
            time.sleep(_POLL)
            remaining = [r for r in remaining if is_alive(r) or group_exists(r.pid)]
        for record in remaining:
            log.warning("%s: %s ignored SIGTERM for %gs, killing", self.group, record.id, self.config.stop_timeout)
            signal_group(record.pid, signal.SIGKILL)
        for record in remaining:
            reap(record)
        for record in records:
            release_port(record.port)
            if forget:
                self.forget(record, keep_log=keep_log)


def _site_dirs() -> set[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()] if hasattr(site, "getsitepackages") else []
    return {str(Path(d).resolve()) for d in dirs}


def _substitute(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
