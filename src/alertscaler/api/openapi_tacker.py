"""The OpenAPI description of ``api.tacker``'s routes (Tacker's five Prometheus-plugin alert endpoints), merged
into the document by ``api.openapi.spec``: their schema (``SCHEMAS``) and paths (``paths``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alertscaler.api.tacker import THRESHOLD_ALIAS
from alertscaler.ingest.tacker import SHAPES, Endpoint

Op = Callable[..., dict[str, Any]]

SCHEMAS: dict[str, Any] = {
    "TackerReceipt": {
        "type": "object",
        "required": ["status", "notification_id", "new", "duplicates", "function_type"],
        "properties": {
            "status": {"type": "string", "enum": ["recorded"]},
            "notification_id": {"type": "integer"},
            "new": {"type": "integer"}, "duplicates": {"type": "integer"},
            "function_type": {"type": "string", "enum": [e.value for e in Endpoint]},
            "not_built": {"type": "string", "description": "the Tacker features this endpoint's alerts would need "
                                                           "that alertscaler does not have yet"},
            "unmapped": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}},
                         "description": "VNF instances (and aspects) the tacker section maps to no group: their "
                                        "alerts are decided no_group"},
        },
    },
}


def paths(op: Op, store_down: dict[str, Any], invalid: dict[str, Any], open_tacker: bool = False) -> dict[str, Any]:
    """The paths of ``api.tacker``'s routes, built with the document's ``op`` (``open_tacker``: no credentials)."""
    received = {"200": {"description": "recorded (and decided) before this answer",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TackerReceipt"}}}},
                "422": invalid, "503": store_down}
    body = {"$ref": "#/components/schemas/AlertmanagerWebhook"}
    out: dict[str, Any] = {}
    for endpoint, shape in SHAPES.items():
        labels = ", ".join(("receiver_type=tacker", f"function_type={endpoint.value}", *shape.labels))
        what = ("decided by the policies tacker.aspects / tacker.healing give the mapped groups" if shape.built
                else f"recorded and routed by group matchers only; not built yet: {shape.missing}")
        out[shape.path] = {"post": op(
            f"Tacker's {endpoint.value} alert endpoint (Alertmanager webhook; labels {labels})", write=True,
            description=f"Durable and idempotent like /api/v1/alerts; {what}. Needs the API's credentials unless "
                        "tacker.auth is open. A missing or wrong Tacker label is a 422 naming it.",
            body=body, responses=received, secured=not open_tacker)}
    out[THRESHOLD_ALIAS] = {"post": op(
        "The same as /pm_threshold (the URL of Tacker's documented Alertmanager example)", write=True,
        body=body, responses=received, secured=not open_tacker)}
    return out
