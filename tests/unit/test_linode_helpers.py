"""Pure parts of the ``linode`` provider: status mapping, addresses, victim choice, labels, Linode error bodies
and the translation of SDK errors (built offline: no request is made)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from linode_api4 import Instance, NodeBalancerNode
from linode_api4.errors import ApiError, UnexpectedResponseError

from alertscaler.model.errors import PermanentProviderError, ProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.linode.client import translate
from alertscaler.providers.linode.members import (
    LinodeView,
    NodeView,
    ScaleInOrder,
    choose_victims,
    error_text,
    label_problem,
    linode_label,
    member_address,
    member_state,
    node_label,
    replacement_label,
    tag_problem,
    to_member,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def node(mode: str = "accept", status: str = "UP", address: str = "192.168.130.7:9100") -> NodeView:
    return NodeView(id=1, label="n", address=address, mode=mode, status=status)


@pytest.mark.parametrize(("status", "node_mode", "state"), [
    ("running", None, MemberState.RUNNING),
    ("provisioning", None, MemberState.STARTING),
    ("booting", None, MemberState.STARTING),
    ("deleting", None, MemberState.STOPPING),
    ("running", "drain", MemberState.STOPPING),
    ("running", "accept", MemberState.RUNNING),
    ("running", "backup", MemberState.RUNNING),
    ("offline", None, MemberState.UNKNOWN),
    ("stopped", None, MemberState.UNKNOWN),
    ("rebooting", None, MemberState.UNKNOWN),
    ("migrating", "accept", MemberState.UNKNOWN),
    ("", None, MemberState.UNKNOWN),
], ids=["running", "provisioning", "booting", "deleting", "drained", "accept", "backup", "offline", "stopped",
        "rebooting", "migrating", "empty"])
def test_member_state(status: str, node_mode: str | None, state: MemberState) -> None:
    assert member_state(status, None if node_mode is None else node(node_mode)) is state


LINODE = LinodeView(id=7, label="web-3-1", status="running", tags=("autoscale-web", "khw"),
                    ipv4=("198.18.0.10", "192.168.130.7"), ipv6="2600:3c00::f03c:91ff:fe00:a/128", created=T0)


@pytest.mark.parametrize(("linode", "port", "address"), [
    (LINODE, 9100, "192.168.130.7:9100"),
    (LINODE, None, "198.18.0.10"),
    (LinodeView(id=8, label="a", status="running", ipv4=("198.18.0.11",)), 9100, None),
    (LinodeView(id=9, label="b", status="provisioning"), None, None),
    (LinodeView(id=10, label="c", status="running", ipv4=("192.168.255.1", "192.168.127.255")), None,
     "192.168.127.255"),
], ids=["private-with-port", "public-without", "no-private-ip", "no-ip-yet", "outside-the-private-range"])
def test_member_address(linode: LinodeView, port: int | None, address: str | None) -> None:
    assert member_address(linode, port) == address


def test_membership_is_the_exact_tag() -> None:
    assert LINODE.carries("autoscale-web") and not LINODE.carries("autoscale") and not LINODE.carries("khw-2")


def test_to_member_labels() -> None:
    member = to_member(LINODE, node(status="DOWN"), 9100)
    assert member == Member(id="7", address="192.168.130.7:9100", state=MemberState.RUNNING, created_at=T0,
                            labels={"label": "web-3-1", "status": "running", "node_id": "1", "node_mode": "accept",
                                    "node_status": "DOWN"})
    assert to_member(LINODE, None, None).labels == {"label": "web-3-1", "status": "running"}


def test_views_of_sdk_objects_built_from_api_json() -> None:
    linode = Instance(None, 41000001, {"id": 41000001, "label": "web-7-1", "status": "running",
                                       "created": "2026-03-01T12:00:00", "tags": ["autoscale-web"],
                                       "ipv4": ["198.18.0.10", "192.168.128.10"], "ipv6": "2600:3c00::a/128"})
    view = LinodeView.of(linode)
    assert view == LinodeView(id=41000001, label="web-7-1", status="running", tags=("autoscale-web",),
                              ipv4=("198.18.0.10", "192.168.128.10"), ipv6="2600:3c00::a/128", created=T0)
    json = {"id": 701, "label": "web-7-1", "address": "192.168.128.10:9100", "mode": "drain", "weight": 100,
            "status": "UP", "config_id": 5150, "nodebalancer_id": 4242}
    expected = NodeView(id=701, label="web-7-1", address="192.168.128.10:9100", mode="drain", status="UP",
                        weight=100)
    assert NodeView.of(NodeBalancerNode(None, 701, (5150, 4242), json=json)) == expected
    assert NodeView.from_json(json) == expected and expected.ip == "192.168.128.10"


def m(member_id: str, state: MemberState = MemberState.RUNNING, minutes: int = 0, node_status: str = "UP",
      label: str | None = None) -> Member:
    labels = {"label": label or f"web-{member_id}", "node_status": node_status}
    return Member(id=member_id, address=None, state=state, created_at=T0 + timedelta(minutes=minutes), labels=labels)


@pytest.mark.parametrize(("members", "count", "order", "expected"), [
    ([m("a", minutes=0), m("b", minutes=1), m("c", minutes=2)], 1, "oldest", ["a"]),
    ([m("a", minutes=0), m("b", minutes=1), m("c", minutes=2)], 2, "newest", ["c", "b"]),
    ([m("a"), m("b", MemberState.UNKNOWN, minutes=5)], 1, "oldest", ["b"]),
    ([m("a"), m("b", minutes=1, node_status="DOWN"), m("c", MemberState.STARTING, minutes=2)], 2, "oldest",
     ["b", "c"]),
    ([m("a", MemberState.STARTING), m("b", MemberState.FAILED, minutes=9), m("c", MemberState.STOPPING, minutes=3)],
     3, "newest", ["b", "c", "a"]),
    ([m("x", label="web-10-1"), m("y", label="web-9-1")], 1, "oldest", ["y"]),  # same second: action 9 first
    ([m("x", label="web-10-1"), m("y", label="web-9-1")], 1, "newest", ["x"]),
    ([m("a"), m("b")], 0, "oldest", []),
    ([m("a")], 3, "oldest", ["a"]),
], ids=["oldest", "newest", "unknown-first", "down-then-starting", "ranks-before-age", "labels-natural-order",
        "labels-newest", "none", "more-than-there-are"])
def test_choose_victims(members: list[Member], count: int, order: ScaleInOrder, expected: list[str]) -> None:
    assert [v.id for v in choose_victims(members, count, order)] == expected


@pytest.mark.parametrize(("label", "problem"), [
    (linode_label("", "web", 7, 1), None),
    (linode_label("as-", "web_api", 12, 3), None),
    (replacement_label("", "web", "41000001"), None),
    ("ab", "label 'ab' must be 3-64 characters long"),
    ("w" * 65, f"label '{'w' * 65}' must be 3-64 characters long"),
    ("-web-1-1", "label '-web-1-1' may use letters, digits, '-', '_' and '.', and must start and end with a letter "
                 "or digit"),
    ("web--1-1", "label 'web--1-1' must not contain '--', '__' or '..'"),
    ("web_-1", None),
], ids=["plain", "prefix-and-underscore", "replacement", "short", "long", "leading-dash", "double-dash", "mixed"])
def test_label_problem(label: str, problem: str | None) -> None:
    assert label_problem(label) == problem


@pytest.mark.parametrize(("tag", "problem"), [
    ("autoscale-web", None),
    ("ab", "tag 'ab' must be 3-50 characters long"),
    ("a" * 51, f"tag '{'a' * 51}' must be 3-50 characters long"),
    ("khw,autoscale", "tag 'khw,autoscale' must not contain a comma (Prometheus joins tags with commas)"),
], ids=["ok", "short", "long", "comma"])
def test_tag_problem(tag: str, problem: str | None) -> None:
    assert tag_problem(tag) == problem


def test_node_labels_fit_linodes_limit() -> None:
    assert node_label("web-7-1") == "web-7-1" and len(node_label("n" * 64)) == 32


@pytest.mark.parametrize(("body", "text"), [
    ({"errors": [{"reason": "Invalid Token"}]}, "Invalid Token"),
    ({"errors": [{"field": "region", "reason": "region is not valid"}, {"reason": "Too  many\nspaces"}]},
     "region: region is not valid; Too many spaces"),
    ({"errors": []}, ""),
    ({"message": "not linode's shape"}, ""),
    ("<html>bad gateway</html>", ""),
    (None, ""),
], ids=["reason", "fields-and-reasons", "empty", "other-shape", "html", "none"])
def test_error_text(body: object, text: str) -> None:
    assert error_text(body) == text


def api_error(status: int, body: dict[str, object] | None = None, retry_after: str | None = None) -> ApiError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Reason"
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return ApiError(f"[{status}]", status=status, json=body, response=response)


@pytest.mark.parametrize(("exc", "kind", "delay", "text"), [
    (api_error(429, {"errors": [{"reason": "Too many requests"}]}, "3"), TemporaryProviderError, 3.0,
     "doing: HTTP 429: Too many requests"),
    (api_error(503, None, "11"), TemporaryProviderError, 11.0, "doing: HTTP 503: Reason"),
    (api_error(500, {"errors": [{"reason": "Please try again"}]}), TemporaryProviderError, DEFAULT_DELAY,
     "doing: HTTP 500: Please try again"),
    (api_error(408), TemporaryProviderError, DEFAULT_DELAY, "doing: HTTP 408: Reason"),
    (api_error(400, {"errors": [{"field": "label", "reason": "Label must be unique among your linodes"}]}),
     PermanentProviderError, None, "doing: HTTP 400: label: Label must be unique among your linodes"),
    (api_error(401, {"errors": [{"reason": "Invalid Token"}]}), PermanentProviderError, None,
     "doing: HTTP 401: Invalid Token"),
    (api_error(404, {"errors": [{"reason": "Not found"}]}), PermanentProviderError, None, "doing: HTTP 404: Not found"),
    (requests.ReadTimeout("read timed out"), TemporaryProviderError, DEFAULT_DELAY,
     "doing: no answer from the Linode API in time (ReadTimeout)"),
    (requests.ConnectionError("Connection refused"), TemporaryProviderError, DEFAULT_DELAY,
     "doing: cannot reach the Linode API (ConnectionError: Connection refused)"),
    (UnexpectedResponseError("Unexpected response when creating linode!"), TemporaryProviderError, DEFAULT_DELAY,
     "doing: UnexpectedResponseError: Unexpected response when creating linode!"),
    (RuntimeError("List PaginatedList (3 items) has changed since creation!"), TemporaryProviderError,
     DEFAULT_DELAY, "doing: the list changed while its pages were read"),
    (ValueError("authorized_keys must either be paths"), PermanentProviderError, None,
     "doing: unexpected ValueError: authorized_keys must either be paths"),
], ids=["429", "503-retry-after", "500", "408", "400-field", "401", "404", "timeout", "refused", "unexpected",
        "list-changed", "other"])
def test_translate(exc: BaseException, kind: type[ProviderError], delay: float | None, text: str) -> None:
    with pytest.raises(kind) as info:
        translate(exc, "doing")
    assert type(info.value) is kind and str(info.value) == text and info.value.__cause__ is exc
    assert getattr(info.value, "delay", None) == delay


def test_translate_passes_provider_errors_through() -> None:
    error = PermanentProviderError("web: refusing")
    with pytest.raises(PermanentProviderError) as info:
        translate(error, "doing")
    assert info.value is error
