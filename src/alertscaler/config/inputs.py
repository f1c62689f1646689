"""The policy file's ``inputs`` section: outside alarm services as signal sources, and signed URLs. Part of
``config``; read by ``act.signals`` (through ``PolicyFile.inputs``) and checked against the groups by
``config.loading`` (``input_references``).

.. code-block:: yaml

    inputs:
      signed_urls:
        secret_file: /etc/alertscaler/url-signing.secret  # or secret_env / secret; at least 32 characters
        default_expires: 30d                               # url create without --expires
        max_expires: 365d                                  # the longest a URL may live
      aodh:                     # POST /api/v1/inputs/aodh (token) or an input signed URL
        - {alarm: cpu_high, group: web, policy: scale_out}       # alarm: an alarm_name or alarm_id
        - {alarm: cpu_low, group: web, policy: scale_in}
      monasca:                  # POST /api/v1/inputs/monasca
        - {alarm: high-cpu, group: web, policy: scale_out}       # alarm_name, alarm_id or alarm_definition_id

Without a secret, the signing secret is a file alertscaler creates in ``server.state_dir`` (``url-signing.key``,
mode 0600) on first use; replicas sharing a PostgreSQL store must share a configured one instead. A
``secret_file`` readable by group or others is refused.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from alertscaler.config.groups import GroupConfig
from alertscaler.config.sections import ConfigModel
from alertscaler.model.durations import Duration, format_duration
from alertscaler.model.errors import Problem
from alertscaler.model.signals import SignalSource
from alertscaler.secrets import resolve_secret

MIN_SECRET = 32
MAX_EXPIRES_CAP = 3650 * 86400.0


class SignedUrlsConfig(ConfigModel):
    """``inputs.signed_urls``: the signing secret (every key is derived from it) and the URLs' lifetimes."""

    secret: SecretStr | None = None
    default_expires: Duration = 30 * 86400.0
    max_expires: Duration = 365 * 86400.0

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        base = (info.context or {}).get("base")
        if isinstance(data, dict) and data.get("secret_file") is not None:
            _private(Path(str(data["secret_file"])), base)
        return resolve_secret(data, "secret", base)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"too short: use at least {MIN_SECRET} characters (e.g. head -c 32 /dev/urandom | "
                             "base64 > FILE)")
        return value

    @field_validator("max_expires")
    @classmethod
    def _cap(cls, value: float) -> float:
        if not 3600 <= value <= MAX_EXPIRES_CAP:
            raise ValueError(f"must be between 1h and {format_duration(MAX_EXPIRES_CAP)}, got {format_duration(value)}")
        return value

    @model_validator(mode="after")
    def _default_within(self) -> SignedUrlsConfig:
        if not 0 < self.default_expires <= self.max_expires:
            raise ValueError(f"default_expires ({format_duration(self.default_expires)}) must be more than 0s and at "
                             f"most max_expires ({format_duration(self.max_expires)})")
        return self


def _private(file: Path, base: Any) -> None:
    """A secret file must be readable by its owner only (else anyone on the machine can sign URLs)."""
    path = file if base is None or file.is_absolute() else Path(base) / file
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # resolve_secret reports the unreadable file
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"secret_file: {path} is readable by group or others (mode {stat.filemode(mode)}): "
                         f"chmod 600 {path}")


class AlarmInput(ConfigModel):
    """One mapping: the alarm (by name or id) whose ALARM fires ``group``'s ``policy``."""

    alarm: Annotated[str, Field(min_length=1, max_length=255)]
    group: Annotated[str, Field(min_length=1)]
    policy: Literal["scale_out", "scale_in"]


class InputsConfig(ConfigModel):
    signed_urls: SignedUrlsConfig = SignedUrlsConfig()
    aodh: list[AlarmInput] = Field(default_factory=list)
    monasca: list[AlarmInput] = Field(default_factory=list)

    def mappings(self, source: SignalSource) -> list[AlarmInput]:
        if source is SignalSource.AODH:
            return list(self.aodh)
        if source is SignalSource.MONASCA:
            return list(self.monasca)
        return []

    def targets(self, source: SignalSource, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """The (group, policy) pairs the mappings of ``source`` give an alarm known by any of ``names``, in the
        file's order, each once."""
        out: list[tuple[str, str]] = []
        for m in self.mappings(source):
            if m.alarm in names and (m.group, m.policy) not in out:
                out.append((m.group, m.policy))
        return out


def input_references(inputs: Any, groups: dict[str, GroupConfig], names: list[str]) -> list[Problem]:
    """Each mapping must name a group of this file (``names``: every group's, loaded or not) that has the policy
    it names (checked on the groups that loaded)."""
    if not isinstance(inputs, InputsConfig):
        return []
    problems = []
    for source in (SignalSource.AODH, SignalSource.MONASCA):
        for i, m in enumerate(inputs.mappings(source)):
            where = f"inputs.{source.value}[{i}]"
            group = groups.get(m.group)
            if m.group not in names:
                known = ", ".join(sorted(names)) or "none defined"
                problems.append(Problem(f"{where}.group", f"no group {m.group!r} in this file (groups: {known})"))
            elif group is not None and getattr(group, m.policy) is None:
                problems.append(Problem(f"{where}.policy", f"group {m.group!r} has no {m.policy} policy"))
    return problems
