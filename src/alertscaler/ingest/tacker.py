"""Tacker's Prometheus-plugin alerts: which labels each of its five endpoints takes, checked alert by alert.
Pure; called by ``api.tacker`` after ``ingest.alertmanager`` has parsed the webhook.

The facts are Tacker's (``sr/api/schemas/prometheus_plugin_schemas.py`` and each ``PrometheusPlugin*._alert``):
every alert carries ``receiver_type: tacker`` and the endpoint's ``function_type``; ``/pm_event`` and
``/pm_threshold`` need ``object_instance_id`` and ``metric`` (with ``job_id`` / ``threshold_id``) and an
``annotations.value``; ``/alert`` needs ``vnf_instance_id``, ``pod``, a ``perceived_severity`` of ETSI's six and
``event_type``; ``/alert/auto_scaling`` needs ``vnf_instance_id``, ``aspect_id`` and ``auto_scale_type``
(``SCALE_OUT`` | ``SCALE_IN``); ``/alert/auto_healing`` needs ``vnf_instance_id`` and ``vnfc_info_id``.
Where Tacker logs and swallows a bad alert (its answer is always 204), ``check`` raises ``InputError`` (422)
naming the alert and the label, so the sender sees the mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from alertscaler.model.alerts import Notification
from alertscaler.model.errors import InputError


class Endpoint(str, Enum):
    """A Tacker endpoint, by the ``function_type`` its alerts carry."""

    PM_EVENT = "vnfpm"
    PM_THRESHOLD = "vnfpm_threshold"
    FM = "vnffm"
    AUTO_SCALE = "auto_scale"
    AUTO_HEAL = "auto_heal"


@dataclass(frozen=True)
class Shape:
    path: str
    labels: tuple[str, ...]         # required labels besides receiver_type and function_type
    value_annotation: bool = False  # annotations.value required (PM)
    built: bool = False             # alertscaler acts on it (else: recorded and routed by group matchers only)
    missing: str = ""               # what is not built yet


SHAPES: dict[Endpoint, Shape] = {
    Endpoint.PM_EVENT: Shape("/pm_event", ("job_id", "object_instance_id", "metric"), value_annotation=True,
                             missing="PM jobs (/vnfpm/v2/pm_jobs), PM reports and their notifications"),
    Endpoint.PM_THRESHOLD: Shape("/pm_threshold", ("threshold_id", "object_instance_id", "metric"),
                                 value_annotation=True,
                                 missing="PM thresholds (/vnfpm/v2/thresholds), crossing state and "
                                         "ThresholdCrossedNotification"),
    Endpoint.FM: Shape("/alert", ("vnf_instance_id", "pod", "perceived_severity"),
                       missing="FM alarms (/vnffm/v1/alarms), subscriptions and AlarmNotification"),
    Endpoint.AUTO_SCALE: Shape("/alert/auto_scaling", ("vnf_instance_id", "auto_scale_type", "aspect_id"),
                               built=True),
    Endpoint.AUTO_HEAL: Shape("/alert/auto_healing", ("vnf_instance_id", "vnfc_info_id"), built=True),
}

SCALE_TYPES = ("SCALE_OUT", "SCALE_IN")
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE", "CLEARED")
EVENT_TYPES = ("COMMUNICATIONS_ALARM", "PROCESSING_ERROR_ALARM", "ENVIRONMENTAL_ALARM", "QOS_ALARM",
               "EQUIPMENT_ALARM")
MAX_ID = 255


def check(notification: Notification, endpoint: Endpoint) -> None:
    """Every alert of ``notification`` has what ``endpoint`` needs; else ``InputError`` (422) naming it."""
    shape = SHAPES[endpoint]
    if not notification.alerts:
        raise InputError("required: at least one alert", field="alerts")
    for i, alert in enumerate(notification.alerts):
        where = f"alerts[{i}].labels"
        labels = alert.labels
        if labels.get("receiver_type") != "tacker":
            raise InputError(f"must be \"tacker\", got {_shown(labels.get('receiver_type'))}",
                             field=f"{where}.receiver_type")
        function_type = labels.get("function_type")
        if function_type != endpoint.value:
            other = next((e for e in Endpoint if e.value == function_type), None)
            hint = f" (a {function_type} alert goes to {SHAPES[other].path})" if other is not None else ""
            raise InputError(f"must be \"{endpoint.value}\" on {shape.path}, got {_shown(function_type)}{hint}",
                             field=f"{where}.function_type")
        for name in shape.labels:
            value = labels.get(name)
            if not value:
                raise InputError("required: a non-empty string", field=f"{where}.{name}")
            if len(value) > MAX_ID:
                raise InputError(f"must be at most {MAX_ID} characters", field=f"{where}.{name}")
        if endpoint is Endpoint.AUTO_SCALE and labels["auto_scale_type"] not in SCALE_TYPES:
            raise InputError(f"must be one of {', '.join(SCALE_TYPES)}, got {_shown(labels['auto_scale_type'])}",
                             field=f"{where}.auto_scale_type")
        if endpoint is Endpoint.FM:
            if labels["perceived_severity"] not in SEVERITIES:
                raise InputError(f"must be one of {', '.join(SEVERITIES)}, got "
                                 f"{_shown(labels['perceived_severity'])}", field=f"{where}.perceived_severity")
            event_type = labels.get("event_type")
            if event_type is not None and event_type not in EVENT_TYPES:
                raise InputError(f"must be one of {', '.join(EVENT_TYPES)}, got {_shown(event_type)}",
                                 field=f"{where}.event_type")
        if shape.value_annotation and not alert.annotations.get("value"):
            raise InputError("required: the metric's value (\"{{ $value }}\")", field=f"alerts[{i}].annotations.value")


def _shown(value: str | None) -> str:
    return "nothing" if value is None else repr(value[:60])
