"""The ``tacker:`` section of the policy file: alertscaler as a drop-in for OpenStack Tacker's Prometheus plugin
(its five alert endpoints are served by ``api.tacker``; the labels are checked by ``ingest.tacker``).

- ``auth``: ``required`` (default: the five endpoints need the API's credentials, as ``/api/v1/alerts`` does;
  Alertmanager's ``webhook_configs`` can send ``http_config.authorization`` or ``basic_auth``) or ``open``
  (no credentials, as Tacker's own endpoints are: only on a trusted network);
- ``aspects``: each ``{vnf_instance_id, aspect_id, group, step, cooldown}`` gives ``group`` the step policies
  an ``/alert/auto_scaling`` alert of that VNF instance and aspect fires: ``SCALE_OUT`` adds ``step``
  instances (Tacker's one ``numberOfSteps`` of the aspect), ``SCALE_IN`` removes them, with the group's
  bounds and the policy's ``cooldown`` (Tacker has neither);
- ``healing``: each ``{vnf_instance_id, group, vnfc_prefix, action, budget, grace}`` gives ``group`` a ``heal``
  section fed by ``/alert/auto_healing`` alerts of that VNF instance: the member is the alert's ``vnfc_info_id`` without
  ``vnfc_prefix`` (label ``tacker_member``, set by ``api.tacker``), and the alerts of one instance within
  ``timer_interval`` (Tacker's option, default 20 s) are judged together as one heal (the heal section's
  ``batch_window``), with its rails: ``budget`` members per window (default 3), ``grace`` for new members,
  flap quarantine and the storm freeze (the heal section's defaults).

``tacker_groups`` is called by ``config.loading.load_policy`` once the groups are loaded: it returns them with
the generated policies, or the problems (each with its path).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from alertscaler.config.groups import GroupConfig, HealConfig, ScaleInPolicy, ScaleOutPolicy
from alertscaler.config.sections import ConfigModel
from alertscaler.model.durations import Duration
from alertscaler.model.errors import Problem
from alertscaler.model.healing import HealAction
from alertscaler.providers import registry

#: the label ``api.tacker`` adds to an auto-heal alert: its ``vnfc_info_id`` without the mapping's prefix
MEMBER_LABEL = "tacker_member"

_Id = Annotated[str, Field(min_length=1, max_length=255)]


class AspectMap(ConfigModel):
    """One VNF instance's scaling aspect → a group, and how many instances one step of the aspect is."""

    vnf_instance_id: _Id
    aspect_id: _Id
    group: _Id
    step: Annotated[int, Field(ge=1)] = 1
    cooldown: Duration = 60.0


class HealMap(ConfigModel):
    """One VNF instance's VNFCs → the members of a group."""

    vnf_instance_id: _Id
    group: _Id
    vnfc_prefix: str = ""
    action: HealAction = HealAction.REPLACE
    budget: Annotated[int, Field(ge=1)] = 3  # members healed per timer_interval (Tacker: all of them)
    grace: Duration = 120.0


class TackerSection(ConfigModel):
    auth: Literal["required", "open"] = "required"
    timer_interval: Duration = 20.0
    aspects: list[AspectMap] = Field(default_factory=list)
    healing: list[HealMap] = Field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.auth == "open"

    def heal_map(self, vnf_instance_id: str) -> HealMap | None:
        return next((h for h in self.healing if h.vnf_instance_id == vnf_instance_id), None)


def quoted(value: str) -> str:
    """``value`` as a matcher's double-quoted value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scale_matchers(vnf_instance_id: str, aspect_id: str, scale_type: str) -> list[str]:
    return ['receiver_type="tacker"', 'function_type="auto_scale"', f"vnf_instance_id={quoted(vnf_instance_id)}",
            f"aspect_id={quoted(aspect_id)}", f"auto_scale_type={quoted(scale_type)}"]


def heal_matchers(vnf_instance_id: str) -> list[str]:
    return ['receiver_type="tacker"', 'function_type="auto_heal"', f"vnf_instance_id={quoted(vnf_instance_id)}"]


def tacker_groups(section: TackerSection | None, groups: dict[str, GroupConfig],
                  names: list[str]) -> tuple[dict[str, GroupConfig], list[Problem]]:
    """``groups`` with the policies ``section`` generates. ``names``: every group of the file (a group with
    problems of its own is not in ``groups`` but is no unknown name)."""
    if section is None:
        return groups, []
    out, problems = dict(groups), []
    known = ", ".join(sorted(names)) or "none defined"
    for i, a in enumerate(section.aspects):
        where = f"tacker.aspects[{i}]"
        group = out.get(a.group)
        if a.group not in names:
            problems.append(Problem(f"{where}.group", f"no group {a.group!r} in this file (groups: {known})"))
            continue
        if group is None:
            continue
        if group.scale_out is not None or group.scale_in is not None:
            problems.append(Problem(f"{where}.group", (
                f"group {a.group!r} already has scale_out/scale_in policies (one aspect per group: the aspect "
                "gives the group its two policies; remove them there)")))
            continue
        out[a.group] = group.model_copy(update={
            "scale_out": ScaleOutPolicy(matchers=scale_matchers(a.vnf_instance_id, a.aspect_id, "SCALE_OUT"),
                                        adjustment=a.step, cooldown=a.cooldown),
            "scale_in": ScaleInPolicy(matchers=scale_matchers(a.vnf_instance_id, a.aspect_id, "SCALE_IN"),
                                      adjustment=-a.step, cooldown=a.cooldown)})
    seen: dict[str, int] = {}
    for i, h in enumerate(section.healing):
        where = f"tacker.healing[{i}]"
        if h.vnf_instance_id in seen:
            problems.append(Problem(f"{where}.vnf_instance_id", (
                f"already mapped by tacker.healing[{seen[h.vnf_instance_id]}] (one group per VNF instance)")))
            continue
        seen[h.vnf_instance_id] = i
        group = out.get(h.group)
        if h.group not in names:
            problems.append(Problem(f"{where}.group", f"no group {h.group!r} in this file (groups: {known})"))
            continue
        if group is None:
            continue
        if group.heal is not None:
            problems.append(Problem(f"{where}.group", (
                f"group {h.group!r} already has a heal section (the mapping gives the group its heal section; "
                "remove it there)")))
            continue
        can = registry.heal_actions(group.provider)
        if h.action.value not in can:
            problems.append(Problem(f"{where}.action", (
                f"the {getattr(group.provider, 'type', '?')} provider cannot {h.action.value} a member "
                f"(it can: {', '.join(sorted(can)) or 'nothing'})")))
            continue
        heal = HealConfig(matchers=heal_matchers(h.vnf_instance_id), member_labels=[MEMBER_LABEL],
                          provider_status=False, action=h.action, batch_window=section.timer_interval,
                          budget=h.budget, grace=h.grace)
        out[h.group] = group.model_copy(update={"heal": heal})
    return out, problems

