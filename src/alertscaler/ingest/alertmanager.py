"""Alertmanager webhook format version 4 → ``Notification``. Called by ``api`` (hot path) and ``act``.

Every rejection names the field that is wrong (``alerts[2].startsAt: not an RFC 3339 time``). ``parse_body``
accepts only what the store can keep (``ingest.jsonsafe``: no lone surrogate or NUL in any string, bounded
nesting and integers) and times it can compute with (``EARLIEST`` to ``LATEST`` in UTC): a webhook answered 200 can
always be recorded and decided, alone or in a batch with others.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from alertscaler.ingest import jsonsafe
from alertscaler.model.alerts import Alert, AlertStatus, Notification
from alertscaler.model.errors import InputError

_ZERO_TIME = "0001-01-01T00:00:00Z"
#: times outside [EARLIEST, LATEST) in UTC are refused: no alert is that old or that far ahead, and every later
#: computation with them (cooldowns, staleness, timings) stays in ``datetime``'s range
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_body(body: bytes) -> Notification:
    """Parse and validate a webhook body. Raises ``InputError`` (400 for bad JSON, 422 for bad fields)."""
    data = jsonsafe.loads(body)
    notification = parse_notification(data)
    try:
        return replace(notification, raw_text=body.decode("utf-8"))
    except UnicodeDecodeError:  # valid JSON in UTF-16/32: recorded re-encoded
        return notification


def parse_notification(data: Any) -> Notification:
    if not isinstance(data, dict):
        raise InputError("body must be a JSON object (Alertmanager webhook)", status_code=400)
    version = data.get("version")
    if version != "4":
        raise InputError(f"unsupported webhook version {version!r}; alertscaler accepts version \"4\"",
                         field="version")
    receiver = _str(data, "receiver")
    status = _status(data.get("status"), "status")
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list):
        raise InputError("required: a list of alerts", field="alerts")
    alerts = tuple(_alert(a, f"alerts[{i}]") for i, a in enumerate(raw_alerts))
    truncated = data.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or not 0 <= truncated < 2**63:
        raise InputError("must be a non-negative integer", field="truncatedAlerts")
    return Notification(
        receiver=receiver,
        status=status,
        alerts=alerts,
        group_labels=_labels(data.get("groupLabels", {}), "groupLabels"),
        common_labels=_labels(data.get("commonLabels", {}), "commonLabels"),
        common_annotations=_labels(data.get("commonAnnotations", {}), "commonAnnotations"),
        external_url=_str(data, "externalURL", required=False),
        group_key=_str(data, "groupKey"),
        truncated_alerts=truncated,
        raw=data,
    )


def _alert(data: Any, where: str) -> Alert:
    if not isinstance(data, dict):
        raise InputError("must be an object", field=where)
    labels = _labels(data.get("labels"), f"{where}.labels", required=True)
    fingerprint = data.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise InputError("required: a non-empty string", field=f"{where}.fingerprint")
    starts = _time(data.get("startsAt"), f"{where}.startsAt")
    if starts is None:
        raise InputError("required: an RFC 3339 time", field=f"{where}.startsAt")
    generator_url = data.get("generatorURL")
    return Alert(
        status=_status(data.get("status"), f"{where}.status"),
        labels=labels,
        annotations=_labels(data.get("annotations", {}), f"{where}.annotations"),
        starts_at=starts,
        ends_at=_time(data.get("endsAt"), f"{where}.endsAt"),
        generator_url=generator_url if isinstance(generator_url, str) else "",
        fingerprint=fingerprint,
    )


def _str(data: dict[str, Any], key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError("required: a string", field=key)
    return value


def _status(value: Any, where: str) -> AlertStatus:
    try:
        return AlertStatus(value)
    except ValueError:
        raise InputError(f"must be \"firing\" or \"resolved\", got {value!r}", field=where) from None


def _labels(value: Any, where: str, required: bool = False) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InputError("must be an object of string values", field=where)
    for k, v in value.items():
        if not isinstance(v, str):
            raise InputError("must be a string", field=f"{where}.{k}")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value is None or value == "" or value == _ZERO_TIME:
        return None
    if not isinstance(value, str):
        raise InputError("must be an RFC 3339 time string", field=where)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an RFC 3339 time: {value!r}", field=where) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None
    return in_range(parsed, value, where)


def in_range(parsed: datetime, value: str, where: str) -> datetime:
    """``parsed`` (aware) in UTC, or ``InputError`` when that is outside [``EARLIEST``, ``LATEST``)."""
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InputError(f"out of range: {value!r} (from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} UTC)",
                         field=where)
    return utc
