"""The ``alertmanager:`` section as alertscaler reads it: the generated route and receiver
(``prometheus_side.AlertmanagerRoute``) plus where alertscaler itself asks Alertmanager's API v2 (``url``, bearer
token, TLS, timeout, how often believed-firing alerts are reconciled); and a group's ``silences:`` setting (respect
silences; fail open or closed, per direction, when Alertmanager cannot be asked). Part of ``config``.

Read by ``service.build_engine`` (``alertmanager.client.AlertmanagerClient.from_config``), ``act.silencing`` and
``alertscaler check`` (a note when no ``url`` is set: no silence check).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from alertscaler.config.prometheus_side import AlertmanagerRoute
from alertscaler.config.sections import checked_verify
from alertscaler.model.durations import Duration
from alertscaler.model.policies import Direction
from alertscaler.model.urls import http_url
from alertscaler.secrets import resolve_secret

DEFAULT_RECONCILE_INTERVAL = 60.0


class AlertmanagerSection(AlertmanagerRoute):
    """``alertmanager:``. Without ``url`` alertscaler never asks Alertmanager: silences are not respected and
    believed-firing alerts are not reconciled (``check`` says so)."""

    url: str | None = None                      # http(s)://host[:port][/route-prefix] of Alertmanager's API v2
    bearer_token: SecretStr | None = None       # or bearer_token_env / bearer_token_file; basic auth: in the URL
    verify: bool | str = True                   # TLS: system CAs, false, or a CA bundle path
    timeout: Duration = 5.0                     # per request
    reconcile_interval: Duration = DEFAULT_RECONCILE_INTERVAL  # believed-firing alerts checked this often

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "bearer_token", (info.context or {}).get("base"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value, example="http://127.0.0.1:9093")

    @field_validator("verify")
    @classmethod
    def _ca_bundle(cls, value: bool | str) -> bool | str:
        return checked_verify(value)

    @field_validator("timeout", "reconcile_interval")
    @classmethod
    def _positive_api(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than 0s")
        return value


class OnUnreachable(str, Enum):
    """What a policy does when Alertmanager cannot be asked whether its alerts are silenced."""

    OPEN = "open"      # act as if nothing were silenced
    CLOSED = "closed"  # do not act: decided ``silence_unknown``, asked again at the next re-evaluation


class WhenUnreachable(BaseModel):
    """Per direction, and for heals; the defaults: adding capacity during an Alertmanager outage is the safe
    mistake, removing it is not, and neither is healing (replacing, rebooting) a member whose alert may be
    silenced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale_out: OnUnreachable = OnUnreachable.OPEN
    scale_in: OnUnreachable = OnUnreachable.CLOSED
    heal: OnUnreachable = OnUnreachable.CLOSED  # a heal signal from an alert (act.healing)

    def of(self, direction: Direction) -> OnUnreachable:
        return self.scale_out if direction is Direction.SCALE_OUT else self.scale_in


class SilencesConfig(BaseModel):
    """``groups.NAME.silences``: respect Alertmanager's silences and inhibitions (default, when
    ``alertmanager.url`` is set) for step policies and heal alerts, and fail open or closed per direction (and
    for heals) when it cannot be asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    respect: bool = True
    when_unreachable: WhenUnreachable = WhenUnreachable()
