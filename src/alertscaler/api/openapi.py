"""The OpenAPI 3.0 description of the API, served at ``/openapi.json`` by ``api.app``: every route with its
parameters, request body (the Alertmanager v4 webhook, the scale body), responses with their error shape, and the
security the policy file configures (bearer and/or basic; reads open unless ``protect_reads``).

tests/api/test_openapi.py checks that it validates and that it names exactly the app's routes.
"""

from __future__ import annotations

from typing import Any

from alertscaler import __version__
from alertscaler.api.openapi_alarms import SCHEMAS as ALARM_SCHEMAS
from alertscaler.api.openapi_alarms import paths as alarm_paths
from alertscaler.api.openapi_notifications import SCHEMAS as NOTIFICATION_SCHEMAS
from alertscaler.api.openapi_notifications import paths as notification_paths
from alertscaler.api.openapi_signals import SCHEMAS as SIGNAL_SCHEMAS
from alertscaler.api.openapi_signals import paths as signal_paths
from alertscaler.api.openapi_tacker import SCHEMAS as TACKER_SCHEMAS
from alertscaler.api.openapi_tacker import paths as tacker_paths
from alertscaler.config import AuthConfig
from alertscaler.ingest.jsonsafe import MAX_DEPTH, MAX_INT_DIGITS
from alertscaler.model.decisions import ActionState, Outcome, Reason, Trigger
from alertscaler.model.groups import MemberState

#: the largest desired capacity ``/scale`` takes (the store's integer columns are 32-bit on PostgreSQL)
MAX_DESIRED = 2**31 - 1
#: the longest pause / hold the API takes, and the longest reason a pause keeps
MAX_DURATION_S = 30 * 86400.0
MAX_REASON = 500
#: the longest "by" (who approves or rejects) the approval routes take
MAX_BY = 100
_PAUSE: dict[str, Any] = {
    "type": "object",
    "required": ["group", "since", "until", "reason", "active"],
    "properties": {
        "group": {"type": "string", "nullable": True, "description": "null: every group"},
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time", "nullable": True,
                  "description": "null: until resumed"},
        "reason": {"type": "string"},
        "active": {"type": "boolean"},
    },
}
_DURATION = {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$", "example": "30m",
             "description": "a Prometheus duration, more than 0 and at most 30d"}
#: list endpoints: ``?limit=`` default and bounds
LIMIT_DEFAULT, LIMIT_MAX = 100, 1000

_STORABLE = (f"Every string (and key) must be storable: no lone surrogate (\\ud800-\\udfff), no NUL (\\u0000); "
             f"nesting at most {MAX_DEPTH} levels; integers at most {MAX_INT_DIGITS} digits; times from 1970-01-01 "
             "to before 3000-01-01 in UTC. Anything else is refused with 422 naming the field.")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong; starts with the field's path when one is "
                                                        "(alerts[3].labels.instance: lone surrogate not allowed)"},
            "field": {"type": "string", "nullable": True,
                      "description": "the field, parameter or header at fault (422, 415), else absent or null"},
        },
    },
    "Labels": _LABELS,
    "WebhookAlert": {
        "type": "object",
        "required": ["status", "labels", "startsAt", "fingerprint"],
        "properties": {
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "labels": _ref("Labels"),
            "annotations": _ref("Labels"),
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "description": "RFC 3339; 0001-01-01T00:00:00Z or empty: not ended"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string", "minLength": 1},
        },
    },
    "AlertmanagerWebhook": {
        "type": "object",
        "description": "Alertmanager's webhook_config body, format version 4. " + _STORABLE,
        "required": ["version", "receiver", "status", "alerts", "groupKey"],
        "properties": {
            "version": {"type": "string", "enum": ["4"]},
            "groupKey": {"type": "string"},
            "truncatedAlerts": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "receiver": {"type": "string"},
            "groupLabels": _ref("Labels"),
            "commonLabels": _ref("Labels"),
            "commonAnnotations": _ref("Labels"),
            "externalURL": {"type": "string"},
            "alerts": {"type": "array", "items": _ref("WebhookAlert")},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["status", "notification_id", "new", "duplicates"],
        "properties": {
            "status": {"type": "string", "enum": ["recorded"]},
            "notification_id": {"type": "integer"},
            "new": {"type": "integer", "description": "alerts seen for the first time"},
            "duplicates": {"type": "integer", "description": "alerts already recorded (retries, HA peers)"},
        },
    },
    "ScaleRequest": {
        "type": "object",
        "required": ["desired"],
        "properties": {"desired": {"type": "integer", "minimum": 0, "maximum": MAX_DESIRED},
                       "hold": {**_DURATION, "description": "policies may not move the group for this long "
                                                            "(bounds still apply); without it, any hold ends"}},
    },
    "PauseRequest": {
        "type": "object",
        "properties": {"for": {**_DURATION, "description": "the pause ends by itself after this (absent: when "
                                                           "resumed)"},
                       "reason": {"type": "string", "maxLength": MAX_REASON}},
    },
    "Pause": _PAUSE,
    "ResumeRequest": {"type": "object", "description": "an empty object: {}"},
    "Resumed": {
        "type": "object",
        "required": ["group", "resumed"],
        "properties": {"group": {"type": "string", "nullable": True}, "resumed": {"type": "boolean",
                       "description": "false: it was not paused"}},
    },
    "ScaleResult": {
        "type": "object",
        "required": ["decision_id", "outcome", "reason", "from", "to", "message"],
        "properties": {
            "decision_id": {"type": "integer"},
            "action_id": _NULLABLE_INT,
            "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
            "reason": {"type": "string", "enum": [r.value for r in Reason]},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "message": {"type": "string"},
            "held_until": {**_NULLABLE_TIME, "description": "policies may not move the group before"},
            "policies_from": {**_NULLABLE_TIME, "description": "the next time a policy could move the group "
                                                               "(the hold's end, or a cooldown's)"},
        },
    },
    "Member": {
        "type": "object",
        "required": ["id", "state"],
        "properties": {
            "id": {"type": "string"},
            "address": {"type": "string", "nullable": True},
            "state": {"type": "string", "enum": [s.value for s in MemberState]},
            "created_at": _NULLABLE_TIME,
            "labels": _ref("Labels"),
        },
    },
    "Group": {
        "type": "object",
        "required": ["name", "provider", "min_size", "max_size", "desired", "current", "dry_run", "policies"],
        "properties": {
            "name": {"type": "string"},
            "provider": {"type": "string"},
            "min_size": {"type": "integer"},
            "max_size": {"type": "integer"},
            "desired": {"type": "integer"},
            "current": {"type": "integer", "nullable": True, "description": "null: the provider cannot tell"},
            "dry_run": {"type": "boolean"},
            "last_scale_out_at": _NULLABLE_TIME,
            "last_scale_in_at": _NULLABLE_TIME,
            "policies": {"type": "object", "additionalProperties": {"type": "object"}},
            "schedule": {"type": "object", "description": "scheduled groups: open windows and bounds in force"},
            "paused": {**_PAUSE, "nullable": True, "description": "the pause that holds (its own or "
                                                                         "every group's), null: none"},
            "held_until": {**_NULLABLE_TIME, "description": "a manual scale holds the size until then"},
            "change_freeze": {"type": "object", "description": "groups with change_freeze: the window open (null: "
                                                               "none), when one next opens"},
            "pending_approvals": {"type": "array", "items": _ref("Approval"),
                                  "description": "the group's changes waiting for approval"},
            "predict": {"type": "object", "description": "groups with predict: the last forecast (null: none yet; "
                                                         "mean, lower, upper, desired, skill, applied, for, "
                                                         "seasons_s, ...), forecast_only, problem (null: fine)"},
            "detail": {"type": "string"},
            "members": {"type": "array", "items": _ref("Member"), "description": "GET /groups/{name} only"},
        },
    },
    "Decision": {
        "type": "object",
        "required": ["id", "trigger", "outcome", "reason", "message", "alerts", "timing_ms"],
        "properties": {
            "id": {"type": "integer"},
            "group": {"type": "string", "nullable": True},
            "policy": {"type": "string", "nullable": True},
            "trigger": {"type": "string", "enum": [t.value for t in Trigger]},
            "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
            "reason": {"type": "string", "enum": [r.value for r in Reason]},
            "from_capacity": _NULLABLE_INT,
            "to_capacity": _NULLABLE_INT,
            "message": {"type": "string"},
            "alerts": {"type": "array", "items": {"type": "object"}},
            "notification_id": _NULLABLE_INT,
            "alert_starts_at": _NULLABLE_TIME,
            "received_at": _NULLABLE_TIME,
            "decided_at": _NULLABLE_TIME,
            "provider_call_at": _NULLABLE_TIME,
            "action_id": _NULLABLE_INT,
            "timing_ms": {"type": "object", "additionalProperties": {"type": "number", "nullable": True}},
        },
    },
    "Action": {
        "type": "object",
        "required": ["id", "decision_id", "group", "from_capacity", "desired", "state", "attempts", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "decision_id": {"type": "integer"},
            "group": {"type": "string"},
            "from_capacity": {"type": "integer"},
            "desired": {"type": "integer"},
            "state": {"type": "string", "enum": [s.value for s in ActionState]},
            "attempts": {"type": "integer"},
            "not_before": _NULLABLE_TIME,
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
            "error": {"type": "string", "nullable": True},
            "result": {"type": "string", "nullable": True},
            "kind": {"type": "string", "enum": ["scale", "heal"]},
            "targets": {"type": "array", "items": {"type": "object"}},
        },
    },
    "ActiveAlert": {
        "type": "object",
        "required": ["group", "policy", "fingerprint", "labels", "starts_at", "last_seen_at", "last_reason"],
        "properties": {
            "group": {"type": "string"}, "policy": {"type": "string"}, "fingerprint": {"type": "string"},
            "labels": _ref("Labels"), "starts_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "last_reason": {"type": "string", "nullable": True},
        },
    },
    "ClearRequest": {"type": "object", "description": "an empty JSON object: {}"},
    "Cleared": {
        "type": "object",
        "required": ["group", "fingerprint", "cleared", "decision_ids"],
        "properties": {
            "group": {"type": "string"}, "fingerprint": {"type": "string"},
            "cleared": {"type": "integer", "description": "in how many of the group's policies it was firing"},
            "decision_ids": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "Approval": {
        "type": "object",
        "required": ["id", "group", "kind", "state", "from", "to", "what", "why", "message", "created_at",
                     "expires_at"],
        "properties": {
            "id": {"type": "integer", "description": "the id of its pending_approval decision"},
            "group": {"type": "string"},
            "kind": {"type": "string", "enum": ["scale", "heal"]},
            "state": {"type": "string", "enum": ["pending", "approved", "rejected", "expired", "superseded"],
                      "description": "expired as soon as its time has passed"},
            "policy": {"type": "string", "nullable": True},
            "trigger": {"type": "string", "enum": [t.value for t in Trigger]},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "targets": {"type": "array", "items": {"type": "object"}, "description": "a heal's members"},
            "what": {"type": "string", "description": "scale 2 -> 9, or heal replace m-1"},
            "why": {"type": "string", "description": "why it needs approval"},
            "message": {"type": "string", "description": "what the policy said"},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "resolved_at": _NULLABLE_TIME,
            "resolved_by": {"type": "string", "nullable": True},
            "resolution_id": {**_NULLABLE_INT, "description": "the decision that ended it"},
        },
    },
    "ApprovalRequest": {
        "type": "object",
        "properties": {"by": {"type": "string", "minLength": 1, "maxLength": MAX_BY,
                              "description": "who (shown in the decision); default: the basic-auth user, else "
                                             "'an operator (API)'"}},
    },
    "ApprovalResult": {
        "type": "object",
        "required": ["approval", "decision_id", "outcome", "reason", "message"],
        "properties": {
            "approval": _ref("Approval"),
            "decision_id": {"type": "integer", "description": "the approved (or rejected) decision"},
            "action_id": _NULLABLE_INT,
            "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
            "reason": {"type": "string", "enum": [r.value for r in Reason]},
            "message": {"type": "string"},
        },
    },
    "Reloaded": {
        "type": "object",
        "required": ["status", "at", "message"],
        "description": "status reloaded: what changed (group names); refused (422): error, reason and problems",
        "properties": {
            "status": {"type": "string", "enum": ["reloaded", "refused"]},
            "at": {"type": "string", "format": "date-time"},
            "message": {"type": "string", "description": "one line: what changed, or why it was refused"},
            **{key: {"type": "array", "items": {"type": "string"}}
               for key in ("added", "changed", "removed", "unchanged", "new_providers", "settings")},
            "error": {"type": "string"},
            "reason": {"type": "string", "enum": ["invalid", "needs_restart", "failed"],
                       "description": "invalid: the file has problems; needs_restart: it changes store.*, "
                                      "server.listen, server.tls or server.state_dir; failed: a provider could not "
                                      "be made"},
            "problems": {"type": "array", "items": {
                "type": "object", "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}},
        },
    },
    "TargetGroup": {
        "type": "object",
        "required": ["targets", "labels"],
        "properties": {"targets": {"type": "array", "items": {"type": "string"}}, "labels": _ref("Labels")},
    },
}

_GROUP_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "a group of the policy file"}
_APPROVAL_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1},
                "description": "the approval's id: its pending_approval decision's id"}
_GROUP_FILTER = {"name": "group", "in": "query", "schema": {"type": "string"}, "description": "one group's only"}
_LIMIT = {"name": "limit", "in": "query", "description": f"at most this many (newest first), 1 to {LIMIT_MAX}",
          "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT}}


def _time_param(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "format": "date-time"},
            "description": f"{what} (RFC 3339 with a time zone, 1970 to 2999)"}


def spec(auth: AuthConfig, max_body_bytes: int, open_tacker: bool = False) -> dict[str, Any]:
    """The document for an app whose policy has this ``server.auth`` and ``server.max_body_bytes`` (and
    ``tacker.auth: open``: Tacker's endpoints without credentials)."""
    schemes: dict[str, Any] = {}
    if auth.bearer_token is not None:
        schemes["bearerAuth"] = {"type": "http", "scheme": "bearer"}
    if auth.basic is not None:
        schemes["basicAuth"] = {"type": "http", "scheme": "basic"}
    anyone: list[dict[str, list[str]]] = []
    credentials: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    write_security = credentials or anyone
    read_security = credentials if auth.protect_reads else anyone

    def op(summary: str, responses: dict[str, Any], *, write: bool = False, secured: bool = True,
           description: str = "", parameters: list[dict[str, Any]] | None = None,
           body: dict[str, Any] | None = None) -> dict[str, Any]:
        security = (write_security if write else read_security) if secured else anyone
        out: dict[str, Any] = {"summary": summary, "responses": dict(responses), "security": security}
        if description:
            out["description"] = description
        if parameters:
            out["parameters"] = parameters
        if body is not None:
            out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            out["responses"]["400"] = _error("the body is not JSON")
            out["responses"]["413"] = _error(f"the body is over server.max_body_bytes ({max_body_bytes})")
            out["responses"]["415"] = _error("Content-Type is not application/json")
        if security:
            out["responses"]["401"] = _error("missing or wrong credentials (WWW-Authenticate says which)")
        return out

    store_down = _error("the store cannot be reached or written right now: retry later (Retry-After: 5)")
    invalid = _error("a field or parameter is missing, wrong or cannot be stored; the message names it")
    no_group = _error("no such group")
    paths: dict[str, Any] = {
        "/api/v1/alerts": {"post": op(
            "Alertmanager webhook (format version 4): point webhook_configs.url here", write=True,
            description="The notification is durably recorded (and decided on) before 200 is returned. Re-sent "
                        "notifications (retries, HA peers) are recognised and never act twice. 503 means "
                        "\"retry later\"; 4xx means the body can never be accepted. " + _STORABLE,
            body=_ref("AlertmanagerWebhook"),
            responses={"200": _json(_ref("Receipt"), "recorded"), "422": invalid, "503": store_down,
                       "500": _error("a bug of ours (details in the service log); the next webhook is recorded as "
                                     "usual")})},
        "/api/v1/groups": {"get": op(
            "All groups with desired and current capacity",
            responses={"200": _json({"type": "array", "items": _ref("Group")}, "every group of the policy"),
                       "503": store_down})},
        "/api/v1/groups/{name}": {"get": op(
            "One group with desired, current capacity and members (read live from the provider)",
            parameters=[_GROUP_NAME],
            responses={"200": _json(_ref("Group"), "the group"), "404": no_group, "503": store_down})},
        "/api/v1/groups/{name}/scale": {"post": op(
            "Manually set a group's desired capacity", write=True,
            description="Bounds apply, cooldowns do not. " + _STORABLE, parameters=[_GROUP_NAME],
            body=_ref("ScaleRequest"),
            responses={"202": _json(_ref("ScaleResult"), "decision recorded (and an action queued when it acts)"),
                       "404": no_group, "422": invalid, "503": store_down})},
        "/api/v1/groups/{name}/pause": {"post": op(
            "Pause a group: its decisions are recorded as paused, nothing is executed", write=True,
            description="Durable (every replica, every restart). An action already running finishes. " + _STORABLE,
            parameters=[_GROUP_NAME], body=_ref("PauseRequest"),
            responses={"200": _json(_ref("Pause"), "paused"), "404": no_group, "422": invalid,
                       "503": store_down})},
        "/api/v1/groups/{name}/resume": {"post": op(
            "Resume a paused group (a pause of every group stays)", write=True, parameters=[_GROUP_NAME],
            body=_ref("ResumeRequest"),
            responses={"200": _json(_ref("Resumed"), "resumed"), "404": no_group, "422": invalid,
                       "503": store_down})},
        "/api/v1/pause": {"post": op(
            "Pause every group", write=True, body=_ref("PauseRequest"),
            description="Durable (every replica, every restart). An action already running finishes. " + _STORABLE,
            responses={"200": _json(_ref("Pause"), "paused"), "422": invalid, "503": store_down})},
        "/api/v1/resume": {"post": op(
            "End the pause of every group (a group's own pause stays)", write=True, body=_ref("ResumeRequest"),
            responses={"200": _json(_ref("Resumed"), "resumed"), "422": invalid, "503": store_down})},
        "/api/v1/decisions": {"get": op(
            "Decisions, newest first, each with its timing breakdown in timing_ms",
            parameters=[
                _GROUP_FILTER,
                {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": [o.value for o in Outcome]}},
                {"name": "reason", "in": "query", "schema": {"type": "string", "enum": [r.value for r in Reason]}},
                _time_param("since", "decided at or after"), _time_param("until", "decided before"), _LIMIT],
            responses={"200": _json({"type": "array", "items": _ref("Decision")}, "the decisions"),
                       "422": invalid, "503": store_down})},
        "/api/v1/actions": {"get": op(
            "Provider actions, newest first",
            parameters=[
                _GROUP_FILTER,
                {"name": "state", "in": "query",
                 "schema": {"type": "string", "enum": [s.value for s in ActionState]}},
                _LIMIT],
            responses={"200": _json({"type": "array", "items": _ref("Action")}, "the actions"),
                       "422": invalid, "503": store_down})},
        "/api/v1/targets": {"get": op(
            "Every managed instance in Prometheus http_sd format",
            description="Labels: alertscaler_group, alertscaler_member, alertscaler_provider, alertscaler_state.",
            responses={"200": _json({"type": "array", "items": _ref("TargetGroup")}, "http_sd target groups")})},
        "/api/v1/alerts/active": {"get": op(
            "The alerts alertscaler believes firing (reconciled against Alertmanager when alertmanager.url is set)",
            parameters=[_GROUP_FILTER],
            responses={"200": _json({"type": "array", "items": _ref("ActiveAlert")}, "believed-firing alerts"),
                       "404": no_group, "503": store_down})},
        "/api/v1/groups/{name}/alerts/{fingerprint}/clear": {"post": op(
            "End one believed-firing alert by hand (recorded as a cleared decision)", write=True,
            description="A new notification of the alert makes it fire again.",
            parameters=[_GROUP_NAME, {"name": "fingerprint", "in": "path", "required": True,
                                      "schema": {"type": "string"}, "description": "the alert's fingerprint"}],
            body=_ref("ClearRequest"),
            responses={"200": _json(_ref("Cleared"), "cleared"),
                       "404": _error("no such group, or no active alert with that fingerprint"), "422": invalid,
                       "503": store_down})},
        "/api/v1/approvals": {"get": op(
            "Changes waiting for an operator's approval, newest first",
            parameters=[_GROUP_FILTER,
                        {"name": "all", "in": "query", "schema": {"type": "boolean", "default": False},
                         "description": "true: the ended ones too (approved, rejected, expired, superseded)"},
                        _LIMIT],
            responses={"200": _json({"type": "array", "items": _ref("Approval")}, "the approvals"),
                       "404": no_group, "422": invalid, "503": store_down})},
        "/api/v1/approvals/{id}/approve": {"post": op(
            "Approve a change that waits: recorded as an acted approved decision, its action runs", write=True,
            description="Refused (409, the message says why) when it expired (the expiry is recorded), was already "
                        "approved, rejected or superseded, when the group's desired size moved since the change "
                        "was planned, its target is outside the bounds in force, or the group is paused.",
            parameters=[_APPROVAL_ID], body=_ref("ApprovalRequest"),
            responses={"200": _json(_ref("ApprovalResult"), "approved"), "404": _error("no such approval"),
                       "409": _error("cannot be approved now; the message says why"), "422": invalid,
                       "503": store_down})},
        "/api/v1/approvals/{id}/reject": {"post": op(
            "Reject a change that waits: recorded as a rejected decision, nothing runs", write=True,
            parameters=[_APPROVAL_ID], body=_ref("ApprovalRequest"),
            responses={"200": _json(_ref("ApprovalResult"), "rejected"), "404": _error("no such approval"),
                       "409": _error("already ended or expired; the message says which"), "422": invalid,
                       "503": store_down})},
        "/-/reload": {"post": op(
            "Re-read the policy file and apply it whole, or keep the running one and say why", write=True,
            description="Like SIGHUP. Validated completely first; groups are added, changed and removed, an action "
                        "already running finishes with the configuration it started with. A file with problems, or "
                        "one changing store.*, server.listen, server.tls or server.state_dir (needs a restart), is "
                        "refused: 422, the running configuration stays. "
                        "alertscaler_config_last_reload_successful says how the last one went.",
            body=_ref("ResumeRequest"),
            responses={"200": _json(_ref("Reloaded"), "applied"),
                       "422": _error("refused, the running configuration stays (or the body is not {}): the "
                                     "body is a Reloaded with status refused, error, reason and problems")})},
        "/healthz": {"get": op("Liveness: the process answers", secured=False,
                               responses={"200": _text("ok")})},
        "/readyz": {"get": op("Readiness: the store answers and the engine runs", secured=False,
                              responses={"200": _text("ready"), "503": _text("not ready; the body says why")})},
        "/metrics": {"get": op("alertscaler's own metrics in Prometheus text format", secured=False,
                               responses={"200": _text("Prometheus exposition format")})},
        "/openapi.json": {"get": op("This document", secured=False,
                                    responses={"200": _json({"type": "object"}, "OpenAPI 3.0")})},
    }
    paths.update(signal_paths(op, store_down, invalid))  # signed URLs, Aodh / Monasca inputs (api.signals)
    paths.update(notification_paths(op, store_down, invalid, _LIMIT))  # the outbox (api.notifications)
    paths.update(alarm_paths(op, store_down, invalid, _LIMIT))  # alarms (api.alarms)
    paths.update(tacker_paths(op, store_down, invalid, open_tacker))  # Tacker's alert endpoints (api.tacker)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "alertscaler", "version": __version__,
                 "description": "Alertmanager webhooks in, durable scaling actions out. Errors are JSON "
                                "{\"error\": ..., \"field\": ...}; a client's mistake is always 4xx, 503 only "
                                "means \"retry later\", 500 only ever a bug."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **SIGNAL_SCHEMAS, **NOTIFICATION_SCHEMAS, **ALARM_SCHEMAS,
                                   **TACKER_SCHEMAS}},
    }
    if schemes:
        document["components"]["securitySchemes"] = schemes
    return document
