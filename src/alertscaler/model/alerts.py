"""Alertmanager notifications and alerts as values (webhook format version 4).

Parsing and validating the HTTP body is ``ingest.alertmanager``'s job; these are what it produces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class AlertStatus(str, Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def firing(self) -> bool:
        return self.status is AlertStatus.FIRING

    def dedup_key(self, receiver: str, group_key: str) -> str:
        """Identity of this alert event: an Alertmanager retry or an HA peer's copy has the same key."""
        raw = "\x1f".join(
            (receiver, group_key, self.fingerprint, self.status.value, self.starts_at.isoformat())
        )
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Notification:
    """One webhook call from Alertmanager. ``raw`` is the JSON body as received (for exec's stdin); ``raw_text``
    its text, kept so that recording it needs no re-encoding."""

    receiver: str
    status: AlertStatus
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    group_key: str
    truncated_alerts: int
    raw: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)
    raw_text: str | None = field(compare=False, repr=False, default=None)  # ``raw`` as received, when UTF-8

    def dedup_keys(self) -> list[str]:
        return [a.dedup_key(self.receiver, self.group_key) for a in self.alerts]
