"""The OpenAPI description of ``api.signals``' routes (signed URLs, Aodh / Monasca inputs), merged into the document
by ``api.openapi.spec``: their schemas (``SCHEMAS``) and paths (``paths``, built with the document's ``op``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alertscaler.model.signing import REFUSALS

Op = Callable[..., dict[str, Any]]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_STATES = ("alarm", "ok", "insufficient data")

SCHEMAS: dict[str, Any] = {
    "AodhAlarmAction": {
        "type": "object",
        "description": "What Aodh's REST notifier POSTs (aodh/notifier/rest.py). current: alarm fires the mapped "
                       "policies (one step), ok is recorded as resolved, insufficient data as no data.",
        "required": ["alarm_name", "alarm_id", "current"],
        "properties": {
            "alarm_name": {"type": "string", "maxLength": 255}, "alarm_id": {"type": "string", "maxLength": 255},
            "severity": {"type": "string"}, "previous": {"type": "string"},
            "current": {"type": "string", "enum": list(_STATES)},
            "reason": {"type": "string"}, "reason_data": {"type": "object"},
        },
    },
    "MonascaNotification": {
        "type": "object",
        "description": "What monasca-notification's webhook plugin POSTs. state: ALARM fires the mapped policies "
                       "(one step), OK is recorded as resolved, UNDETERMINED as no data. A retry of the same "
                       "transition (alarm_id, alarm_timestamp, state) is recognised and never acts twice.",
        "required": ["alarm_id", "alarm_definition_id", "alarm_name", "state"],
        "properties": {
            "alarm_id": {"type": "string", "maxLength": 255},
            "alarm_definition_id": {"type": "string", "maxLength": 255},
            "alarm_name": {"type": "string", "maxLength": 255}, "alarm_description": {"type": "string"},
            "alarm_timestamp": {"type": "number", "description": "seconds since the epoch"},
            "state": {"type": "string", "enum": ["ALARM", "OK", "UNDETERMINED"]},
            "old_state": {"type": "string"}, "message": {"type": "string"}, "tenant_id": {"type": "string"},
            "metrics": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "dimensions": {"type": "object", "additionalProperties": {"type": "string"}}}}},
        },
    },
    "SignalBody": {
        "type": "object",
        "description": "Optional: no body at all (the policy's alert fires), an AodhAlarmAction, a "
                       "MonascaNotification, or details whose current (or state) is alarm, ok or insufficient data.",
    },
    "SignalDecision": {
        "type": "object",
        "required": ["decision_id", "group", "outcome", "reason", "message"],
        "properties": {
            "decision_id": {"type": "integer"}, "group": {"type": "string", "nullable": True},
            "policy": {"type": "string", "nullable": True}, "outcome": {"type": "string"},
            "reason": {"type": "string"}, "action_id": _NULLABLE_INT, "from": _NULLABLE_INT, "to": _NULLABLE_INT,
            "message": {"type": "string"},
        },
    },
    "SignalReceipt": {
        "type": "object",
        "required": ["status", "signal_id", "decisions", "first_decisions"],
        "properties": {
            "status": {"type": "string", "enum": ["recorded", "duplicate"]},
            "signal_id": {"type": "integer"},
            "decisions": {"type": "array", "items": _ref("SignalDecision"),
                          "description": "recorded now (a duplicate: its duplicate decisions)"},
            "first_decisions": {"type": "array", "items": {"type": "integer"},
                                "description": "a duplicate: the decisions the first one gave"},
        },
    },
    "Refusal": {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "error": {"type": "string"},
            "reason": {"type": "string", "enum": [*REFUSALS, "no_secret"],
                       "description": "; ".join(f"{k}: {v}" for k, v in REFUSALS.items())},
        },
    },
    "UrlRequest": {
        "type": "object",
        "description": "group and policy (a group's signed URL), or input (an alarm service's).",
        "properties": {
            "group": {"type": "string"}, "policy": {"type": "string", "enum": ["scale_out", "scale_in"]},
            "input": {"type": "string", "enum": ["aodh", "monasca"]},
            "expires": {"type": "string", "example": "30d",
                        "description": "default inputs.signed_urls.default_expires, at most max_expires"},
            "note": {"type": "string", "maxLength": 200},
        },
    },
    "SignedUrl": {
        "type": "object",
        "required": ["id", "target", "key_id", "created_at", "expires_at", "state", "uses"],
        "properties": {
            "id": {"type": "string"}, "target": {"type": "string", "enum": ["policy", "aodh", "monasca"]},
            "group": {"type": "string", "nullable": True}, "policy": {"type": "string", "nullable": True},
            "key_id": {"type": "string"}, "note": {"type": "string"}, "created_at": _TIME, "expires_at": _TIME,
            "revoked_at": _NULLABLE_TIME, "last_used_at": _NULLABLE_TIME, "uses": {"type": "integer"},
            "state": {"type": "string", "enum": ["active", "expired", "revoked", "key_retired"]},
            "url": {"type": "string", "description": "in full when created (the only time); listings cut the "
                                                     "signature to its first 4 characters"},
        },
    },
    "SigningKey": {
        "type": "object",
        "required": ["kid", "created_at", "retired_at", "retired"],
        "properties": {"kid": {"type": "string"}, "created_at": _TIME, "retired_at": _NULLABLE_TIME,
                       "retired": {"type": "boolean"}},
    },
    "RotateRequest": {
        "type": "object",
        "properties": {"retire_old": {"type": "boolean", "default": False,
                                      "description": "true: the URLs signed with older keys are refused from now"}},
    },
    "Rotated": {
        "type": "object",
        "required": ["key", "retired"],
        "properties": {"key": _ref("SigningKey"), "retired": {"type": "array", "items": {"type": "string"}}},
    },
}

_SIGNED = [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}, "description": d}
           for n, d in (("expires", "the expiry, seconds since the epoch (signed)"),
                        ("kid", "the signing key's id (signed)"),
                        ("sig", "HMAC-SHA256 of POST, the path, expires and kid (base64url)"))]
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the URL's id"}


def paths(op: Op, store_down: dict[str, Any], invalid: dict[str, Any]) -> dict[str, Any]:
    """The paths of ``api.signals``' routes, built with the document's ``op``."""
    refused = _error("signed URL refused (tampered, expired, revoked, retired key...): an Error with a reason "
                     "(see Refusal) saying which; the refusal is recorded as a refused decision")
    received = {"202": _json(_ref("SignalReceipt"), "recorded and decided (before this answer)"),
                "200": _json(_ref("SignalReceipt"), "a retry (same Idempotency-Key / X-OpenStack-Request-Id / "
                                                    "X-Request-Id, or Monasca transition): recorded duplicate, not "
                                                    "acted again"),
                "422": invalid, "503": store_down}
    signed = ("No token: the query's signature is the credential (alertscaler url create). A retry with the same "
              "Idempotency-Key, X-OpenStack-Request-Id or X-Request-Id header never acts twice.")

    def alarm_input(name: str, schema: str, where: str) -> dict[str, Any]:
        return {
            f"/api/v1/inputs/{name}": {"post": op(
                f"{where}, with the API's credentials", write=True,
                description=f"Mapped to groups and policies by the policy file's inputs.{name}. " + signed.split(
                    ". ", 1)[1],
                body=_ref(schema), responses=received)},
            f"/api/v1/inputs/{name}/{{id}}": {"post": op(
                f"{where}, through a signed URL (alertscaler url create --input {name})", secured=False,
                description=f"Mapped by inputs.{name}. " + signed, parameters=[_ID, *_SIGNED],
                body=_ref(schema), responses={**received, "403": refused})},
        }

    return {
        "/api/v1/signal/{group}/{policy}/{id}": {"post": op(
            "A group's signed URL (like Heat's alarm_url): the policy's alert fires, one step", secured=False,
            description="Cooldowns, bounds, pauses, holds, change freezes, approval rules and dry runs apply; "
                        "decided and recorded (trigger signal) before the answer. An Aodh or Monasca body in ok "
                        "or insufficient data / UNDETERMINED is recorded without action. " + signed,
            parameters=[{"name": "group", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "policy", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": ["scale_out", "scale_in"]}}, _ID, *_SIGNED],
            body=_ref("SignalBody"), responses={**received, "403": refused})},
        **alarm_input("aodh", "AodhAlarmAction", "An Aodh alarm action (point alarm_actions and ok_actions here)"),
        **alarm_input("monasca", "MonascaNotification",
                      "A Monasca webhook notification (the notification method's address)"),
        "/api/v1/urls": {
            "post": op("Hand out a signed URL (shown in full once)", write=True, body=_ref("UrlRequest"),
                       responses={"201": _json(_ref("SignedUrl"), "created; url is the full signed URL"),
                                  "404": _error("no such group"), "422": invalid,
                                  "409": _error("no signing secret can be used (the message says why)"),
                                  "503": store_down}),
            "get": op("The signed URLs handed out, newest first (signatures cut short)", write=True,
                      parameters=[{"name": "group", "in": "query", "schema": {"type": "string"}}],
                      responses={"200": _json({"type": "array", "items": _ref("SignedUrl")}, "the URLs"),
                                 "503": store_down})},
        "/api/v1/urls/{id}/revoke": {"post": op(
            "Revoke a signed URL: refused (403) from now on", write=True, parameters=[_ID],
            body={"type": "object", "description": "an empty object: {}"},
            responses={"200": _json(_ref("SignedUrl"), "revoked (a second revoke keeps the first time)"),
                       "404": _error("no such URL"), "422": invalid, "503": store_down})},
        "/api/v1/urls/keys": {"get": op(
            "The signing keys' ids, oldest first (never a key)", write=True,
            responses={"200": _json({"type": "array", "items": _ref("SigningKey")}, "the keys"),
                       "503": store_down})},
        "/api/v1/urls/keys/rotate": {"post": op(
            "Sign new URLs with a new key", write=True, body=_ref("RotateRequest"),
            description="The URLs signed with older keys stay valid until they expire, unless retire_old.",
            responses={"200": _json(_ref("Rotated"), "the new key, and the keys retired"), "422": invalid,
                       "409": _error("no signing secret can be used (the message says why)"),
                       "503": store_down})},
    }
