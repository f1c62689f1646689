"""Pure helpers of the ``kubernetes`` provider: Kubernetes API objects (as the API's JSON, camelCase keys) in,
alertscaler values out. No SDK, no I/O: used by ``kubernetes.provider``, unit-tested on their own.

- ``pod_state`` / ``to_member``: a pod as a group ``Member`` (id = pod name, address = ``podIP[:port]``, state
  from ``deletionTimestamp``, ``phase``, the ``Ready`` condition and the containers' waiting reasons);
- ``pod_problem``: one line saying why a pod is not ready, for error messages;
- ``selector_string`` / ``selector_matches``: a ``LabelSelector`` (``matchLabels`` + ``matchExpressions``) as the
  ``labelSelector`` query syntax, and evaluated against a pod's labels;
- ``controller_of``: the owner reference with ``controller: true``;
- ``api_error``: the ``Status`` body of a failed call (or the plain text the API server's rate limiter answers
  with); ``Retry-After`` and the HTTP classification are ``common.retries``'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common.parsing import EARLIEST, parse_timestamp

#: Container waiting reasons that do not resolve by waiting: the pod is counted as failed.
FAILING_REASONS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})


def _get(obj: Mapping[str, Any] | None, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any level is missing (API objects omit empty fields)."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The pod's ``status.conditions`` entry of type ``kind`` (``Ready``, ``PodScheduled``...)."""
    for item in _get(pod, "status", "conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return item
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Running, its ``Ready`` condition ``True``, and not being deleted: the pod serves."""
    ready = condition(pod, "Ready")
    return (_get(pod, "status", "phase") == "Running" and ready is not None and ready.get("status") == "True"
            and not _get(pod, "metadata", "deletionTimestamp"))


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = _get(pod, "status") or {}
    found = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return [c for c in found if isinstance(c, Mapping)]


def waiting_reason(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(reason, message)`` of the first container whose waiting reason means failure, else of the first
    waiting container; None when no container waits."""
    waiting = [(str(_get(c, "state", "waiting", "reason") or ""), str(_get(c, "state", "waiting", "message") or ""))
               for c in _container_statuses(pod) if _get(c, "state", "waiting") is not None]
    for reason, message in waiting:
        if reason in FAILING_REASONS:
            return reason, message
    return waiting[0] if waiting else None


def pod_state(pod: Mapping[str, Any]) -> MemberState:
    """Being deleted → STOPPING; ``Failed`` / ``Succeeded`` or a container in CrashLoopBackOff, ImagePullBackOff...
    → FAILED; Running and Ready → RUNNING; Pending, or Running but not ready → STARTING; ``Unknown`` → UNKNOWN."""
    if _get(pod, "metadata", "deletionTimestamp"):
        return MemberState.STOPPING
    phase = _get(pod, "status", "phase")
    if phase in ("Failed", "Succeeded"):  # a Deployment's / StatefulSet's pod never ends on its own
        return MemberState.FAILED
    if phase == "Unknown":
        return MemberState.UNKNOWN
    waiting = waiting_reason(pod)
    if waiting is not None and waiting[0] in FAILING_REASONS:
        return MemberState.FAILED
    if is_ready(pod):
        return MemberState.RUNNING
    if phase in ("Pending", "Running", None):
        return MemberState.STARTING
    return MemberState.UNKNOWN


def address(pod: Mapping[str, Any], port: int | None) -> str | None:
    """``podIP`` (``podIP:port`` when ``port`` is given; IPv6 in brackets), None before it has one."""
    ip = _get(pod, "status", "podIP")
    if not isinstance(ip, str) or not ip:
        return None
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def to_member(pod: Mapping[str, Any], port: int | None) -> Member:
    """The pod as a ``Member``: id = pod name, labels ``namespace``, ``pod`` and (once scheduled) ``node``."""
    name = str(_get(pod, "metadata", "name") or "")
    labels = {"namespace": str(_get(pod, "metadata", "namespace") or ""), "pod": name}
    node = _get(pod, "spec", "nodeName")
    if node:
        labels["node"] = str(node)
    return Member(id=name, address=address(pod, port), state=pod_state(pod),
                  created_at=parse_timestamp(_get(pod, "metadata", "creationTimestamp")), labels=labels)


def members_of(pods: Iterable[Mapping[str, Any]], port: int | None) -> list[Member]:
    """``to_member`` of each pod, oldest first (then by name)."""
    members = [to_member(pod, port) for pod in pods]
    return sorted(members, key=lambda m: (m.created_at or EARLIEST, m.id))


def pod_problem(pod: Mapping[str, Any]) -> str:
    """Why the pod does not serve, in one line: ``Pending (Unschedulable: 0/3 nodes are available...)``,
    ``CrashLoopBackOff: back-off 10s restarting failed container``, ``Running, not ready (...)``, ``terminating``."""
    if _get(pod, "metadata", "deletionTimestamp"):
        return "terminating"
    phase = str(_get(pod, "status", "phase") or "Pending")
    waiting = waiting_reason(pod)
    if waiting is not None and waiting[0] in FAILING_REASONS:
        return _join(waiting[0], waiting[1])
    if phase in ("Failed", "Succeeded", "Unknown"):
        return f"{phase} ({_join(str(_get(pod, 'status', 'reason') or ''), str(_get(pod, 'status', 'message') or ''))})"
    scheduled = condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return f"{phase} ({_join(str(scheduled.get('reason') or ''), str(scheduled.get('message') or ''))})"
    if waiting is not None:
        return f"{phase} ({_join(*waiting)})"
    if is_ready(pod):
        return "ready"
    ready = condition(pod, "Ready")
    why = _join(str(_get(ready, "reason") or ""), str(_get(ready, "message") or "")) if ready else ""
    return f"{phase}, not ready" + (f" ({why})" if why else "")


def _join(reason: str, message: str) -> str:
    text = f"{reason}: {message}" if reason and message else reason or message or "no reason given"
    return " ".join(text.split())[:200]


# -- label selectors ----------------------------------------------------------------------------------------


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A ``LabelSelector`` in the ``labelSelector`` query syntax: ``app=web,tier in (a,b),!canary``."""
    parts = [f"{k}={v}" for k, v in sorted((_get(selector, "matchLabels") or {}).items())]
    for expr in _get(selector, "matchExpressions") or []:
        key, op = expr.get("key"), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:  # not a LabelSelector operator: written as given, for the API to refuse (and messages to show)
            parts.append(f"{key} {op} ({values})")
    return ",".join(parts)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Does a pod with ``labels`` match ``selector``? An empty or missing selector matches nothing here (the API
    would read it as "everything": never act on every pod of a namespace)."""
    labels = labels or {}
    match_labels = _get(selector, "matchLabels") or {}
    expressions = _get(selector, "matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object's owner reference with ``controller: true`` (the ReplicaSet of a Deployment's pod, the
    StatefulSet of its pod), or None."""
    for ref in _get(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


# -- errors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiError:
    """What a failed call's body says: a ``Status`` (``reason``, ``message``, ``details.retryAfterSeconds``) or,
    for the API server's rate limiter, plain text."""

    reason: str
    message: str
    retry_after: float | None = None


def api_error(body: str | bytes | None, fallback: str = "") -> ApiError:
    """Read the body of a failed API call; ``fallback`` (the HTTP reason phrase) when it says nothing."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = (body or "").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, Mapping) and (data.get("kind") == "Status" or "message" in data):
        retry = _get(data, "details", "retryAfterSeconds")
        return ApiError(reason=str(data.get("reason") or fallback), message=_clip(str(data.get("message") or fallback)),
                        retry_after=float(retry) if isinstance(retry, int | float) and retry > 0 else None)
    return ApiError(reason=fallback, message=_clip(text) or fallback)


def _clip(text: str) -> str:
    return " ".join(text.split())[:500]

