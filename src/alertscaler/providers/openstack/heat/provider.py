"""Provider type ``openstack-heat``: a group is an AutoScalingGroup resource of a Heat stack.

Replaces the am-executor + bash + curl glue of seed 000 that POSTed to a ``OS::Heat::ScalingPolicy``. Two ways
to change the group (``mode``):

- ``signal`` (default): ``scale`` signals the stack's scale-out or scale-in policy ONCE — Heat's policy decides
  the step, its cooldown and the group's min/max apply — and waits until Heat has finished. Signals are
  asynchronous (Heat answers 200 whatever happens), so the provider compares Heat's state before and after
  (``openstack.heat.events.judge_signal``): the policy's ``SIGNAL_COMPLETE`` event carrying this action's id,
  the group's ``cooldown_end``/``scaling_in_progress`` metadata, its nested stack's status. Heat 27 records
  NOTHING for a declined signal (cooldown, min/max), so no sign of activity for ``decline_after`` means
  declined: ``ProviderDeclined`` with the reason inferred from the state read before the signal and the
  unchanged size, plus Heat's request id of the signal (its engine log has the real reason under it — also
  when Heat itself failed, as Heat 27 does for a signal after two stack updates of the group: "Property
  min_size not assigned"). ``idempotent`` is False: re-signalling after a crash would step twice (the engine
  reconciles against ``status()`` instead).
- ``capacity``: ``scale`` sets the stack parameter ``capacity_parameter`` (e.g. ``desired_capacity``) with a
  stack update that keeps the template and the other parameters (PATCH), and waits for ``UPDATE_COMPLETE``.
  Converges, so ``idempotent`` is True. In ``signal`` mode an exact decision (``ScaleRequest.exact``: an
  ``exact_capacity`` policy or a manual scale) also uses the stack update when ``capacity_parameter`` is set.
  Heat resizes the group to that parameter on EVERY stack update (even one that changes nothing else), so the
  update is sent even when the parameter already holds the wanted value (a policy moved the group since) —
  and, conversely, any other stack update undoes the capacity signals gained or lost.

The stack is ``stack`` (name or id), or — ``stack_from_labels`` — the one the request's alerts name by the
labels the seed's Prometheus relabelling sets (``tenant_stack_id``/``tenant_stack_name``/
``tenant_project_id``), restricted by ``allowed_projects``/``allowed_stacks`` (see ``openstack.heat.labels``:
a stack outside them is refused before Heat is called). ``status()`` then reports the configured ``stack``,
else the last stack acted on (``<state_dir>/heat-last-stack.json``), else ``current=None``.

Members are the resources of the group's nested stack (``GET .../resources?nested_depth=1``); ``current``
counts those not being deleted. Heat is reached through ONE openstacksdk ``Connection`` (``openstack.auth``),
created on first use: its orchestration proxy for ``find_stack``, raw ``get``/``post``/``patch`` relative to
the orchestration endpoint for the rest. With ``endpoint_override.orchestration`` the URL is used as given
(no version discovery: a Keystone-less Heat has no discovery document at ``/v1/<project>``). Every error is
translated here by ``openstack.auth.translate``: unreachable / 5xx / 429 → ``TemporaryProviderError``; 4xx
such as a missing policy resource or stack → ``PermanentProviderError`` with Heat's message. Called by the
engine through ``providers.registry``. Healing: ``heal`` (action ``replace``) marks the member unhealthy and
updates the stack without changes so that Heat replaces it (``openstack.heat.healing``).

User data (``user_data`` / ``user_data_file`` with ``user_data_parameter``; ``{group}`` only): rendered for the
group and sent as that stack parameter with every capacity update alertscaler makes (``mode: capacity``, exact
sizes), so the servers Heat boots next get it; a stack without the parameter is a ``PermanentProviderError``.
Heat replaces the servers whose user data changes unless the template's server says
``user_data_update_policy: IGNORE``. Signal mode updates no parameter: there a stack whose parameter differs is
logged (once per stack and text), naming the command that sets it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alertscaler.model.durations import format_duration
from alertscaler.model.errors import (
    PermanentProviderError,
    ProviderDeclined,
    ProviderError,
    TemporaryProviderError,
)
from alertscaler.model.groups import GroupStatus, Member
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.common import userdata
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.openstack.auth import connect, translate
from alertscaler.providers.openstack.heat.config import HeatConfig
from alertscaler.providers.openstack.heat.events import (
    GroupView,
    Judgement,
    MissingGroup,
    Probe,
    StackInfo,
    Verdict,
    decline_reason,
    group_limits,
    group_view,
    heat_events,
    judge_signal,
    judge_update,
    scaling_metadata,
    signal_body,
    signal_marker,
    stack_info,
)
from alertscaler.providers.openstack.heat.healing import HeatCalls, replace_member
from alertscaler.providers.openstack.heat.labels import (
    StackRef,
    check_found,
    refuse_unless_allowed,
    stack_from_alerts,
)

__all__ = ["HeatConfig", "HeatProvider", "create"]

log = logging.getLogger(__name__)

STATE_FILE = "heat-last-stack.json"
_POLL_ERRORS = 5  # consecutive failed reads tolerated while waiting (Heat answers some reads with a
#                   transient 404/500 while the stack is being changed)
_NO_OUTPUTS = {"resolve_outputs": "false"}  # a stack GET would otherwise resolve every output
_BUSY_DELAY = 5.0  # retry hint when the group is busy (another scaling or update running)



# ------------------------------------------------------------------------------------------ provider


class HeatProvider:
    """Scales one Heat AutoScalingGroup (see the module docstring). Thread-safe: ``status`` may run while
    ``scale`` waits."""

    def __init__(self, config: HeatConfig, context: ProviderContext, *,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.context = context
        self.idempotent: bool = config.mode == "capacity"
        #: signal mode: Heat's policies decide the step, cooldown and limits, so at start alertscaler's
        #: desired capacity follows the stack instead of signalling until they agree
        self.adopts_size: bool = config.mode == "signal"
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._conn: Any = None
        self._api: Any = None
        template = config.template
        self._user_data = None if template is None else userdata.render(template, {"group": context.group})
        self._warned: set[tuple[str, str]] = set()  # (stack id, user data) said to differ (signal mode)

    # -- Provider

    def scale(self, request: ScaleRequest) -> str:
        stack = self._target(request)
        group = self._group(stack)
        res = self.config.group_resource
        if request.desired == group.current:
            return f"stack {stack}: {res} already has {group.current} member(s); nothing to do"
        if self.config.capacity_parameter is not None and (self.config.mode == "capacity" or request.exact):
            return self._update_capacity(stack, group, request)
        if request.exact:
            raise PermanentProviderError(
                f"stack {stack}: an exact size ({request.desired}) needs a stack parameter to set (mode: capacity "
                "with capacity_parameter); in signal mode Heat's scaling policies decide each step")
        self._warn_user_data(stack)
        return self._signal(stack, group, request)

    def status(self) -> GroupStatus:
        target = self._status_target()
        if isinstance(target, str):
            return GroupStatus(current=None, detail=target)
        stack, note = target
        group = self._group(stack)
        detail = (f"stack {stack} {stack.status}, {group.resource} {group.status} with {group.current} "
                  f"member(s){note}")
        return GroupStatus(current=group.current, members=group.members, detail=detail)

    def members(self) -> list[Member]:
        return list(self.status().members)

    def heal(self, member_id: str) -> str:
        """Heal action ``replace``: Heat replaces the member marked unhealthy at a no-change stack update of
        the configured (or last acted-on) stack; see ``openstack.heat.healing``."""
        target = self._status_target()
        if isinstance(target, str):
            raise PermanentProviderError(f"cannot heal {member_id}: {target}")
        calls = HeatCalls(call=self._call, group=self._group, group_after=self._group_after, wait=self._wait)
        return replace_member(calls, target[0], member_id, group_name=self.context.group,
                              capacity_parameter=self.config.capacity_parameter)

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._api = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # -- which stack

    def _target(self, request: ScaleRequest) -> StackInfo:
        cfg = self.config
        if not cfg.stack_from_labels:
            assert cfg.stack is not None  # the config requires it
            return self._find(cfg.stack)
        names, allow = cfg.label_names, cfg.allowlist
        ref = stack_from_alerts(request.alerts, names)
        if ref is not None:
            refuse_unless_allowed(ref, allow, names, "label")
            found = self._find(ref.lookup)
            check_found(ref, found, allow, names)
            return found
        lookup, _ = self._fallback()
        if lookup is None:
            raise PermanentProviderError(
                f"no alert of this request names a stack ({names.stack_id} / {names.stack_name}), and there is "
                "no configured stack nor a stack acted on before")
        return self._checked(lookup)

    def _status_target(self) -> tuple[StackInfo, str] | str:
        cfg = self.config
        if not cfg.stack_from_labels:
            assert cfg.stack is not None
            return self._find(cfg.stack), ""
        lookup, remembered = self._fallback()
        if lookup is None:
            return (f"stack from alert labels ({cfg.stack_id_label} / {cfg.stack_name_label}): no stack acted on "
                    "yet and no stack configured, so the size is unknown")
        return self._checked(lookup), " (the last stack acted on)" if remembered else ""

    def _fallback(self) -> tuple[str | None, bool]:
        """The configured stack, else the remembered one (its id): ``(lookup, remembered)``."""
        if self.config.stack is not None:
            return self.config.stack, False
        last = self._remembered()
        return (last.lookup, True) if last is not None else (None, False)

    def _checked(self, lookup: str) -> StackInfo:
        """A configured or remembered stack in label mode: still held to the allowlist."""
        found = self._find(lookup)
        ref = StackRef(id=found.id) if lookup == found.id else StackRef(name=lookup)
        check_found(ref, found, self.config.allowlist, self.config.label_names)
        return found

    def _find(self, lookup: str) -> StackInfo:
        api = self._orchestration()
        try:
            stack = api.find_stack(lookup, ignore_missing=True, resolve_outputs=False)
        except Exception as exc:
            translate(exc, f"finding stack {lookup!r}")
        if stack is None:
            raise PermanentProviderError(f"Heat has no stack {lookup!r} (looked up by id, then by name)")
        return stack_info({
            "id": stack.id, "stack_name": stack.name, "links": stack.links, "parameters": stack.parameters,
            "stack_status": stack.status, "stack_status_reason": stack.status_reason,
            "updated_time": stack.updated_at,
        })

    # -- reading Heat

    def _group(self, stack: StackInfo) -> GroupView:
        body = self._call("GET", f"{stack.path}/resources", f"listing the resources of stack {stack}",
                          params={"nested_depth": 1})
        try:
            return group_view(body or {}, self.config.group_resource, stack)
        except MissingGroup as exc:
            raise PermanentProviderError(
                f"stack {stack} has no resource {exc.resource!r} (group_resource); it has: "
                f"{', '.join(exc.resources) or 'nothing'}") from None

    def _group_after(self, stack: StackInfo) -> GroupView:
        """The group once Heat has acted: like ``_wait``, a few failed reads are retried (Heat has changed the
        group by now, so giving up at the first transient error would misreport the action)."""
        for attempt in range(1, _POLL_ERRORS + 1):
            try:
                return self._group(stack)
            except ProviderError:
                if attempt == _POLL_ERRORS:
                    raise
                self._sleep(self.config.poll_interval)
        raise AssertionError("unreachable")

    def _probe(self, stack: StackInfo, group: GroupView, policy: str) -> Probe:
        metadata = self._call("GET", f"{stack.path}/resources/{group.resource}/metadata",
                              f"reading the metadata of {group.resource} in stack {stack}")
        events = self._call("GET", f"{stack.path}/events", f"reading the events of {policy} in stack {stack}",
                            params={"resource_name": policy, "resource_action": "SIGNAL", "sort_dir": "desc",
                                    "limit": 20})
        nested: StackInfo | None = None
        if group.nested_path is not None:
            nested = stack_info(self._call("GET", group.nested_path, f"reading the stack of {group.resource}",
                                           params=_NO_OUTPUTS) or {})
        return Probe(
            metadata=scaling_metadata(metadata or {}),
            events=heat_events(events or {}),
            nested_status=nested.status if nested else "",
            nested_reason=nested.status_reason if nested else "",
            nested_updated=nested.updated_time if nested else None,
        )

    def _call(self, method: str, path: str, doing: str, *, json_body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        """One request relative to the orchestration endpoint; the decoded JSON body (None if not JSON)."""
        response = self._send(method, path, doing, json_body=json_body, params=params)
        try:
            return response.json() if response.content else None
        except ValueError:
            return None  # e.g. the HTML body of a 202

    def _send(self, method: str, path: str, doing: str, *, json_body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        """One request; the ``requests`` response once it is known to be a success (errors translated)."""
        from openstack import exceptions

        api = self._orchestration()
        try:
            kwargs: dict[str, Any] = {"params": params} if params else {}
            if json_body is not None:
                kwargs["json"] = json_body
            response = api.request(path, method, **kwargs)
            exceptions.raise_from_response(response)
        except Exception as exc:
            translate(exc, doing)
        return response

    def _orchestration(self) -> Any:
        with self._lock:
            if self._api is None:
                conn = self._conn if self._conn is not None else connect(self.config.auth)
                self._conn = conn
                try:
                    if "orchestration" in self.config.auth.endpoint_override:
                        from openstack.orchestration.v1._proxy import Proxy

                        api = conn.config.get_session_client("orchestration", constructor=Proxy)
                        api._connection = conn  # what Connection's own descriptor sets on the proxies it makes
                    else:
                        api = conn.orchestration
                except Exception as exc:
                    translate(exc, "connecting to Heat (orchestration)")
                self._api = api
            return self._api

    # -- waiting

    def _wait(self, doing: str, step: Callable[[float], Judgement]) -> Judgement:
        """Call ``step(waited)`` every ``poll_interval`` until it is neither WAITING nor IN_PROGRESS, or time
        out (``TemporaryProviderError``). A few consecutive failed reads are tolerated."""
        started = self._monotonic()
        failures: list[ProviderError] = []
        while True:
            self._sleep(self.config.poll_interval)
            waited = self._monotonic() - started
            try:
                judgement = step(waited)
            except ProviderError as exc:
                failures.append(exc)
                if len(failures) >= _POLL_ERRORS:
                    raise
                log.info("openstack-heat group=%s: %s: read failed (%s), retrying", self.context.group, doing, exc)
            else:
                failures.clear()
                if judgement.verdict not in (Verdict.WAITING, Verdict.IN_PROGRESS):
                    return judgement
            if waited >= self.config.timeout:
                last = f"; last read failed: {failures[-1]}" if failures else ""
                raise TemporaryProviderError(
                    f"{doing}: Heat had not finished after {format_duration(self.config.timeout)}{last}")

    # -- signal mode

    def _signal(self, stack: StackInfo, group: GroupView, request: ScaleRequest) -> str:
        cfg = self.config
        scale_out = request.desired > group.current
        policy = cfg.scale_out_policy if scale_out else cfg.scale_in_policy
        res = group.resource
        if not group.settled:
            if group.status.endswith("_IN_PROGRESS"):
                raise TemporaryProviderError(
                    f"stack {stack}: {res} is {group.status}; Heat ignores signals until it is COMPLETE",
                    delay=_BUSY_DELAY)
            raise PermanentProviderError(
                f"stack {stack}: {res} is {group.status} ({group.status_reason}); Heat ignores scaling signals "
                "until the group is COMPLETE again (repair the stack, e.g. with a stack update)")
        before = self._probe(stack, group, policy)
        if before.metadata.in_progress:
            raise TemporaryProviderError(
                f"stack {stack}: Heat is already scaling {res} (scaling_in_progress); a signal now would be "
                "ignored", delay=_BUSY_DELAY)
        marker = signal_marker(request.group, request.action_id)
        body = signal_body(group=request.group, action_id=request.action_id, decision_id=request.decision_id,
                           current=group.current, desired=request.desired, policy=policy, stack=stack,
                           alerts=request.alerts)
        signalled_at = datetime.now(UTC)
        in_doubt: TemporaryProviderError | None = None
        try:
            response = self._send("POST", f"{stack.path}/resources/{policy}/signal",
                                  f"signalling {policy} of stack {stack}", json_body=body)
            heat_request = response.headers.get("x-openstack-request-id") or "unknown"  # tags Heat's log lines
        except TemporaryProviderError as exc:
            # A 5xx or a timeout does not say that Heat did not act (Heat may build the member and still answer
            # an internal error): look for this action's signal before anything is retried — at most once.
            in_doubt, heat_request = exc, "unknown (the signal was answered with an error)"
            log.warning("openstack-heat group=%s: signalling %s of stack %s answered %s; checking whether Heat "
                        "acted before any retry", self.context.group, policy, stack, exc)
        self._remember(stack)
        log.info("openstack-heat group=%s: signalled %s of stack %s (%d -> wants %d), Heat request %s",
                 self.context.group, policy, stack, group.current, request.desired, heat_request)
        state = Judgement(Verdict.WAITING)

        def step(waited: float) -> Judgement:
            nonlocal state
            state = judge_signal(before, self._probe(stack, group, policy), marker, waited=waited,
                                 decline_after=cfg.decline_after, was_active=state.active)
            return state

        outcome = self._wait(f"signalled {policy} of stack {stack}", step)
        if in_doubt is not None and outcome.verdict is Verdict.DECLINED:
            raise in_doubt  # no sign that Heat got it: a retry cannot step twice
        if outcome.verdict is Verdict.FAILED:
            raise PermanentProviderError(
                f"signalled {policy} of stack {stack}: {outcome.reason} (Heat request {heat_request})")
        after = self._group_after(stack)
        if outcome.verdict is Verdict.DECLINED:
            why = self._why_declined(stack, group, scale_out, before, signalled_at) or outcome.reason
            raise ProviderDeclined(
                f"Heat did not act on {policy} of stack {stack}: {why}; {res} stays at {after.current} "
                f"(no scaling activity within {format_duration(cfg.decline_after)}; Heat records no event for a "
                f"declined signal; its engine log has the reason under request {heat_request})",
                current=after.current)
        note = "" if after.current == request.desired else f" (wanted {request.desired}: Heat's policy sets the step)"
        if in_doubt is not None:
            note += " (verified: Heat acted although the signal was answered with an error)"
        return f"signalled {policy} of stack {stack}: {res} {group.current} -> {after.current}{note}"

    def _why_declined(self, stack: StackInfo, group: GroupView, scale_out: bool, before: Probe,
                      signalled_at: datetime) -> str | None:
        try:
            template = self._call("GET", f"{stack.path}/template", f"reading the template of stack {stack}")
        except ProviderError as exc:
            log.info("openstack-heat group=%s: cannot read the template to explain a decline: %s",
                     self.context.group, exc)
            template = None
        limits = group_limits(template if isinstance(template, dict) else {}, stack.parameters, group.resource)
        return decline_reason(scale_out=scale_out, group=group.resource, current=group.current, limits=limits,
                              metadata=before.metadata, now=signalled_at)

    # -- capacity mode / exact decisions

    def _update_capacity(self, stack: StackInfo, group: GroupView, request: ScaleRequest) -> str:
        param = self.config.capacity_parameter
        assert param is not None
        res, desired = group.resource, request.desired
        if param not in stack.parameters:
            shown = ", ".join(sorted(k for k in stack.parameters if not k.startswith("OS::"))) or "none"
            raise PermanentProviderError(
                f"stack {stack} has no parameter {param!r} (capacity_parameter); its parameters: {shown}")
        old = stack.parameters[param]
        doing = f"updating stack {stack} ({param} {old} -> {desired})"
        if stack.status.endswith("_IN_PROGRESS"):
            if stack.status == "UPDATE_IN_PROGRESS" and old == str(desired):
                # our own update, interrupted by a restart (this mode is resumed): let it finish
                self._wait_update(stack, param, desired, doing, resumed=True)
                after = self._group_after(stack)
                return f"stack {stack}: the update to {param}={desired} finished: {res} {group.current} -> " \
                       f"{after.current}"
            raise TemporaryProviderError(f"stack {stack} is {stack.status}; cannot update it now", delay=_BUSY_DELAY)
        # Heat resizes the group to the parameter on EVERY stack update, also when the value is unchanged
        parameters: dict[str, Any] = {param: desired, **self._user_data_parameters(stack)}
        self._call("PATCH", stack.path, doing, json_body={"parameters": parameters})
        self._remember(stack)
        self._wait_update(stack, param, desired, doing)
        after = self._group_after(stack)
        if after.current == group.current:
            raise ProviderDeclined(
                f"stack {stack}: updated {param} {old} -> {desired} but Heat kept {res} at {after.current}",
                current=after.current)
        note = "" if after.current == desired else f" (Heat made it {after.current}, not {desired})"
        return (f"updated stack {stack} parameter {param} {old} -> {desired}: "
                f"{res} {group.current} -> {after.current}{note}")

    def _user_data_parameters(self, stack: StackInfo) -> dict[str, str]:
        """``{user_data_parameter: the rendered user data}`` for a stack update (empty without user data)."""
        name = self.config.user_data_parameter
        if self._user_data is None or name is None:
            return {}
        if name not in stack.parameters:
            shown = ", ".join(sorted(k for k in stack.parameters if not k.startswith("OS::"))) or "none"
            raise PermanentProviderError(
                f"stack {stack} has no parameter {name!r} (user_data_parameter); its parameters: {shown}")
        return {name: self._user_data}

    def _warn_user_data(self, stack: StackInfo) -> None:
        """Signal mode: say (once) when the stack's user data parameter is not the policy file's."""
        name = self.config.user_data_parameter
        if self._user_data is None or name is None or stack.parameters.get(name) == self._user_data:
            return
        key = (stack.id, self._user_data)
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning("%s: stack %s: its parameter %s is not the policy file's user data; Heat boots new servers "
                    "with the stack's. Signal mode changes no parameter: set it with openstack stack update "
                    "--existing --parameter %s=... (or use mode: capacity)", self.context.group, stack, name, name)

    def _wait_update(self, before: StackInfo, param: str, desired: int, doing: str, resumed: bool = False) -> None:
        state = Judgement(Verdict.IN_PROGRESS, active=True) if resumed else Judgement(Verdict.WAITING)

        def step(waited: float) -> Judgement:
            nonlocal state
            now = stack_info(self._call("GET", before.path, f"reading stack {before}", params=_NO_OUTPUTS) or {})
            state = judge_update(before, now, param, desired, was_active=state.active)
            return state

        outcome = self._wait(doing, step)
        if outcome.verdict is Verdict.FAILED:
            raise PermanentProviderError(f"{doing}: {outcome.reason}")

    # -- remembered stack (label-addressed groups)

    def _state_file(self) -> Path:
        return self.context.state_dir / STATE_FILE

    def _remember(self, stack: StackInfo) -> None:
        if not self.config.stack_from_labels:
            return
        path = self._state_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"id": stack.id, "name": stack.name, "project": stack.project}))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("openstack-heat group=%s: cannot remember stack %s in %s: %s",
                        self.context.group, stack, path, exc)

    def _remembered(self) -> StackRef | None:
        try:
            data = json.loads(self._state_file().read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            return None
        return StackRef(id=data["id"], name=data.get("name"), project=data.get("project"))


def create(config: HeatConfig, context: ProviderContext) -> HeatProvider:
    return HeatProvider(config, context)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(HeatConfig, create, HeatProvider)
