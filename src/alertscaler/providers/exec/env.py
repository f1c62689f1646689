"""Environments of ``exec`` commands: the variables prometheus-am-executor sets for a notification
(``amx_environment``), the Alertmanager-shaped body used when a decision has none (``synthetic_notification``),
and the variables of a heal command (``heal_environment``). Pure functions; used by ``exec.provider`` (which re-exports
the first two).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alertscaler.providers.base import ScaleRequest

_ENV_SAFE = re.compile(r"[A-Za-z0-9_]*")
_ENV_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_]")
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MISSING = object()
#: Linux refuses to start a program with one environment string over 128 KiB (MAX_ARG_STRLEN) or with too much
#: environment in all ("Argument list too long"): values are cut to VALUE_LIMIT bytes and, over TOTAL_LIMIT bytes
#: in all, the per-alert variables of the last alerts are left out. The full notification is always on stdin.
VALUE_LIMIT = 32 * 1024
TOTAL_LIMIT = 1024 * 1024
_ALERT_VAR = re.compile(r"AMX_ALERT_(\d+)_")


def amx_environment(notification: Mapping[str, Any], request: ScaleRequest) -> dict[str, str]:
    """The variables prometheus-am-executor sets for ``notification``, plus alertscaler's ``AS_*``.

    As in am-executor (``amDataToEnv`` in its ``server.go``): ``AMX_RECEIVER``, ``AMX_STATUS``,
    ``AMX_EXTERNAL_URL``, ``AMX_ALERT_LEN``; ``AMX_LABEL_<k>`` (common labels), ``AMX_GLABEL_<k>`` (group
    labels), ``AMX_ANNOTATION_<k>`` (common annotations); per alert, numbered from 1,
    ``AMX_ALERT_<n>_{STATUS,START,END,URL,FINGERPRINT}`` and ``AMX_ALERT_<n>_{LABEL,ANNOTATION}_<k>``.
    ``START``/``END`` are whole seconds since the epoch (floored), ``0`` for Go's zero time
    ``0001-01-01T00:00:00Z`` (what Alertmanager sends as ``endsAt`` of a firing alert) — and here also for
    a missing or unparsable time. Missing strings are empty. Names and values are case-preserved.

    Differences, only where am-executor would produce something unusable: a name ``<k>`` with characters
    outside ``[A-Za-z0-9_]`` (possible with UTF-8 label names) has each such character replaced by ``_``;
    if that collides with another name of the same set, the name that needed no change wins, then the
    first in sorted order. NUL characters (impossible in an environment) are dropped from values, and
    unpaired surrogates become ``?``. Values are otherwise byte-for-byte: they are data, never shell code.
    """
    env: dict[str, str] = {
        "AMX_RECEIVER": _text(notification.get("receiver")),
        "AMX_STATUS": _text(notification.get("status")),
        "AMX_EXTERNAL_URL": _text(notification.get("externalURL")),
    }
    raw_alerts = notification.get("alerts")
    alerts: list[Any] = raw_alerts if isinstance(raw_alerts, list) else []
    env["AMX_ALERT_LEN"] = str(len(alerts))
    _put_pairs(env, "AMX_LABEL_", notification.get("commonLabels"))
    _put_pairs(env, "AMX_GLABEL_", notification.get("groupLabels"))
    _put_pairs(env, "AMX_ANNOTATION_", notification.get("commonAnnotations"))
    for n, raw in enumerate(alerts, start=1):
        alert: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        key = f"AMX_ALERT_{n}"
        env[f"{key}_STATUS"] = _text(alert.get("status"))
        env[f"{key}_START"] = _epoch(alert.get("startsAt"))
        env[f"{key}_END"] = _epoch(alert.get("endsAt"))
        env[f"{key}_URL"] = _text(alert.get("generatorURL"))
        env[f"{key}_FINGERPRINT"] = _text(alert.get("fingerprint"))
        _put_pairs(env, f"{key}_LABEL_", alert.get("labels"))
        _put_pairs(env, f"{key}_ANNOTATION_", alert.get("annotations"))
    env.update(
        AS_GROUP=clean(request.group),
        AS_FROM=str(request.from_capacity),
        AS_TO=str(request.desired),
        AS_ACTION_ID=str(request.action_id),
        AS_DECISION_ID=str(request.decision_id),
    )
    return fitted(env)


def fitted(env: dict[str, str]) -> dict[str, str]:
    """``env`` cut so that the kernel accepts it (see ``VALUE_LIMIT``, ``TOTAL_LIMIT``); ``AS_ENV_TRUNCATED``
    then says what was cut (``values`` and/or ``alerts>N``: variables of alerts after the N-th left out)."""
    cut: list[str] = []
    out: dict[str, str] = {}
    for name, value in env.items():
        raw = value.encode("utf-8")
        if len(raw) > VALUE_LIMIT:
            value = raw[:VALUE_LIMIT].decode("utf-8", "ignore")
            if "values" not in cut:
                cut.append("values")
        out[name] = value
    size = sum(len(k) + len(v.encode("utf-8")) + 2 for k, v in out.items())
    if size > TOTAL_LIMIT:
        by_alert: dict[int, list[str]] = {}
        for name in out:
            if match := _ALERT_VAR.match(name):
                by_alert.setdefault(int(match.group(1)), []).append(name)
        kept = max(by_alert, default=0)
        for n in sorted(by_alert, reverse=True):
            if size <= TOTAL_LIMIT:
                break
            for name in by_alert[n]:
                size -= len(name) + len(out.pop(name).encode("utf-8")) + 2
            kept = n - 1
        cut.append(f"alerts>{kept}")
    if cut:
        out["AS_ENV_TRUNCATED"] = ",".join(cut)
    return out


def synthetic_notification(request: ScaleRequest) -> dict[str, Any]:
    """The body written to stdin (and turned into ``AMX_*``) when a decision has no notification.

    Shaped like an Alertmanager webhook (version 4): receiver ``alertscaler``, the request's alerts, status
    ``resolved`` only when there are alerts and all are resolved, common labels/annotations computed as
    Alertmanager does (the pairs every alert shares), empty group labels, external URL and group key.
    """
    alerts = [a for a in request.alerts if isinstance(a, Mapping)]
    resolved = bool(alerts) and all(a.get("status") == "resolved" for a in alerts)
    return {
        "version": "4",
        "receiver": "alertscaler",
        "status": "resolved" if resolved else "firing",
        "alerts": list(request.alerts),
        "groupLabels": {},
        "commonLabels": _common(alerts, "labels"),
        "commonAnnotations": _common(alerts, "annotations"),
        "externalURL": "",
        "groupKey": "",
        "truncatedAlerts": 0,
    }


def _common(alerts: Sequence[Mapping[str, Any]], field: str) -> dict[str, Any]:
    if not alerts:
        return {}
    maps: list[Mapping[str, Any]] = [a[field] if isinstance(a.get(field), Mapping) else {} for a in alerts]
    return {k: v for k, v in maps[0].items() if all(m.get(k, _MISSING) == v for m in maps[1:])}


def clean(value: str) -> str:
    """``value`` as an environment value can hold it: NUL characters dropped, unpaired surrogates ``?``."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return clean(value if isinstance(value, str) else json.dumps(value))


def _epoch(value: Any) -> str:
    if not isinstance(value, str):
        return "0"
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment == _GO_ZERO_TIME:
            return "0"
        return str((moment - _EPOCH) // timedelta(seconds=1))
    except (ValueError, OverflowError):
        return "0"


def _put_pairs(env: dict[str, str], prefix: str, pairs: Any) -> None:
    if not isinstance(pairs, Mapping):
        return
    names = [str(k) for k in pairs]
    exact = [k for k in names if _ENV_SAFE.fullmatch(k)]
    changed = sorted(k for k in names if not _ENV_SAFE.fullmatch(k))
    taken: set[str] = set()
    for name in exact + changed:
        key = prefix + _ENV_UNSAFE_CHAR.sub("_", name)
        if key in taken:
            continue
        taken.add(key)
        env[key] = _text(pairs[name])


def heal_environment(group: str, member_id: str, address: str | None, action: str) -> dict[str, str]:
    """The variables of a heal command: ``AS_GROUP``, ``AS_MEMBER`` (the member's id), ``AS_MEMBER_ADDRESS``
    (only when the address is known) and ``AS_HEAL_ACTION`` (``replace``, ``reboot`` or ``quarantine``). Values
    are data, passed verbatim (NUL characters, impossible in an environment, are dropped)."""
    env = {"AS_GROUP": clean(group), "AS_MEMBER": clean(member_id), "AS_HEAL_ACTION": action}
    if address is not None:
        env["AS_MEMBER_ADDRESS"] = clean(address)
    return env
