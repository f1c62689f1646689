"""Provider type ``exec``: run a command to scale a group — a safe superset of prometheus-am-executor.

The command is an argv list, never a shell string: it is started with ``shell=False``, so label values
from alerts (quotes, ``$(...)``, backticks, ``;``, newlines) reach it as data and are never interpreted.

Environment of the command (built by ``exec.env``), later entries winning:

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

Healing: ``heal_command`` (action ``replace``), ``reboot_command`` and ``quarantine_command`` (each an optional argv
list; configuration in ``exec.config``) run like the scale command — same timeout, exit-status rules, process group
handling, secret redaction, and the same ``max_concurrent`` bound —, with ``AS_GROUP``, ``AS_MEMBER`` (the member's
id), ``AS_MEMBER_ADDRESS`` (when known) and ``AS_HEAL_ACTION`` in the environment (no ``AMX_*``), and on stdin
the JSON ``{"group": .., "action": .., "member": {"id": .., "address": .., "state": .., "labels": {..}}}``. A
member id is data: it reaches the command only through that environment and stdin, never an argv or a shell.
With a ``status_command`` that lists members, ``member_id`` must be one of them (else ``PermanentProviderError``,
and nothing runs) and its address comes from there; otherwise the command gets the id alone and must check it.
``heal_actions(config)`` says which actions a group supports: those whose command is configured. The provider
class has all three methods; one whose command is not configured raises ``PermanentProviderError`` naming the
key to set.

User data (``user_data`` / ``user_data_file``, checked at load by ``common.userdata``; ``{group}`` only: the
command creates and names the instances): rendered for the group into ``<state_dir>/user-data`` (mode 0600),
whose path the scale and heal commands get in ``AS_USER_DATA_FILE``.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest, Settled
from alertscaler.providers.common import userdata
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.exec.config import HEAL_COMMANDS, Argv, ExecConfig
from alertscaler.providers.exec.env import amx_environment, clean, heal_environment, synthetic_notification
from alertscaler.providers.exec.runs import MARKER, RunRecords

__all__ = ["Argv", "ExecConfig", "ExecProvider", "amx_environment", "create", "heal_actions",
           "synthetic_notification"]

log = logging.getLogger(__name__)

_KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out command's process group
_STDOUT_LIMIT = 1 << 20  # bytes of stdout kept (the rest is read and dropped)
_STDERR_LIMIT = 64 << 10  # bytes of the end of stderr kept
_TAIL_LINES = 20
_LINE_CHARS = 200
_REDACT_MIN = 4  # env values shorter than this are not redacted from output (would mangle it)
_INTEGER = re.compile(r"[+-]?\d+")



def heal_actions(config: ExecConfig) -> frozenset[str]:
    """The heal actions an ``exec`` group supports: those whose command is configured (see ``registry``)."""
    return frozenset(action for action, key in HEAL_COMMANDS.items() if getattr(config, key) is not None)

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
    """Scales a group by running ``config.command``; reads its size from ``config.status_command``; heals members
    with ``heal_command`` / ``reboot_command`` / ``quarantine_command`` (see the module docstring)."""

    idempotent: bool = False
    adopts_size = False

    def __init__(self, config: ExecConfig, context: ProviderContext) -> None:
        self.config = config
        self.context = context
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        self._secrets = sorted(
            (v for v in config.env.values() if len(v) >= _REDACT_MIN), key=len, reverse=True
        )
        self.runs = RunRecords(context.state_dir)

    # -- Provider

    def scale(self, request: ScaleRequest) -> str:
        body = request.notification if request.notification is not None else synthetic_notification(request)
        env = self._base_env()
        env.update(amx_environment(body, request))
        env.update(self._user_data_env())
        env[MARKER] = self.runs.marker(request.action_id)
        stdin = (json.dumps(body, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._slots:
            try:
                self.runs.record(request.action_id, request.from_capacity, request.desired, time.time())
            except OSError as exc:  # without the record a crash could not be settled: do not start it
                raise TemporaryProviderError(f"cannot write the run record in {self.runs.dir}: {exc}") from exc
            outcome = self._execute(self.config.command, env, stdin)
        first = self._first_line(outcome.stdout)
        return f"exit 0: {first}" if first else "exit 0 (no output)"

    def status(self) -> GroupStatus:
        return self._read_status()[0]

    # -- Settler: an action interrupted by the death of the service

    def settle(self, action_id: int, from_capacity: int, desired: int) -> Settled:
        """Settle ``action_id``: never started (no run record) → ``not_started``; else wait for its orphan
        processes (at most ``timeout``), kill what is left, then verify against ``status_command``."""
        if not self.runs.started(action_id):
            return Settled("not_started", "its command was never started (no run record)")
        found, killed = self.runs.settle_orphans(action_id, self.config.timeout)
        waited = ""
        if found:
            waited = (f"; {found} process(es) of its command outlived the service: "
                      + ("killed after the timeout" if killed else "waited for until they exited"))
        if self.config.status_command is None:
            return Settled("unknown", f"its command was started{waited}; without status_command its outcome "
                                      "cannot be verified")
        current = self.status().current
        if current == desired:
            return Settled("succeeded", f"verified: status_command reports {current}{waited}")
        if current == from_capacity:
            return Settled("failed", f"verified: status_command still reports {current}{waited}")
        return Settled("unknown", f"status_command reports {current}, neither {from_capacity} nor "
                                  f"{desired}{waited}")

    def members(self) -> list[Member]:
        return list(self.status().members)

    def close(self) -> None:
        pass

    # -- healing: Healer, Rebooter, Quarantiner (each needs its command configured)

    def heal(self, member_id: str) -> str:
        """Run ``heal_command`` for ``member_id`` (``AS_HEAL_ACTION=replace``)."""
        return self._heal("replace", member_id)

    def reboot(self, member_id: str) -> str:
        """Run ``reboot_command`` for ``member_id`` (``AS_HEAL_ACTION=reboot``)."""
        return self._heal("reboot", member_id)

    def quarantine(self, member_id: str) -> str:
        """Run ``quarantine_command`` for ``member_id`` (``AS_HEAL_ACTION=quarantine``)."""
        return self._heal("quarantine", member_id)

    def _heal(self, action: str, member_id: str) -> str:
        key = HEAL_COMMANDS[action]
        argv: list[str] | None = getattr(self.config, key)
        group = self.context.group
        if argv is None:
            raise PermanentProviderError(f"{group}: the exec provider has no {key}: set provider.{key} (an argv "
                                         f"list) to {action} a member")
        if not member_id or "\x00" in member_id:
            raise PermanentProviderError(f"{group}: member id {member_id!r} is empty or contains a NUL character")
        member = self._find_member(member_id)
        address = member.address if member is not None else None
        env = self._base_env()
        env.update(heal_environment(group, member_id, address, action))
        env.update(self._user_data_env())
        described: dict[str, Any] = {"id": member_id, "address": address}
        if member is not None:
            described.update(state=member.state.value, labels=member.labels)
        body = {"group": group, "action": action, "member": described}
        stdin = (json.dumps(body, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._slots:
            outcome = self._execute(argv, env, stdin)
        first = self._first_line(outcome.stdout)
        return f"{action} {member_id}: exit 0" + (f": {first}" if first else " (no output)")

    def _find_member(self, member_id: str) -> Member | None:
        """``member_id`` as the ``status_command`` lists it; None when it lists no members (or there is none).
        ``PermanentProviderError`` when it lists members and ``member_id`` is not one of them."""
        if self.config.status_command is None:
            return None
        status, listed = self._read_status()
        if not listed:
            return None
        for member in status.members:
            if member.id == member_id:
                return member
        known = ", ".join(m.id for m in status.members) or "none"
        raise PermanentProviderError(f"{self.context.group}: {member_id!r} is not a member of this group "
                                     f"(status_command lists: {_cut(self._redact(known))})")

    # -- internals

    def _read_status(self) -> tuple[GroupStatus, bool]:
        """The status, and whether ``status_command`` listed the members (JSON with ``"members"``)."""
        argv = self.config.status_command
        if argv is None:
            return GroupStatus(current=None, detail="exec provider has no status_command"), False
        env = self._base_env()
        env["AS_GROUP"] = clean(self.context.group)
        outcome = self._execute(argv, env, b"")
        if outcome.stdout_truncated:
            raise PermanentProviderError(f"status_command {argv[0]} printed more than {_STDOUT_LIMIT} bytes")
        return self._parse_status(argv[0], outcome.stdout.decode("utf-8", "replace"))

    def _user_data_env(self) -> dict[str, str]:
        """``AS_USER_DATA_FILE``: the user data rendered for the group (written before each run: 0600)."""
        template = self.config.template
        if template is None:
            return {}
        path = Path(self.context.state_dir) / "user-data"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(userdata.render(template, {"group": self.context.group}))
        except OSError as exc:
            raise TemporaryProviderError(f"cannot write the user data file {path}: {exc}") from exc
        return {"AS_USER_DATA_FILE": str(path)}

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

    def _parse_status(self, program: str, output: str) -> tuple[GroupStatus, bool]:
        text = output.strip()
        shown = repr(_cut(self._redact(text)))
        if _INTEGER.fullmatch(text):
            current = int(text)
            if current < 0:
                raise PermanentProviderError(f"status_command {program} printed a negative capacity {shown}")
            return GroupStatus(current=current, detail=f"from {program}"), False
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


def _status_from_json(data: Any, program: str) -> tuple[GroupStatus, bool]:
    if isinstance(data, int) and not isinstance(data, bool):
        data = {"current": data}
    if not isinstance(data, dict):
        raise ValueError('expected an integer or an object {"current": n, "members": [...]}')
    members = tuple(_member(m) for m in _list(data.get("members", [])))
    current = data.get("current", len(members) if "members" in data else None)
    if isinstance(current, bool) or not isinstance(current, int) or current < 0:
        raise ValueError('"current" must be a non-negative integer')
    detail = data.get("detail", f"from {program}")
    return GroupStatus(current=current, members=members, detail=str(detail)), "members" in data


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


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(ExecConfig, create, ExecProvider, heal_actions_of=heal_actions)
