"""A stand-in of the Kubernetes API server on 127.0.0.1, for tests: the real ``kubernetes`` client talks to it.

It follows the documented requests and responses of the API (kubernetes.io API reference: apps/v1 Deployment,
StatefulSet and ReplicaSet, autoscaling/v1 Scale, core/v1 Pod, meta/v1 Status):

- ``GET /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}`` (and ``.../status``): the object;
- ``GET`` / ``PATCH .../{name}/scale``: an ``autoscaling/v1`` ``Scale`` (``spec.replicas`` omitted when 0, as the
  API's ``omitempty`` does; ``status.replicas`` and ``status.selector`` in the query syntax). PATCH accepts
  ``application/merge-patch+json``, ``application/strategic-merge-patch+json`` (``{"spec": {"replicas": N}}``)
  and ``application/json-patch+json``; anything else is 415. A change of ``spec.replicas`` bumps the
  workload's ``metadata.generation``;
- ``GET /apis/apps/v1/namespaces/{ns}/replicasets/{name}``;
- ``GET /api/v1/namespaces/{ns}/pods`` with ``labelSelector`` (``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (..)``,
  ``a``, ``!a``) and ``fieldSelector=metadata.name=X``; ``GET`` and ``DELETE .../pods/{name}`` (``DeleteOptions``
  with ``preconditions.uid``: 409 Conflict when it does not match).

Errors are ``Status`` bodies (``{"kind": "Status", "status": "Failure", "message", "reason", "code", "details"}``);
every request needs ``Authorization: Bearer <token>`` (401 ``Unauthorized`` otherwise).

A tiny controller runs once per request (a "tick", before the request is answered): a Deployment's one ReplicaSet
keeps ``spec.replicas`` active pods (named ``<deployment>-<hash>-<5 chars>``, owned by the ReplicaSet, which is
owned by the Deployment; a deleted or failed pod is replaced at once, extra pods are deleted not-ready first,
then newest); a StatefulSet keeps pods ``<name>-0..N-1`` (OrderedReady: the next ordinal once the previous ones
are Ready; scale-in from the highest ordinal, one at a time; a deleted pod comes back under the same name, with
a new uid, once the old one is gone). Workload ``status`` (``observedGeneration``, ``replicas``,
``readyReplicas``...) follows. A new pod is ``Pending`` (unscheduled, then ``ContainerCreating``) and becomes
``Running`` / ``Ready`` with a ``podIP`` after ``ready_after`` ticks and at least ``ready_seconds``; a deleted pod
shows ``deletionTimestamp`` for ``terminate_after`` ticks, then is gone.

Test controls: ``add_deployment`` / ``add_statefulset`` / ``add_pod`` (a pod no controller owns);
``plan_pods(outcome)`` makes the next pods ``never_ready`` (Running, readiness failing), ``crashloop``
(``CrashLoopBackOff``), ``unschedulable`` (Pending, ``Unschedulable``) or ``evicted`` (``Failed``);
``fail_next(count, status, ...)`` answers matching requests with ``status`` (a ``Status`` body, or for 429 the
API server's plain-text rate-limit answer, with ``Retry-After``); ``stall_next`` delays answers (client
timeouts). ``tls=True`` serves HTTPS with a throw-away CA (``ca_file``). ``requests`` records every request
(method, path, query, headers, JSON body, answered status, monotonic time). The server, the request log and the
fault plans are the ones of every stand-in (``http_standin.HttpStandin``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import random
import re
import shutil
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.http_standin import Answer, FaultPlan, HttpStandin, Reply, reason_phrase, take_plan
from tests.support.http_standin import Recorded as Recorded

TOKEN = "standin-k8s-token-Vb7qZr2Lw9"
NAMESPACE = "default"
NODES = ("node-a", "node-b", "node-c")
OUTCOMES = ("ready", "never_ready", "crashloop", "unschedulable", "evicted")

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}  # Status.reason
_RATE_LIMITED = "Too many requests, please try again later.\n"  # the API server's max-in-flight / APF answer
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json")
_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, message: str, reason: str | None = None,
                details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``meta/v1`` ``Status`` of a failed call."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason or _REASONS.get(code, ""), "code": code}
    if details:
        body["details"] = details
    return body


def _error(code: int, message: str, reason: str | None = None, **details: Any) -> Reply:
    return Reply(code, status_body(code, message, reason, details or None))


def _not_found(resource: str, name: str, group: str = "") -> Reply:
    plural = f"{resource}.{group}" if group else resource
    return _error(404, f'{plural} "{name}" not found', name=name, group=group or None, kind=resource)


@dataclass
class _Plan:
    outcome: str
    remaining: int | None
    name: re.Pattern[str] | None


@dataclass
class _Pod:
    body: dict[str, Any]
    outcome: str
    born: float
    ticks: int = 0
    deleting_ticks: int = 0

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.body["metadata"]["uid"])

    @property
    def deleting(self) -> bool:
        return bool(self.body["metadata"].get("deletionTimestamp"))

    @property
    def active(self) -> bool:
        """Counted by its controller: not being deleted, not ended (ReplicaSets replace failed pods)."""
        return not self.deleting and self.body["status"].get("phase") not in ("Failed", "Succeeded")

    @property
    def ready(self) -> bool:
        return self.active and any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in self.body["status"].get("conditions", []))


# -- label selectors (the server side: parsed from the query string) ----------------------------------------

_REQUIREMENT = [
    (re.compile(r"^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$"), "compare"),
    (re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$"), "set"),
    (re.compile(r"^(!?)([\w./-]+)$"), "exists"),
]


def parse_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """``labelSelector`` → requirements ``(key, op, values)``; 400 when it does not parse."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    requirements = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        for pattern, kind in _REQUIREMENT:
            match = pattern.match(part)
            if match is None:
                continue
            if kind == "compare":
                op = "!=" if match.group(2) == "!=" else "="
                requirements.append((match.group(1), op, {match.group(3)}))
            elif kind == "set":
                values = {v.strip() for v in match.group(3).split(",") if v.strip()}
                requirements.append((match.group(1), match.group(2), values))
            else:
                requirements.append((match.group(2), "!" if match.group(1) else "exists", set()))
            break
        else:
            raise _error(400, f"unable to parse requirement: found '{part}', expected: identifier")
    return requirements


def selector_matches(requirements: list[tuple[str, str, set[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        if op == "=" and labels.get(key) not in values:
            return False
        if op == "!=" and present and labels[key] in values:
            return False
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def label_selector_text(selector: dict[str, Any]) -> str:
    """A ``LabelSelector`` in query syntax, as the API server writes ``Scale.status.selector``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(sorted(expr.get("values") or []))
        op = expr["operator"]
        parts.append({"In": f"{expr['key']} in ({values})", "NotIn": f"{expr['key']} notin ({values})",
                      "Exists": expr["key"], "DoesNotExist": f"!{expr['key']}"}[op])
    return ",".join(parts)


# -- the server --------------------------------------------------------------------------------------------


@dataclass
class KubernetesStandin(HttpStandin):
    """The API server stand-in; use as a context manager (``with KubernetesStandin() as api``)."""

    thread_name = "kubernetes-standin"
    fault_path = r"^/api"
    recorded_headers = ("authorization", "content-type", "user-agent", "accept")
    lowercase_headers = True

    token: str = TOKEN
    ready_after: int = 2  # ticks (requests) after creation before a pod runs
    ready_seconds: float = 0.0  # ... and at least this long
    terminate_after: int = 1  # ticks a deleted pod shows deletionTimestamp before it is gone
    tls: bool = False

    ticks: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._plans: list[_Plan] = []
        self.workloads: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name) -> object
        self.replicasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], _Pod] = {}
        self._versions = itertools.count(1000)
        self._ips = itertools.count(10)
        self._nodes = itertools.count()
        self._random = random.Random(7)
        self._tls_dir: Path | None = None
        self.ca_file: str | None = None

    # -- life cycle ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """With ``tls``: a throw-away CA and a server certificate for 127.0.0.1 signed by it (``ca_file`` = the
        CA)."""
        if not self.tls:
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._tls_dir = Path(tempfile.mkdtemp(prefix="k8s-standin-tls-"))
        now = _now()
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin-ca")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
              .not_valid_after(now + timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        ca_path, cert_path, key_path = (self._tls_dir / n for n in ("ca.crt", "tls.crt", "tls.key"))
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.ca_file = str(ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context

    # -- test controls ---------------------------------------------------------------------------------------

    def add_deployment(self, name: str, *, namespace: str = NAMESPACE, replicas: int = 0,
                       labels: dict[str, str] | None = None, selector: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Deployment whose pods carry ``labels`` (default ``{app: name}``), selected by ``selector`` (default
        ``matchLabels: labels``), and its ReplicaSet."""
        with self._lock:
            labels = labels or {"app": name}
            body = self._workload("Deployment", name, namespace, replicas, labels, selector)
            body["spec"]["strategy"] = {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
            body["spec"].update(revisionHistoryLimit=10, progressDeadlineSeconds=600)
            body["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
            self.workloads[("deployments", namespace, name)] = body
            template_hash = "".join(_NAME_CHARS[b % len(_NAME_CHARS)]
                                    for b in hashlib.sha256(name.encode()).digest()[:10])
            rs_name = f"{name}-{template_hash}"
            rs_labels = {**labels, "pod-template-hash": template_hash}
            rs_selector = json.loads(json.dumps(body["spec"]["selector"]))
            rs_selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
            self.replicasets[(namespace, rs_name)] = {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "resourceVersion": self._version(), "generation": 1,
                             "creationTimestamp": _ts(_now()), "labels": rs_labels,
                             "annotations": {"deployment.kubernetes.io/revision": "1"},
                             "ownerReferences": [self._owner_ref(body)]},
                "spec": {"replicas": replicas, "selector": rs_selector,
                         "template": {"metadata": {"labels": rs_labels}, "spec": body["spec"]["template"]["spec"]}},
                "status": {"replicas": 0, "observedGeneration": 1},
            }
            self._reconcile()
            return json.loads(json.dumps(body))

    def add_statefulset(self, name: str, *, namespace: str = NAMESPACE, replicas: int = 0,
                        labels: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            labels = labels or {"app": name}
            body = self._workload("StatefulSet", name, namespace, replicas, labels, None)
            body["spec"].update(serviceName=name, podManagementPolicy="OrderedReady", revisionHistoryLimit=10,
                                updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                                persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain",
                                                                      "whenScaled": "Retain"})
            self.workloads[("statefulsets", namespace, name)] = body
            self._reconcile()
            return json.loads(json.dumps(body))

    def add_pod(self, name: str, labels: dict[str, str], *, namespace: str = NAMESPACE,
                outcome: str = "ready") -> str:
        """A pod no controller owns (created by hand: ``kubectl run``, a debug pod). Returns its uid."""
        with self._lock:
            pod = self._new_pod(namespace, name, labels, None, outcome)
            return pod.uid

    def plan_pods(self, outcome: str, *, count: int | None = None, name: str | None = None) -> None:
        """The next ``count`` pods created (all when None; those whose name matches the regex ``name``) end as
        ``outcome``: ``never_ready``, ``crashloop``, ``unschedulable``, ``evicted`` or ``ready``."""
        assert outcome in OUTCOMES, outcome
        with self._lock:
            self._plans.insert(0, _Plan(outcome, count, re.compile(name) if name else None))

    def fail_next(self, count: int, status: int, *, method: str | None = None, path: str = r"^/api",
                  retry_after: float | str | None = None, message: str | None = None, reason: str | None = None,
                  plain: bool | None = None, header: bool = True, after: int = 0) -> None:
        """The next ``count`` requests matching ``method`` and ``path`` (a regex) answer ``status`` — once ``after``
        matching requests have been served normally. The body is a ``Status`` with ``message``; for 429 it is
        the API server's plain-text rate-limit answer unless ``plain=False``. ``retry_after`` goes into the
        ``Retry-After`` header (unless ``header=False``) and, for a 429 ``Status``, ``details.retryAfterSeconds``."""
        self._plan_fault(count, status, method=method, path=path, retry_after=retry_after, after=after,
                         retry_header=header, message=message, reason=reason,
                         plain=status == 429 if plain is None else plain)

    def pod_bodies(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        """Every pod that exists in ``namespace`` (including those being deleted), by name."""
        with self._lock:
            found = [p.body for (ns, _), p in sorted(self.pods.items()) if ns == namespace]
            return json.loads(json.dumps(found))

    def workload(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.workloads[(kind, namespace, name)]))

    def set_replicas(self, kind: str, name: str, replicas: int, namespace: str = NAMESPACE) -> None:
        """Change ``spec.replicas`` behind the provider's back (another client, an HPA)."""
        with self._lock:
            self._set_replicas(self.workloads[(kind, namespace, name)], replicas)

    # -- dispatch --------------------------------------------------------------------------------------------

    def serve(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
              body: Any) -> Answer:
        """Authentication, then a planned fault, then a controller tick, then the API."""
        lowered = {k.lower(): v for k, v in headers.items()}
        self._authorize(lowered)
        self.inject_fault(method, path)
        self.ticks += 1
        self._reconcile()
        return self.dispatch(method, path, query, lowered, body)

    def response_headers(self) -> dict[str, str]:
        return {"Audit-Id": str(uuid.uuid4())}

    def internal_error(self, exc: Exception) -> Any:
        return status_body(500, f"stand-in error: {exc!r}")

    def _authorize(self, headers: dict[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise _error(401, "Unauthorized")

    def fault_reply(self, fault: FaultPlan) -> Reply:
        """A ``Status``, or the plain-text rate-limit answer (``plain``)."""
        message = fault.detail["message"]
        if fault.detail["plain"]:
            return Reply(fault.status, message or _RATE_LIMITED)
        details: dict[str, Any] = {}
        if fault.status == 429 and fault.retry_after is not None:
            details["retryAfterSeconds"] = int(float(fault.retry_after))
        message = message or f"injected fault: {reason_phrase(fault.status, '')}"
        return Reply(fault.status, status_body(fault.status, message, fault.detail["reason"], details or None))

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> Answer:
        match = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)(/scale|/status)?",
                             path)
        if match:
            namespace, plural, name, sub = match.groups()
            workload = self.workloads.get((plural, namespace, name))
            if workload is None:
                raise _not_found(plural, name, "apps")
            if sub == "/scale":
                if method == "GET":
                    return 200, {}, self._scale(workload)
                if method == "PATCH":
                    return 200, {}, self._patch_scale(workload, headers.get("content-type", ""), body)
            elif method == "GET":
                return 200, {}, workload
            raise _error(405, f"the server does not allow this method on the requested resource ({method})")
        match = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/replicasets/([^/]+)", path)
        if match and method == "GET":
            rs = self.replicasets.get((match.group(1), match.group(2)))
            if rs is None:
                raise _not_found("replicasets", match.group(2), "apps")
            return 200, {}, rs
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
        if match and method == "GET":
            return 200, {}, self._list_pods(match.group(1), query)
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", path)
        if match and method in ("GET", "DELETE"):
            pod = self.pods.get((match.group(1), match.group(2)))
            if pod is None:
                raise _not_found("pods", match.group(2))
            if method == "GET":
                return 200, {}, pod.body
            return 200, {}, self._delete_pod(pod, body, query)
        raise _error(404, "the server could not find the requested resource")

    # -- resources -------------------------------------------------------------------------------------------

    def _version(self) -> str:
        return str(next(self._versions))

    @staticmethod
    def _owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
                "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

    def _workload(self, kind: str, name: str, namespace: str, replicas: int, labels: dict[str, str],
                  selector: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "resourceVersion": self._version(), "generation": 1, "creationTimestamp": _ts(_now()),
                         "labels": dict(labels)},
            "spec": {"replicas": replicas,
                     "selector": selector if selector is not None else {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {
                         "containers": [{"name": "app", "image": "registry.example/app:1.0",
                                         "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}],
                         "restartPolicy": "Always", "terminationGracePeriodSeconds": 30}}},
            "status": {},
        }

    def _scale(self, workload: dict[str, Any]) -> dict[str, Any]:
        meta = workload["metadata"]
        spec: dict[str, Any] = {}
        if workload["spec"]["replicas"]:
            spec["replicas"] = workload["spec"]["replicas"]  # ScaleSpec.replicas is omitempty
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"],
                             "creationTimestamp": meta["creationTimestamp"]},
                "spec": spec,
                "status": {"replicas": workload["status"].get("replicas", 0),
                           "selector": label_selector_text(workload["spec"]["selector"])}}

    def _patch_scale(self, workload: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
        kind = content_type.split(";")[0].strip()
        if kind not in _PATCH_TYPES:
            raise _error(415, "the body of the request was in an unknown format - accepted media types include: "
                              + ", ".join(_PATCH_TYPES))
        replicas: Any = workload["spec"]["replicas"]
        if kind == "application/json-patch+json":
            if not isinstance(body, list):
                raise _error(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            for op in body:
                if op.get("op") in ("replace", "add") and op.get("path") == "/spec/replicas":
                    replicas = op.get("value")
        else:
            if not isinstance(body, dict):
                raise _error(400, "error decoding patch: invalid JSON document")
            spec = body.get("spec")
            if isinstance(spec, dict) and "replicas" in spec:
                replicas = spec["replicas"] if spec["replicas"] is not None else 0
        name = workload["metadata"]["name"]
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise _error(400, f'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                              f'{type(replicas).__name__} into Go struct field ScaleSpec.spec.replicas of type int32')
        if replicas < 0:
            raise _error(422, f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {replicas}: '
                              "must be greater than or equal to 0", name=name, group="autoscaling", kind="Scale",
                         causes=[{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                  "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}])
        self._set_replicas(workload, replicas)
        return self._scale(workload)

    def _set_replicas(self, workload: dict[str, Any], replicas: int) -> None:
        if workload["spec"]["replicas"] != replicas:
            workload["spec"]["replicas"] = replicas
            workload["metadata"]["generation"] += 1
            workload["metadata"]["resourceVersion"] = self._version()

    def _list_pods(self, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        requirements = parse_selector(query.get("labelSelector", [""])[0])
        name = None
        for term in filter(None, query.get("fieldSelector", [""])[0].split(",")):
            field_name, _, value = term.partition("=")
            if field_name != "metadata.name":
                raise _error(400, f'field label not supported: {field_name}')
            name = value.lstrip("=")
        items = [p.body for (ns, pod_name), p in sorted(self.pods.items())
                 if ns == namespace and (name is None or pod_name == name)
                 and selector_matches(requirements, p.body["metadata"].get("labels") or {})]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": self._version()},
                "items": items}

    def _delete_pod(self, pod: _Pod, body: Any, query: dict[str, list[str]]) -> dict[str, Any]:
        uid = ((body or {}).get("preconditions") or {}).get("uid") if isinstance(body, dict) else None
        if uid is not None and uid != pod.uid:
            raise _error(409, f'Operation cannot be fulfilled on Pod "{pod.name}": Precondition failed: UID in '
                              f"precondition: {uid}, UID in object meta: {pod.uid}", name=pod.name, kind="pods")
        self._mark_deleted(pod)
        return pod.body

    def _mark_deleted(self, pod: _Pod) -> None:
        meta = pod.body["metadata"]
        if not meta.get("deletionTimestamp"):
            grace = 30
            meta["deletionTimestamp"] = _ts(_now() + timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            meta["resourceVersion"] = self._version()

    # -- pods --------------------------------------------------------------------------------------------------

    def _planned(self, name: str) -> str:
        plan = take_plan(self._plans, name)
        return "ready" if plan is None else plan.outcome

    def _new_pod(self, namespace: str, name: str, labels: dict[str, str], owner: dict[str, Any] | None,
                 outcome: str | None = None, template: dict[str, Any] | None = None) -> _Pod:
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                                "resourceVersion": self._version(), "creationTimestamp": _ts(_now()),
                                "labels": dict(labels)}
        if owner is not None:
            meta["ownerReferences"] = [self._owner_ref(owner)]
            if owner["kind"] == "ReplicaSet":
                meta["generateName"] = f"{owner['metadata']['name']}-"
        spec = json.loads(json.dumps(template)) if template else {
            "containers": [{"name": "app", "image": "registry.example/debug:1.0"}], "restartPolicy": "Always"}
        spec.update(schedulerName="default-scheduler", serviceAccountName="default", dnsPolicy="ClusterFirst")
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                "status": {"phase": "Pending", "qosClass": "BestEffort"}}
        pod = _Pod(body=body, outcome=outcome or self._planned(name), born=time.monotonic())
        self.pods[(namespace, name)] = pod
        return pod

    def _advance(self, pod: _Pod) -> None:
        """One tick of a pod's life: scheduled, then running (ready or not, as planned), or gone once deleted."""
        pod.ticks += 1
        body, status = pod.body, pod.body["status"]
        now = _ts(_now())
        if pod.deleting:
            pod.deleting_ticks += 1
            if pod.deleting_ticks > self.terminate_after:
                del self.pods[(body["metadata"]["namespace"], pod.name)]
            return
        containers = [c["name"] for c in body["spec"]["containers"]]
        if pod.outcome == "unschedulable":
            if status.get("conditions"):
                return
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                     "lastTransitionTime": now, "reason": "Unschedulable",
                                     "message": f"0/{len(NODES)} nodes are available: {len(NODES)} Insufficient "
                                                f"cpu. preemption: 0/{len(NODES)} nodes are available: "
                                                f"{len(NODES)} No preemption victims found for incoming pod."}]
            return
        if "nodeName" not in body["spec"]:
            index = next(self._nodes)
            body["spec"]["nodeName"] = NODES[index % len(NODES)]
            status.update(hostIP=f"192.168.49.{index % len(NODES) + 2}", startTime=now, conditions=[
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(containers)}]"},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": now,
                 "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{' '.join(containers)}]"},
            ], containerStatuses=[{"name": c, "ready": False, "restartCount": 0, "started": False,
                                   "image": "registry.example/app:1.0", "imageID": "",
                                   "state": {"waiting": {"reason": "ContainerCreating"}}} for c in containers])
            return
        if status["phase"] != "Pending":
            return
        if pod.ticks < self.ready_after or time.monotonic() - pod.born < self.ready_seconds:
            return
        octet = next(self._ips)
        status.update(podIP=f"10.244.{octet // 250}.{octet % 250 + 2}")
        status["podIPs"] = [{"ip": status["podIP"]}]
        if pod.outcome == "evicted":
            status.update(phase="Failed", reason="Evicted", message="The node was low on resource: memory. "
                                                                    "Threshold quantity: 100Mi, available: 80Mi.")
            for item in status["containerStatuses"]:
                item["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}
            return
        status["phase"] = "Running"
        ready = pod.outcome == "ready"
        for item in status["containerStatuses"]:
            item.update(ready=ready, started=pod.outcome != "crashloop", containerID=f"containerd://{uuid.uuid4().hex}")
            if pod.outcome == "crashloop":
                item["restartCount"] = 1
                item["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                             "message": f"back-off 10s restarting failed container={item['name']} "
                                                        f"pod={pod.name}_{body['metadata']['namespace']}({pod.uid})"}}
                item["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}}
            else:
                item["state"] = {"running": {"startedAt": now}}
        for cond in status["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond["status"] = "True" if ready else "False"
                cond["lastTransitionTime"] = now
                if ready:
                    cond.pop("reason", None)
                    cond.pop("message", None)

    # -- controllers -------------------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        for pod in list(self.pods.values()):
            self._advance(pod)
        for (plural, _, _), workload in self.workloads.items():
            if plural == "deployments":
                self._reconcile_deployment(workload)
            else:
                self._reconcile_statefulset(workload)

    def _owned(self, owner: dict[str, Any]) -> list[_Pod]:
        uid = owner["metadata"]["uid"]
        return [p for p in self.pods.values()
                if any(r.get("uid") == uid for r in p.body["metadata"].get("ownerReferences", []))]

    def _reconcile_deployment(self, deployment: dict[str, Any]) -> None:
        meta = deployment["metadata"]
        rs = next(r for r in self.replicasets.values()
                  if r["metadata"]["ownerReferences"][0]["uid"] == meta["uid"])
        want = deployment["spec"]["replicas"]
        if rs["spec"]["replicas"] != want:
            rs["spec"]["replicas"] = want
            rs["metadata"]["generation"] += 1
        active = [p for p in self._owned(rs) if p.active]
        if len(active) > want:  # a ReplicaSet deletes not-ready pods first, then the newest
            doomed = sorted(active, key=lambda p: (p.ready, -p.born))[:len(active) - want]
            for pod in doomed:
                self._mark_deleted(pod)
        for _ in range(want - len(active)):
            name = f"{rs['metadata']['name']}-{self._suffix()}"
            while (meta["namespace"], name) in self.pods:
                name = f"{rs['metadata']['name']}-{self._suffix()}"
            self._new_pod(meta["namespace"], name, rs["spec"]["template"]["metadata"]["labels"], rs,
                          template=rs["spec"]["template"]["spec"])
        active = [p for p in self._owned(rs) if p.active]
        ready = sum(p.ready for p in active)
        rs["status"] = _omit_zero({"replicas": len(active), "fullyLabeledReplicas": len(active),
                                   "readyReplicas": ready, "availableReplicas": ready,
                                   "observedGeneration": rs["metadata"]["generation"]})
        unavailable = max(want - ready, 0)
        deployment["status"] = _omit_zero({
            "observedGeneration": meta["generation"], "replicas": len(active), "updatedReplicas": len(active),
            "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": unavailable})
        deployment["status"]["conditions"] = [
            {"type": "Available", "status": "True" if unavailable <= max(want // 4, 0) else "False",
             "reason": "MinimumReplicasAvailable" if unavailable <= max(want // 4, 0) else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if unavailable <= max(want // 4, 0)
             else "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'}]

    def _reconcile_statefulset(self, sts: dict[str, Any]) -> None:
        meta = sts["metadata"]
        name, namespace, want = meta["name"], meta["namespace"], sts["spec"]["replicas"]
        pods = {p.name: p for p in self._owned(sts)}
        for pod in pods.values():  # a StatefulSet deletes its failed pods and recreates them
            if not pod.deleting and pod.body["status"].get("phase") in ("Failed", "Succeeded"):
                self._mark_deleted(pod)
        revision = f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
        busy = any(p.deleting for p in pods.values())
        extra = sorted((p for p in pods.values() if _ordinal(p.name, name) >= want and not p.deleting),
                       key=lambda p: _ordinal(p.name, name), reverse=True)
        if extra and not busy:
            self._mark_deleted(extra[0])
        elif not extra:
            for ordinal in range(want):
                pod_name = f"{name}-{ordinal}"
                pod = pods.get(pod_name)
                if pod is None:
                    labels = {**sts["spec"]["template"]["metadata"]["labels"],
                              "controller-revision-hash": revision, "apps.kubernetes.io/pod-index": str(ordinal),
                              "statefulset.kubernetes.io/pod-name": pod_name}
                    created = self._new_pod(namespace, pod_name, labels, sts,
                                            template=sts["spec"]["template"]["spec"])
                    created.body["spec"].update(hostname=pod_name, subdomain=sts["spec"]["serviceName"])
                    break
                if not pod.ready:  # OrderedReady: one at a time, each Ready before the next
                    break
        active = [p for p in self._owned(sts) if p.active]
        ready = sum(p.ready for p in active)
        sts["status"] = _omit_zero({
            "observedGeneration": meta["generation"], "replicas": len(active), "readyReplicas": ready,
            "currentReplicas": len(active), "updatedReplicas": len(active), "availableReplicas": ready})
        sts["status"].update(currentRevision=revision, updateRevision=revision, collisionCount=0)

    def _suffix(self) -> str:
        return "".join(self._random.choice(_NAME_CHARS) for _ in range(5))


def _ordinal(pod_name: str, sts_name: str) -> int:
    tail = pod_name[len(sts_name) + 1:]
    return int(tail) if tail.isdigit() else -1


def _omit_zero(values: dict[str, int]) -> dict[str, Any]:
    """Workload status integers are ``omitempty``: a 0 is left out."""
    return {k: v for k, v in values.items() if v}


# -- for the provider tests ----------------------------------------------------------------------------------


def kubernetes_config(api: KubernetesStandin, name: str = "web", **overrides: Any) -> Any:
    """A ``kubernetes`` provider config for workload ``name`` on ``api`` (token auth), quick polling. An override
    of None removes that key (``api_url=None, token=None, kubeconfig=...``)."""
    from alertscaler.providers.kubernetes.provider import KubernetesConfig

    values: dict[str, Any] = {"type": "kubernetes", "name": name, "api_url": api.url, "token": api.token,
                              "port": 8080, "ready_timeout": "10s", "poll_interval": "10ms",
                              "request_timeout": "5s"}
    values.update(overrides)
    return KubernetesConfig.model_validate({k: v for k, v in values.items() if v is not None})


def _contract_api() -> KubernetesStandin:
    api = KubernetesStandin()
    api.add_deployment("contract")
    return api


def kubernetes_contract_provider(state_dir: Path, group: str = "contract") -> tuple[Any, Any]:
    """``PROVIDER_FACTORIES["kubernetes"]``: a Deployment ``contract`` (0 replicas) on one stand-in per state
    directory, shared by every provider made on it (a "restart" sees the same pods), stopped with the last
    cleanup."""
    from alertscaler.providers.kubernetes.provider import KubernetesProvider
    from tests.support.http_standin import contract_provider

    return contract_provider(state_dir, group, _contract_api,
                             lambda api, context: KubernetesProvider(kubernetes_config(api, "contract"), context))


@contextmanager
def running_standin(**kwargs: Any) -> Iterator[KubernetesStandin]:
    """``with running_standin(ready_after=3) as api:`` — a started stand-in, stopped afterwards."""
    standin = KubernetesStandin(**kwargs)
    with standin:
        yield standin
