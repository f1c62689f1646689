"""/openapi.json: a valid OpenAPI 3.0 document naming exactly the app's routes, with their parameters, bodies,
responses and the configured security; what the app really answers matches the schemas it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from alertscaler.api.app import create_app
from tests.api.conftest import POLICY, TOKEN, Harness, make_harness
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICIES = {
    "bearer": POLICY,
    "basic-protecting-reads": POLICY.replace(
        f"auth: {{bearer_token: {TOKEN}}}", "auth: {basic: {username: u, password: secret-pass}, protect_reads: true}"),
    "bearer-and-basic": POLICY.replace(f"auth: {{bearer_token: {TOKEN}}}",
                                       f"auth: {{bearer_token: {TOKEN}, basic: {{username: u, password: pw}}}}"),
    "no-auth": POLICY.replace(f"auth: {{bearer_token: {TOKEN}}}", "auth: {insecure_no_auth: true}"),
}


async def served_spec(tmp_path: Path, policy: str) -> tuple[dict[str, Any], list[Route]]:
    engine, *_, store, _ = make_harness(tmp_path, policy)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/openapi.json")
    store.close()
    assert response.status_code == 200
    return response.json(), [r for r in app.routes if isinstance(r, Route)]


@pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))
async def test_the_spec_is_valid_and_names_exactly_the_apps_routes(tmp_path: Path, policy: str) -> None:
    spec, routes = await served_spec(tmp_path, policy)
    validate(spec)  # raises on anything invalid in OpenAPI 3.0
    served = {(r.path, m.lower()) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    declared = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert served == declared
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and "security" in op, where
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {part[1:-1] for part in path.split("/") if part.startswith("{")}, where
            if method == "post":
                assert "application/json" in op["requestBody"]["content"], where
                assert {"400", "413", "415", "422"} <= set(op["responses"]), where
            for status, response in op["responses"].items():
                if (status.startswith("4") and status != "404") or (status == "503" and path.startswith("/api")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, where


@pytest.mark.parametrize(
    ("policy", "schemes", "reads_secured"),
    [("bearer", {"bearerAuth"}, False), ("basic-protecting-reads", {"basicAuth"}, True),
     ("bearer-and-basic", {"bearerAuth", "basicAuth"}, False), ("no-auth", set(), False)],
    ids=["bearer", "basic-protecting-reads", "bearer-and-basic", "no-auth"],
)
async def test_security_follows_the_policy_file(tmp_path: Path, policy: str, schemes: set[str],
                                                reads_secured: bool) -> None:
    spec, _ = await served_spec(tmp_path, POLICIES[policy])
    assert set(spec["components"].get("securitySchemes", {})) == schemes
    alternatives = [{name: []} for name in spec["components"].get("securitySchemes", {})]
    paths = spec["paths"]
    assert paths["/api/v1/alerts"]["post"]["security"] == alternatives
    assert paths["/api/v1/groups/{name}/scale"]["post"]["security"] == alternatives
    assert paths["/api/v1/decisions"]["get"]["security"] == (alternatives if reads_secured else [])
    assert paths["/healthz"]["get"]["security"] == [] and paths["/metrics"]["get"]["security"] == []
    assert ("401" in paths["/api/v1/alerts"]["post"]["responses"]) == bool(schemes)


def resolved(schema: Any, components: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` to a component replaced by the component (they are not recursive)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return resolved(components[schema["$ref"].rsplit("/", 1)[1]], components)
        return {k: resolved(v, components) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolved(v, components) for v in schema]
    return schema


def check(spec: dict[str, Any], path: str, method: str, status: int, instance: object) -> None:
    op = spec["paths"][path][method]
    schema = resolved(op["responses"][str(status)]["content"]["application/json"]["schema"],
                      spec["components"]["schemas"])
    errors = [e.message for e in OAS30Validator(schema).iter_errors(instance)]
    assert errors == [], f"{method.upper()} {path} {status}: {errors}"


async def test_what_the_app_answers_matches_what_the_spec_declares(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    webhook = body(alert("HighLoad", service="web"), alert("LowLoad", service="web", instance="b"))
    request_schema = resolved(spec["paths"]["/api/v1/alerts"]["post"]["requestBody"]["content"]
                              ["application/json"]["schema"], spec["components"]["schemas"])
    assert list(OAS30Validator(request_schema).iter_errors(webhook)) == []
    client = harness.client
    answers = [
        ("/api/v1/alerts", "post", await harness.post_alerts(webhook)),
        ("/api/v1/alerts", "post", await harness.post_alerts({**webhook, "version": "3"})),
        ("/api/v1/alerts", "post", await harness.post_alerts(webhook, token="wrong-token")),
        ("/api/v1/alerts", "post", await client.post("/api/v1/alerts", content=b"{", headers={
            **AUTH, "Content-Type": "text/plain"})),
        ("/api/v1/groups/{name}/scale", "post", await client.post("/api/v1/groups/web/scale", json={"desired": 3},
                                                                  headers=AUTH)),
        ("/api/v1/groups/{name}/scale", "post", await client.post("/api/v1/groups/nope/scale", json={"desired": 3},
                                                                  headers=AUTH)),
    ]
    await harness.engine.run_once()
    answers += [
        ("/api/v1/groups", "get", await client.get("/api/v1/groups")),
        ("/api/v1/groups/{name}", "get", await client.get("/api/v1/groups/web")),
        ("/api/v1/decisions", "get", await client.get("/api/v1/decisions")),
        ("/api/v1/decisions", "get", await client.get("/api/v1/decisions", params={"limit": "0"})),
        ("/api/v1/actions", "get", await client.get("/api/v1/actions")),
        ("/api/v1/targets", "get", await client.get("/api/v1/targets")),
    ]
    statuses = [(path, response.status_code) for path, _, response in answers]
    assert [s for _, s in statuses] == [200, 422, 401, 415, 202, 404, 200, 200, 200, 422, 200, 200]
    for path, method, response in answers:
        assert str(response.status_code) in spec["paths"][path][method]["responses"], (path, response.status_code)
        check(spec, path, method, response.status_code, response.json())
    assert len((await client.get("/api/v1/decisions")).json()) >= 2
