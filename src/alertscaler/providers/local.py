"""Provider type ``local``: a group is a set of processes on this machine, listening on 127.0.0.1.

By default each instance is the bundled workload (``python -m alertscaler.workload``), a server of fixed
capacity; ``command`` runs anything else (``{port}``, ``{host}``, ``{id}``, ``{group}`` are substituted in its
argv). Instances are started detached (own session, output to ``<state_dir>/<id>.log``) so they survive a
restart of alertscaler. Each is recorded in ``<state_dir>/<id>.json`` (written atomically): pid, port,
creation time and the process start time from ``/proc/<pid>/stat``, which defends against pid reuse. A new
provider on the same state directory re-adopts the live instances.

``scale`` converges (``idempotent = True``): it drops records of dead instances, starts instances until the
group has ``desired`` live ones (each health-checked on ``http://127.0.0.1:<port><health_path>``), or stops
the newest surplus ones (SIGTERM to the process group, SIGKILL after ``stop_timeout``). Calls are serialized
by a lock, and across processes by ``flock`` on ``<state_dir>/.lock``.
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
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertscaler.model.durations import Duration
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.processes import proc_stat, processes_with_env

__all__ = ["CONFIG_MODEL", "LocalConfig", "LocalProvider", "WorkloadSettings", "create"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_POLL = 0.1  # seconds between liveness / health polls
_LOG_TAIL = 400  # characters of an instance's log quoted in errors
_KEPT_LOGS = 20  # logs of dead / failed instances kept for inspection, newest first
_PROC = Path("/proc")


class WorkloadSettings(BaseModel):
    """Capacity model of the bundled workload (used when ``command`` is not set)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_time: Duration = 0.05
    concurrency: int = Field(default=4, ge=1)
    queue_limit: int = Field(default=64, ge=0)

    @field_validator("service_time")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value


class LocalConfig(BaseModel):
    """``providers: {type: local, ...}`` of a group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local"] = "local"
    command: list[str] | None = None
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    port_range: tuple[int, int] = (20000, 29999)
    health_path: str | None = "/healthz"
    start_timeout: Duration = 10.0
    stop_timeout: Duration = 5.0
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("must name a program (a non-empty argv list)")
        return value

    @field_validator("health_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @model_validator(mode="after")
    def _ports(self) -> LocalConfig:
        low, high = self.port_range
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"port_range must be [low, high] with 1 <= low <= high <= 65535, got {self.port_range}")
        return self


CONFIG_MODEL = LocalConfig


def create(config: LocalConfig, context: ProviderContext) -> LocalProvider:
    return LocalProvider(config, context)


# -- process bookkeeping shared by every LocalProvider of this process ---------------------------

_children_lock = threading.Lock()
_children: dict[int, subprocess.Popen[bytes]] = {}  # pid -> Popen of instances this process started
_reserved_ports: set[int] = set()  # ports allocated to instances still starting, across groups


@dataclass(frozen=True)
class _Record:
    """What ``<state_dir>/<id>.json`` holds about one instance."""

    id: str
    group: str
    pid: int
    port: int
    created_at: str  # ISO 8601, UTC
    start_time: int | None  # field 22 of /proc/<pid>/stat (clock ticks since boot); None without /proc
    phase: str  # "starting" until healthy, then "running"
    command: list[str]

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


_RECORD_FIELDS = frozenset(_Record.__dataclass_fields__)


def _try_reap(pid: int) -> None:
    """``waitpid`` a zombie if it is our child (it is not when it was adopted from a previous run)."""
    with _children_lock:
        popen = _children.pop(pid, None)
    if popen is not None:
        popen.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _find_instance_process(instance_id: str) -> int | None:
    """The live process whose environment says it is ``instance_id`` (see ``LocalProvider._command``)."""
    found = processes_with_env("ALERTSCALER_INSTANCE_ID", instance_id)
    return found[0] if found else None


def _is_alive(record: _Record) -> bool:
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
            _try_reap(record.pid)
            return False
        return record.start_time is None or start_time == record.start_time
    try:  # no /proc (not Linux): existence only
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: our pid was reused
    return True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    if pgid <= 1:  # never our own process group (0) or every process (-1 / 1)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind (asyncio, uvicorn)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class LocalProvider:
    """Instances of one group as detached local processes. Thread-safe; see the module docstring."""

    idempotent = True

    def __init__(self, config: LocalConfig, context: ProviderContext) -> None:
        self.config = config
        self.group = context.group
        self.state_dir = Path(context.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._id_prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.group).strip("-.") or "group"

    # -- Provider ---------------------------------------------------------------------------------

    def status(self) -> GroupStatus:
        members = self.members()
        live = [m for m in members if m.state is not MemberState.FAILED]
        failed = len(members) - len(live)
        detail = f"{len(live)} live" + (f", {failed} failed" if failed else "")
        return GroupStatus(current=len(live), members=tuple(members), detail=detail)

    def members(self) -> list[Member]:
        # No lock: records are replaced atomically, so reading never blocks behind a long ``scale``.
        records = sorted(self._load(), key=lambda r: (r.created_at, r.id))
        return [self._member(record, _is_alive(record)) for record in records]

    def scale(self, request: ScaleRequest) -> str:
        desired = request.desired
        if desired < 0:
            raise PermanentProviderError(f"desired capacity must be >= 0, got {desired}")
        with self._lock, self._state_lock():
            try:
                return self._converge(desired)
            finally:
                self._prune_logs()

    def _converge(self, desired: int) -> str:
        """Forget dead instances, stop the newest surplus, start and health-check the missing ones."""
        notes: list[str] = []
        live: list[_Record] = []
        dead: list[_Record] = []
        for record in self._load():
            if record.phase == "spawning":
                record = self._settle_spawning(record)
            (live if _is_alive(record) else dead).append(record)
        for record in dead:
            self._forget(record, keep_log=True)
        if dead:
            notes.append(f"removed {len(dead)} dead ({', '.join(r.id for r in dead)})")

        live.sort(key=lambda r: (r.created_at, r.id))
        if len(live) > desired:
            surplus = list(reversed(live[desired:]))  # newest first
            self._stop(surplus)
            live = live[:desired]
            notes.append(f"stopped {len(surplus)} ({', '.join(r.id for r in surplus)})")

        to_check = [r for r in live if r.phase != "running"]  # left "starting" by an interrupted scale
        started: list[_Record] = []
        try:
            for _ in range(desired - len(live)):
                started.append(self._spawn())
        except PermanentProviderError:
            self._stop(started)
            raise
        except TemporaryProviderError as exc:
            notes.append(str(exc))
        to_check += started
        failures = self._await_healthy(to_check)
        healthy_new = [r for r in started if r.id not in failures]
        if healthy_new:
            notes.insert(0, f"started {len(healthy_new)} ({', '.join(r.id for r in healthy_new)})")
        now = len(live) + len(started) - len(failures)
        if failures or now != desired:
            problems = "; ".join(f"{rid}: {why}" for rid, why in failures.items())
            notes.append(problems)
            raise TemporaryProviderError(
                f"{self.group}: {now} of {desired} instances running: " + "; ".join(n for n in notes if n)
            )
        if not notes:
            return f"no change, {now} running"
        return ", ".join(notes) + f", now {now}"

    def close(self) -> None:
        """Nothing to release: instances keep running, and a new provider re-adopts them."""

    # -- records ----------------------------------------------------------------------------------

    def _record_path(self, instance_id: str) -> Path:
        return self.state_dir / f"{instance_id}.json"

    def _log_path(self, instance_id: str) -> Path:
        return self.state_dir / f"{instance_id}.log"

    def _load(self) -> list[_Record]:
        records: list[_Record] = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                records.append(_Record(**{k: v for k, v in data.items() if k in _RECORD_FIELDS}))
            except FileNotFoundError:
                continue  # removed meanwhile
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable instance record %s: %s", path, exc)
        return records

    def _save(self, record: _Record) -> None:
        path = self._record_path(record.id)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as fh:
            json.dump(asdict(record), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _settle_spawning(self, record: _Record) -> _Record:
        """A record left "spawning" by a killed alertscaler: adopt its process if it was started."""
        pid = _find_instance_process(record.id)
        stat = proc_stat(pid) if pid else None
        if pid is None or stat is None:
            return record  # never started: pid 0 is not alive, the record is dropped as dead
        adopted = replace(record, pid=pid, start_time=stat[1], phase="starting")
        self._save(adopted)
        log.warning("%s: adopted %s (pid %d) left unrecorded by an interrupted start", self.group, record.id, pid)
        return adopted

    def _forget(self, record: _Record, keep_log: bool) -> None:
        self._record_path(record.id).unlink(missing_ok=True)
        if not keep_log:
            self._log_path(record.id).unlink(missing_ok=True)

    def _prune_logs(self) -> None:
        """Keep the newest ``_KEPT_LOGS`` logs of instances that are gone."""
        orphans = []
        for path in self.state_dir.glob("*.log"):
            if not path.with_suffix(".json").exists():
                with contextlib.suppress(OSError):
                    orphans.append((path.stat().st_mtime, path))
        for _, path in sorted(orphans, reverse=True)[_KEPT_LOGS:]:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _state_lock(self) -> Iterator[None]:
        """Serialize ``scale`` with other providers (and processes) working on the same state directory."""
        with open(self.state_dir / ".lock", "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _member(self, record: _Record, alive: bool) -> Member:
        if not alive:
            state = MemberState.FAILED
        elif record.phase == "running":
            state = MemberState.RUNNING
        else:
            state = MemberState.STARTING
        return Member(
            id=record.id,
            address=f"{HOST}:{record.port}",
            state=state,
            created_at=record.created,
            labels={"port": str(record.port), "pid": str(record.pid)},
        )

    # -- starting ---------------------------------------------------------------------------------

    def _command(self, instance_id: str, port: int) -> tuple[list[str], dict[str, str]]:
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
        return argv, env

    def _allocate_port(self) -> int:
        """A bindable port of ``port_range`` that is neither in our records nor reserved by a starting one."""
        low, high = self.config.port_range
        ours = {r.port for r in self._load()}
        size = high - low + 1
        offset = secrets.randbelow(size)  # spread groups sharing the default range
        with _children_lock:
            for i in range(size):
                port = low + (offset + i) % size
                if port in ours or port in _reserved_ports:
                    continue
                if _port_free(port):
                    _reserved_ports.add(port)
                    return port
        raise TemporaryProviderError(f"{self.group}: no free port in {low}-{high}")

    def _spawn(self) -> _Record:
        instance_id = f"{self._id_prefix}-{secrets.token_hex(4)}"
        port = self._allocate_port()
        argv, env = self._command(instance_id, port)
        # Intent first: if alertscaler is killed between the fork and the record below, the next scale
        # finds the process by its ALERTSCALER_INSTANCE_ID and adopts it instead of starting a double.
        self._save(_Record(id=instance_id, group=self.group, pid=0, port=port,
                           created_at=datetime.now(UTC).isoformat(), start_time=None, phase="spawning",
                           command=argv))
        try:
            with open(self._log_path(instance_id), "ab") as log_file:
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
            self._release_port(port)
            self._log_path(instance_id).unlink(missing_ok=True)
            self._record_path(instance_id).unlink(missing_ok=True)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR):
                raise PermanentProviderError(f"{self.group}: cannot run command {argv!r}: {exc}") from exc
            raise TemporaryProviderError(f"{self.group}: cannot start command {argv!r}: {exc}") from exc
        with _children_lock:
            _children[popen.pid] = popen
        stat = proc_stat(popen.pid)
        record = _Record(
            id=instance_id,
            group=self.group,
            pid=popen.pid,
            port=port,
            created_at=datetime.now(UTC).isoformat(),
            start_time=stat[1] if stat else None,
            phase="starting",
            command=argv,
        )
        self._save(record)
        log.info("%s: started %s (pid %d, port %d): %s", self.group, instance_id, popen.pid, port, argv)
        return record

    @staticmethod
    def _release_port(port: int) -> None:
        with _children_lock:
            _reserved_ports.discard(port)

    def _await_healthy(self, records: list[_Record]) -> dict[str, str]:
        """Poll until every record is healthy or ``start_timeout``; stop and forget the failed ones.

        Returns ``{id: reason}`` of the failures; healthy records are saved as ``running``.
        """
        failures: dict[str, str] = {}
        pending = {r.id: r for r in records}
        deadline = time.monotonic() + self.config.start_timeout
        try:
            with httpx.Client(trust_env=False) as client:
                while pending:
                    for record in list(pending.values()):
                        if not _is_alive(record):
                            failures[record.id] = "exited during start" + self._log_tail(record.id)
                        elif self._healthy(client, record, deadline):
                            self._save(replace(record, phase="running"))
                        else:
                            continue
                        del pending[record.id]
                    if not pending:
                        break
                    if time.monotonic() >= deadline:
                        for record in pending.values():
                            what = f"GET {self.config.health_path}" if self.config.health_path else "start"
                            failures[record.id] = (
                                f"{what} not healthy within {self.config.start_timeout:g}s" + self._log_tail(record.id)
                            )
                        break
                    time.sleep(_POLL)
        finally:
            for record in records:
                self._release_port(record.port)
        failed = [r for r in records if r.id in failures]
        self._stop(failed, keep_log=True)
        for record in failed:
            log.warning("%s: instance %s failed to start: %s", self.group, record.id, failures[record.id])
        return failures

    def _healthy(self, client: httpx.Client, record: _Record, deadline: float) -> bool:
        if self.config.health_path is None:
            return True
        timeout = max(0.05, min(1.0, deadline - time.monotonic()))
        try:
            response = client.get(f"http://{HOST}:{record.port}{self.config.health_path}", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _log_tail(self, instance_id: str) -> str:
        try:
            with open(self._log_path(instance_id), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL))
                tail = fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f" (log: ...{tail[-_LOG_TAIL:]})" if tail else ""

    # -- stopping ---------------------------------------------------------------------------------

    def _stop(self, records: list[_Record], keep_log: bool = False) -> None:
        """SIGTERM each process group, wait up to ``stop_timeout``, SIGKILL what is left, reap, forget."""
        targets = [r for r in records if _is_alive(r)]  # never signal a pid that is no longer ours
        for record in targets:
            _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_timeout
        remaining = list(targets)
        while remaining and time.monotonic() < deadline:
            time.sleep(_POLL)
            remaining = [r for r in remaining if _is_alive(r) or _group_exists(r.pid)]
        for record in remaining:
            log.warning("%s: %s ignored SIGTERM for %gs, killing", self.group, record.id, self.config.stop_timeout)
            _signal_group(record.pid, signal.SIGKILL)
        for record in remaining:
            self._reap(record)
        for record in records:
            self._release_port(record.port)
            self._forget(record, keep_log=keep_log)

    @staticmethod
    def _reap(record: _Record, timeout: float = 5.0) -> None:
        with _children_lock:
            popen = _children.get(record.pid)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout)
            with _children_lock:
                _children.pop(record.pid, None)
            return
        deadline = time.monotonic() + timeout
        while _is_alive(record) and time.monotonic() < deadline:
            time.sleep(0.02)


def _site_dirs() -> set[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()] if hasattr(site, "getsitepackages") else []
    return {str(Path(d).resolve()) for d in dirs}


def _substitute(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
