"""Configuration of the ``local`` provider: ``LocalConfig`` (``provider: {type: local, ...}``) and the capacity
model of the bundled workload. Used by ``local.provider`` (re-exported there), ``local.instances``,
``local.healing``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from alertscaler.model.durations import Duration
from alertscaler.providers.common import userdata


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
    """``provider: {type: local, ...}`` of a group.

    ``probe_timeout`` bounds the health probe that ``status()`` / ``members()`` run on every running instance
    (all at once, when ``health_path`` is set): an instance that does not answer ``200`` within it is reported
    ``failed`` (hung).

    ``user_data`` / ``user_data_file``: cloud-init user data as on a cloud (``common.userdata``: checked at load,
    ``{group}``, ``{name}`` = the instance id and ``{index}`` filled per instance), written for each instance to
    ``<state_dir>/<id>.user-data`` (mode 0600), whose path the instance finds in ``ALERTSCALER_USER_DATA_FILE``:
    a bootstrap tested without a cloud.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local"] = "local"
    command: list[str] | None = None
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    port_range: tuple[int, int] = (20000, 29999)
    health_path: str | None = "/healthz"
    start_timeout: Duration = 10.0
    stop_timeout: Duration = 5.0
    probe_timeout: Duration = 1.0
    env: dict[str, str] = Field(default_factory=dict)
    user_data: str | None = Field(default=None, repr=False)  # a template: {group}, {name}, {index}
    user_data_file: str | None = None  # the same, from a file read at load (relative to the policy file)

    _template: str | None = PrivateAttr(default=None)

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("must name a program (a non-empty argv list)")
        return value

    @field_validator("health_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or any(c.isspace() or not c.isprintable() for c in value)):
            raise ValueError("must start with / and contain no spaces or control characters")
        return value

    @field_validator("probe_timeout")
    @classmethod
    def _probe_positive(cls, value: float) -> float:
        if not 0 < value <= 30:
            raise ValueError("must be longer than 0s and at most 30s (status() waits for it)")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        return None if value is None else userdata.check(value)

    @field_validator("user_data_file")
    @classmethod
    def _user_data_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("user_data") is not None:
            raise ValueError("give either user_data or user_data_file, not both")
        return userdata.checked_file(value, (info.context or {}).get("base"), None)

    @model_validator(mode="after")
    def _ports(self) -> LocalConfig:
        low, high = self.port_range
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"port_range must be [low, high] with 1 <= low <= high <= 65535, got {self.port_range}")
        self._template = userdata.template_of(self.user_data, self.user_data_file)
        return self

    @property
    def template(self) -> str | None:
        """The user data template (``user_data``, or the text of ``user_data_file`` as read at load)."""
        return self._template

    def user_data_report(self) -> userdata.Report | None:
        """What ``check`` prints about the user data (format, size, warnings; no cloud limit)."""
        return userdata.report(self._template, self.user_data_file, None)
