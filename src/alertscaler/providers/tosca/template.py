"""Checks of a ``tosca`` group's settings against its TOSCA service template, at validation (``check``).

Pure: reads the template file (YAML) and nothing else. Used by ``providers.tosca``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_TEMPLATE_LIMIT = 4 << 20  # bytes of a service template read


def template_problems(
    path: Path,
    *,
    count_input: str,
    inputs: Mapping[str, Any],
    members_output: str | None = None,
    heal_event: str | None = None,
) -> list[str]:
    """What of a ``tosca`` group's settings does not fit the service template at ``path``: an undeclared count
    input, input or output, a required input without a value, a heal event that no policy trigger has (as name
    or event). Checked only as far as the file itself tells: imported files are not read, so with ``imports``
    the heal event is not checked (its policy type may be imported)."""
    try:
        with path.open("rb") as file:
            data = yaml.safe_load(file.read(_TEMPLATE_LIMIT))
    except (OSError, yaml.YAMLError) as exc:
        return [f"service_template {path}: cannot read it as YAML: {exc}"]
    if not isinstance(data, dict) or "tosca_definitions_version" not in data:
        return [f"service_template {path}: not a TOSCA service template (no tosca_definitions_version)"]
    topology = data.get("topology_template") or {}
    if not isinstance(topology, dict):
        return [f"service_template {path}: topology_template is not a mapping"]
    declared = topology.get("inputs") or {}
    declared = declared if isinstance(declared, dict) else {}
    problems = []
    names = ", ".join(sorted(map(str, declared))) or "none"
    if count_input not in declared:
        problems.append(f"count_input: the service template declares no input {count_input!r} (inputs: {names})")
    for name in sorted(set(inputs) - set(declared)):
        problems.append(f"inputs.{name}: the service template declares no such input (inputs: {names})")
    for name, definition in declared.items():
        if name == count_input or name in inputs or not isinstance(definition, dict):
            continue
        if "default" not in definition and definition.get("required", True) is not False:
            problems.append(f"inputs: the service template requires input {name!r} (it has no default)")
    outputs = topology.get("outputs") or {}
    if members_output is not None and (not isinstance(outputs, dict) or members_output not in outputs):
        known = ", ".join(sorted(map(str, outputs))) if isinstance(outputs, dict) else ""
        problems.append(
            f"members_output: the service template has no output {members_output!r} (outputs: {known or 'none'})"
        )
    if heal_event is not None and not data.get("imports"):
        triggers = _trigger_names(data)
        if heal_event not in triggers:
            known = ", ".join(sorted(triggers)) or "none"
            problems.append(
                f"heal_event: no policy trigger of the service template has the name or event "
                f"{heal_event!r} (triggers and events: {known})"
            )
    return problems


def _trigger_names(data: dict[str, Any]) -> set[str]:
    """Names and events of the policy triggers in the template's policies and policy types."""
    found: set[str] = set()
    topology = data.get("topology_template") or {}
    policies = topology.get("policies") if isinstance(topology, dict) else None
    definitions: list[Any] = []
    for item in policies if isinstance(policies, list) else []:
        if isinstance(item, dict):
            definitions.extend(item.values())
    types = data.get("policy_types")
    if isinstance(types, dict):
        definitions.extend(types.values())
    for definition in definitions:
        triggers = definition.get("triggers") if isinstance(definition, dict) else None
        for name, trigger in (triggers or {}).items() if isinstance(triggers, dict) else ():
            found.add(str(name))
            if isinstance(trigger, dict) and isinstance(trigger.get("event"), str):
                found.add(trigger["event"])
    return found
