"""A stand-in of OpenStack Keystone v3, Compute (Nova) v2.1 and Image (Glance) v2 on 127.0.0.1, for tests.

The real openstacksdk talks to it; only the far end is stood in. It follows the documented requests and
responses (api-ref of identity v3, compute v2.1, image v2):

- Keystone, under ``/identity``: ``GET /identity`` (300, ``{"versions": {"values": [...]}}``), ``GET
  /identity/v3`` (``{"version": {...}}``), ``POST /identity/v3/auth/tokens`` with the ``application_credential``,
  ``password`` or ``token`` method: 201, the token id in the ``X-Subject-Token`` header, a ``token`` body with
  ``expires_at`` and a ``catalog`` pointing ``compute`` and ``image`` at this server. Bad credentials: 401
  ``{"error": {"code": 401, "title": "Unauthorized", "message": ...}}``.
- Nova, under ``/compute``: version documents at ``/compute/`` and ``/compute/v2.1``; ``POST /servers`` (202,
  ``{"server": {"id", "links", "adminPass", ...}}`` and a ``Location``), ``GET /servers[/detail]`` (filters
  ``name`` (a regex, as Nova), ``status``, ``limit``/``marker`` with ``servers_links`` ``rel=next``), ``GET`` and
  ``DELETE /servers/{id}`` (204); ``POST /servers/{id}/action`` with ``{"reboot": {"type": "HARD"|"SOFT"}}``
  (202); server metadata: ``GET``/``PUT`` (replace all)/``POST`` (merge) ``/servers/{id}/metadata`` (200,
  ``{"metadata": {...}}``), ``GET``/``PUT``/``DELETE /servers/{id}/metadata/{key}``; ``GET /flavors[/detail]``,
  ``GET /flavors/{id}``. Errors carry Nova's body, e.g. ``{"badRequest": {"code": 400, "message": "Invalid
  flavorRef provided."}}``.
- Glance, under ``/image``: versions at ``/image/`` (300), ``GET /image/v2/images?name=`` and ``/images/{id}``.

Server life cycle: ``BUILD`` (task state ``scheduling``) for ``build_polls`` observations (a ``GET`` of the
server or its appearance in a listing) and at least ``build_seconds``, then ``ACTIVE`` with a fixed IPv4 —
or, as planned by ``plan_builds``, ``ERROR`` with a ``fault`` ``{"code", "created", "message", "details"}``, or
stuck in ``BUILD``. After ``DELETE`` it shows task state ``deleting`` for ``delete_polls`` observations, then is
gone (404, not listed). A reboot is accepted as Nova's API accepts it (``vm_state``/``task_state`` checks of
``nova.compute.api``: HARD from active, stopped, paused, suspended or error; SOFT from active; 409 otherwise),
sets task state ``rebooting_hard`` (status ``HARD_REBOOT`` when active, else the status stays) or ``rebooting``
(``REBOOT``) before answering, and ends ``ACTIVE`` after ``reboot_polls`` observations — or ``ERROR`` with a fault
as planned by ``plan_reboots``. Metadata changes are refused with 409 unless the server is active, stopped,
paused or suspended with no task running, and with 403 above 128 items (Nova's default quota).
``lifecycle`` records what happened to servers, in order: ``(event, server id)`` with event ``create``,
``active``, ``error``, ``delete``, ``gone``, ``reboot``, ``rebooted``, ``metadata``.

Faults: ``fail_next(count, status, ...)`` makes the next matching requests answer ``status`` with Nova's error
body (``Retry-After`` when given). With ``keystone=True`` every API request must carry a live
``X-Auth-Token`` (401 otherwise); ``expire_tokens()`` makes every issued token invalid, as if expired.
``requests`` records every request (method, path, query, headers, JSON body, answered status, monotonic time).
The server, the request log and the fault plans (also ``stall_next``) are the ones of every stand-in
(``http_standin.HttpStandin``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.support.http_standin import Answer, FaultPlan, HttpStandin, Reply, reason_phrase, take_plan
from tests.support.http_standin import Recorded as Recorded

NOVA_VERSION = "2.96"  # maximum microversion announced (Nova 2024.1)
REGION = "RegionOne"
PROJECT_ID = "8d4e8fd3a8bf4b9b8a9e7d3c2b1a0f9e"
USER_ID = "5b0f0a8e9c7d4e3f8a1b2c3d4e5f6a7b"
APP_CRED_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APP_CRED_SECRET = "standin-app-credential-secret-Zq7"
USERNAME = "demo"
PASSWORD = "standin-password-Xv3"
IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
IMAGE_NAME = "cirros-0.6.2-x86_64-disk"
NETWORK_ID = "d32019d3-bc6e-4319-9c1d-6722fc136a22"
NETWORK_NAME = "private"

_ERROR_KEYS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest",
               413: "overLimit", 429: "overLimit", 500: "computeFault", 503: "serviceUnavailable"}
_COMPUTE = r"^/compute/v2\.1/."
_UNAUTHORIZED = "The request you have made requires authentication."
# Nova's status for each vm_state (without a task running); nova.api.openstack.common._STATE_MAP
_VM_STATES = {"ACTIVE": "active", "BUILD": "building", "ERROR": "error", "SHUTOFF": "stopped", "PAUSED": "paused",
              "SUSPENDED": "suspended", "SHELVED": "shelved", "RESCUE": "rescued"}
_METADATA_STATES = ("active", "paused", "suspended", "stopped")  # nova.compute.api update_instance_metadata
_HARD_REBOOT_STATES = ("active", "stopped", "paused", "suspended", "error")  # vm_states.ALLOW_HARD_REBOOT
_REBOOT_TASKS = (None, "rebooting", "reboot_pending", "reboot_started", "rebooting_hard", "reboot_pending_hard",
                 "reboot_started_hard", "resuming", "unpausing", "pausing", "suspending")  # task_states.ALLOW_REBOOT
_METADATA_QUOTA = 128
_MAX_USER_DATA = 65535


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _BuildPlan:
    outcome: str  # "error" or "stuck"
    remaining: int | None  # None: every build from now on
    message: str
    code: int
    name: re.Pattern[str] | None


@dataclass
class _Token:
    id: str
    expires_at: datetime
    valid: bool = True


@dataclass
class _Server:
    body: dict[str, Any]
    created: float
    outcome: str = "active"  # "active", "error" or "stuck"
    fault: dict[str, Any] | None = None
    polls: int = 0
    deleting: bool = False
    delete_polls: int = 0
    networks: Any = None
    reboot_polls: int = 0
    reboot_fault: dict[str, Any] | None = None  # the reboot in progress ends in ERROR with this fault


def nova_error(status: int, message: str) -> Reply:
    """Nova's error body: ``{"badRequest": {"code": 400, "message": "..."}}``."""
    return Reply(status, {_ERROR_KEYS.get(status, "computeFault"): {"code": status, "message": message}})


def keystone_error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"code": status, "title": reason_phrase(status, "Error"), "message": message}})


@dataclass
class OpenStackStandin(HttpStandin):
    """Keystone + Nova + Glance stand-in; use as a context manager (``with OpenStackStandin() as cloud``)."""

    thread_name = "openstack-standin"
    fault_path = _COMPUTE
    recorded_headers = ("x-auth-token", "openstack-api-version", "x-openstack-nova-api-version", "content-type",
                        "user-agent")

    keystone: bool = True
    build_polls: int = 1
    build_seconds: float = 0.0
    delete_polls: int = 1
    max_limit: int = 1000  # Nova's [api] max_limit: page size of listings
    token_ttl: float = 3600.0
    flavors: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1},
        {"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
        {"id": "42", "name": "m1.nano", "ram": 128, "vcpus": 1, "disk": 1},
    ])
    images: list[dict[str, Any]] = field(default_factory=lambda: [{"id": IMAGE_ID, "name": IMAGE_NAME}])
    networks: dict[str, str] = field(default_factory=lambda: {NETWORK_ID: NETWORK_NAME})
    ports: set[str] = field(default_factory=set)
    keypairs: set[str] = field(default_factory=lambda: {"mykey"})
    security_groups: set[str] = field(default_factory=lambda: {"default", "web"})
    zones: set[str] = field(default_factory=lambda: {"nova"})

    reboot_polls: int = 1
    lifecycle: list[tuple[str, str]] = field(default_factory=list, init=False)
    token_requests: int = field(default=0, init=False)
    servers: dict[str, _Server] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._plans: list[_BuildPlan] = []
        self._reboot_plans: list[_BuildPlan] = []
        self._tokens: dict[str, _Token] = {}
        self._ips = itertools.count(10)

    @property
    def identity_url(self) -> str:
        return f"{self.url}/identity/v3"

    @property
    def compute_url(self) -> str:
        return f"{self.url}/compute/v2.1"

    @property
    def image_url(self) -> str:
        return f"{self.url}/image"

    # -- test controls --------------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int, *, method: str | None = None, path: str = _COMPUTE,
                  retry_after: float | str | None = None, message: str | None = None, after: int = 0) -> None:
        """The next ``count`` requests matching ``method`` and ``path`` (a regex) answer ``status`` — once
        ``after`` matching requests have been served normally."""
        self._plan_fault(count, status, method=method, path=path, retry_after=retry_after, after=after,
                         message=message or f"injected fault: {reason_phrase(status)}")

    def plan_builds(self, outcome: str, *, count: int | None = None, name: str | None = None,
                    message: str = "No valid host was found. There are not enough hosts available.",
                    code: int = 500) -> None:
        """The next ``count`` servers created (all when None; those whose name matches ``name``) end in
        ``ERROR`` with ``message`` (``outcome="error"``) or stay in ``BUILD`` (``outcome="stuck"``)."""
        assert outcome in ("error", "stuck")
        with self._lock:
            self._plans.append(_BuildPlan(outcome, count, message, code, re.compile(name) if name else None))

    def plan_reboots(self, *, count: int | None = None, message: str = "Failed to start libvirt guest",
                     code: int = 500) -> None:
        """The next ``count`` reboots (all when None) end in ``ERROR`` with a fault ``message``."""
        with self._lock:
            self._reboot_plans.append(_BuildPlan("error", count, message, code, None))

    def set_status(self, server_id: str, status: str) -> None:
        """Put a server into ``status`` (``ACTIVE``, ``SHUTOFF``, ``ERROR``, ``PAUSED``...) as if something outside
        the API under test had done it (a crash, an operator)."""
        with self._lock:
            body = self.servers[server_id].body
            body.update({"status": status, "OS-EXT-STS:vm_state": _VM_STATES.get(status, status.lower()),
                         "OS-EXT-STS:task_state": None, "updated": _iso(_now())})

    def expire_tokens(self) -> None:
        """Every token issued so far stops being accepted (401), as when it expired or was revoked."""
        with self._lock:
            for token in self._tokens.values():
                token.valid = False

    def add_server(self, name: str, metadata: dict[str, str] | None = None, status: str = "ACTIVE", *,
                   stuck: bool = False) -> str:
        """A server created by someone else (not through the API under test). Returns its id. A ``BUILD`` one
        becomes ACTIVE like any build, unless ``stuck``."""
        with self._lock:
            server = self._new_server({"name": name, "metadata": metadata or {}, "flavorRef": "1",
                                       "imageRef": IMAGE_ID}, None)
            server.outcome = "stuck" if stuck else "active"
            if status == "ACTIVE":
                self._finish_build(server)
            else:
                server.body.update({"status": status, "OS-EXT-STS:vm_state": _VM_STATES.get(status, status.lower()),
                                    "OS-EXT-STS:task_state": None})
            return str(server.body["id"])

    def live_servers(self) -> list[dict[str, Any]]:
        """Bodies of the servers that exist (including those being deleted)."""
        with self._lock:
            return [json.loads(json.dumps(s.body)) for s in self.servers.values()]

    # -- dispatch -------------------------------------------------------------------------------------------

    def fault_reply(self, fault: FaultPlan) -> Reply:
        reply = nova_error(fault.status, fault.detail["message"])
        if fault.retry_after is not None and fault.status in (413, 429):
            reply.body["overLimit"]["retryAfter"] = fault.retry_after
        return reply

    def internal_error(self, exc: Exception) -> Any:
        return {"computeFault": {"code": 500, "message": repr(exc)}}

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> Answer:
        if path.startswith("/identity"):
            if not self.keystone:
                raise Reply(404, {"error": "no identity service here"})
            return self._identity(method, path[len("/identity"):] or "/", body, query)
        if path.startswith("/compute"):
            rest = path[len("/compute"):] or "/"
            if rest in ("/", "/v2.1"):
                return 200, {}, self._compute_versions(rest)
            if not rest.startswith("/v2.1/"):
                raise nova_error(404, "The resource could not be found.")
            self._authorize(headers)
            status, out = self._compute(method, rest[len("/v2.1"):], query, body)
            version = headers.get("OpenStack-API-Version") or f"compute {NOVA_VERSION}"
            out_headers = {"OpenStack-API-Version": version, "Vary": "OpenStack-API-Version"}
            if status == 202 and isinstance(out, dict) and "server" in out:
                out_headers["Location"] = out["server"]["links"][0]["href"]
            return status, out_headers, out
        if path.startswith("/image"):
            rest = path[len("/image"):] or "/"
            if rest in ("/", "/v2"):
                return 300 if rest == "/" else 200, {}, self._image_versions()
            self._authorize(headers)
            return self._image(method, rest, query)
        raise Reply(404, {"error": f"nothing at {path}"})

    # -- keystone -------------------------------------------------------------------------------------------

    def _identity(self, method: str, rest: str, body: Any,
                  query: dict[str, list[str]]) -> Answer:
        v3 = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
              "links": [{"rel": "self", "href": f"{self.url}/identity/v3/"}],
              "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}
        if method == "GET" and rest == "/":
            return 300, {}, {"versions": {"values": [v3]}}
        if method == "GET" and rest == "/v3":
            return 200, {}, {"version": v3}
        if method == "POST" and rest == "/v3/auth/tokens":
            self.token_requests += 1
            methods = self._check_credentials(body)
            token = _Token(uuid.uuid4().hex, _now() + timedelta(seconds=self.token_ttl))
            self._tokens[token.id] = token
            return 201, {"X-Subject-Token": token.id}, {"token": self._token_body(token, methods, query)}
        raise keystone_error(404, "Could not find the requested resource.")

    def _check_credentials(self, body: Any) -> list[str]:
        try:
            identity = body["auth"]["identity"]
            methods = list(identity["methods"])
        except (KeyError, TypeError):
            raise keystone_error(400, "Invalid input for field 'identity': 'methods' is a required property") from None
        if "application_credential" in methods:
            cred = identity.get("application_credential") or {}
            if cred.get("id") != APP_CRED_ID or cred.get("secret") != APP_CRED_SECRET:
                raise keystone_error(401, _UNAUTHORIZED)
        elif "password" in methods:
            user = (identity.get("password") or {}).get("user") or {}
            if user.get("name") != USERNAME or user.get("password") != PASSWORD:
                raise keystone_error(401, _UNAUTHORIZED)
        elif "token" in methods:
            token = self._tokens.get(str((identity.get("token") or {}).get("id")))
            if token is None or not token.valid:
                raise keystone_error(404, "Could not find token.")
        else:
            raise keystone_error(401, _UNAUTHORIZED)
        return methods

    def _token_body(self, token: _Token, methods: list[str], query: dict[str, list[str]]) -> dict[str, Any]:
        def endpoints(url: str) -> list[dict[str, str]]:
            return [{"id": uuid.uuid4().hex, "interface": interface, "region": REGION, "region_id": REGION,
                     "url": url} for interface in ("public", "internal", "admin")]

        body: dict[str, Any] = {
            "methods": methods,
            "user": {"id": USER_ID, "name": USERNAME, "domain": {"id": "default", "name": "Default"},
                     "password_expires_at": None},
            "project": {"id": PROJECT_ID, "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member"}],
            "audit_ids": [uuid.uuid4().hex[:22]],
            "issued_at": _now().strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": token.expires_at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "is_domain": False,
        }
        if "application_credential" in methods:
            body["application_credential"] = {"id": APP_CRED_ID, "name": "alertscaler", "restricted": True}
        if "nocatalog" not in query:
            body["catalog"] = [
                {"type": "compute", "name": "nova", "id": uuid.uuid4().hex, "endpoints": endpoints(self.compute_url)},
                {"type": "image", "name": "glance", "id": uuid.uuid4().hex, "endpoints": endpoints(self.image_url)},
                {"type": "identity", "name": "keystone", "id": uuid.uuid4().hex,
                 "endpoints": endpoints(self.identity_url)},
            ]
        return body

    def _authorize(self, headers: dict[str, str]) -> None:
        if not self.keystone:
            return
        token = self._tokens.get(headers.get("X-Auth-Token", ""))
        if token is None or not token.valid or token.expires_at <= _now():
            raise Reply(401, {"error": {"code": 401, "title": "Unauthorized", "message": _UNAUTHORIZED}},
                         {"WWW-Authenticate": f'Keystone uri="{self.identity_url}"'})

    # -- nova -----------------------------------------------------------------------------------------------

    def _compute_versions(self, rest: str) -> dict[str, Any]:
        v21 = {"id": "v2.1", "status": "CURRENT", "version": NOVA_VERSION, "min_version": "2.1",
               "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{self.compute_url}/"}]}
        if rest == "/v2.1":
            return {"version": {**v21, "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}}
        v2 = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
              "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{self.url}/compute/v2/"}]}
        return {"versions": [v2, v21]}

    def _compute(self, method: str, rest: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if rest == "/servers" and method == "POST":
            return 202, self._create_server(body)
        if rest in ("/servers", "/servers/detail") and method == "GET":
            return 200, self._list_servers(query, detail=rest.endswith("/detail"))
        match = re.fullmatch(r"/servers/([^/]+)", rest)
        if match and method in ("GET", "DELETE"):
            server = self.servers.get(match.group(1))
            if server is None:
                raise nova_error(404, f"Instance {match.group(1)} could not be found.")
            if method == "DELETE":
                server.deleting = True
                server.body["OS-EXT-STS:task_state"] = "deleting"
                self.lifecycle.append(("delete", server.body["id"]))
                return 204, None
            return 200, {"server": self._observe(server)}
        match = re.fullmatch(r"/servers/([^/]+)/(action|metadata)(?:/([^/]+))?", rest)
        if match:
            server = self.servers.get(match.group(1))
            if server is None:
                raise nova_error(404, f"Instance {match.group(1)} could not be found.")
            if match.group(2) == "action" and match.group(3) is None and method == "POST":
                return self._action(server, body)
            if match.group(2) == "metadata":
                return self._metadata(server, method, match.group(3), body)
        if rest in ("/flavors", "/flavors/detail") and method == "GET":
            return 200, {"flavors": [self._flavor(f, detail=rest.endswith("/detail")) for f in self.flavors]}
        match = re.fullmatch(r"/flavors/([^/]+)", rest)
        if match and method == "GET":
            for flavor in self.flavors:
                if flavor["id"] == match.group(1):
                    return 200, {"flavor": self._flavor(flavor, detail=True)}
            raise nova_error(404, f"Flavor {match.group(1)} could not be found.")
        raise nova_error(404, "The resource could not be found.")

    def _flavor(self, flavor: dict[str, Any], detail: bool) -> dict[str, Any]:
        links = [{"rel": "self", "href": f"{self.compute_url}/flavors/{flavor['id']}"},
                 {"rel": "bookmark", "href": f"{self.url}/compute/flavors/{flavor['id']}"}]
        if not detail:
            return {"id": flavor["id"], "name": flavor["name"], "description": None, "links": links}
        return {"OS-FLV-DISABLED:disabled": False, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": True,
                "swap": 0, "rxtx_factor": 1.0, "description": None, "extra_specs": {}, "links": links, **flavor}

    def _create_server(self, body: Any) -> dict[str, Any]:
        spec = body.get("server") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise nova_error(400, "Invalid input for field/attribute server. 'server' is a required property")
        name = spec.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise nova_error(400, f"Invalid input for field/attribute name. Value: {name!r}.")
        flavor_ref = str(spec.get("flavorRef", ""))
        if not any(f["id"] == flavor_ref for f in self.flavors):
            raise nova_error(400, f"Flavor {flavor_ref} could not be found.")
        image_ref = str(spec.get("imageRef", ""))
        if not any(i["id"] == image_ref for i in self.images):
            raise nova_error(400, f"Image {image_ref} could not be found.")
        networks = spec.get("networks")
        if networks is None:
            raise nova_error(400, "Invalid input for field/attribute server. 'networks' is a required property")
        if isinstance(networks, list):
            for net in networks:
                if "uuid" in net and net["uuid"] not in self.networks:
                    raise nova_error(400, f"Network {net['uuid']} could not be found.")
                if "port" in net and net["port"] not in self.ports:
                    raise nova_error(400, f"Port id {net['port']} could not be found.")
        elif networks not in ("auto", "none"):
            raise nova_error(400, f"Invalid input for field/attribute networks. Value: {networks!r}.")
        key_name = spec.get("key_name")
        if key_name is not None and key_name not in self.keypairs:
            raise nova_error(400, "Invalid key_name provided.")
        for group in spec.get("security_groups") or []:
            if group.get("name") not in self.security_groups:
                raise nova_error(400, f"Security group {group.get('name')} not found for project {PROJECT_ID}.")
        zone = spec.get("availability_zone")
        if zone is not None and zone not in self.zones:
            raise nova_error(400, "The requested availability zone is not available")
        user_data = spec.get("user_data")
        if user_data is not None:
            if len(user_data) > _MAX_USER_DATA:
                raise nova_error(400, "Invalid input for field/attribute user_data. Value is too long.")
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError):
                raise nova_error(400, "User data needs to be valid base 64.") from None
        metadata = spec.get("metadata") or {}
        for key, value in metadata.items():
            if not isinstance(value, str) or not 1 <= len(key) <= 255 or len(value) > 255:
                raise nova_error(400, f"Invalid input for field/attribute metadata. Value: {key!r}: {value!r}.")
        server = self._new_server(spec, take_plan(self._plans, name))
        server_id = server.body["id"]
        return {"server": {"id": server_id, "links": server.body["links"], "OS-DCF:diskConfig": "MANUAL",
                           "security_groups": server.body["security_groups"], "adminPass": uuid.uuid4().hex[:12]}}

    def _new_server(self, spec: dict[str, Any], plan: _BuildPlan | None) -> _Server:
        server_id = str(uuid.uuid4())
        created = _now()
        flavor = next((f for f in self.flavors if f["id"] == str(spec.get("flavorRef"))), self.flavors[0])
        body = {
            "id": server_id, "name": spec["name"], "status": "BUILD", "tenant_id": PROJECT_ID, "user_id": USER_ID,
            "metadata": dict(spec.get("metadata") or {}), "hostId": "", "host_status": "",
            "image": {"id": spec.get("imageRef"),
                      "links": [{"rel": "bookmark", "href": f"{self.url}/compute/images/{spec.get('imageRef')}"}]},
            "flavor": {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"], "ephemeral": 0,
                       "swap": 0, "original_name": flavor["name"], "extra_specs": {}},
            "created": _iso(created), "updated": _iso(created), "addresses": {}, "accessIPv4": "", "accessIPv6": "",
            "links": [{"rel": "self", "href": f"{self.compute_url}/servers/{server_id}"},
                      {"rel": "bookmark", "href": f"{self.url}/compute/servers/{server_id}"}],
            "OS-DCF:diskConfig": "MANUAL", "progress": 0,
            "OS-EXT-AZ:availability_zone": spec.get("availability_zone") or "",
            "config_drive": "", "key_name": spec.get("key_name"),
            "OS-SRV-USG:launched_at": None, "OS-SRV-USG:terminated_at": None,
            "security_groups": [{"name": g["name"]} for g in spec.get("security_groups") or [{"name": "default"}]],
            "OS-EXT-STS:task_state": "scheduling", "OS-EXT-STS:vm_state": "building", "OS-EXT-STS:power_state": 0,
            "os-extended-volumes:volumes_attached": [], "locked": False, "locked_reason": None,
            "description": None, "tags": [], "trusted_image_certificates": None, "server_groups": [],
            "pinned_availability_zone": spec.get("availability_zone"),
        }
        server = _Server(body=body, created=time.monotonic(), networks=spec.get("networks"))
        if plan is not None:
            server.outcome = plan.outcome
            if plan.outcome == "error":
                server.fault = {"code": plan.code, "created": _iso(created), "message": plan.message,
                                "details": "Traceback (most recent call last):\n  File \"nova/conductor/manager.py\""}
        self.servers[server_id] = server
        self.lifecycle.append(("create", server_id))
        return server

    def _finish_build(self, server: _Server) -> None:
        body = server.body
        body["OS-EXT-STS:task_state"] = None
        body["updated"] = _iso(_now())
        if server.outcome == "error":
            body.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error", "fault": server.fault})
            self.lifecycle.append(("error", body["id"]))
            return
        octet = next(self._ips)
        net_name = NETWORK_NAME
        for net in server.networks if isinstance(server.networks, list) else []:
            if isinstance(net, dict) and net.get("uuid") in self.networks:
                net_name = self.networks[net["uuid"]]
                break
        body.update({
            "status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1, "progress": 100,
            "hostId": uuid.uuid4().hex, "OS-SRV-USG:launched_at": _iso(_now()),
            "addresses": {net_name: [
                {"version": 4, "addr": f"10.0.{octet // 250}.{octet % 250 + 2}", "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": f"fa:16:3e:00:{octet // 256:02x}:{octet % 256:02x}"},
                {"version": 6, "addr": f"fd00::{octet:x}", "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": f"fa:16:3e:00:{octet // 256:02x}:{octet % 256:02x}"},
            ]},
        })
        self.lifecycle.append(("active", body["id"]))

    def _observe(self, server: _Server) -> dict[str, Any]:
        """The server's body as one more GET sees it, advancing its life cycle."""
        if server.deleting:
            server.delete_polls += 1
            if server.delete_polls > self.delete_polls:
                del self.servers[server.body["id"]]
                self.lifecycle.append(("gone", server.body["id"]))
                raise nova_error(404, f"Instance {server.body['id']} could not be found.")
        elif server.body["OS-EXT-STS:task_state"] in ("rebooting", "rebooting_hard"):
            server.reboot_polls += 1
            if server.reboot_polls > self.reboot_polls:
                self._finish_reboot(server)
        elif server.body["status"] == "BUILD" and server.outcome != "stuck":
            server.polls += 1
            if server.polls > self.build_polls and time.monotonic() - server.created >= self.build_seconds:
                self._finish_build(server)
        elif server.body["status"] == "BUILD" and server.body["OS-EXT-STS:task_state"] == "scheduling":
            server.body["OS-EXT-STS:task_state"] = "spawning"
        return json.loads(json.dumps(server.body))

    def _action(self, server: _Server, body: Any) -> tuple[int, Any]:
        """``POST /servers/{id}/action``: only ``reboot`` is stood in (Nova's checks, see the module docstring)."""
        server_id = server.body["id"]
        if not isinstance(body, dict) or len(body) != 1:
            raise nova_error(400, "Malformed request body")
        (action, spec), = body.items()
        if action != "reboot":
            raise nova_error(400, f"There is no such action: {action}")
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in ("HARD", "Hard", "hard", "SOFT", "Soft", "soft"):
            raise nova_error(400, f"Invalid input for field/attribute type. Value: {kind}. {kind!r} is not one of "
                                  "['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']")
        hard = kind.upper() == "HARD"
        vm_state, task = server.body["OS-EXT-STS:vm_state"], server.body["OS-EXT-STS:task_state"]
        allowed_states, allowed_tasks = (_HARD_REBOOT_STATES, _REBOOT_TASKS) if hard else (("active",), (None,))
        if vm_state not in allowed_states:
            raise nova_error(409, f"Cannot 'reboot' instance {server_id} while it is in vm_state {vm_state}")
        if server.deleting or task not in allowed_tasks:
            raise nova_error(409, f"Cannot 'reboot' instance {server_id} while it is in task_state {task}")
        server.body["OS-EXT-STS:task_state"] = "rebooting_hard" if hard else "rebooting"
        if vm_state == "active":
            server.body["status"] = "HARD_REBOOT" if hard else "REBOOT"
        server.body["updated"] = _iso(_now())
        server.reboot_polls = 0
        plan = take_plan(self._reboot_plans)
        server.reboot_fault = None
        if plan is not None:
            server.reboot_fault = {"code": plan.code, "created": _iso(_now()), "message": plan.message}
        self.lifecycle.append(("reboot", server_id))
        return 202, None

    def _finish_reboot(self, server: _Server) -> None:
        body = server.body
        body.update({"OS-EXT-STS:task_state": None, "updated": _iso(_now())})
        if server.reboot_fault is not None:
            body.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error", "OS-EXT-STS:power_state": 0,
                         "fault": server.reboot_fault})
            self.lifecycle.append(("error", body["id"]))
            return
        body.update({"status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1})
        body.pop("fault", None)
        self.lifecycle.append(("rebooted", body["id"]))

    def _metadata(self, server: _Server, method: str, key: str | None, body: Any) -> tuple[int, Any]:
        """``/servers/{id}/metadata[/{key}]`` (nova/api/openstack/compute/server_metadata.py)."""
        current: dict[str, str] = server.body["metadata"]
        if method == "GET":
            if key is None:
                return 200, {"metadata": dict(current)}
            if key not in current:
                raise nova_error(404, "Metadata item was not found")
            return 200, {"meta": {key: current[key]}}
        if key is None and method in ("PUT", "POST"):
            items = self._check_metadata(body.get("metadata") if isinstance(body, dict) else None)
            new = dict(items) if method == "PUT" else {**current, **items}
        elif key is not None and method == "PUT":
            items = self._check_metadata(body.get("meta") if isinstance(body, dict) else None)
            if len(items) != 1 or key not in items:
                raise nova_error(400, "Request body and URI mismatch")
            new = {**current, **items}
        elif key is not None and method == "DELETE":
            if key not in current:
                raise nova_error(404, "Metadata item was not found")
            new = {k: v for k, v in current.items() if k != key}
        else:
            raise nova_error(405, "The method is not allowed for the requested URL.")
        vm_state, task = server.body["OS-EXT-STS:vm_state"], server.body["OS-EXT-STS:task_state"]
        action = "delete metadata" if method == "DELETE" else "update metadata"
        if vm_state not in _METADATA_STATES:
            raise nova_error(409, f"Cannot '{action}' instance {server.body['id']} while it is in vm_state {vm_state}")
        if task is not None:
            raise nova_error(409, f"Cannot '{action}' instance {server.body['id']} while it is in task_state {task}")
        if len(new) > _METADATA_QUOTA:
            raise nova_error(403, f"Maximum number of metadata items exceeds {_METADATA_QUOTA}")
        server.body["metadata"] = new
        server.body["updated"] = _iso(_now())
        self.lifecycle.append(("metadata", server.body["id"]))
        if method == "DELETE":
            return 204, None
        return 200, ({"meta": {key: new[key]}} if key is not None else {"metadata": dict(new)})

    @staticmethod
    def _check_metadata(items: Any) -> dict[str, str]:
        if not isinstance(items, dict):
            raise nova_error(400, "Invalid input for field/attribute metadata. Value: None. None is not of type "
                                  "'object'")
        for key, value in items.items():
            if not isinstance(value, str) or not 1 <= len(key) <= 255 or len(value) > 255:
                raise nova_error(400, f"Invalid input for field/attribute metadata. Value: {key!r}: {value!r}.")
        return items

    def _list_servers(self, query: dict[str, list[str]], detail: bool) -> dict[str, Any]:
        name = query.get("name", [None])[0]
        status = query.get("status", [None])[0]
        visible = []
        for server in sorted(self.servers.values(), key=lambda s: (s.body["created"], s.body["id"]), reverse=True):
            try:
                body = self._observe(server)
            except Reply:
                continue  # gone
            if name is not None and not re.search(name, body["name"]):
                continue
            if status is not None and body["status"].upper() != status.upper():
                continue
            visible.append(body)
        marker = query.get("marker", [None])[0]
        if marker is not None:
            ids = [b["id"] for b in visible]
            if marker not in ids:
                raise nova_error(400, f"marker [{marker}] not found")
            visible = visible[ids.index(marker) + 1:]
        limit = min(int(query.get("limit", [self.max_limit])[0]), self.max_limit)
        page = visible[:limit]
        if not detail:
            page = [{"id": b["id"], "name": b["name"], "links": b["links"]} for b in page]
        out: dict[str, Any] = {"servers": page}
        if len(page) == limit and page:
            params = {k: v[0] for k, v in query.items() if k != "marker"}
            params.update(limit=str(limit), marker=page[-1]["id"])
            path = "/servers/detail" if detail else "/servers"
            out["servers_links"] = [{"rel": "next", "href": f"{self.compute_url}{path}?{urlencode(params)}"}]
        return out

    # -- glance ---------------------------------------------------------------------------------------------

    def _image_versions(self) -> dict[str, Any]:
        return {"versions": [
            {"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": f"{self.image_url}/v2/"}]},
            {"id": "v2.15", "status": "SUPPORTED", "links": [{"rel": "self", "href": f"{self.image_url}/v2/"}]},
        ]}

    def _image_body(self, image: dict[str, Any]) -> dict[str, Any]:
        return {"status": "active", "visibility": "public", "container_format": "bare", "disk_format": "qcow2",
                "min_ram": 0, "min_disk": 0, "protected": False, "tags": [], "size": 21430272,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                "self": f"/v2/images/{image['id']}", "file": f"/v2/images/{image['id']}/file",
                "schema": "/v2/schemas/image", **image}

    def _image(self, method: str, rest: str, query: dict[str, list[str]]) -> Answer:
        if method == "GET" and rest == "/v2/images":
            name = query.get("name", [None])[0]
            found = [self._image_body(i) for i in self.images if name is None or i["name"] == name]
            return 200, {}, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"}
        match = re.fullmatch(r"/v2/images/([^/]+)", rest)
        if method == "GET" and match:
            for image in self.images:
                if image["id"] == match.group(1):
                    return 200, {}, self._image_body(image)
            raise Reply(404, {"code": 404, "title": "Not Found",
                               "message": f"No image found with ID {match.group(1)}"})
        raise Reply(404, {"code": 404, "title": "Not Found", "message": "The resource could not be found."})


@contextmanager
def running_standin(**kwargs: Any) -> Iterator[OpenStackStandin]:
    """``with running_standin(build_polls=2) as cloud:`` — a started stand-in, stopped afterwards."""
    standin = OpenStackStandin(**kwargs)
    with standin:
        yield standin
