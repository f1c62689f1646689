"""The ``kubernetes`` provider's pure helpers: pods (as the API's JSON) → members, label selectors, error bodies.

The pods below are shaped like ``kubectl get pod -o json`` output: only the fields the helpers read, with the
API's names and its habit of leaving empty fields out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from alertscaler.model.groups import MemberState
from alertscaler.providers.kubernetes.pods import (
    api_error,
    controller_of,
    is_ready,
    members_of,
    pod_problem,
    pod_state,
    selector_matches,
    selector_string,
    to_member,
)

CREATED = "2026-03-01T10:00:00Z"


def pod(name: str = "web-7d4b9c6f5-x2x9z", *, phase: str | None = "Running", ready: bool | None = True,
        ip: str | None = "10.244.1.7", node: str | None = "node-a", deleting: bool = False,
        waiting: str | None = None, created: str | None = CREATED, scheduled: tuple[str, str] | None = None,
        status_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": f"uid-{name}",
                            "labels": {"app": "web", "pod-template-hash": "7d4b9c6f5"}}
    if created is not None:
        meta["creationTimestamp"] = created
    if deleting:
        meta["deletionTimestamp"] = "2026-03-01T10:05:30Z"
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    conditions = []
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": scheduled[0], "message": scheduled[1]})
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True" if ready else "False",
                           **({} if ready else {"reason": "ContainersNotReady",
                                                "message": "containers with unready status: [app]"})})
    if conditions:
        status["conditions"] = conditions
    if ip is not None:
        status["podIP"] = ip
    if waiting is not None:
        status["containerStatuses"] = [{"name": "app", "ready": False, "restartCount": 4,
                                        "state": {"waiting": {"reason": waiting, "message": f"{waiting} details"}}}]
    status.update(status_extra or {})
    spec: dict[str, Any] = {"containers": [{"name": "app"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


# -- pod → member state --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "state"), [
    (pod(), MemberState.RUNNING),
    (pod(phase="Pending", ready=None, ip=None, node=None), MemberState.STARTING),
    (pod(phase="Pending", ready=False, ip=None, waiting="ContainerCreating"), MemberState.STARTING),
    (pod(ready=False), MemberState.STARTING),
    (pod(phase=None, ready=None, ip=None, node=None), MemberState.STARTING),
    (pod(ready=False, waiting="CrashLoopBackOff"), MemberState.FAILED),
    (pod(phase="Pending", ready=False, ip=None, waiting="ImagePullBackOff"), MemberState.FAILED),
    (pod(phase="Pending", ready=False, ip=None, waiting="CreateContainerConfigError"), MemberState.FAILED),
    (pod(phase="Failed", ready=False, status_extra={"reason": "Evicted"}), MemberState.FAILED),
    (pod(phase="Succeeded", ready=False), MemberState.FAILED),
    (pod(phase="Unknown", ready=None), MemberState.UNKNOWN),
    (pod(deleting=True), MemberState.STOPPING),
    (pod(deleting=True, waiting="CrashLoopBackOff", ready=False), MemberState.STOPPING),
    (pod(phase="Pending", ready=True), MemberState.STARTING),  # Ready counts only once Running
], ids=["running-ready", "pending-unscheduled", "container-creating", "running-not-ready", "no-status-yet",
        "crashloop", "image-pull-backoff", "config-error", "evicted", "succeeded", "unknown", "terminating",
        "terminating-beats-crashloop", "ready-but-pending"])
def test_pod_state(body: dict[str, Any], state: MemberState) -> None:
    assert pod_state(body) is state


def test_init_container_crashloop_is_failed() -> None:
    body = pod(phase="Pending", ready=False, ip=None, status_extra={"initContainerStatuses": [
        {"name": "migrate", "ready": False, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]})
    assert pod_state(body) is MemberState.FAILED
    assert pod_problem(body) == "CrashLoopBackOff: back-off 40s"


def test_ready_pod_being_deleted_does_not_count_as_ready() -> None:
    assert is_ready(pod())
    assert not is_ready(pod(deleting=True))
    assert not is_ready(pod(ready=False))


# -- pod → member ----------------------------------------------------------------------------------------------


def test_member_fields() -> None:
    member = to_member(pod(), port=9100)
    assert member.id == "web-7d4b9c6f5-x2x9z"
    assert member.address == "10.244.1.7:9100"
    assert member.state is MemberState.RUNNING
    assert member.created_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert member.labels == {"namespace": "shop", "pod": "web-7d4b9c6f5-x2x9z", "node": "node-a"}


@pytest.mark.parametrize(("ip", "port", "address"), [
    ("10.244.1.7", None, "10.244.1.7"),
    ("10.244.1.7", 8080, "10.244.1.7:8080"),
    ("fd00:10:244::7", 8080, "[fd00:10:244::7]:8080"),
    ("fd00:10:244::7", None, "fd00:10:244::7"),
    (None, 8080, None),
    ("", 8080, None),
], ids=["ipv4", "ipv4-port", "ipv6-port", "ipv6", "no-ip-yet", "empty-ip"])
def test_member_address(ip: str | None, port: int | None, address: str | None) -> None:
    assert to_member(pod(ip=ip), port).address == address


def test_unscheduled_pod_has_no_node_label_and_no_address() -> None:
    member = to_member(pod(phase="Pending", ready=None, ip=None, node=None), 8080)
    assert member.labels == {"namespace": "shop", "pod": "web-7d4b9c6f5-x2x9z"}
    assert member.address is None and member.state is MemberState.STARTING


@pytest.mark.parametrize(("created", "expected"), [
    ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
    ("2026-03-01T10:00:00+00:00", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),  # as the client serializes it
    ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
    ("yesterday", None),
    (None, None),
], ids=["rfc3339-z", "isoformat-offset", "naive", "garbage", "missing"])
def test_created_at(created: str | None, expected: datetime | None) -> None:
    assert to_member(pod(created=created), None).created_at == expected


def test_members_oldest_first_then_by_name() -> None:
    pods = [pod("web-c", created="2026-03-01T10:00:05Z"), pod("web-b", created="2026-03-01T10:00:00Z"),
            pod("web-a", created="2026-03-01T10:00:05Z"), pod("web-z", created=None)]
    assert [m.id for m in members_of(pods, None)] == ["web-z", "web-b", "web-a", "web-c"]


# -- why a pod is not ready ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "text"), [
    (pod(), "ready"),
    (pod(phase="Pending", ready=None, ip=None, node=None,
         scheduled=("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.")),
     "Pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.)"),
    (pod(phase="Pending", ready=False, ip=None, waiting="ContainerCreating"),
     "Pending (ContainerCreating: ContainerCreating details)"),
    (pod(ready=False, waiting="CrashLoopBackOff"), "CrashLoopBackOff: CrashLoopBackOff details"),
    (pod(ready=False), "Running, not ready (ContainersNotReady: containers with unready status: [app])"),
    (pod(phase="Failed", ready=False, status_extra={"reason": "Evicted", "message": "The node was low on memory."}),
     "Failed (Evicted: The node was low on memory.)"),
    (pod(deleting=True), "terminating"),
    (pod(phase="Pending", ready=None, ip=None, node=None), "Pending, not ready"),
], ids=["ready", "unschedulable", "creating", "crashloop", "readiness-failing", "evicted", "terminating",
        "nothing-known"])
def test_pod_problem(body: dict[str, Any], text: str) -> None:
    assert pod_problem(body) == text


# -- label selectors -----------------------------------------------------------------------------------------------

SELECTOR = {"matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["staging", "prod"]},
                                 {"key": "track", "operator": "NotIn", "values": ["canary"]},
                                 {"key": "team", "operator": "Exists"},
                                 {"key": "legacy", "operator": "DoesNotExist"}]}


def test_selector_string_in_query_syntax() -> None:
    assert selector_string(SELECTOR) == "app=web,tier=front,env in (prod,staging),track notin (canary),team,!legacy"
    assert selector_string({"matchLabels": {"app": "web"}}) == "app=web"
    assert selector_string({}) == "" and selector_string(None) == ""


def test_unknown_operators_are_shown_as_given_and_match_nothing() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}
    assert selector_string(selector) == "a Gt (1)"
    assert not selector_matches(selector, {"a": "2"})


BASE = {"app": "web", "tier": "front", "env": "prod", "team": "shop"}


@pytest.mark.parametrize(("labels", "matches"), [
    (BASE, True),
    ({**BASE, "track": "stable", "extra": "x"}, True),
    ({**BASE, "app": "api"}, False),
    ({k: v for k, v in BASE.items() if k != "tier"}, False),
    ({**BASE, "env": "dev"}, False),
    ({k: v for k, v in BASE.items() if k != "env"}, False),
    ({**BASE, "track": "canary"}, False),
    ({k: v for k, v in BASE.items() if k != "team"}, False),
    ({**BASE, "legacy": "yes"}, False),
    ({}, False),
    (None, False),
], ids=["all", "extra-labels", "wrong-app", "missing-label", "env-not-in", "env-missing", "notin-hit",
        "exists-missing", "doesnotexist-present", "no-labels", "none"])
def test_selector_matches(labels: dict[str, str] | None, matches: bool) -> None:
    assert selector_matches(SELECTOR, labels) is matches


def test_empty_selector_matches_nothing() -> None:
    """The API reads an empty selector as "every pod": here it selects none, so nothing is ever acted on."""
    assert not selector_matches({}, {"app": "web"})
    assert not selector_matches(None, {"app": "web"})
    assert not selector_matches({"matchLabels": {}, "matchExpressions": []}, {"app": "web"})


def test_controller_of() -> None:
    rs_ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c6f5", "uid": "u1",
              "controller": True, "blockOwnerDeletion": True}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u2"}
    assert controller_of({"metadata": {"ownerReferences": [other, rs_ref]}}) == rs_ref
    assert controller_of({"metadata": {"ownerReferences": [other]}}) is None
    assert controller_of({"metadata": {}}) is None


# -- error bodies ----------------------------------------------------------------------------------------------


def test_api_error_reads_a_status_body() -> None:
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": 'deployments.apps "web" is forbidden: User "system:serviceaccount:ops:as" '
                                  'cannot patch resource "deployments/scale"',
                       "reason": "Forbidden", "details": {"name": "web", "group": "apps", "kind": "deployments"},
                       "code": 403})
    error = api_error(body, "Forbidden")
    assert error.reason == "Forbidden"
    assert error.message.startswith('deployments.apps "web" is forbidden: User')
    assert error.retry_after is None


def test_api_error_reads_retry_after_seconds() -> None:
    body = {"kind": "Status", "status": "Failure", "message": "Cannot evict pod as it would violate the pod's "
            "disruption budget.", "reason": "TooManyRequests", "details": {"retryAfterSeconds": 10}, "code": 429}
    assert api_error(json.dumps(body).encode()).retry_after == 10.0


@pytest.mark.parametrize(("body", "reason", "message"), [
    ("Too many requests, please try again later.\n", "Too Many Requests", "Too many requests, please try again later."),
    ("", "Service Unavailable", "Service Unavailable"),
    (None, "Bad Gateway", "Bad Gateway"),
    ("<html><body>502 Bad Gateway</body></html>", "Bad Gateway", "<html><body>502 Bad Gateway</body></html>"),
    ('["not", "a", "status"]', "Conflict", '["not", "a", "status"]'),
], ids=["apf-plain-text", "empty", "none", "proxy-html", "json-not-status"])
def test_api_error_without_a_status_body(body: str | None, reason: str, message: str) -> None:
    error = api_error(body, reason)
    assert (error.reason, error.message, error.retry_after) == (reason, message, None)


def test_api_error_message_is_one_clipped_line() -> None:
    error = api_error(json.dumps({"kind": "Status", "message": "line one\nline two " + "x" * 1000}))
    assert "\n" not in error.message and len(error.message) == 500
