"""Which Heat stack an alert names, and whether alertscaler may touch it: pure checks for ``openstack-heat``.

Owns: reading the stack id / stack name / project labels from a request's alerts (``stack_from_labels``,
labels as the seed's Prometheus relabelling sets them: ``tenant_stack_id``, ``tenant_stack_name``,
``tenant_project_id``), requiring all alerts of a request to agree, and the allowlist: a stack or project
outside ``allowed_stacks`` / ``allowed_projects`` is refused BEFORE Heat is called (label values come from
instance tags, which tenants control), and the stack Heat returns is checked again (its id, name and
project). Refusals are ``PermanentProviderError`` naming the label and the value. Called by
``openstack.heat.provider`` only; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alertscaler.model.errors import PermanentProviderError
from alertscaler.providers.openstack.heat.events import StackInfo


@dataclass(frozen=True)
class LabelNames:
    stack_id: str = "tenant_stack_id"
    stack_name: str = "tenant_stack_name"
    project: str = "tenant_project_id"


@dataclass(frozen=True)
class Allowlist:
    """Stacks (ids or names) and projects alertscaler may act on; an empty set does not restrict."""

    stacks: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StackRef:
    """A stack as alerts (or the config) name it: any of id, name, project may be unknown."""

    id: str | None = None
    name: str | None = None
    project: str | None = None

    @property
    def lookup(self) -> str:
        """What to ask Heat for: the id when known (unique), else the name."""
        return self.id or self.name or ""

    def __str__(self) -> str:
        parts = [p for p in (self.name, self.id) if p]
        text = "/".join(parts) or "?"
        return f"{text} (project {self.project})" if self.project else text


def _labels(alert: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = alert.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _value(labels: Mapping[str, Any], name: str) -> str | None:
    value = labels.get(name)
    return value if isinstance(value, str) and value.strip() else None


def _alert_name(alert: Mapping[str, Any], index: int) -> str:
    labels = _labels(alert)
    name = labels.get("alertname") or "alert"
    fingerprint = alert.get("fingerprint")
    return f"{name} #{index + 1}" + (f" ({fingerprint})" if fingerprint else "")


def stack_from_alerts(alerts: Iterable[Any], names: LabelNames) -> StackRef | None:
    """The one stack a request's alerts name; None when there are no alerts (timer / manual decisions).

    Every alert must carry the stack id or the stack name label; alerts may carry different subsets of the
    three labels, but no two may disagree on one (``PermanentProviderError`` listing them)."""
    merged: dict[str, str] = {}
    seen_by: dict[str, str] = {}
    count = 0
    for index, raw in enumerate(alerts):
        if not isinstance(raw, Mapping):
            continue
        count += 1
        labels = _labels(raw)
        found = {"id": _value(labels, names.stack_id), "name": _value(labels, names.stack_name),
                 "project": _value(labels, names.project)}
        if found["id"] is None and found["name"] is None:
            raise PermanentProviderError(
                f"refused: {_alert_name(raw, index)} has neither a {names.stack_id} nor a {names.stack_name} "
                "label, so it names no Heat stack")
        for key, value in found.items():
            if value is None:
                continue
            label = {"id": names.stack_id, "name": names.stack_name, "project": names.project}[key]
            if key in merged and merged[key] != value:
                raise PermanentProviderError(
                    f"refused: the alerts of this request name different stacks: {label}={merged[key]!r} "
                    f"({seen_by[key]}) and {label}={value!r} ({_alert_name(raw, index)})")
            merged.setdefault(key, value)
            seen_by.setdefault(key, _alert_name(raw, index))
    if count == 0:
        return None
    return StackRef(id=merged.get("id"), name=merged.get("name"), project=merged.get("project"))


def refuse_unless_allowed(ref: StackRef, allow: Allowlist, names: LabelNames, source: str = "label") -> None:
    """Before calling Heat: the named project and stack must be on the allowlist.

    ``source`` says where the values came from ("label" or "remembered"/"configured"), for the message."""
    if allow.projects and ref.project is not None and ref.project not in allow.projects:
        raise PermanentProviderError(
            f"refused: {source} {names.project}={ref.project!r} is not in allowed_projects; Heat was not called")
    if allow.stacks:
        given = [(names.stack_id, ref.id), (names.stack_name, ref.name)]
        if not any(value in allow.stacks for _, value in given if value is not None):
            shown = ", ".join(f"{label}={value!r}" for label, value in given if value is not None)
            raise PermanentProviderError(
                f"refused: {source} {shown} is not in allowed_stacks; Heat was not called")


def check_found(ref: StackRef, found: StackInfo, allow: Allowlist, names: LabelNames) -> None:
    """After Heat answered: the stack it returned must be the one named, and allowed (id or name in
    ``allowed_stacks``; project — as HEAT reports it, never as a label claims it — in ``allowed_projects``)."""
    if ref.id is not None and ref.id != found.id:
        raise PermanentProviderError(
            f"refused: {names.stack_id}={ref.id!r} but Heat returned stack {found}")
    if ref.name is not None and ref.name != found.name:
        raise PermanentProviderError(
            f"refused: {names.stack_name}={ref.name!r} but Heat's stack {found.id} is named {found.name!r}")
    if ref.project is not None and found.project is not None and ref.project != found.project:
        raise PermanentProviderError(
            f"refused: {names.project}={ref.project!r} but Heat reports stack {found} in project "
            f"{found.project!r}")
    if allow.projects:
        if found.project is None:  # an alert's label is the tenant's own data: it cannot vouch for the project
            raise PermanentProviderError(
                f"refused: Heat does not report the project of stack {found}, so allowed_projects cannot be "
                f"checked (the {names.project} label is not trusted for it)")
        if found.project not in allow.projects:
            raise PermanentProviderError(
                f"refused: Heat reports stack {found} in project {found.project!r}, which is not in "
                "allowed_projects")
    if allow.stacks and found.id not in allow.stacks and found.name not in allow.stacks:
        raise PermanentProviderError(
            f"refused: Heat's stack {found} is not in allowed_stacks (neither its id nor its name)")
