"""The OpenAPI description of ``api.alarms``' routes (alarms and their history), merged into the document by
``api.openapi.spec``: their schemas (``SCHEMAS``) and paths (``paths``, built with the document's ``op``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alertscaler.model.alarms import AlarmState, Style

Op = Callable[..., dict[str, Any]]
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_STATE = {"type": "string", "enum": [s.value for s in AlarmState]}
_SHOWN = {"type": "string", "description": "the state as the alarm's system names it: Aodh's ok, alarm, "
                                           "insufficient data; Monasca's OK, ALARM, UNDETERMINED"}
_DIMENSIONS = {"type": "object", "additionalProperties": {"type": "string"},
               "description": "the match_by dimensions' values ({} without match_by)"}
_ACTIONS = {"type": "array", "items": {"type": "string"}, "example": ["scale web scale_out", "log"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS: dict[str, Any] = {
    "AlarmStatus": {
        "type": "object",
        "required": ["dimensions", "state", "shown", "since", "updated_at", "reason", "firing"],
        "properties": {
            "dimensions": _DIMENSIONS, "state": _STATE, "shown": _SHOWN,
            "since": {**_NULLABLE_TIME, "description": "entered the state (null: initial, no alert yet)"},
            "updated_at": {**_NULLABLE_TIME, "description": "the last alert about it"},
            "reason": {"type": "string"},
            "firing": {"type": "array", "items": {"type": "string"}, "description": "fingerprints of its alerts "
                                                                                     "firing now"},
        },
    },
    "Alarm": {
        "type": "object",
        "description": "An alarm of the policy file's alarms section, with its state per dimension set.",
        "required": ["id", "name", "style", "severity", "enabled", "condition", "deterministic", "match_by",
                     "actions", "repeat_actions", "state", "shown", "states"],
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "style": {"type": "string", "enum": [s.value for s in Style],
                      "description": "aodh (a threshold alarm) or monasca (an expression)"},
            "description": {"type": "string"}, "severity": {"type": "string"}, "enabled": {"type": "boolean"},
            "condition": {"type": "string", "example": "avg(cpu_util{resource_id=VM_ID}, 600) > 70 times 3"},
            "deterministic": {"type": "boolean", "description": "no data is OK (no missing-data state)"},
            "match_by": {"type": "array", "items": {"type": "string"}},
            "group": {"type": "string", "nullable": True},
            "actions": {"type": "object", "properties": {"alarm": _ACTIONS, "ok": _ACTIONS,
                                                         "insufficient_data": _ACTIONS}},
            "repeat_actions": {"type": "boolean"},
            "state": {**_STATE, "description": "alarm if any dimension set is, else insufficient_data if any is, "
                                               "else ok"},
            "shown": _SHOWN,
            "states": {"type": "array", "items": _ref("AlarmStatus")},
        },
    },
    "AlarmTransition": {
        "type": "object",
        "required": ["id", "alarm", "dimensions", "old", "new", "old_shown", "new_shown", "at", "recorded_at",
                     "reason", "actions"],
        "properties": {
            "id": {"type": "integer"}, "alarm": {"type": "string"}, "dimensions": _DIMENSIONS,
            "old": _STATE, "new": _STATE, "old_shown": _SHOWN, "new_shown": _SHOWN,
            "at": {**_TIME, "description": "when the state changed (the alert's start or end)"},
            "recorded_at": {**_TIME, "description": "when alertscaler recorded it"},
            "reason": {"type": "string", "example": "Transition to alarm due to avg(cpu_util) > 70 is true"},
            "actions": {**_ACTIONS, "description": "the actions due for the new state"},
            "notification_id": {"type": "integer", "nullable": True,
                                "description": "the Alertmanager notification it came in"},
        },
    },
}


def paths(op: Op, store_down: dict[str, Any], invalid: dict[str, Any], limit: dict[str, Any]) -> dict[str, Any]:
    """The paths of ``api.alarms``' routes, built with the document's ``op``."""
    return {
        "/api/v1/alarms": {"get": op(
            "Every alarm of the policy file with its state (OK, ALARM, INSUFFICIENT_DATA) per dimension set",
            description="States are derived from the alerts of the alarms' generated rules: firing is ALARM, "
                        "resolved is OK, the missing-data rule firing is INSUFFICIENT_DATA (Monasca: UNDETERMINED).",
            parameters=[{"name": "state", "in": "query", "schema": {"type": "string"},
                         "description": "only alarms in this state: ok, alarm, insufficient_data (or Aodh's / "
                                        "Monasca's name)"}],
            responses={"200": _json({"type": "array", "items": _ref("Alarm")}, "the alarms"), "422": invalid,
                       "503": store_down})},
        "/api/v1/alarms/{id}/history": {"get": op(
            "An alarm's state transitions, newest first, with the actions due on each",
            parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                         "description": "the alarm's name in the policy file"}, limit],
            responses={"200": _json({"type": "array", "items": _ref("AlarmTransition")}, "the transitions"),
                       "404": _json(_ref("Error"), "no such alarm"), "422": invalid, "503": store_down})},
    }
