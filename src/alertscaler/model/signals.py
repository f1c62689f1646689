"""Outside signals as values: a signed URL's POST, an Aodh alarm action, a Monasca webhook notification, each
reduced to what alertscaler decides on (``Signal``): which alarm, in which state, and the key that recognises a
retry. Parsed by ``ingest.openstack`` (the bodies) and ``act.signals`` (the request); decided by ``act.signals``.

State mapping: Aodh ``alarm`` / Monasca ``ALARM`` → ``ALARM`` (the policy's alert fires: one step); Aodh ``ok`` /
Monasca ``OK`` → ``OK`` (resolved: recorded, no action); Aodh ``insufficient data`` / Monasca ``UNDETERMINED`` →
``INSUFFICIENT_DATA`` (recorded, no action). A signed URL posted without an alarm body fires, as Heat's
``alarm_url`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class SignalSource(str, Enum):
    URL = "url"          # a signed URL's POST without an alarm body (a script, a tool, curl)
    AODH = "aodh"        # Aodh's REST notifier body
    MONASCA = "monasca"  # monasca-notification's webhook body


class AlarmState(str, Enum):
    ALARM = "alarm"
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Signal:
    """One outside signal. ``names``: what the ``inputs`` mappings may name it by (alarm name, alarm id, Monasca's
    alarm definition id); ``key``: what recognises a retry of the same signal (None: nothing does, every POST
    counts); ``labels`` / ``annotations``: kept with the decision as its alert (and handed to a provider)."""

    source: SignalSource
    state: AlarmState
    alarm: str = ""
    names: tuple[str, ...] = ()
    key: str | None = None
    reason: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def summary(self, now: datetime) -> dict[str, Any]:
        """The signal as a decision keeps an alert (``act.recording.summary``'s shape)."""
        status = {AlarmState.ALARM: "firing", AlarmState.OK: "resolved"}.get(self.state, self.state.value)
        return {"status": status, "labels": dict(self.labels), "annotations": dict(self.annotations),
                "startsAt": now.isoformat(), "endsAt": None, "generatorURL": "",
                "fingerprint": self.names[0] if self.names else self.source.value}

    def described(self) -> str:
        """``aodh alarm cpu_high (alarm)``, ``a signed URL's POST``: for messages."""
        if self.source is SignalSource.URL and not self.alarm:
            return "a signed URL's POST"
        return f"{self.source.value} alarm {self.alarm!r} ({self.state.value})"
