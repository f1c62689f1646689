"""Real-shaped Alertmanager webhook bodies for tests (format version 4, as Alertmanager 0.25 sends them)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any


def alert(name: str, status: str = "firing", starts: datetime | None = None, **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, **labels}
    fingerprint = hashlib.sha256(repr(sorted(all_labels.items())).encode()).hexdigest()[:16]
    starts = starts or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} test alert"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else starts.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def body(*alerts: dict[str, Any], receiver: str = "alertscaler", status: str | None = None) -> dict[str, Any]:
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    group_labels = {"alertname": common.get("alertname", "")}
    return {
        "receiver": receiver,
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "alerts": list(alerts),
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:19093",
        "version": "4",
        "groupKey": '{}:{alertname="' + group_labels["alertname"] + '"}',
        "truncatedAlerts": 0,
    }
