"""Running xOpera (``opera`` 0.7) for the ``tosca`` provider, and reading what it says. Used by ``providers.tosca``.

Nothing here raises provider errors: :func:`run_opera` returns an :class:`OperaRun` or raises
:class:`OperaTimedOut` / ``OSError``; :mod:`alertscaler.providers.tosca.provider` translates them once.

Files in a group's state directory (``ProviderContext.state_dir``)::

    opera/                opera's own storage (``opera ... -p opera``): inputs, root_file, instances/
    tosca.lock            flock'ed while an opera command of this group runs (any process)
    tosca-inputs.yaml     the inputs of the last deploy/update
    tosca-notification.json  the notification of the last ``opera notify``
    tosca-last.log        output (stdout + stderr) of the last opera command
    tosca.log             every opera command with its output, appended (rotated to tosca.log.1 at 5 MiB)
    ansible/              the callback plugin below, and the failed task results of the last command

Why a callback plugin: opera sets ``ANSIBLE_STDOUT_CALLBACK`` to its own JSON callback, which prints only the
play statistics, so a failed task's message never reaches opera's output. opera passes its environment on to
``ansible-playbook``, so the plugin is enabled through ``ANSIBLE_COLLECTIONS_PATH`` and
``ANSIBLE_CALLBACKS_ENABLED`` (opera overwrites ``ANSIBLE_CALLBACK_PLUGINS``, not these). It appends one JSON
line per failed or unreachable task (task name, ``msg``, ``rc``, ends of ``stderr``/``stdout``) to the file
named by ``ALERTSCALER_ANSIBLE_FAILURES``. Results of ``no_log`` tasks arrive censored by Ansible.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alertscaler.model.groups import Member, MemberState

OPERA_DIR = "opera"
LOCK_FILE = "tosca.lock"
INPUTS_FILE = "tosca-inputs.yaml"
NOTIFICATION_FILE = "tosca-notification.json"
LAST_LOG = "tosca-last.log"
LOG_FILE = "tosca.log"
ANSIBLE_DIR = "ansible"
FAILURES_FILE = "failures.jsonl"

FAILURES_VAR = "ALERTSCALER_ANSIBLE_FAILURES"
CALLBACK_NAME = "alertscaler.opera.failures"
LOG_ROTATE_BYTES = 5 << 20
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out opera's process group
LOCK_POLL = 0.05
OUTPUT_KEEP = 256 << 10  # bytes of the end of an opera command's output read back
DEFAULT_COLLECTIONS_PATH = "~/.ansible/collections:/usr/share/ansible/collections"

#: opera's deployment states (``opera info``); None when its storage holds no service template yet.
DEPLOYED = "deployed"
NOT_DEPLOYED = frozenset({None, "initialized", "undeployed"})

CALLBACK_PLUGIN = '''\
# Written by alertscaler's tosca provider (alertscaler/providers/tosca_opera.py); rewritten on every run.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: failures
    type: notification
    short_description: Append failed task results to the file named by ALERTSCALER_ANSIBLE_FAILURES
    description:
        - opera's stdout callback prints only play statistics; this keeps the reason of a failed task.
    requirements:
        - enabled in callbacks_enabled
"""

_KEEP = 2000


def _end(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _KEEP else "..." + text[-_KEEP:]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "alertscaler.opera.failures"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, kind):
        path = os.environ.get("ALERTSCALER_ANSIBLE_FAILURES")
        if not path:
            return
        data = getattr(result, "result", None)
        if data is None:
            data = getattr(result, "_result", None) or {}
        task = getattr(result, "task", None) or getattr(result, "_task", None)
        host = getattr(result, "host", None) or getattr(result, "_host", None)
        entry = {"kind": kind, "task": task.get_name() if task else "", "host": host.get_name() if host else ""}
        for key in ("msg", "rc", "stderr", "stdout", "censored"):
            if data.get(key) not in (None, ""):
                entry[key] = data[key] if key == "rc" else _end(data[key])
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry, default=str) + "\\n")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
'''


# ------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class OperaRun:
    """One finished opera command: exit status, the end of its output, the failed tasks it reported."""

    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float
    failures: tuple[dict[str, Any], ...] = ()

    def tail(self, lines: int = 12, width: int = 300) -> str:
        """The last ``lines`` lines of :func:`summarize_output`, each cut at ``width`` characters."""
        kept = summarize_output(self.output)[-lines:]
        return "\n".join(ln if len(ln) <= width else ln[: width - 1] + "…" for ln in kept)


class OperaTimedOut(Exception):
    """opera did not finish in time; its process group was killed. ``run`` holds what it printed."""

    def __init__(self, run: OperaRun, timeout: float) -> None:
        self.run = run
        self.timeout = timeout
        super().__init__(f"{' '.join(run.argv[:2])} timed out after {timeout:g}s")


@dataclass
class OperaEnv:
    """How to run opera for one group: the executable, its environment, the group's state directory."""

    executable: str
    state_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def opera_dir(self) -> Path:
        return self.state_dir / OPERA_DIR

    def environment(self) -> dict[str, str]:
        """This process's environment plus ``extra_env``, with opera's directory first on PATH (so the
        ``ansible-playbook`` of opera's virtual environment is found) and the failure callback enabled."""
        env = dict(os.environ)
        env.update(self.extra_env)
        if "/" in self.executable:
            bin_dir = str(Path(self.executable).parent)
            env["PATH"] = bin_dir + (os.pathsep + env["PATH"] if env.get("PATH") else "")
        ansible_dir = self.state_dir / ANSIBLE_DIR
        collections = env.get("ANSIBLE_COLLECTIONS_PATH") or DEFAULT_COLLECTIONS_PATH
        env["ANSIBLE_COLLECTIONS_PATH"] = f"{ansible_dir}{os.pathsep}{collections}"
        enabled = [name.strip() for name in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if name.strip()]
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*enabled, CALLBACK_NAME])
        env[FAILURES_VAR] = str(ansible_dir / FAILURES_FILE)
        env["PYTHONUNBUFFERED"] = "1"  # keep opera's output when it is killed
        if not _utf8_locale(env):  # ansible-playbook refuses to run otherwise
            env["LC_ALL"] = "C.UTF-8"
        return env

    def install_callback(self) -> Path:
        plugin = (
            self.state_dir / ANSIBLE_DIR / "ansible_collections" / "alertscaler" / "opera" / "plugins" / "callback"
        )
        plugin.mkdir(parents=True, exist_ok=True)
        path = plugin / "failures.py"
        if not path.exists() or path.read_text() != CALLBACK_PLUGIN:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(CALLBACK_PLUGIN)
            os.replace(temporary, path)
        failures = self.state_dir / ANSIBLE_DIR / FAILURES_FILE
        failures.unlink(missing_ok=True)
        return failures


def summarize_output(text: str) -> list[str]:
    """opera's output without its noise, as lines: a Python traceback becomes its last line (the exception),
    the play statistics JSON that opera prints for a failed playbook and its ``[Worker_N] ----`` separators
    are dropped, blank lines too. What Ansible printed to stderr stays."""
    lines = text.splitlines()
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.startswith("Traceback (most recent call last):"):
            i += 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                i += 1
            continue  # lines[i], the exception, is kept by the next round
        if line == "{":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "}"), None)
            if end is not None and _is_play_stats("\n".join(lines[i : end + 1])):
                i = end + 1
                continue
        if line and not _SEPARATOR.fullmatch(line):
            kept.append(line)
        i += 1
    return kept


_SEPARATOR = re.compile(r"\[Worker_\d+\] (-{3,}|={3,})")


def _is_play_stats(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "stats" in data and "global_custom_stats" in data


def _utf8_locale(env: Mapping[str, str]) -> bool:
    """Whether the locale the environment selects for character types (LC_ALL, else LC_CTYPE, else LANG) is a
    UTF-8 one. Python itself coerces a missing or C locale to C.UTF-8 (PEP 538) and passes that on, but not
    an explicit ``LC_ALL=C``; Ansible then stops with "requires the locale encoding to be UTF-8"."""
    chosen = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    return chosen.lower().replace("-", "").endswith("utf8") or ".utf8@" in chosen.lower().replace("-", "")


def run_opera(opera: OperaEnv, args: Sequence[str], timeout: float, record: bool = True) -> OperaRun:
    """Run ``opera ARGS`` (argv list, never a shell) in a session of its own, output to ``tosca-last.log``.
    On ``timeout`` its whole process group gets SIGTERM, then SIGKILL ``KILL_GRACE`` s later, and
    :class:`OperaTimedOut` is raised. ``OSError`` when opera cannot be started. The command and its output
    are appended to ``tosca.log`` when ``record`` is set or the command failed (reads such as ``info``
    pass ``record=False``: they would fill the log, and print the inputs)."""
    opera.state_dir.mkdir(parents=True, exist_ok=True)
    failures_file = opera.install_callback()
    argv = (opera.executable, *args)
    last = opera.state_dir / LAST_LOG
    started = time.monotonic()
    timed_out = False
    with last.open("wb") as out:
        proc = subprocess.Popen(  # argv list, shell=False: nothing is interpreted
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=opera.environment(),
            cwd=opera.state_dir,
            shell=False,
            close_fds=True,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
            returncode = _terminate(proc)
    run = OperaRun(
        argv=argv,
        returncode=returncode,
        output=_read_end(last),
        seconds=time.monotonic() - started,
        failures=tuple(read_failures(failures_file)),
    )
    if record or timed_out or returncode != 0:
        _append_log(opera.state_dir, run, timed_out)
    if timed_out:
        raise OperaTimedOut(run, timeout)
    return run


def _terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM the process group, SIGKILL what is left after ``KILL_GRACE`` s; reap the leader."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id, reserved until it is reaped
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    end = time.monotonic() + KILL_GRACE
    while time.monotonic() < end and not _leader_exited(proc.pid):
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)  # children that outlived the leader or ignore SIGTERM
    try:
        return proc.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        return -signal.SIGKILL


def _leader_exited(pid: int) -> bool:
    """True once the leader has exited, without reaping it (so its pid, the group id, is not reused)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _read_end(path: Path) -> str:
    with path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        size = log.tell()
        log.seek(max(0, size - OUTPUT_KEEP))
        return log.read().decode("utf-8", "replace")


def _append_log(state_dir: Path, run: OperaRun, timed_out: bool) -> None:
    log = state_dir / LOG_FILE
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(LOG_FILE + ".1"))
    ending = "timed out, killed" if timed_out else f"exit {run.returncode}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with log.open("a", encoding="utf-8") as out:
        out.write(f"=== {stamp} {' '.join(run.argv)} ({ending}, {run.seconds:.1f}s)\n")
        out.write(run.output if run.output.endswith("\n") or not run.output else run.output + "\n")


def read_failures(path: Path) -> list[dict[str, Any]]:
    """The failed task results the callback recorded (malformed lines skipped)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                found.append(entry)
    return found


def describe_failures(failures: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """``task "NAME" failed on HOST: MSG`` per failed task (first ``limit``), with rc and stderr's end."""
    parts = []
    for entry in failures[:limit]:
        what = "unreachable" if entry.get("kind") == "unreachable" else "failed"
        text = f'task "{entry.get("task", "")}" {what} on {entry.get("host", "?")}'
        details = [str(entry[key]).strip() for key in ("msg", "censored") if str(entry.get(key, "")).strip()]
        if "rc" in entry:
            details.append(f"rc={entry['rc']}")
        stderr = str(entry.get("stderr", "")).strip()
        if stderr:
            details.append("stderr: " + " | ".join(stderr.splitlines()[-5:]))
        parts.append(text + (": " + "; ".join(details) if details else ""))
    if len(failures) > limit:
        parts.append(f"(+{len(failures) - limit} more failed tasks)")
    return "\n".join(parts)


def tail_of_file(path: Path, lines: int = 10, width: int = 300) -> str:
    """The last ``lines`` non-empty lines of a text file ('' when it cannot be read)."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [ln.rstrip() for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(ln if len(ln) <= width else ln[: width - 1] + "…" for ln in kept)


# --------------------------------------------------------------------------------------------- locking


class LockBusy(Exception):
    """Another opera command of the group held the lock until the deadline."""


@contextlib.contextmanager
def group_lock(path: Path, deadline: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing) until the block ends.

    Each call opens the file anew: flock locks belong to the open file description, so two threads of one
    process, two provider objects on one state directory and two processes all exclude each other. Polls
    until ``deadline`` (``time.monotonic()``), then raises :class:`LockBusy`. The holder's pid is written to
    the file for whoever looks.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise LockBusy(str(path)) from None
                time.sleep(LOCK_POLL)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# ------------------------------------------------------------------------------------- opera's answers


@dataclass(frozen=True)
class Deployment:
    """What ``opera info`` says: the status (None = nothing stored yet), the stored inputs, the template."""

    status: str | None
    inputs: dict[str, Any]
    service_template: str | None

    @property
    def deployed(self) -> bool:
        return self.status == DEPLOYED

    @property
    def empty(self) -> bool:
        """Nothing is deployed (never deployed, only initialized, or undeployed)."""
        return self.status in NOT_DEPLOYED


NO_DEPLOYMENT = Deployment(status=None, inputs={}, service_template=None)


def parse_info(text: str) -> Deployment:
    """``opera info --format json`` → :class:`Deployment`. ValueError when it is not that JSON."""
    data = _json_object(text, "opera info")
    status = data.get("status")
    if status is not None and not isinstance(status, str):
        raise ValueError(f"opera info: status is {status!r}")
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ValueError(f"opera info: inputs is {inputs!r}")
    template = data.get("service_template")
    return Deployment(status=status, inputs=inputs, service_template=template if isinstance(template, str) else None)


def parse_outputs(text: str) -> dict[str, Any]:
    """``opera outputs --format json`` → ``{name: value}``. ValueError when it is not that JSON."""
    data = _json_object(text, "opera outputs")
    return {str(name): (entry.get("value") if isinstance(entry, dict) else entry) for name, entry in data.items()}


def _json_object(text: str, what: str) -> dict[str, Any]:
    start = text.find("{")  # opera may print warnings before the document
    if start < 0:
        raise ValueError(f"{what} printed no JSON object")
    try:
        data = json.loads(text[start:])
    except ValueError as exc:
        raise ValueError(f"{what} printed invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} printed {type(data).__name__}, not an object")
    return data


def parse_members(value: Any, output: str) -> tuple[Member, ...]:
    """A members output: a list of ids (strings or numbers) or of objects ``{"id", "address"?, "state"?,
    "labels"?}`` (state defaults to running). ValueError naming ``output`` otherwise."""
    if not isinstance(value, list):
        raise ValueError(f"output {output!r} is {_shown(value)}: expected a list of members")
    members = []
    for position, raw in enumerate(value):
        where = f"output {output!r}[{position}]"
        if isinstance(raw, str | int) and not isinstance(raw, bool):
            members.append(Member(id=str(raw), address=None, state=MemberState.RUNNING))
            continue
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str | int) or isinstance(raw.get("id"), bool):
            raise ValueError(f"{where} is {_shown(raw)}: expected an id or an object with an id")
        address = raw.get("address")
        if address is not None and not isinstance(address, str):
            raise ValueError(f"{where}: address must be a string or null")
        try:
            state = MemberState(raw.get("state", MemberState.RUNNING.value))
        except ValueError:
            known = ", ".join(s.value for s in MemberState)
            raise ValueError(f"{where}: state {raw.get('state')!r} is not one of {known}") from None
        labels = raw.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f"{where}: labels must be an object of strings")
        members.append(Member(id=str(raw["id"]), address=address, state=state, labels=labels))
    ids = [m.id for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError(f"output {output!r} lists a member twice: {ids}")
    return tuple(members)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:119] + "…"


# ---------------------------------------------------------------------------------------------- planning


def same_inputs(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Equal as JSON values (opera stores the inputs as it read them from our YAML/JSON file)."""
    return bool(_as_json(stored) == _as_json(wanted))


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def plan(deployment: Deployment, inputs: Mapping[str, Any], template: str, count_input: str) -> str:
    """Which opera command brings ``deployment`` to ``inputs`` on ``template``:

    - ``none``: deployed with exactly these inputs and this template, or nothing deployed and a count of 0;
    - ``deploy``: nothing deployed (``opera deploy``);
    - ``update``: deployed or failed with other inputs or another template (``opera update``, which undeploys
      and redeploys the nodes whose properties changed, and the nodes not in a started state);
    - ``resume``: failed or interrupted with the same inputs (``opera deploy --resume --force``): opera 0.7's
      ``update`` must not be used then: when no node template changed, it marks every node started without
      running anything (its state comparison is dropped when the template diff has no ``nodes`` entry);
    - ``stuck``: an interrupted undeploy with the same inputs (opera refuses ``deploy`` then).
    """
    if deployment.empty:
        return "none" if inputs.get(count_input) == 0 else "deploy"
    unchanged = same_inputs(deployment.inputs, inputs) and deployment.service_template == template
    if deployment.deployed:
        return "none" if unchanged else "update"
    if not unchanged:
        return "update"
    return "stuck" if deployment.status == "undeploying" else "resume"
