"""The ``openstack-heat`` provider's configuration model (``HeatConfig``), validated with a path per problem.

Owns: the keys of an ``openstack-heat`` group's ``provider`` section, their defaults and how they must fit
together (``mode: capacity`` needs ``capacity_parameter``; ``stack`` is required unless ``stack_from_labels``;
``stack_from_labels`` needs a non-empty ``allowed_projects`` and/or ``allowed_stacks``, which mean nothing
without it; the timeout covers the poll interval and ``decline_after``; user data needs the stack parameter it
is passed in, ``user_data_parameter``, and may use ``{group}`` only, since Heat creates and names the servers).
Each check sits on the field it is about, so ``config`` reports e.g.
``groups.web.provider.capacity_parameter: required with mode: capacity``.
Imported by ``openstack.heat.provider`` (which declares it in ``DECLARATION``) only.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from alertscaler.model.durations import Duration, PositiveDuration, format_duration
from alertscaler.providers.common import userdata
from alertscaler.providers.openstack.auth import OpenStackAuth
from alertscaler.providers.openstack.heat.labels import Allowlist, LabelNames

__all__ = ["HeatConfig"]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

NonEmpty = Annotated[str, Field(min_length=1)]

#: the placeholders a Heat group's user data may use: Heat creates and names the servers itself
USER_DATA_PLACEHOLDERS = ("group",)
_WHY_NOT = ("Heat creates the servers from the stack's template, so there is no per-server value to fill; "
            "cloud-init can (## template: jinja, then {{ v1.local_hostname }})")


# --------------------------------------------------------------------------------------------- config


class HeatConfig(BaseModel):
    """Configuration of an ``openstack-heat`` group (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["openstack-heat"]
    auth: OpenStackAuth = Field(default_factory=OpenStackAuth)
    stack_from_labels: bool = False
    #: name or id; required unless stack_from_labels (then the fallback for status and label-less requests)
    stack: NonEmpty | None = Field(default=None, validate_default=True)
    group_resource: NonEmpty = "asg"
    scale_out_policy: NonEmpty = "scaleup_policy"
    scale_in_policy: NonEmpty = Field(default="scaledown_policy", validate_default=True)
    mode: Literal["signal", "capacity"] = "signal"
    capacity_parameter: NonEmpty | None = Field(default=None, validate_default=True)
    stack_id_label: str = Field(default="tenant_stack_id", validate_default=True)
    stack_name_label: str = Field(default="tenant_stack_name", validate_default=True)
    project_label: str = Field(default="tenant_project_id", validate_default=True)
    allowed_projects: list[NonEmpty] = Field(default_factory=list, validate_default=True)
    allowed_stacks: list[NonEmpty] = Field(default_factory=list, validate_default=True)
    poll_interval: PositiveDuration = 1.0
    #: no sign of scaling for this long after a signal = Heat declined it (Heat 27 records no event for that)
    decline_after: PositiveDuration = 10.0
    timeout: Duration = Field(default=300.0, validate_default=True)
    #: cloud-init user data ({group} only), passed as the stack parameter ``user_data_parameter`` with every stack
    #: update alertscaler makes (mode: capacity, exact sizes)
    user_data: str | None = Field(default=None, repr=False)
    user_data_file: str | None = None  # the same, from a file read at load (relative to the policy file)
    user_data_parameter: NonEmpty | None = Field(default=None, validate_default=True)

    _template: str | None = PrivateAttr(default=None)

    @field_validator("stack")
    @classmethod
    def _stack_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("stack_from_labels") is False:
            raise ValueError("required unless stack_from_labels is true (the stack's name or id)")
        return value

    @field_validator("scale_in_policy")
    @classmethod
    def _distinct_policies(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("scale_out_policy"):
            raise ValueError(f"must differ from scale_out_policy (both are {value!r})")
        return value

    @field_validator("capacity_parameter")
    @classmethod
    def _capacity_needs_parameter(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "capacity":
            raise ValueError("required with mode: capacity (the stack parameter that sets the group's "
                             "desired capacity, e.g. desired_capacity)")
        return value

    @field_validator("stack_id_label", "stack_name_label", "project_label")
    @classmethod
    def _label_names(cls, value: str, info: ValidationInfo) -> str:
        if not _LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        others = {k: info.data.get(k) for k in ("stack_id_label", "stack_name_label") if k != info.field_name}
        clash = [k for k, v in others.items() if v == value]
        if clash:
            raise ValueError(f"must differ from {clash[0]} (both are {value!r})")
        return value

    @field_validator("allowed_projects", "allowed_stacks")
    @classmethod
    def _allowlist(cls, value: list[str], info: ValidationInfo) -> list[str]:
        labels = info.data.get("stack_from_labels")
        if value and labels is False:
            raise ValueError("only used with stack_from_labels: true (a configured stack needs no allowlist)")
        if info.field_name == "allowed_stacks" and labels and not value and not info.data.get("allowed_projects"):
            raise ValueError("stack_from_labels needs an allowlist: allowed_projects and/or allowed_stacks "
                             "(stack ids or names); alert labels come from instance tags, which tenants set")
        return value


    @field_validator("timeout")
    @classmethod
    def _timeout_covers(cls, value: float, info: ValidationInfo) -> float:
        for name in ("poll_interval", "decline_after"):
            other = info.data.get(name)
            if other is not None and value < other:
                raise ValueError(f"must be at least {name} ({format_duration(other)})")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        return None if value is None else userdata.check(value, userdata.NOVA, USER_DATA_PLACEHOLDERS, _WHY_NOT)

    @field_validator("user_data_file")
    @classmethod
    def _user_data_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("user_data") is not None:
            raise ValueError("give either user_data or user_data_file, not both")
        return userdata.checked_file(value, (info.context or {}).get("base"), userdata.NOVA, USER_DATA_PLACEHOLDERS,
                                     _WHY_NOT)

    @field_validator("user_data_parameter")
    @classmethod
    def _user_data_parameter(cls, value: str | None, info: ValidationInfo) -> str | None:
        given = info.data.get("user_data") is not None or info.data.get("user_data_file") is not None
        if value is None and given:
            raise ValueError("required with user_data / user_data_file: the stack parameter the template passes to "
                             "its servers' user_data (e.g. user_data)")
        if value is not None and not given and "user_data" in info.data and "user_data_file" in info.data:
            raise ValueError("only used with user_data or user_data_file")
        return value

    @model_validator(mode="after")
    def _read_user_data(self) -> HeatConfig:
        self._template = userdata.template_of(self.user_data, self.user_data_file)
        return self

    @property
    def template(self) -> str | None:
        """The user data template (``user_data``, or the text of ``user_data_file`` as read at load)."""
        return self._template

    def user_data_report(self) -> userdata.Report | None:
        """What ``check`` prints about the user data (format, size against Nova's limit, warnings)."""
        return userdata.report(self._template, self.user_data_file, userdata.NOVA)

    @property
    def label_names(self) -> LabelNames:
        return LabelNames(self.stack_id_label, self.stack_name_label, self.project_label)

    @property
    def allowlist(self) -> Allowlist:
        return Allowlist(stacks=frozenset(self.allowed_stacks), projects=frozenset(self.allowed_projects))

    def carried_labels(self) -> tuple[str, ...]:
        """Alert labels this provider reads (``render`` copies them from the firing series into the group's
        alert rules): the stack identity, when the stack is taken from the labels."""
        if not self.stack_from_labels:
            return ()
        return (self.project_label, self.stack_id_label, self.stack_name_label)
