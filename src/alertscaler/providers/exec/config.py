"""Configuration of the ``exec`` provider: ``ExecConfig`` and ``Argv`` (a command as an argv list, never a shell
string). Used by ``exec.provider`` (which re-exports both); the behaviour is documented there.

``HEAL_COMMANDS`` maps each heal action to the config key of its command: a group supports the heal actions whose
command is configured (``exec.heal_actions``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.model.durations import PositiveDuration
from alertscaler.providers.common import userdata
from alertscaler.providers.common.env import checked_env

#: the placeholders an exec group's user data may use: its command creates and names the instances itself
USER_DATA_PLACEHOLDERS = ("group",)
_WHY_NOT = ("the command creates and names the instances: it finds the user data rendered for the group in "
            "AS_USER_DATA_FILE and fills in each instance's own values")

#: heal action -> the ``ExecConfig`` key naming its command
HEAL_COMMANDS: dict[str, str] = {"replace": "heal_command", "reboot": "reboot_command",
                                 "quarantine": "quarantine_command"}


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
    timeout: PositiveDuration = 60.0
    max_concurrent: Annotated[int, Field(ge=1)] = 1
    status_command: Argv | None = None
    heal_command: Argv | None = None  # heal action "replace"
    reboot_command: Argv | None = None  # heal action "reboot"
    quarantine_command: Argv | None = None  # heal action "quarantine"
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    workdir: str | None = None
    temporary_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(default_factory=lambda: [75])
    #: cloud-init user data for the machines the command boots ({group} only), written to a file whose path the
    #: scale and heal commands get in AS_USER_DATA_FILE
    user_data: str | None = Field(default=None, repr=False)
    user_data_file: str | None = None  # the same, from a file read at load (relative to the policy file)

    _template: str | None = PrivateAttr(default=None)


    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return checked_env(value, lambda name: f"{name!r}: names starting with AMX_ or AS_ are set by alertscaler"
                           if name.startswith(("AMX_", "AS_")) else None)

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        return None if value is None else userdata.check(value, None, USER_DATA_PLACEHOLDERS, _WHY_NOT)

    @field_validator("user_data_file")
    @classmethod
    def _user_data_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("user_data") is not None:
            raise ValueError("give either user_data or user_data_file, not both")
        return userdata.checked_file(value, (info.context or {}).get("base"), None, USER_DATA_PLACEHOLDERS,
                                     _WHY_NOT)

    @model_validator(mode="after")
    def _read_user_data(self) -> ExecConfig:
        self._template = userdata.template_of(self.user_data, self.user_data_file)
        return self

    @property
    def template(self) -> str | None:
        """The user data template (``user_data``, or the text of ``user_data_file`` as read at load)."""
        return self._template

    def user_data_report(self) -> userdata.Report | None:
        """What ``check`` prints about the user data (format, size, warnings; no cloud limit)."""
        return userdata.report(self._template, self.user_data_file, None)
