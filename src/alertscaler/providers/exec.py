"""Provider type ``exec``: run a command to scale a group — a safe superset of prometheus-am-executor.

The command is an argv list, never a shell string: it is started with ``shell=False``, so label values
from alerts (quotes, ``$(...)``, backticks, ``;``, newlines) reach it as data and are never interpreted.

Environment of the command, later entries winning:

1. this process's environment, minus any inherited ``AMX_*`` variable (those would describe some other
   notification, e.g. when alertscaler itself runs under am-executor);
2. ``config.env`` (names starting with ``AMX_`` or ``AS_`` are reserved and rejected by the config);
3. the alert variables exactly as prometheus-am-executor sets them (see ``amx_environment``), plus
   ``AS_GROUP``, ``AS_FROM``, ``AS_TO``, ``AS_ACTION_ID`` and ``AS_DECISION_ID``.

The notification JSON is written to the command's stdin (am-executor gives it none). For timer and manual
decisions, which have no notification, a synthetic Alertmanager-shaped body is written instead (see
``synthetic_notification``): receiver ``alertscaler``, the request's alerts, empty ``groupLabels``.

Outcomes: exit 0 → a short message with the first line of stdout; an exit status listed in
``temporary_exit_codes`` (default 75, EX_TEMPFAIL) → ``TemporaryProviderError``; any other non-zero exit, a
death by signal, or a command that cannot be started → ``PermanentProviderError`` with the last lines of
stderr. On ``timeout`` the command's whole process group (it runs in a session of its own) gets SIGTERM,
then SIGKILL 5 s later, and the call raises ``TemporaryProviderError("... timed out after Ns")``: a slow
command is most often a slow API behind it, worth another try. The command may have acted before it was
killed, which is why the provider declares ``idempotent = False``: whoever retries must expect that a
re-run could act twice (and can compare against ``status()`` first). A command that exits but
leaves a background process holding its stdout or stderr open is still "running" until the timeout (as in
am-executor, which also waits for its output): background processes must redirect their output.

``status_command`` (optional; run with ``AS_GROUP`` set, empty stdin, the same timeout and exit-status rules)
prints the current capacity as an integer, or JSON ``{"current": n, "members": [{"id": .., "address": ..,
"state": .., "labels": {..}}]}`` (``current`` defaults to the number of members; a member's ``address`` to
null, its ``state`` to ``running``). Anything else is a ``PermanentProviderError`` quoting the output.
Without it, ``status()`` reports ``current=None``.

``max_concurrent`` bounds concurrent ``scale`` calls of one provider instance; ``status_command`` runs
outside that bound. Values of ``config.env`` may be secrets: they are never logged nor put in errors (only
their names), and are redacted from the command output quoted in messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from alertscaler.model.durations import Duration
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest

log = logging.getLogger(__name__)

_KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out command's process group
_STDOUT_LIMIT = 1 << 20  # bytes of stdout kept (the rest is read and dropped)
_STDERR_LIMIT = 64 << 10  # bytes of the end of stderr kept
_TAIL_LINES = 20
_LINE_CHARS = 200
_REDACT_MIN = 4  # env values shorter than this are not redacted from output (would mangle it)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_SAFE = re.compile(r"[A-Za-z0-9_]*")
_ENV_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_]")
_INTEGER = re.compile(r"[+-]?\d+")
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MISSING = object()


# --------------------------------------------------------------------------------------------- config


def _argv_not_string(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            "must be a list of arguments, e.g. [/path/scale.sh, --up] — a shell string is never run"
        )
    return value


def _argv_valid(value: list[str]) -> list[str]:
    if not value[0]:
        raise ValueError("the first argument (the program) must not be empty")
    if any("\x00" in arg for arg in value):
        raise ValueError("arguments must not contain NUL characters")
    return value


Argv = Annotated[
    list[str], BeforeValidator(_argv_not_string), Field(min_length=1), AfterValidator(_argv_valid)
]
"""An argv list: program then arguments."""


class ExecConfig(BaseModel):
    """Configuration of an ``exec`` group. Input values are hidden from validation errors (``env``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["exec"]
    command: Argv
    timeout: Duration = 60.0
    max_concurrent: Annotated[int, Field(ge=1)] = 1
    status_command: Argv | None = None
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    workdir: str | None = None
    temporary_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(default_factory=lambda: [75])

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
            if name.startswith(("AMX_", "AS_")):
                raise ValueError(f"{name!r}: names starting with AMX_ or AS_ are set by alertscaler")
            if "\x00" in text:
                raise ValueError(f"the value of {name} contains a NUL character")
        return value


CONFIG_MODEL = ExecConfig


# ------------------------------------------------------------------------------------ environment


def amx_environment(notification: Mapping[str, Any], request: ScaleRequest) -> dict[str, str]:
    """The variables prometheus-am-executor sets for ``notification``, plus alertscaler's ``AS_*``.

    As in am-executor (``amDataToEnv`` in its ``server.go``): ``AMX_RECEIVER``, ``AMX_STATUS``,
    ``AMX_EXTERNAL_URL``, ``AMX_ALERT_LEN``; ``AMX_LABEL_<k>`` (common labels), ``AMX_GLABEL_<k>`` (group
    labels), ``AMX_ANNOTATION_<k>`` (common annotations); per alert, numbered from 1,
    ``AMX_ALERT_<n>_{STATUS,START,END,URL,FINGERPRINT}`` and ``AMX_ALERT_<n>_{LABEL,ANNOTATION}_<k>``.
    ``START``/``END`` are whole seconds since the epoch (floored), ``0`` for Go's zero time
    ``0001-01-01T00:00:00Z`` (what Alertmanager sends as ``endsAt`` of a firing alert) — and here also for
    a missing or unparsable time. Missing strings are empty. Names and values are case-preserved.

    Differences, only where am-executor would produce something unusable: a name ``<k>`` with characters
    outside ``[A-Za-z0-9_]`` (possible with UTF-8 label names) has each such character replaced by ``_``;
    if that collides with another name of the same set, the name that needed no change wins, then the
    first in sorted order. NUL characters (impossible in an environment) are dropped from values, and
    unpaired surrogates become ``?``. Values are otherwise byte-for-byte: they are data, never shell code.
    """
    env: dict[str, str] = {
        "AMX_RECEIVER": _text(notification.get("receiver")),
        "AMX_STATUS": _text(notification.get("status")),
        "AMX_EXTERNAL_URL": _text(notification.get("externalURL")),
    }
    raw_alerts = notification.get("alerts")
    alerts: list[Any] = raw_alerts if isinstance(raw_alerts, list) else []
    env["AMX_ALERT_LEN"] = str(len(alerts))
    _put_pairs(env, "AMX_LABEL_", notification.get("commonLabels"))
    _put_pairs(env, "AMX_GLABEL_", notification.get("groupLabels"))
    _put_pairs(env, "AMX_ANNOTATION_", notification.get("commonAnnotations"))
    for n, raw in enumerate(alerts, start=1):
        alert: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        key = f"AMX_ALERT_{n}"
        env[f"{key}_STATUS"] = _text(alert.get("status"))
        env[f"{key}_START"] = _epoch(alert.get("startsAt"))
        env[f"{key}_END"] = _epoch(alert.get("endsAt"))
        env[f"{key}_URL"] = _text(alert.get("generatorURL"))
        env[f"{key}_FINGERPRINT"] = _text(alert.get("fingerprint"))
        _put_pairs(env, f"{key}_LABEL_", alert.get("labels"))
        _put_pairs(env, f"{key}_ANNOTATION_", alert.get("annotations"))
    env.update(
        AS_GROUP=_clean(request.group),
        AS_FROM=str(request.from_capacity),
        AS_TO=str(request.desired),
        AS_ACTION_ID=str(request.action_id),
        AS_DECISION_ID=str(request.decision_id),
    )
    return env


def synthetic_notification(request: ScaleRequest) -> dict[str, Any]:
    """The body written to stdin (and turned into ``AMX_*``) when a decision has no notification.

    Shaped like an Alertmanager webhook (version 4): receiver ``alertscaler``, the request's alerts, status
    ``resolved`` only when there are alerts and all are resolved, common labels/annotations computed as
    Alertmanager does (the pairs every alert shares), empty group labels, external URL and group key.
    """
    alerts = [a for a in request.alerts if isinstance(a, Mapping)]
    resolved = bool(alerts) and all(a.get("status") == "resolved" for a in alerts)
    return {
        "version": "4",
        "receiver": "alertscaler",
        "status": "resolved" if resolved else "firing",
        "alerts": list(request.alerts),
        "groupLabels": {},
        "commonLabels": _common(alerts, "labels"),
        "commonAnnotations": _common(alerts, "annotations"),
        "externalURL": "",
        "groupKey": "",
        "truncatedAlerts": 0,
    }


def _common(alerts: Sequence[Mapping[str, Any]], field: str) -> dict[str, Any]:
    if not alerts:
        return {}
    maps: list[Mapping[str, Any]] = [a[field] if isinstance(a.get(field), Mapping) else {} for a in alerts]
    return {k: v for k, v in maps[0].items() if all(m.get(k, _MISSING) == v for m in maps[1:])}


def _clean(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return _clean(value if isinstance(value, str) else json.dumps(value))


def _epoch(value: Any) -> str:
    if not isinstance(value, str):
        return "0"
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment == _GO_ZERO_TIME:
            return "0"
        return str((moment - _EPOCH) // timedelta(seconds=1))
    except (ValueError, OverflowError):
        return "0"


def _put_pairs(env: dict[str, str], prefix: str, pairs: Any) -> None:
    if not isinstance(pairs, Mapping):
        return
    names = [str(k) for k in pairs]
    exact = [k for k in names if _ENV_SAFE.fullmatch(k)]
    changed = sorted(k for k in names if not _ENV_SAFE.fullmatch(k))
    taken: set[str] = set()
    for name in exact + changed:
        key = prefix + _ENV_UNSAFE_CHAR.sub("_", name)
        if key in taken:
            continue
        taken.add(key)
        env[key] = _text(pairs[name])


# ------------------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class _Outcome:
    returncode: int
    stdout: bytes  # the first _STDOUT_LIMIT bytes
    stderr: bytes  # the last _STDERR_LIMIT bytes
    stdout_truncated: bool


class _Collector:
    """Drains one pipe in a thread, keeping its head (stdout) or its tail (stderr)."""

    def __init__(self, pipe: IO[bytes], limit: int, keep_tail: bool) -> None:
        self.data = bytearray()
        self.truncated = False
        self._pipe, self._limit, self._tail = pipe, limit, keep_tail
        self.thread = threading.Thread(target=self._drain, daemon=True, name="exec-output")
        self.thread.start()

    def _drain(self) -> None:
        fd = self._pipe.fileno()
        try:
            while chunk := os.read(fd, 65536):
                if self._tail:
                    self.data += chunk
                    if len(self.data) > self._limit:
                        del self.data[: len(self.data) - self._limit]
                        self.truncated = True
                    continue
                room = self._limit - len(self.data)
                if len(chunk) > room:
                    self.truncated = True
                self.data += chunk[: max(room, 0)]
        except OSError:
            pass
        finally:
            self._pipe.close()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        if data:
            pipe.write(data)
    except (OSError, ValueError):
        pass  # the command does not read its stdin: fine
    finally:
        with contextlib.suppress(OSError, ValueError):
            pipe.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _leader_exited(pid: int) -> bool:
    """True once the group leader has exited, WITHOUT reaping it: while it is an unreaped zombie its pid
    (which is also the process group id) cannot be reused, so signalling the group stays safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class _TimedOut(Exception):
    pass


def _run(
    argv: Sequence[str], *, env: dict[str, str], cwd: str | None, stdin: bytes, timeout: float
) -> _Outcome:
    """Run ``argv`` in a new session; kill its process group on ``timeout`` (raises ``_TimedOut``).
    Raises ``OSError`` when it cannot be started."""
    proc = subprocess.Popen(  # argv list, shell=False: nothing is interpreted
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        shell=False,
        close_fds=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True, name="exec-stdin").start()
    out = _Collector(proc.stdout, _STDOUT_LIMIT, keep_tail=False)
    err = _Collector(proc.stderr, _STDERR_LIMIT, keep_tail=True)
    readers = (out.thread, err.thread)
    try:
        # Output first: the leader is not reaped until its output is done, so on a timeout here its pid
        # (the process group id) is still reserved when the group is signalled.
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise _TimedOut
        try:
            returncode = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise _TimedOut from None
    except _TimedOut:
        _terminate(proc, readers)
        raise
    return _Outcome(returncode, bytes(out.data), bytes(err.data), out.truncated)


def _terminate(proc: subprocess.Popen[bytes], readers: Sequence[threading.Thread]) -> None:
    """SIGTERM the process group; SIGKILL it after ``_KILL_GRACE`` s; reap the leader."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + _KILL_GRACE
    while time.monotonic() < end:
        if _leader_exited(proc.pid) and not any(r.is_alive() for r in readers):
            break
        time.sleep(0.02)
    _signal_group(pgid, signal.SIGKILL)  # whatever is left of the group, including TERM-ignoring children
    try:
        proc.wait(_KILL_GRACE)
    except subprocess.TimeoutExpired:
        log.warning("exec: process %d did not die after SIGKILL", proc.pid)
    for reader in readers:  # EOF once every member of the group holding the pipes is gone
        reader.join(_KILL_GRACE)


# ----------------------------------------------------------------------------------------- provider


class ExecProvider:
    """Scales a group by running ``config.command``; reads its size from ``config.status_command``."""

    idempotent: bool = False

    def __init__(self, config: ExecConfig, context: ProviderContext) -> None:
        self.config = config
        self.context = context
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        self._secrets = sorted(
            (v for v in config.env.values() if len(v) >= _REDACT_MIN), key=len, reverse=True
        )

    # -- Provider

    def scale(self, request: ScaleRequest) -> str:
        body = request.notification if request.notification is not None else synthetic_notification(request)
        env = self._base_env()
        env.update(amx_environment(body, request))
        stdin = (json.dumps(body, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._slots:
            outcome = self._execute(self.config.command, env, stdin)
        first = self._first_line(outcome.stdout)
        return f"exit 0: {first}" if first else "exit 0 (no output)"

    def status(self) -> GroupStatus:
        argv = self.config.status_command
        if argv is None:
            return GroupStatus(current=None, detail="exec provider has no status_command")
        env = self._base_env()
        env["AS_GROUP"] = _clean(self.context.group)
        outcome = self._execute(argv, env, b"")
        if outcome.stdout_truncated:
            raise PermanentProviderError(f"status_command {argv[0]} printed more than {_STDOUT_LIMIT} bytes")
        return self._parse_status(argv[0], outcome.stdout.decode("utf-8", "replace"))

    def members(self) -> list[Member]:
        return list(self.status().members)

    def close(self) -> None:
        pass

    # -- internals

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMX_")}
        env.update(self.config.env)
        return env

    def _execute(self, argv: Sequence[str], env: dict[str, str], stdin: bytes) -> _Outcome:
        program = argv[0]
        log.info(
            "exec group=%s: running %s (timeout %gs, extra env names: %s)",
            self.context.group,
            _shown(argv),
            self.config.timeout,
            ", ".join(sorted(self.config.env)) or "-",
        )
        try:
            outcome = _run(argv, env=env, cwd=self.config.workdir, stdin=stdin, timeout=self.config.timeout)
        except _TimedOut:
            raise TemporaryProviderError(
                f"{program} timed out after {self.config.timeout:g}s (its process group was killed)"
            ) from None
        except FileNotFoundError as exc:
            if self.config.workdir is not None and exc.filename == self.config.workdir:
                raise PermanentProviderError(f"workdir {self.config.workdir} does not exist") from exc
            raise PermanentProviderError(f"command not found: {program}") from exc
        except PermissionError as exc:
            raise PermanentProviderError(f"command not executable: {program} ({exc.strerror})") from exc
        except OSError as exc:
            raise PermanentProviderError(f"cannot run {program}: {exc.strerror or exc}") from exc
        code = outcome.returncode
        if code == 0:
            return outcome
        what = f"exited with status {code}" if code > 0 else f"was killed by {_signal_name(-code)}"
        message = f"{program} {what}{self._stderr_tail(outcome.stderr)}"
        log.warning("exec group=%s: %s", self.context.group, message)
        if code in self.config.temporary_exit_codes:
            raise TemporaryProviderError(message)
        raise PermanentProviderError(message)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _first_line(self, stdout: bytes) -> str:
        for line in stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                return _cut(self._redact(line.strip()))
        return ""

    def _stderr_tail(self, stderr: bytes) -> str:
        lines = [ln.rstrip() for ln in stderr.decode("utf-8", "replace").splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        if not lines:
            return " (no stderr)"
        tail = [_cut(self._redact(ln)) for ln in lines[-_TAIL_LINES:]]
        lines_word = "line" if len(tail) == 1 else f"{len(tail)} lines"
        return f"; stderr (last {lines_word}):\n" + "\n".join(tail)

    def _parse_status(self, program: str, output: str) -> GroupStatus:
        text = output.strip()
        shown = repr(_cut(self._redact(text)))
        if _INTEGER.fullmatch(text):
            current = int(text)
            if current < 0:
                raise PermanentProviderError(f"status_command {program} printed a negative capacity {shown}")
            return GroupStatus(current=current, detail=f"from {program}")
        try:
            data = json.loads(text)
        except ValueError:
            raise PermanentProviderError(
                f"status_command {program} printed {shown}: expected an integer or "
                '{"current": n, "members": [...]}'
            ) from None
        try:
            return _status_from_json(data, program)
        except (TypeError, ValueError) as exc:
            raise PermanentProviderError(f"status_command {program} printed {shown}: {exc}") from None


def _status_from_json(data: Any, program: str) -> GroupStatus:
    if isinstance(data, int) and not isinstance(data, bool):
        data = {"current": data}
    if not isinstance(data, dict):
        raise ValueError('expected an integer or an object {"current": n, "members": [...]}')
    members = tuple(_member(m) for m in _list(data.get("members", [])))
    current = data.get("current", len(members) if "members" in data else None)
    if isinstance(current, bool) or not isinstance(current, int) or current < 0:
        raise ValueError('"current" must be a non-negative integer')
    detail = data.get("detail", f"from {program}")
    return GroupStatus(current=current, members=members, detail=str(detail))


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError('"members" must be a list')
    return value


def _member(raw: Any) -> Member:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str | int) or isinstance(raw["id"], bool):
        raise ValueError('each member must be an object with an "id"')
    address = raw.get("address")
    if address is not None and not isinstance(address, str):
        raise ValueError(f'member {raw["id"]}: "address" must be a string or null')
    state = MemberState(raw.get("state", MemberState.RUNNING.value))
    labels = raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError(f'member {raw["id"]}: "labels" must be an object of strings')
    return Member(id=str(raw["id"]), address=address, state=state, labels=labels)


def _cut(text: str) -> str:
    return text if len(text) <= _LINE_CHARS else text[: _LINE_CHARS - 1] + "…"


def _shown(argv: Sequence[str]) -> str:
    plain = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")
    return " ".join(a if plain.fullmatch(a) else json.dumps(a) for a in argv)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def create(config: ExecConfig, context: ProviderContext) -> ExecProvider:
    return ExecProvider(config, context)
