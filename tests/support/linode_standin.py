"""A stand-in of the Linode API v4 on 127.0.0.1, for tests: the real linode-api4 SDK talks to it (base URL
``<url>/v4``); only the far end is stood in. It follows the documented requests and responses of the
endpoints the ``linode`` provider uses:

- ``GET /v4/linode/instances`` — paginated (``page``, ``page_size``; ``{"data", "page", "pages", "results"}``),
  filtered by the ``X-Filter`` header (``{"tags": {"+contains": "web"}}``, ``{"label": {"+contains": ..}}``,
  plain equality, ``+neq``, ``+gt``/``+gte``/``+lt``/``+lte``, ``+and``/``+or``; ``+contains`` is read as a
  substring match, also within each tag). ``POST /v4/linode/instances`` (type, region, image, root_pass or
  keys, label — unique on the account —, tags, private_ip, firewall_id, stackscript_id/stackscript_data,
  metadata.user_data) answers the new Linode, ``provisioning``; it never echoes ``root_pass``.
- ``GET`` / ``DELETE /v4/linode/instances/{id}``, ``GET /v4/linode/instances/{id}/ips`` (``ipv4.public``,
  ``ipv4.private``, ``ipv6.slaac``...).
- ``GET /v4/nodebalancers/{id}/configs/{config}``; ``GET`` / ``POST .../nodes`` and ``GET`` / ``PUT`` /
  ``DELETE .../nodes/{node}``: nodes ``{"id", "label", "address": "IP:PORT", "mode", "weight", "status",
  "config_id", "nodebalancer_id"}``, ``mode`` accept / reject / drain / backup, address a private IPv4.

Every request must carry ``Authorization: Bearer <token>`` (401 ``{"errors": [{"reason": "Invalid Token"}]}``).
Errors have Linode's shape ``{"errors": [{"reason": ..., "field": ...}]}``.

Life cycle: a Linode is ``provisioning`` for ``boot_polls`` observations (a GET of it, or its appearance in a
listing) and at least ``boot_seconds``, then ``booting`` for one more, then ``running``; ``plan_boots("stuck")``
makes the next ones never get there. A Linode created with ``private_ip`` gets an address of 192.168.128.0/17.
After ``DELETE`` it shows ``deleting`` for ``delete_polls`` observations, then is gone (404). A node's
``status`` is ``UP`` while a running Linode has its address, else ``DOWN`` (``set_node_health`` overrides it).

Faults: ``fail_next(count, status, ...)`` makes the next matching requests answer ``status`` with Linode's
error body (and ``Retry-After`` when given); ``stall_next`` makes them wait before answering. ``requests``
records every request (method, path, query, headers, JSON body, status answered, monotonic time). The server,
the request log and the fault plans are the ones of every stand-in (``http_standin.HttpStandin``).

Also here: ``linode_config`` (a provider config pointed at a stand-in) and ``linode_contract_provider`` (the
factory of the provider contract suite).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import itertools
import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.http_standin import Answer, FaultPlan, HttpStandin, Reply, reason_phrase, take_plan
from tests.support.http_standin import Recorded as Recorded

TOKEN = "standin-linode-token-Qx81vTzK"
REGIONS = ("us-east", "us-central", "eu-west")
TYPES = ("g6-nanode-1", "g6-standard-1", "g6-standard-2")
IMAGES = ("linode/debian12", "linode/ubuntu24.04")
STACKSCRIPT_ID = 10079
FIREWALL_ID = 9001
NODEBALANCER_ID = 4242
CONFIG_ID = 5150
CONFIG_PORT = 80

_PRIVATE = ipaddress.ip_network("192.168.128.0/17")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_KEY_TYPES = ("ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp")
_NODE_MODES = ("accept", "reject", "drain", "backup")
_FILTERABLE = ("id", "label", "tags", "region", "type", "image", "status", "group")
_API = r"^/v4/."


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class _BootPlan:
    remaining: int | None  # None: every Linode from now on
    name: re.Pattern[str] | None  # of the label


@dataclass
class _Linode:
    body: dict[str, Any]
    created: float
    stuck: bool = False
    polls: int = 0
    deleting: bool = False
    delete_polls: int = 0
    private_ip: str | None = None
    public_ip: str = ""
    root_pass_given: bool = False


def linode_error(status: int, reason: str, field: str | None = None) -> Reply:
    """Linode's error body: ``{"errors": [{"reason": "...", "field": "..."}]}``."""
    error = {"reason": reason} if field is None else {"reason": reason, "field": field}
    return Reply(status, {"errors": [error]})


@dataclass
class LinodeStandin(HttpStandin):
    """The Linode API stand-in; use as a context manager (``with LinodeStandin() as api``)."""

    thread_name = "linode-standin"
    fault_path = _API
    recorded_headers = ("authorization", "x-filter", "content-type", "user-agent")

    token: str = TOKEN
    boot_polls: int = 1
    boot_seconds: float = 0.0
    delete_polls: int = 1
    page_size: int = 100  # the API's default page size (it accepts 25-500; here any from 1, for small pages)
    configs: dict[int, dict[int, int]] = field(default_factory=lambda: {NODEBALANCER_ID: {CONFIG_ID: CONFIG_PORT}})

    linodes: dict[int, _Linode] = field(default_factory=dict, init=False)
    nodes: dict[tuple[int, int], dict[int, dict[str, Any]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._plans: list[_BootPlan] = []
        self._health: dict[str, str] = {}
        self._ids = itertools.count(41_000_001)
        self._node_ids = itertools.count(701)
        self._ip_numbers = itertools.count(10)
        for nb, configs in self.configs.items():
            for config in configs:
                self.nodes[(nb, config)] = {}

    @property
    def api_url(self) -> str:
        """The SDK's ``base_url``: it includes ``/v4``."""
        return f"{self.url}/v4"

    # -- test controls --------------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int, *, method: str | None = None, path: str = _API,
                  retry_after: float | str | None = None, reason: str | None = None, field: str | None = None,
                  after: int = 0) -> None:
        """The next ``count`` requests matching ``method`` and ``path`` (a regex) answer ``status`` with
        ``{"errors": [{"reason", "field"}]}`` — once ``after`` matching requests have been served normally."""
        self._plan_fault(count, status, method=method, path=path, retry_after=retry_after, after=after,
                         reason=reason or f"injected fault: {reason_phrase(status)}", field=field)

    def plan_boots(self, *, count: int | None = None, label: str | None = None) -> None:
        """The next ``count`` Linodes created (all when None; those whose label matches ``label``) never reach
        ``running``: they stay ``provisioning`` / ``booting``."""
        with self._lock:
            self._plans.append(_BootPlan(count, re.compile(label) if label else None))

    def set_node_health(self, address: str, status: str | None) -> None:
        """Force the health-check ``status`` (``UP`` / ``DOWN``) of nodes at ``address``; None: computed again."""
        with self._lock:
            if status is None:
                self._health.pop(address, None)
            else:
                self._health[address] = status

    def add_linode(self, label: str, tags: list[str] | None = None, status: str = "running",
                   private_ip: bool = True) -> int:
        """A Linode created by someone else (not through the API under test). Returns its id."""
        with self._lock:
            linode = self._new_linode({"label": label, "tags": tags or [], "type": TYPES[0], "region": REGIONS[0],
                                       "image": IMAGES[0], "private_ip": private_ip}, stuck=False)
            linode.body["status"] = status
            return int(linode.body["id"])

    def add_node(self, address: str, label: str = "manual", mode: str = "accept",
                 nodebalancer: int = NODEBALANCER_ID, config: int = CONFIG_ID) -> int:
        """A node added by someone else. Returns its id."""
        with self._lock:
            return int(self._new_node(nodebalancer, config, {"label": label, "address": address, "mode": mode})["id"])

    def live_linodes(self) -> list[dict[str, Any]]:
        """Bodies of the Linodes that exist (including those being deleted)."""
        with self._lock:
            return [json.loads(json.dumps(x.body)) for x in self.linodes.values()]

    def node_list(self, nodebalancer: int = NODEBALANCER_ID, config: int = CONFIG_ID) -> list[dict[str, Any]]:
        with self._lock:
            return [self._node_body(n) for n in self.nodes[(nodebalancer, config)].values()]

    def private_ip(self, linode_id: int) -> str | None:
        with self._lock:
            return self.linodes[linode_id].private_ip

    # -- dispatch -------------------------------------------------------------------------------------------

    def fault_reply(self, fault: FaultPlan) -> Reply:
        return linode_error(fault.status, fault.detail["reason"], fault.detail["field"])

    def internal_error(self, exc: Exception) -> Any:
        return {"errors": [{"reason": f"stand-in error: {exc!r}"}]}

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> Answer:
        if not path.startswith("/v4/"):
            raise linode_error(404, "Not found")
        if headers.get("Authorization") != f"Bearer {self.token}":
            raise linode_error(401, "Invalid Token")
        rest = path[len("/v4"):]
        if rest == "/linode/instances":
            if method == "GET":
                flt = self._filter(headers.get("X-Filter"))
                visible = []
                for linode in sorted(self.linodes.values(), key=lambda x: x.body["id"]):
                    try:
                        seen = self._observe(linode)
                    except Reply:
                        continue  # gone
                    if flt is None or _matches(seen, flt):
                        visible.append(seen)
                return 200, {}, self._page(visible, query)
            if method == "POST":
                return 200, {}, self._create_linode(body)
        match = re.fullmatch(r"/linode/instances/(\d+)(/ips)?", rest)
        if match:
            linode = self.linodes.get(int(match.group(1)))
            if linode is None:
                raise linode_error(404, "Not found")
            if match.group(2) and method == "GET":
                return 200, {}, self._ips(linode)
            if method == "GET":
                return 200, {}, self._observe(linode)
            if method == "DELETE":
                linode.deleting = True
                linode.body["status"] = "deleting"
                return 200, {}, {}
        match = re.fullmatch(r"/nodebalancers/(\d+)/configs/(\d+)(/nodes(?:/(\d+))?)?", rest)
        if match:
            key = (int(match.group(1)), int(match.group(2)))
            if key not in self.nodes:
                raise linode_error(404, "Not found")
            if match.group(3) is None and method == "GET":
                return 200, {}, self._config_body(*key)
            if match.group(4) is None:
                if method == "GET":
                    return 200, {}, self._page([self._node_body(n) for n in self.nodes[key].values()], query)
                if method == "POST":
                    return 200, {}, self._node_body(self._new_node(*key, body if isinstance(body, dict) else {}))
            else:
                node = self.nodes[key].get(int(match.group(4)))
                if node is None:
                    raise linode_error(404, "Not found")
                if method == "GET":
                    return 200, {}, self._node_body(node)
                if method == "PUT":
                    self._check_node(key, body if isinstance(body, dict) else {}, partial=True, current=node)
                    node.update({k: v for k, v in (body or {}).items() if k in ("label", "address", "weight", "mode")})
                    return 200, {}, self._node_body(node)
                if method == "DELETE":
                    del self.nodes[key][node["id"]]
                    return 200, {}, {}
        raise linode_error(404, "Not found")

    def _filter(self, text: str | None) -> dict[str, Any] | None:
        if not text:
            return None
        try:
            flt = json.loads(text)
        except ValueError:
            raise linode_error(400, "Invalid JSON in X-Filter header", "X-Filter") from None
        if not isinstance(flt, dict):
            raise linode_error(400, "X-Filter must be an object", "X-Filter")
        _check_filter(flt)
        return flt

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", [str(self.page_size)])[0])
        except ValueError:
            raise linode_error(400, "Must be an integer", "page") from None
        if page < 1 or not 1 <= size <= 500:
            raise linode_error(400, "Must be 25-500" if size > 500 else "Must be at least 1", "page_size")
        pages = max(1, math.ceil(len(items) / size))
        return {"data": items[(page - 1) * size:page * size], "page": page, "pages": pages, "results": len(items)}

    # -- linodes --------------------------------------------------------------------------------------------

    def _create_linode(self, body: Any) -> dict[str, Any]:
        spec = body if isinstance(body, dict) else {}
        if spec.get("type") not in TYPES:
            raise linode_error(400, "A valid plan type by that ID was not found", "type")
        if spec.get("region") not in REGIONS:
            raise linode_error(400, "region is not valid", "region")
        image = spec.get("image")
        if image is not None and image not in IMAGES:
            raise linode_error(400, "image is not valid", "image")
        root_pass = spec.get("root_pass")
        if image is not None and not (root_pass or spec.get("authorized_keys") or spec.get("authorized_users")):
            raise linode_error(400, "root_pass is required when deploying from an image", "root_pass")
        if root_pass is not None and (not isinstance(root_pass, str) or len(root_pass) < 11 or len(root_pass) > 128):
            raise linode_error(400, "Password does not meet strength requirement.", "root_pass")
        label = spec.get("label")
        if label is not None:
            if not isinstance(label, str) or not 3 <= len(label) <= 64:
                raise linode_error(400, "Length must be 3-64 characters", "label")
            if not _LABEL.fullmatch(label) or any(t in label for t in ("--", "__", "..")):
                raise linode_error(400, "Labels must begin and end with alphanumeric characters and may only "
                                        "contain alphanumerics, dashes, underscores and periods, without "
                                        "two of them in a row", "label")
            if any(x.body["label"] == label for x in self.linodes.values()):
                raise linode_error(400, "Label must be unique among your linodes", "label")
        tags = spec.get("tags") or []
        if not isinstance(tags, list) or any(not isinstance(t, str) or not 3 <= len(t) <= 50 for t in tags):
            raise linode_error(400, "Length must be 3-50 characters", "tags")
        for key in spec.get("authorized_keys") or []:
            if not isinstance(key, str) or not key.startswith(_KEY_TYPES):
                raise linode_error(400, "Invalid SSH key", "authorized_keys")
        firewall = spec.get("firewall_id")
        if firewall is not None and firewall != FIREWALL_ID:
            raise linode_error(400, "Firewall not found", "firewall_id")
        stackscript = spec.get("stackscript_id")
        if stackscript is not None and stackscript != STACKSCRIPT_ID:
            raise linode_error(400, "StackScript not found", "stackscript_id")
        if "stackscript_data" in spec and not isinstance(spec["stackscript_data"], dict):
            raise linode_error(400, "Must be an object", "stackscript_data")
        user_data = (spec.get("metadata") or {}).get("user_data")
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise linode_error(400, "Must be valid base64", "metadata.user_data") from None
        if not isinstance(spec.get("private_ip", False), bool):
            raise linode_error(400, "Must be a boolean", "private_ip")
        linode = self._new_linode(spec, stuck=take_plan(self._plans, label or "") is not None)
        linode.root_pass_given = root_pass is not None
        return json.loads(json.dumps(linode.body))

    def _new_linode(self, spec: dict[str, Any], stuck: bool) -> _Linode:
        linode_id = next(self._ids)
        n = next(self._ip_numbers)
        public = f"198.18.{n // 256}.{n % 256}"
        private = f"192.168.{128 + n // 256}.{n % 256}" if spec.get("private_ip") else None
        now = _iso(datetime.now(UTC))
        body = {
            "id": linode_id, "label": spec.get("label") or f"linode{linode_id}", "group": "",
            "status": "provisioning", "created": now, "updated": now, "type": spec["type"],
            "region": spec["region"], "image": spec.get("image"),
            "ipv4": [public] + ([private] if private else []), "ipv6": f"2600:3c00::f03c:91ff:fe00:{n:x}/128",
            "specs": {"disk": 25600, "memory": 1024, "vcpus": 1, "gpus": 0, "transfer": 1000},
            "alerts": {"cpu": 90, "network_in": 10, "network_out": 10, "transfer_quota": 80, "io": 10000},
            "backups": {"enabled": False, "available": False, "schedule": {"day": None, "window": None},
                        "last_successful": None},
            "hypervisor": "kvm", "watchdog_enabled": True, "tags": list(spec.get("tags") or []),
            "host_uuid": f"{linode_id:032x}", "has_user_data": bool((spec.get("metadata") or {}).get("user_data")),
            "disk_encryption": "disabled", "lke_cluster_id": None, "capabilities": [],
        }
        linode = _Linode(body=body, created=time.monotonic(), stuck=stuck, private_ip=private, public_ip=public)
        self.linodes[linode_id] = linode
        return linode

    def _observe(self, linode: _Linode) -> dict[str, Any]:
        """The Linode's body as one more read sees it, advancing its life cycle."""
        body = linode.body
        if linode.deleting:
            linode.delete_polls += 1
            if linode.delete_polls > self.delete_polls:
                del self.linodes[body["id"]]
                raise linode_error(404, "Not found")
        elif body["status"] in ("provisioning", "booting"):
            linode.polls += 1
            timely = time.monotonic() - linode.created >= self.boot_seconds
            if linode.stuck:
                body["status"] = "booting" if linode.polls > self.boot_polls else "provisioning"
            elif linode.polls > self.boot_polls + 1 and timely:
                body["status"] = "running"
            elif linode.polls > self.boot_polls and timely:
                body["status"] = "booting"
        return json.loads(json.dumps(body))

    def _ips(self, linode: _Linode) -> dict[str, Any]:
        def ip(address: str, public: bool, prefix: int, mask: str, gateway: str | None) -> dict[str, Any]:
            return {"address": address, "gateway": gateway, "subnet_mask": mask, "prefix": prefix,
                    "type": "ipv4" if "." in address else "ipv6", "public": public, "rdns": None,
                    "linode_id": linode.body["id"], "region": linode.body["region"], "vpc_nat_1_1": None}

        slaac = linode.body["ipv6"].split("/")[0]
        return {
            "ipv4": {
                "public": [ip(linode.public_ip, True, 24, "255.255.255.0", linode.public_ip.rsplit(".", 1)[0] + ".1")],
                "private": [ip(linode.private_ip, False, 17, "255.255.128.0", None)] if linode.private_ip else [],
                "shared": [], "reserved": [], "vpc": [],
            },
            "ipv6": {"slaac": ip(slaac, True, 64, "ffff:ffff:ffff:ffff::", "fe80::1"),
                     "link_local": ip("fe80::f03c:91ff:fe00:1", False, 64, "ffff:ffff:ffff:ffff::", "fe80::1"),
                     "global": []},
        }

    # -- nodebalancers --------------------------------------------------------------------------------------

    def _config_body(self, nodebalancer: int, config: int) -> dict[str, Any]:
        nodes = [self._node_body(n) for n in self.nodes[(nodebalancer, config)].values()]
        return {"id": config, "nodebalancer_id": nodebalancer, "port": self.configs[nodebalancer][config],
                "protocol": "http", "algorithm": "roundrobin", "stickiness": "none", "check": "connection",
                "check_interval": 5, "check_timeout": 3, "check_attempts": 2, "check_path": "",
                "check_body": "", "check_passive": True, "cipher_suite": "recommended", "proxy_protocol": "none",
                "ssl_commonname": "", "ssl_fingerprint": "", "ssl_cert": None, "ssl_key": None,
                "nodes_status": {"up": sum(n["status"] == "UP" for n in nodes),
                                 "down": sum(n["status"] != "UP" for n in nodes)}}

    def _check_node(self, key: tuple[int, int], spec: dict[str, Any], partial: bool,
                    current: dict[str, Any] | None = None) -> None:
        if not partial or "label" in spec:
            label = spec.get("label")
            if not isinstance(label, str) or not 2 <= len(label) <= 32:
                raise linode_error(400, "Length must be 2-32 characters", "label")
        if not partial or "address" in spec:
            address = spec.get("address")
            match = re.fullmatch(r"(\d+\.\d+\.\d+\.\d+):(\d+)", address) if isinstance(address, str) else None
            if match is None or not 1 <= int(match.group(2)) <= 65535:
                raise linode_error(400, "Must be a private IPv4 address and port, like 192.168.210.120:80", "address")
            if ipaddress.ip_address(match.group(1)) not in _PRIVATE:
                raise linode_error(400, "Must begin with 192.168", "address")
        if "mode" in spec and spec["mode"] not in _NODE_MODES:
            raise linode_error(400, "Must be one of accept, reject, drain, backup", "mode")
        weight = spec.get("weight")
        if weight is not None and (not isinstance(weight, int) or not 1 <= weight <= 255):
            raise linode_error(400, "Must be 1-255", "weight")

    def _new_node(self, nodebalancer: int, config: int, spec: dict[str, Any]) -> dict[str, Any]:
        key = (nodebalancer, config)
        self._check_node(key, spec, partial=False)
        node = {"id": next(self._node_ids), "label": spec["label"], "address": spec["address"],
                "mode": spec.get("mode") or "accept", "weight": spec.get("weight") or 100,
                "config_id": config, "nodebalancer_id": nodebalancer}
        self.nodes[key][node["id"]] = node
        return node

    def _node_body(self, node: dict[str, Any]) -> dict[str, Any]:
        ip = node["address"].rsplit(":", 1)[0]
        serving = any(x.private_ip == ip and x.body["status"] == "running" and not x.deleting
                      for x in self.linodes.values())
        status = self._health.get(node["address"], "UP" if serving else "DOWN")
        return {**node, "status": status}


def _check_filter(flt: dict[str, Any]) -> None:
    for key, cond in flt.items():
        if key in ("+and", "+or"):
            if not isinstance(cond, list):
                raise linode_error(400, f"{key} must be a list", "X-Filter")
            for part in cond:
                _check_filter(part)
        elif key in ("+order_by", "+order"):
            continue
        elif key not in _FILTERABLE:
            raise linode_error(400, f"Cannot filter on {key}", "X-Filter")


def _matches(body: dict[str, Any], flt: dict[str, Any]) -> bool:
    for key, cond in flt.items():
        if key == "+and":
            ok = all(_matches(body, part) for part in cond)
        elif key == "+or":
            ok = any(_matches(body, part) for part in cond)
        elif key in ("+order_by", "+order"):
            continue
        else:
            ok = _match_value(body.get(key), cond)
        if not ok:
            return False
    return True


def _match_value(value: Any, cond: Any) -> bool:
    if not isinstance(cond, dict):
        return cond in value if isinstance(value, list) else value == cond
    for op, arg in cond.items():
        if op == "+contains":
            ok = any(str(arg) in str(v) for v in value) if isinstance(value, list) else str(arg) in str(value)
        elif op == "+neq":
            ok = arg not in value if isinstance(value, list) else value != arg
        elif op in ("+gt", "+gte", "+lt", "+lte"):
            ok = {"+gt": value > arg, "+gte": value >= arg, "+lt": value < arg, "+lte": value <= arg}[op]
        else:
            raise linode_error(400, f"Unknown filter operator {op}", "X-Filter")
        if not ok:
            return False
    return True


@contextmanager
def running_standin(**kwargs: Any) -> Iterator[LinodeStandin]:
    """``with running_standin(boot_polls=2) as api:`` — a started stand-in, stopped afterwards."""
    with LinodeStandin(**kwargs) as standin:
        yield standin


# -- the provider, pointed at a stand-in ---------------------------------------------------------------------


def linode_config(api: LinodeStandin, **overrides: Any) -> Any:
    """A ``linode`` provider config for ``api``: a NodeBalancer config, quick polling, a short drain."""
    from alertscaler.providers.linode.config import LinodeConfig

    values: dict[str, Any] = {
        "type": "linode",
        "token": api.token,
        "api_url": api.api_url,
        "region": REGIONS[0],
        "linode_type": TYPES[0],
        "image": IMAGES[0],
        "nodebalancer": {"id": NODEBALANCER_ID, "config_id": CONFIG_ID, "port": 9100},
        "boot_timeout": "10s",
        "delete_timeout": "10s",
        "drain_time": "20ms",
        "poll_interval": "10ms",
        "request_timeout": "5s",
    }
    values.update(overrides)
    return LinodeConfig.model_validate(values)


def linode_contract_provider(state_dir: Path, group: str = "contract") -> tuple[Any, Any]:
    """``PROVIDER_FACTORIES["linode"]``: one stand-in per state directory, shared by every provider made on it
    (a "restart" sees the same Linodes), stopped with the last cleanup."""
    from alertscaler.providers.linode.provider import LinodeProvider
    from tests.support.http_standin import contract_provider

    return contract_provider(state_dir, group, LinodeStandin,
                             lambda api, context: LinodeProvider(linode_config(api), context))
