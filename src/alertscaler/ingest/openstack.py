"""OpenStack alarm bodies → ``model.signals.Signal``: Aodh's REST notifier (``aodh/notifier/rest.py``: alarm_name,
alarm_id, severity, previous, current, reason, reason_data) and monasca-notification's webhook (``plugins/
webhook_notifier.py``: alarm_id, alarm_definition_id, alarm_name, alarm_description, alarm_timestamp, state,
old_state, message, tenant_id, metrics), and whatever a signed URL is posted (``signed_body``: nothing, Heat-style
details, or one of the two). Called by ``act.signals``; the bodies are parsed by ``ingest.jsonsafe`` first.

Every refusal is an ``InputError`` (422) naming the field. States are read case-insensitively (Aodh writes
``alarm``, Monasca ``ALARM``); see ``model.signals`` for what each maps to.
"""

from __future__ import annotations

from typing import Any

from alertscaler.model.errors import InputError
from alertscaler.model.signals import AlarmState, Signal, SignalSource

MAX_NAME = 255     # Monasca's limit on a name; Aodh's names are shorter
MAX_TEXT = 500     # characters of a reason / message kept with a decision
MAX_METRICS = 20   # Monasca metrics kept (as text) with a decision

_STATES = {
    "alarm": AlarmState.ALARM,
    "ok": AlarmState.OK,
    "insufficient data": AlarmState.INSUFFICIENT_DATA,
    "insufficient_data": AlarmState.INSUFFICIENT_DATA,
    "undetermined": AlarmState.INSUFFICIENT_DATA,
}
_AODH_STATES = "alarm, ok, insufficient data"
_MONASCA_STATES = "ALARM, OK, UNDETERMINED"


def parse_aodh(data: Any) -> Signal:
    """An Aodh alarm action's body. Required: alarm_name, alarm_id, current; the rest is optional."""
    if not isinstance(data, dict):
        raise InputError("must be a JSON object: the body Aodh's REST notifier sends (alarm_name, alarm_id, "
                         "current, ...)", status_code=422)
    name = _name(data, "alarm_name")
    alarm_id = _name(data, "alarm_id")
    state = _state(data, "current", _AODH_STATES)
    previous = _opt_str(data, "previous")
    severity = _opt_str(data, "severity")
    reason = _opt_str(data, "reason")
    reason_data = data.get("reason_data")
    if reason_data is not None and not isinstance(reason_data, dict):
        raise InputError("must be an object", field="reason_data")
    labels = {"alertname": name, "alarm_id": alarm_id, "source": SignalSource.AODH.value}
    if severity:
        labels["severity"] = severity[:MAX_NAME]
    annotations = {"reason": reason[:MAX_TEXT]} if reason else {}
    if previous:
        annotations["previous"] = previous[:MAX_NAME]
    return Signal(SignalSource.AODH, state, alarm=name, names=(name, alarm_id), reason=reason[:MAX_TEXT],
                  labels=labels, annotations=annotations)


def parse_monasca(data: Any) -> Signal:
    """A Monasca webhook notification's body. Required: alarm_id, alarm_definition_id, alarm_name, state. A
    retry of the same transition (same alarm_id, alarm_timestamp and state) is recognised by its ``key``."""
    if not isinstance(data, dict):
        raise InputError("must be a JSON object: the body of a Monasca webhook notification (alarm_id, "
                         "alarm_definition_id, alarm_name, state, ...)", status_code=422)
    alarm_id = _name(data, "alarm_id")
    definition_id = _name(data, "alarm_definition_id")
    name = _name(data, "alarm_name")
    state = _state(data, "state", _MONASCA_STATES)
    old_state = _opt_str(data, "old_state")
    message = _opt_str(data, "message")
    for optional in ("alarm_description", "tenant_id"):
        _opt_str(data, optional)
    timestamp = data.get("alarm_timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int | float)):
        raise InputError("must be a number (seconds since the epoch)", field="alarm_timestamp")
    metrics = _metrics(data.get("metrics"))
    labels = {"alertname": name, "alarm_id": alarm_id, "alarm_definition_id": definition_id,
              "source": SignalSource.MONASCA.value}
    annotations = {"reason": message[:MAX_TEXT]} if message else {}
    if old_state:
        annotations["previous"] = old_state[:MAX_NAME]
    if metrics:
        annotations["metrics"] = ", ".join(metrics)
    key = f"monasca:{alarm_id}:{timestamp}:{state.value}" if timestamp is not None else None
    return Signal(SignalSource.MONASCA, state, alarm=name, names=(name, alarm_id, definition_id), key=key,
                  reason=message[:MAX_TEXT], labels=labels, annotations=annotations)


def signed_body(data: Any) -> Signal:
    """What a POST to a group's signed URL says: nothing (``None``: the policy's alert fires, as Heat's
    ``alarm_url`` does), an Aodh body, a Monasca body, or Heat-style details whose ``current`` (or ``state``)
    gives the state (absent: alarm)."""
    if data is None:
        return Signal(SignalSource.URL, AlarmState.ALARM, labels={"source": SignalSource.URL.value})
    if not isinstance(data, dict):
        raise InputError("must be empty or a JSON object (an Aodh or Monasca alarm body, or details)")
    if "alarm_definition_id" in data:
        return parse_monasca(data)
    if "current" in data and ("alarm_id" in data or "alarm_name" in data):
        return parse_aodh(data)
    for key in ("current", "state"):
        if key in data:
            state = _state(data, key, _AODH_STATES)
            return Signal(SignalSource.URL, state, labels={"source": SignalSource.URL.value})
    return Signal(SignalSource.URL, AlarmState.ALARM, labels={"source": SignalSource.URL.value})


def _name(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise InputError("required", field=key)
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", field=key)
    if len(value) > MAX_NAME:
        raise InputError(f"must be at most {MAX_NAME} characters", field=key)
    return value


def _opt_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError("must be a string", field=key)
    return value


def _state(data: dict[str, Any], key: str, allowed: str) -> AlarmState:
    value = data.get(key)
    if value is None:
        raise InputError(f"required: one of {allowed}", field=key)
    state = _STATES.get(value.strip().lower()) if isinstance(value, str) else None
    if state is None:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise InputError(f"must be one of {allowed}, got {shown}", field=key)
    return state


def _metrics(value: Any) -> list[str]:
    """Monasca's metrics as ``name{k=v,...}`` texts (at most ``MAX_METRICS``); each must be {name, dimensions}."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError("must be a list of {name, dimensions}", field="metrics")
    out = []
    for i, metric in enumerate(value):
        where = f"metrics[{i}]"
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise InputError("must be an object with a name (and dimensions)", field=where)
        dims = metric.get("dimensions") or {}
        if not isinstance(dims, dict) or not all(isinstance(v, str) for v in dims.values()):
            raise InputError("must be an object of strings", field=f"{where}.dimensions")
        if i < MAX_METRICS:
            inner = ",".join(f"{k}={v}" for k, v in sorted(dims.items()))
            out.append(f"{metric['name']}{{{inner}}}"[:MAX_NAME])
    return out
