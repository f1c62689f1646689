"""Provider type ``tosca``: a group is a TOSCA service template deployed by xOpera (``opera`` 0.7).

opera creates ONE instance per node template, so the group's size is an input of the service template
(``count_input``, default ``instance_count``) that the template's node properties and playbooks loop over.
Scaling sets that input and lets opera converge:

- first ``scale``: ``opera deploy -p STATE/opera -i STATE/tosca-inputs.yaml TEMPLATE``;
- later: ``opera update -p STATE/opera -i STATE/tosca-inputs.yaml TEMPLATE`` (opera undeploys and redeploys
  the node templates whose properties changed, so the count's node should converge in its ``create`` /
  ``configure`` operations, not tear everything down in ``delete``: see ``tests/tosca/service`` and
  ``examples/tosca``);
- after a failed or interrupted command with the same inputs: ``opera deploy --resume --force`` (opera 0.7's
  ``update`` would then mark every node started without running anything; see ``tosca.opera.plan``);
- already deployed with the same inputs and template: nothing runs (``idempotent = True``).

opera's exit status does not say what happened (some refusals exit 0), so every command is followed by
``opera info -p STATE/opera --format json``: the status must be ``deployed`` with the requested inputs, else
``PermanentProviderError`` naming the status, the failed Ansible tasks (task name, ``msg``, rc, stderr; see
the callback plugin in ``tosca.opera``), the end of opera's output and, when ``operation_log`` is set, the end
of the playbooks' own log. Unreachable hosts, a command that timed out (its process group is killed after
``timeout``) and a group busy past ``timeout`` are ``TemporaryProviderError``. Commands of one group never run
concurrently: each holds an flock on ``STATE/tosca.lock``, so two alertscaler processes exclude each other
too. opera runs with ``shell=False`` from an argv list, stdin closed, cwd ``STATE``, its output in
``STATE/tosca-last.log`` and appended to ``STATE/tosca.log``.

``status()``: ``current`` is the deployed count input (``opera info``), 0 when nothing is deployed, None while
the deployment is failed or interrupted; ``members`` come from the service template output ``members_output``
(``opera outputs``) when configured, else none are listed. The answer is reused while opera's storage files
and the template are unchanged (two opera runs cost ~0.8 s of CPU; Prometheus' http_sd reads often).

Healing: with ``heal_event`` set, a member is healed by ``opera notify -p STATE/opera -e HEAL_EVENT -n
STATE/tosca-notification.json --force`` with ``{"group", "member", "address", "action"}``; opera hands that JSON
to the operation of the matching policy trigger as the variable ``notification`` (a string: ``notification |
from_json``). ``opera notify -e`` takes a trigger name or event, and the trigger's action names the operation,
so no setting names the operation. What that operation does decides the heal action (``heal_action``):
``reboot`` (default: it restarts the member in place, same id) makes the provider a ``Rebooter``; ``replace``
(it creates the replacement before removing the member) a ``Healer``. Without ``heal_event`` the provider has
neither method, so ``isinstance(provider, Healer)`` / ``Rebooter`` are False, ``heal_actions()`` is empty and
a group ``heal:`` policy is refused by ``check``: nobody is offered a heal that could only fail.

Paths (``service_template``, ``opera`` when it contains a ``/``, ``operation_log``) are relative to the policy
file's directory. opera's directory is put first on PATH, so the ``ansible-playbook`` installed next to it (same
virtual environment) is the one opera runs. ``env`` adds variables for opera and its playbooks (e.g.
``OPERA_SSH_USER``, ``OPERA_SSH_IDENTITY_FILE``). alertscaler does not log ``inputs`` or ``env`` values; the
inputs file and opera's storage hold the inputs (mode 0600 for the former), and the output of a FAILED
``opera info``, which lists them, is kept in ``STATE/tosca.log``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from alertscaler.model.durations import PositiveDuration
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.common.env import checked_env
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.tosca.opera import (
    INPUTS_FILE,
    LOCK_FILE,
    NO_DEPLOYMENT,
    NOTIFICATION_FILE,
    Deployment,
    LockBusy,
    OperaEnv,
    OperaRun,
    OperaTimedOut,
    describe_failures,
    group_lock,
    parse_info,
    parse_members,
    parse_outputs,
    plan,
    run_opera,
    tail_of_file,
)
from alertscaler.providers.tosca.template import template_problems

log = logging.getLogger(__name__)

_RESERVED_ENV = ("ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS", "ALERTSCALER_ANSIBLE_FAILURES")
_INFO_TIMEOUT = 120.0  # cap of one ``opera info`` / ``opera outputs`` (they parse the template: ~0.4 s here)


def _resolve(value: str, info: ValidationInfo) -> Path:
    """``value`` relative to the policy file's directory, absolute and without ``..`` (symlinks are kept: a
    venv's ``bin/opera`` must stay in that venv's ``bin``)."""
    base = (info.context or {}).get("base")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return Path(os.path.normpath(path.absolute()))


class ToscaConfig(BaseModel):
    """Configuration of a ``tosca`` group (see the module docstring). Values are hidden from errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["tosca"]
    service_template: Annotated[str, Field(min_length=1)]
    count_input: Annotated[str, Field(min_length=1)] = "instance_count"
    inputs: dict[str, Any] = Field(default_factory=dict, repr=False)
    opera: Annotated[str, Field(min_length=1)] = "opera"
    timeout: PositiveDuration = 900.0
    members_output: str | None = None
    heal_event: str | None = None
    heal_action: Literal["reboot", "replace"] = "reboot"
    operation_log: str | None = None
    env: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("service_template")
    @classmethod
    def _template_file(cls, value: str, info: ValidationInfo) -> str:
        path = _resolve(value, info)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return str(path)

    @field_validator("opera")
    @classmethod
    def _opera_path(cls, value: str, info: ValidationInfo) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return str(_resolve(value, info)) if "/" in value else value

    @field_validator("operation_log")
    @classmethod
    def _log_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else str(_resolve(value, info))


    @field_validator("inputs")
    @classmethod
    def _json_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input values must be plain YAML data (strings, numbers, lists, maps): {exc}") from None
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return checked_env(value, lambda name: f"{name} is set by opera or alertscaler"
                           if name in _RESERVED_ENV else None)

    @model_validator(mode="after")
    def _matches_template(self) -> ToscaConfig:
        if self.count_input in self.inputs:
            raise ValueError(f"inputs: {self.count_input} is the count input, set by alertscaler (count_input)")
        problems = template_problems(
            Path(self.service_template),
            count_input=self.count_input,
            inputs=self.inputs,
            members_output=self.members_output,
            heal_event=self.heal_event,
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self




class ToscaProvider:
    """Scales a group by setting the count input of a TOSCA service template and letting opera converge."""

    idempotent: bool = True
    adopts_size = False

    def __init__(self, config: ToscaConfig, context: ProviderContext) -> None:
        self.config = config
        self.context = context
        self._opera = OperaEnv(executable=config.opera, state_dir=context.state_dir, extra_env=dict(config.env))
        self._cached: tuple[tuple[tuple[str, int, int], ...], GroupStatus] | None = None

    # -- Provider

    def status(self) -> GroupStatus:
        """Read with ``opera info`` (and ``opera outputs``), ~0.8 s of CPU; the answer is reused while no file
        of opera's storage (nor the template) changed, so that frequent readers (Prometheus' http_sd) are cheap."""
        deadline = time.monotonic() + self.config.timeout
        with self._locked(deadline, "read the group's status"):
            key = self._storage_key()
            cached = self._cached
            if key is not None and cached is not None and cached[0] == key:
                return cached[1]
            status = self._status_of(self._deployment(deadline), deadline)
            self._cached = None if key is None else (key, status)
            return status

    def members(self) -> list[Member]:
        return list(self.status().members)

    def scale(self, request: ScaleRequest) -> str:
        if request.desired < 0:
            raise PermanentProviderError(f"cannot scale {self.context.group} to {request.desired}")
        deadline = time.monotonic() + self.config.timeout
        inputs = {**self.config.inputs, self.config.count_input: request.desired}
        with self._locked(deadline, f"scale to {request.desired}"):
            before = self._deployment(deadline)
            step = plan(before, inputs, self.config.service_template, self.config.count_input)
            was = self._count(before)
            if step == "none":
                state = "nothing deployed" if before.empty else f"deployed with {self.config.count_input}={was}"
                return f"opera: already converged ({state})"
            if step == "stuck":
                raise PermanentProviderError(
                    f"opera deployment of group {self.context.group} is 'undeploying' (an interrupted undeploy); "
                    f"finish it by hand (opera undeploy --resume -p {self._opera.opera_dir}) or request another size"
                )
            run = self._converge(step, inputs, deadline)
            after = self._deployment(deadline)
            self._check_converged(step, run, after, inputs)
        verb = {"deploy": "deployed", "update": "updated", "resume": "resumed"}[step]
        old = "?" if was is None else str(was)
        return f"opera {verb}: {self.config.count_input} {old} -> {request.desired} ({run.seconds:.1f}s)"

    def close(self) -> None:
        pass

    # -- internals

    def _storage_key(self) -> tuple[tuple[str, int, int], ...] | None:
        """(name, mtime_ns, size) of every file opera's answers depend on; None before the first deploy."""
        root = self._opera.opera_dir
        instances = root / "instances"
        try:
            files = [root / "root_file", root / "inputs", Path(self.config.service_template)]
            files += sorted(instances.iterdir()) if instances.is_dir() else []
            stats = [(str(path), path.stat()) for path in files]
        except OSError:
            return None
        return tuple((name, st.st_mtime_ns, st.st_size) for name, st in stats)

    @contextlib.contextmanager
    def _locked(self, deadline: float, what: str) -> Iterator[None]:
        path = self.context.state_dir / LOCK_FILE
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(group_lock(path, deadline))
            except LockBusy:
                raise TemporaryProviderError(
                    f"cannot {what}: another opera command of group {self.context.group} still runs (lock {path})"
                ) from None
            except OSError as exc:
                raise PermanentProviderError(f"cannot lock {path}: {exc.strerror or exc}") from exc
            yield

    def _run(self, args: list[str], deadline: float, what: str, cap: float | None = None) -> OperaRun:
        """Run opera with the time left until ``deadline`` (at most ``cap`` s); reads (``cap`` given) are not
        recorded in ``tosca.log`` unless they fail."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TemporaryProviderError(f"opera {what}: no time left of the {self.config.timeout:g}s timeout")
        timeout = min(remaining, cap) if cap is not None else remaining
        log.log(logging.DEBUG if cap is not None else logging.INFO, "tosca group=%s: opera %s (timeout %.0fs)",
                self.context.group, args[0], timeout)
        try:
            return run_opera(self._opera, args, timeout, record=cap is None)
        except OperaTimedOut as exc:
            raise TemporaryProviderError(
                f"opera {what} timed out after {exc.timeout:g}s (its process group was killed); "
                f"last output:\n{exc.run.tail()}"
            ) from None
        except FileNotFoundError as exc:
            raise PermanentProviderError(
                f"opera not found: {self.config.opera} (install opera in a virtual environment of its own and set "
                f"`opera:` to its bin/opera; in this repository: make opera-venv -> .opera-venv/bin/opera)"
            ) from exc
        except PermissionError as exc:
            raise PermanentProviderError(f"opera not executable: {self.config.opera} ({exc.strerror})") from exc
        except OSError as exc:
            raise PermanentProviderError(f"cannot run opera {self.config.opera}: {exc.strerror or exc}") from exc

    def _deployment(self, deadline: float) -> Deployment:
        if not (self._opera.opera_dir / "root_file").exists():
            return NO_DEPLOYMENT  # never deployed: no need to start opera
        run = self._run(["info", "-p", str(self._opera.opera_dir), "--format", "json"], deadline, "info", _INFO_TIMEOUT)
        if run.returncode != 0:
            raise PermanentProviderError(f"opera info failed (exit {run.returncode}):\n{run.tail()}")
        try:
            return parse_info(run.output)
        except ValueError as exc:
            raise PermanentProviderError(f"{exc}:\n{run.tail()}") from None

    def _count(self, deployment: Deployment) -> int | None:
        """The deployed count, 0 when nothing is deployed, None when unknown (failed or interrupted)."""
        if deployment.empty:
            return 0
        value = deployment.inputs.get(self.config.count_input)
        if not deployment.deployed or isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def _status_of(self, deployment: Deployment, deadline: float) -> GroupStatus:
        current = self._count(deployment)
        if deployment.empty:
            return GroupStatus(current=0, detail=f"opera: nothing deployed ({deployment.status or 'no state'})")
        if current is None:
            detail = f"opera status {deployment.status}"
            if deployment.deployed:
                detail += f": input {self.config.count_input} is {deployment.inputs.get(self.config.count_input)!r}"
            return GroupStatus(current=None, detail=detail)
        detail = f"opera status deployed, {self.config.count_input}={current}"
        if self.config.members_output is None:
            return GroupStatus(current=current, detail=detail + " (no members_output configured)")
        outputs = self._outputs(deadline)
        try:
            members = parse_members(outputs.get(self.config.members_output), self.config.members_output)
        except ValueError as exc:
            raise PermanentProviderError(f"group {self.context.group}: {exc}") from None
        return GroupStatus(current=current, members=members, detail=detail)

    def _outputs(self, deadline: float) -> dict[str, Any]:
        run = self._run(["outputs", "-p", str(self._opera.opera_dir), "--format", "json"], deadline, "outputs",
                        _INFO_TIMEOUT)
        if run.returncode != 0:
            raise PermanentProviderError(f"opera outputs failed (exit {run.returncode}):\n{run.tail()}")
        try:
            return parse_outputs(run.output)
        except ValueError as exc:
            raise PermanentProviderError(f"{exc}:\n{run.tail()}") from None

    def _converge(self, step: str, inputs: dict[str, Any], deadline: float) -> OperaRun:
        self._opera.opera_dir.mkdir(parents=True, exist_ok=True)
        inputs_file = self.context.state_dir / INPUTS_FILE
        _write_private(inputs_file, json.dumps(inputs, indent=2, sort_keys=True) + "\n")
        state = str(self._opera.opera_dir)
        template = self.config.service_template
        args = {
            "deploy": ["deploy", "-p", state, "-i", str(inputs_file), template],
            "update": ["update", "-p", state, "-i", str(inputs_file), template],
            "resume": ["deploy", "--resume", "--force", "-p", state, "-i", str(inputs_file), template],
        }[step]
        command = "deploy --resume" if step == "resume" else step
        return self._run(args, deadline, command)

    def _check_converged(self, step: str, run: OperaRun, after: Deployment, inputs: dict[str, Any]) -> None:
        if after.deployed and plan(after, inputs, self.config.service_template, self.config.count_input) == "none":
            if run.returncode != 0:
                log.warning("tosca group=%s: opera %s exited %d but the deployment converged",
                            self.context.group, step, run.returncode)
            return
        command = "deploy --resume" if step == "resume" else step
        if after.deployed:
            reason = f"opera {command} left the deployment 'deployed' with other inputs than requested"
        else:
            reason = f"opera {command} failed: status {after.status or 'none'}"
        raise self._failure(reason, run)

    def _failure(self, reason: str, run: OperaRun) -> PermanentProviderError | TemporaryProviderError:
        parts = [f"{reason} (exit {run.returncode}, {run.seconds:.1f}s)"]
        if run.failures:
            parts.append(describe_failures(run.failures))
        tail = run.tail()
        if tail:
            parts.append(f"opera output (end, full log {self.context.state_dir / 'tosca.log'}):\n{tail}")
        if self.config.operation_log:
            own = tail_of_file(Path(self.config.operation_log))
            if own:
                parts.append(f"{self.config.operation_log} (end):\n{own}")
        message = "\n".join(parts)
        log.warning("tosca group=%s: %s", self.context.group, message)
        if run.failures and all(f.get("kind") == "unreachable" for f in run.failures):
            return TemporaryProviderError(message)
        return PermanentProviderError(message)


class ToscaNotifyProvider(ToscaProvider):
    """A ``tosca`` group with ``heal_event``: a member is healed by ``opera notify`` (see the module doc). The
    subclasses say what the template's operation does: :class:`ToscaRebooter` or :class:`ToscaReplacer`."""

    def _notify(self, member_id: str) -> str:
        assert self.config.heal_event is not None
        action = self.config.heal_action
        deadline = time.monotonic() + self.config.timeout
        with self._locked(deadline, f"{action} {member_id}"):
            before = self._deployment(deadline)
            if not before.deployed:
                raise PermanentProviderError(
                    f"cannot {action} {member_id}: the opera deployment of group {self.context.group} is "
                    f"{before.status or 'not deployed'}"
                )
            address, known = None, None
            if self.config.members_output is not None:
                members = {m.id: m for m in self._status_of(before, deadline).members}
                if member_id not in members:
                    listed = ", ".join(sorted(members)) or "none"
                    raise PermanentProviderError(
                        f"cannot {action} {member_id}: not a member of group {self.context.group} (members: {listed})"
                    )
                address, known = members[member_id].address, set(members)
            notification = {"group": self.context.group, "member": member_id, "address": address, "action": action}
            notification_file = self.context.state_dir / NOTIFICATION_FILE
            _write_private(notification_file, json.dumps(notification, indent=2) + "\n")
            args = ["notify", "-p", str(self._opera.opera_dir), "-e", self.config.heal_event,
                    "-n", str(notification_file), "--force"]
            run = self._run(args, deadline, "notify")
            after = self._deployment(deadline)
            if run.returncode != 0 or not after.deployed:
                raise self._failure(f"opera notify -e {self.config.heal_event} failed: status {after.status}", run)
            result = f"opera notify -e {self.config.heal_event}: {action} {member_id}"
            if known is not None and action == "replace":
                now = {m.id for m in self._status_of(after, deadline).members}
                if now - known:
                    result += f" -> {', '.join(sorted(now - known))}"
        return f"{result} ({run.seconds:.1f}s)"


class ToscaRebooter(ToscaNotifyProvider):
    """``heal_action: reboot``: the notify operation restarts the member in place (same id)."""

    def reboot(self, member_id: str) -> str:
        return self._notify(member_id)


class ToscaReplacer(ToscaNotifyProvider):
    """``heal_action: replace``: the notify operation creates the replacement before removing the member."""

    def heal(self, member_id: str) -> str:
        return self._notify(member_id)


def _write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (inputs may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)




def heal_actions(config: ToscaConfig) -> frozenset[str]:
    """``{heal_action}`` with a ``heal_event``, else nothing (read by ``registry.heal_actions``)."""
    return frozenset({config.heal_action}) if config.heal_event is not None else frozenset()


def create(config: ToscaConfig, context: ProviderContext) -> ToscaProvider:
    if config.heal_event is None:
        return ToscaProvider(config, context)
    if config.heal_action == "replace":
        return ToscaReplacer(config, context)
    return ToscaRebooter(config, context)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(ToscaConfig, create, ToscaProvider, heal_actions_of=heal_actions)
