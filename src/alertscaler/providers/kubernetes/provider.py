"""Provider type ``kubernetes``: a group is one Deployment or StatefulSet; its size is the ``scale`` subresource.

Talks to the API server through the official ``kubernetes`` client, with ONE ``ApiClient`` per provider, created
on first use and closed by ``close()``. Credentials, exactly one of: ``in_cluster: true`` (the pod's service
account; the client re-reads the rotated token), ``kubeconfig: PATH`` (optional ``context``; whatever the file
holds: token, client certificate, exec plugin), or ``api_url`` with ``token`` (``token_env`` / ``token_file``;
``verify`` / ``ca_file`` for TLS): see ``kubernetes.config``. The token is a ``SecretStr``: never in a repr, a
log line or an error.

- ``status()``: ``current`` is the scale subresource's ``spec.replicas`` (the declared size: what alertscaler
  converges); ``detail`` adds the observed ``status.replicas`` and how many pods are ready. ``members`` are the
  pods the workload's selector (the Scale's ``status.selector``) picks, as ``kubernetes.pods.to_member`` maps
  them (id = pod name, address = ``podIP[:port]``, Ready → running, Pending / not ready → starting, Failed /
  CrashLoopBackOff → failed, being deleted → stopping).
- ``scale()``: PATCHes the scale subresource with ``{"spec": {"replicas": N}}`` (a merge patch; nothing when it
  already says N), then polls the workload every ``poll_interval`` until its controller has seen the change
  (``status.observedGeneration``) and ``status.replicas`` and ``readyReplicas`` equal N. Not within
  ``ready_timeout`` → ``TemporaryProviderError`` saying how many are ready and why the others are not.
  Re-running converges (``idempotent = True``).
- ``heal(pod)``: deletes that pod — only if the workload's selector picks it AND the workload controls it (a
  StatefulSet directly, a Deployment through one of its ReplicaSets): any other pod is refused, never deleted —
  with a ``uid`` precondition (never a same-named successor), then waits until one more pod is ready than the
  others had, i.e. the replacement (for a StatefulSet it has the same name and a new uid). API errors before the
  DELETE are temporary or permanent as below; once the pod is deleted, a replacement not ready in time is
  permanent: the pod is gone, and healing again would delete another one.

API errors are translated once, in ``translate``: 429 → temporary with the ``Retry-After`` delay (the header,
else the Status' ``retryAfterSeconds``); 5xx, 408, 409 Conflict, timeouts and an unreachable server → temporary;
other 4xx → permanent with the API's ``message``. The client's own silent retries are off (urllib3 would sleep
through a 429's ``Retry-After`` inside a worker thread): the caller's backoff decides. Time is read from
``clock`` and waited with ``sleep`` (constructor arguments, for tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from alertscaler.model.durations import format_duration
from alertscaler.model.errors import PermanentProviderError, ProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.common.retries import DEFAULT_DELAY, RetryPolicy, classify
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.kubernetes.config import KubernetesConfig
from alertscaler.providers.kubernetes.pods import (
    api_error,
    controller_of,
    is_ready,
    members_of,
    pod_problem,
    selector_matches,
    selector_string,
)

__all__ = ["KubernetesConfig", "KubernetesProvider", "create", "translate"]

log = logging.getLogger(__name__)

#: HTTP statuses worth retrying (and every 5xx): the API server is busy, briefly broken, or the object changed
#: under us. A ``Retry-After: 0`` is honoured; without the header, the ``Status``' ``retryAfterSeconds``.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
RETRY_POLICY = RetryPolicy(RETRY_STATUSES, every_5xx=True)
MERGE_PATCH = "application/merge-patch+json"


def create(config: KubernetesConfig, context: ProviderContext) -> KubernetesProvider:
    return KubernetesProvider(config, context)


def client_configuration(config: KubernetesConfig) -> Any:
    """A ``kubernetes.client.Configuration`` for ``config`` (the token is revealed here and only here)."""
    try:
        import urllib3
        from kubernetes import client
        from kubernetes import config as kube_config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise PermanentProviderError("the kubernetes provider needs the kubernetes client: "
                                     "pip install 'alertscaler[kubernetes]'") from exc
    conf = client.Configuration()
    source = "in-cluster credentials" if config.in_cluster else f"kubeconfig {config.kubeconfig}"
    try:
        if config.in_cluster:
            kube_config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
        elif config.kubeconfig is not None:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=config.kubeconfig, context=config.context, client_configuration=conf,
                persist_config=False)
        else:
            conf.host = config.api_url or ""
            conf.api_key = {"authorization": config.token.get_secret_value() if config.token else ""}
            conf.api_key_prefix = {"authorization": "Bearer"}
            conf.verify_ssl = config.verify
            conf.ssl_ca_cert = config.ca_file
    except OSError as exc:  # a file the kubeconfig names, or the service account's, cannot be read
        raise PermanentProviderError(f"loading {source}: cannot read {exc.filename}: {exc.strerror}") from exc
    except Exception as exc:
        translate(exc, f"loading {source}")
    # one attempt per call: no silent status retries (a 429's Retry-After would be slept in a worker thread)
    conf.retries = urllib3.util.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0,
                                      respect_retry_after_header=False, raise_on_status=False)
    return conf


def translate(exc: BaseException, doing: str) -> NoReturn:
    """Raise the alertscaler error for a ``kubernetes`` client / urllib3 exception (``raise ... from exc``)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    if isinstance(exc, ProviderError):
        raise exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status == 0:  # the client could not make the call (TLS handshake, bad arguments)
            raise PermanentProviderError(f"{doing}: {_one_line(str(exc.reason))}") from exc
        phrase = str(exc.reason or "")
        error = api_error(exc.body, phrase)
        text = f"{doing}: HTTP {status}" + (f" {phrase}" if phrase else "")
        if error.message and error.message != phrase:
            text += f": {error.message}"
        raise classify(status, text, RETRY_POLICY, retry_after=(exc.headers or {}).get("Retry-After"),
                       hint=error.retry_after) from exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(exc.reason, urllib3.exceptions.SSLError):
        raise PermanentProviderError(f"{doing}: TLS: {_one_line(str(exc.reason))}") from exc
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):  # refused, reset, timed out, name not resolved
        raise TemporaryProviderError(f"{doing}: cannot reach the API server: {_transport(exc)}",
                                     delay=DEFAULT_DELAY) from exc
    if isinstance(exc, ConfigException):
        raise PermanentProviderError(f"{doing}: {_one_line(str(exc))}") from exc
    raise PermanentProviderError(f"{doing}: unexpected {type(exc).__name__}: {_one_line(str(exc))}") from exc


def _transport(exc: BaseException) -> str:
    import urllib3

    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
    text = str(reason)
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # (a subclass of ConnectTimeoutError)
        return "connection refused" if "Connection refused" in text else f"{type(reason).__name__}: {_one_line(text)}"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError | urllib3.exceptions.ConnectTimeoutError | TimeoutError):
        return f"timed out ({type(reason).__name__})"
    return f"{type(reason).__name__}: {_one_line(text)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


class KubernetesProvider:
    """One Deployment or StatefulSet. Thread-safe: ``scale`` and ``heal`` are serialized; see the module
    docstring."""

    idempotent = True
    adopts_size = False

    def __init__(self, config: KubernetesConfig, context: ProviderContext, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 configure: Callable[[KubernetesConfig], Any] = client_configuration) -> None:
        self.config = config
        self.group = context.group
        self._clock, self._sleep, self._configure = clock, sleep, configure
        self._client: _Apis | None = None
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()
        self.where = f"{config.kind} {config.namespace}/{config.name}"
        self._kind = "deployment" if config.kind == "Deployment" else "stateful_set"  # in the client's method names

    def __repr__(self) -> str:
        return f"KubernetesProvider(group={self.group!r}, {self.config.describe()})"

    # -- the one boundary to the SDK ----------------------------------------------------------------------

    def _apis(self) -> _Apis:
        """The provider's one ``ApiClient`` with its ``AppsV1Api`` and ``CoreV1Api`` (made on first use)."""
        with self._client_lock:
            if self._client is None:
                from kubernetes import client

                api_client = client.ApiClient(self._configure(self.config))
                self._client = _Apis(api_client, client.AppsV1Api(api_client), client.CoreV1Api(api_client))
            return self._client

    def _request(self, doing: str, api: Literal["apps", "core"], method: str, *args: Any,
                 **kwargs: Any) -> dict[str, Any]:
        """Call ``<api>.<method>(*args, **kwargs)``; the answer as the API's JSON (camelCase keys, timestamps as
        text), errors translated."""
        apis = self._apis()
        try:
            result = getattr(apis.apps if api == "apps" else apis.core, method)(
                *args, _request_timeout=self.config.request_timeout, **kwargs)
        except Exception as exc:
            translate(exc, f"{self.group}: {doing}")
        data: dict[str, Any] = apis.client.sanitize_for_serialization(result) or {}
        return data

    def _read_scale(self) -> dict[str, Any]:
        return self._request(f"reading the scale of {self.where}", "apps", f"read_namespaced_{self._kind}_scale",
                             self.config.name, self.config.namespace)

    def _read_workload(self) -> dict[str, Any]:
        return self._request(f"reading {self.where}", "apps", f"read_namespaced_{self._kind}", self.config.name,
                             self.config.namespace)

    def _pods(self, selector: str) -> list[dict[str, Any]]:
        if not selector:  # an empty selector lists every pod of the namespace: never treat them as ours
            raise PermanentProviderError(f"{self.group}: {self.where} has no pod selector")
        listed = self._request(f"listing the pods of {self.where} ({selector})", "core", "list_namespaced_pod",
                               self.config.namespace, label_selector=selector)
        return [p for p in listed.get("items") or [] if isinstance(p, dict)]

    # -- Provider -----------------------------------------------------------------------------------------

    def members(self) -> list[Member]:
        return list(self.status().members)

    def status(self) -> GroupStatus:
        scale = self._read_scale()
        spec = _int(scale, "spec", "replicas")
        observed = _int(scale, "status", "replicas")
        pods = self._pods(str(_at(scale, "status", "selector") or ""))
        members = members_of(pods, self.config.port)
        ready = sum(1 for p in pods if is_ready(p))
        counts = Counter(m.state.value for m in members)
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no pods"
        detail = (f"{self.where}: spec.replicas={spec} (current), status.replicas={observed}, {ready} ready; "
                  f"pods: {states}")
        return GroupStatus(current=spec, members=tuple(members), detail=detail)

    def scale(self, request: ScaleRequest) -> str:
        if request.desired < 0:
            raise PermanentProviderError(f"{self.group}: desired capacity must be >= 0, got {request.desired}")
        with self._lock:
            return self._scale(request.desired)

    def heal(self, member_id: str) -> str:
        with self._lock:
            return self._heal(member_id)

    def close(self) -> None:
        """Close the client's connections (the workload keeps running; a new provider finds it by name)."""
        with self._client_lock:
            apis, self._client = self._client, None
        if apis is not None:
            try:
                apis.client.close()
            except Exception as exc:  # closing must not fail the caller
                log.debug("%s: closing the Kubernetes client: %s", self.group, exc)

    # -- scaling ------------------------------------------------------------------------------------------

    def _scale(self, desired: int) -> str:
        before = _int(self._read_scale(), "spec", "replicas")
        if before != desired:
            self._request(f"scaling {self.where} to {desired}", "apps", f"patch_namespaced_{self._kind}_scale",
                          self.config.name, self.config.namespace, {"spec": {"replicas": desired}},
                          _content_type=MERGE_PATCH)
            log.info("%s: scaled %s from %s to %s replicas", self.group, self.where, before, desired)
        ready = self._await_ready(desired)
        if before == desired:
            return f"no change: {self.where} at {desired} replicas, {ready} ready"
        return f"scaled {self.where} from {before} to {desired} replicas, {ready} ready"

    def _await_ready(self, desired: int) -> int:
        """Poll the workload until its controller saw the change and ``desired`` pods are ready (and no more
        exist); return the ready count. API errors while polling are retried until ``ready_timeout``."""
        deadline = self._clock() + self.config.ready_timeout
        seen, error = "not read yet", ""
        while True:
            try:
                workload = self._read_workload()
            except TemporaryProviderError as exc:
                error = str(exc)
            else:
                error = ""
                generation = _int(workload, "metadata", "generation")
                observed = _int(workload, "status", "observedGeneration")
                replicas = _int(workload, "status", "replicas")
                ready = _int(workload, "status", "readyReplicas")
                spec = _int(workload, "spec", "replicas")
                seen = f"spec.replicas={spec}, status.replicas={replicas}, readyReplicas={ready}"
                if observed >= generation and replicas == desired and ready == desired:
                    return ready
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(self.config.poll_interval, remaining))
        raise TemporaryProviderError(self._not_ready(desired, seen, error), delay=DEFAULT_DELAY)

    def _not_ready(self, desired: int, seen: str, error: str) -> str:
        """The timeout message: how many pods are ready, and why each other one is not."""
        head = f"{self.group}: {self.where} not ready within {format_duration(self.config.ready_timeout)}"
        try:
            pods = self._pods(str(_at(self._read_scale(), "status", "selector") or ""))
        except ProviderError as exc:
            return f"{head}: {seen}" + (f"; last error: {error}" if error else "") + f"; listing pods: {exc}"
        ready = sum(1 for p in pods if is_ready(p))
        waiting = "; ".join(f"{_at(p, 'metadata', 'name')}: {pod_problem(p)}" for p in pods if not is_ready(p))
        text = f"{head}: {ready} of {desired} pods ready ({seen})"
        if waiting:
            text += f"; not ready: {waiting}"
        return text + (f"; last error: {error}" if error else "")

    # -- healing ------------------------------------------------------------------------------------------

    def _heal(self, name: str) -> str:
        workload = self._read_workload()
        pod = self._request(f"reading pod {name}", "core", "read_namespaced_pod", name, self.config.namespace)
        selector = _at(workload, "spec", "selector")
        if not selector_matches(selector, _at(pod, "metadata", "labels")):
            raise PermanentProviderError(
                f"{self.group}: refusing to delete pod {name}: {self.where} does not select it "
                f"(selector {selector_string(selector) or 'empty'})")
        self._check_controlled(pod, workload)
        uid = str(_at(pod, "metadata", "uid"))
        before = [p for p in self._pods(selector_string(selector)) if _at(p, "metadata", "uid") != uid]
        # the replacement = one more ready pod than the others had (there may be one already: a ReplicaSet
        # replaces a failed pod before it is deleted)
        target = min(_int(workload, "spec", "replicas"), sum(1 for p in before if is_ready(p)) + 1)
        was = pod_problem(pod)
        if _at(pod, "metadata", "deletionTimestamp"):
            log.info("%s: pod %s is already being deleted", self.group, name)
        else:
            self._request(f"deleting pod {name}", "core", "delete_namespaced_pod", name, self.config.namespace,
                          body={"preconditions": {"uid": uid}})  # never a same-named successor
            log.info("%s: deleted pod %s of %s (%s) to heal it", self.group, name, self.where, was)
        known = {str(_at(p, "metadata", "uid")) for p in before}
        return self._await_replacement(name, uid, selector_string(selector), target, known, was)

    def _check_controlled(self, pod: Mapping[str, Any], workload: Mapping[str, Any]) -> None:
        """Refuse a pod the workload does not control: deleting it would bring no replacement."""
        name = _at(pod, "metadata", "name")
        owner = controller_of(pod)
        uid = _at(workload, "metadata", "uid")
        if owner is not None and self.config.kind == "Deployment" and owner.get("kind") == "ReplicaSet":
            replica_set = self._request(f"reading replica set {owner.get('name')}", "apps",
                                        "read_namespaced_replica_set", owner.get("name"), self.config.namespace)
            rs_owner = controller_of(replica_set)
            if rs_owner is not None and rs_owner.get("kind") == "Deployment" and rs_owner.get("uid") == uid:
                return
        elif owner is not None and owner.get("kind") == self.config.kind and owner.get("uid") == uid:
            return
        by = f"{owner.get('kind')} {owner.get('name')}" if owner is not None else "no controller"
        raise PermanentProviderError(f"{self.group}: refusing to delete pod {name}: {self.where} does not control "
                                     f"it ({by}), so nothing would replace it")

    def _await_replacement(self, name: str, uid: str, selector: str, target: int, known: set[str],
                           was: str) -> str:
        """Wait until ``target`` pods other than the deleted one (``uid``) are ready; ``known`` are the uids of
        the pods there before."""
        deadline = self._clock() + self.config.ready_timeout
        pods: list[dict[str, Any]] = []
        error = ""
        while True:
            try:
                pods = [p for p in self._pods(selector) if _at(p, "metadata", "uid") != uid]
            except TemporaryProviderError as exc:
                error = str(exc)
            else:
                ready = [p for p in pods if is_ready(p)]
                if len(ready) >= target:
                    new = sorted(str(_at(p, "metadata", "name")) for p in ready
                                 if _at(p, "metadata", "uid") not in known)
                    replacement = f"replacement {', '.join(new)} ready" if new else "replacement was already ready"
                    return f"deleted pod {name} ({was}); {replacement}; {len(ready)} ready in {self.where}"
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(self.config.poll_interval, remaining))
        waiting = "; ".join(f"{_at(p, 'metadata', 'name')}: {pod_problem(p)}" for p in pods if not is_ready(p))
        raise PermanentProviderError(
            f"{self.group}: deleted pod {name}, but no replacement was ready within "
            f"{format_duration(self.config.ready_timeout)}" + (f" (not ready: {waiting})" if waiting else "")
            + (f"; last error: {error}" if error else "") + " — not retried: healing again would delete another pod")


@dataclass(frozen=True)
class _Apis:
    client: Any  # kubernetes.client.ApiClient
    apps: Any  # AppsV1Api
    core: Any  # CoreV1Api


def _at(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _int(obj: Any, *keys: str) -> int:
    """An integer field; the API leaves zeros out (``omitempty``), so absent = 0."""
    value = _at(obj, *keys)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(KubernetesConfig, create, KubernetesProvider)
