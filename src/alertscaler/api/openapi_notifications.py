"""The OpenAPI description of ``api.notifications``' routes (the notification outbox), merged into the document by
``api.openapi.spec``: their schemas (``SCHEMAS``) and paths (``paths``, built with the document's ``op``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alertscaler.model.notifications import DeliveryStatus, MethodKind

Op = Callable[..., dict[str, Any]]
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_STATES = ["ok", "alarm", "insufficient_data"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS: dict[str, Any] = {
    "NotificationAttempt": {
        "type": "object",
        "required": ["attempt", "at", "replica", "ok", "status", "detail", "duration_ms"],
        "properties": {
            "attempt": {"type": "integer", "minimum": 1}, "at": _TIME,
            "replica": {"type": "string", "description": "the replica that made it"},
            "ok": {"type": "boolean"},
            "status": {"type": "string", "example": "HTTP 503",
                       "description": "HTTP <code>, SMTP <code>, logged, or error (no answer)"},
            "detail": {"type": "string", "description": "the reply's or the error's text (never a secret)"},
            "duration_ms": {"type": "integer"},
        },
    },
    "Notification": {
        "type": "object",
        "description": "A notification of an alarm transition (a notify:METHOD or URL action), from the outbox.",
        "required": ["id", "uid", "method", "kind", "target", "alarm", "status", "attempts", "max_attempts",
                     "created_at", "transition", "attempt_history"],
        "properties": {
            "id": {"type": "integer"},
            "uid": {"type": "string", "description": "stable id, sent with every attempt (X-Alertscaler-Notification-"
                                                     "Id, the email's Message-ID): receivers de-duplicate on it"},
            "method": {"type": "string", "description": "the notification method's name; url for a URL action"},
            "kind": {"type": "string", "enum": [k.value for k in MethodKind]},
            "target": {"type": "string", "description": "the method's name, or the URL without credentials and "
                                                        "query"},
            "alarm": {"type": "string", "nullable": True}, "group": {"type": "string", "nullable": True},
            "dimensions": {"type": "object", "additionalProperties": {"type": "string"}},
            "transition": {"type": "object", "required": ["old", "new", "at", "reason"], "properties": {
                "old": {"type": "string", "enum": _STATES}, "new": {"type": "string", "enum": _STATES},
                "at": _TIME, "severity": {"type": "string"}, "reason": {"type": "string"}}},
            "history_id": {"type": "integer", "nullable": True,
                           "description": "the transition's id in GET /api/v1/alarms/{id}/history; null for a "
                                          "repeat (repeat_actions: the same state, no new transition)"},
            "status": {"type": "string", "enum": [s.value for s in DeliveryStatus],
                       "description": "pending (next attempt at next_attempt_at), delivered, failed (given up)"},
            "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"},
            "created_at": _TIME, "next_attempt_at": _NULLABLE_TIME, "finished_at": _NULLABLE_TIME,
            "last_result": {"type": "string"},
            "attempt_history": {"type": "array", "items": _ref("NotificationAttempt"), "description": "oldest first"},
        },
    },
}


def paths(op: Op, store_down: dict[str, Any], invalid: dict[str, Any], limit: dict[str, Any]) -> dict[str, Any]:
    """The paths of ``api.notifications``' routes, built with the document's ``op``."""
    def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema or {"type": "string"}, "description": description}

    return {
        "/api/v1/notifications": {"get": op(
            "Notifications of alarm transitions (webhook, email, log), newest first, with their delivery attempts",
            description="Delivered at least once: a notification is recorded with the transition that causes it, "
                        "retried with backoff until delivered or its method's retries are spent (failed), across "
                        "restarts.",
            parameters=[query("alarm", "one alarm's only"),
                        query("status", "only these", {"type": "string", "enum": [s.value for s in DeliveryStatus]}),
                        query("method", "one notification method's only (url: URL actions)"),
                        query("since", "created at or after (RFC 3339 with a time zone)",
                              {"type": "string", "format": "date-time"}), limit],
            responses={"200": _json({"type": "array", "items": _ref("Notification")}, "the notifications"),
                       "422": invalid, "503": store_down})},
        "/api/v1/notifications/{id}": {"get": op(
            "One notification with its delivery attempts",
            parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1},
                         "description": "the notification's id"}],
            responses={"200": _json(_ref("Notification"), "the notification"),
                       "404": _json(_ref("Error"), "no such notification"), "422": invalid,
                       "503": store_down})},
    }
