"""``openstack.nova.servers``: victim choice, Nova status mapping, addresses, names and the user data template. Pure."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.openstack.nova.servers import (
    MAX_USER_DATA,
    ScaleInPolicy,
    ServerView,
    check_template,
    choose_victims,
    encode_user_data,
    first_fixed_ipv4,
    looks_like_uuid,
    member_state,
    render_template,
    server_name,
    to_member,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def m(name: str, state: MemberState = MemberState.RUNNING, minutes: int | None = 0) -> Member:
    created = None if minutes is None else T0 + timedelta(minutes=minutes)
    return Member(id=f"id-{name}", address=None, state=state, created_at=created, labels={"name": name})


OLD = m("web-1-1", minutes=0)
MID = m("web-2-1", minutes=5)
NEW = m("web-3-1", minutes=10)
BUILDING = m("web-4-1", MemberState.STARTING, minutes=12)
SHUTOFF = m("web-0-1", MemberState.UNKNOWN, minutes=7)
BROKEN = m("web-5-1", MemberState.FAILED, minutes=15)
GROUP = [NEW, OLD, BUILDING, MID, SHUTOFF, BROKEN]


@pytest.mark.parametrize(("members", "count", "policy", "expected"), [
    (GROUP, 0, "unhealthy_first", []),
    (GROUP, -1, "oldest", []),
    (GROUP, 3, "unhealthy_first", [BROKEN, SHUTOFF, BUILDING]),
    (GROUP, 4, "unhealthy_first", [BROKEN, SHUTOFF, BUILDING, OLD]),
    ([OLD, MID, NEW], 2, "unhealthy_first", [OLD, MID]),
    (GROUP, 2, "oldest", [OLD, MID]),
    (GROUP, 2, "newest", [BROKEN, BUILDING]),
    ([OLD, MID, NEW], 10, "newest", [NEW, MID, OLD]),
    ([m("web-10-1"), m("web-9-1"), m("web-9-2")], 2, "oldest", [m("web-9-1"), m("web-9-2")]),
    ([m("web-10-1"), m("web-9-1")], 1, "newest", [m("web-10-1")]),
    ([m("a", minutes=1), m("b", minutes=None)], 1, "oldest", [m("b", minutes=None)]),
], ids=["none", "negative", "unhealthy-first", "unhealthy-then-oldest", "all-healthy-oldest", "oldest", "newest",
        "more-than-there-are", "same-second-by-action-number", "same-second-newest", "unknown-age-is-oldest"])
def test_choose_victims(members: list[Member], count: int, policy: ScaleInPolicy, expected: list[Member]) -> None:
    assert choose_victims(members, count, policy) == expected


@pytest.mark.parametrize(("status", "task_state", "state"), [
    ("BUILD", "scheduling", MemberState.STARTING),
    ("ACTIVE", None, MemberState.RUNNING),
    ("active", None, MemberState.RUNNING),
    ("ACTIVE", "deleting", MemberState.STOPPING),
    ("ERROR", None, MemberState.FAILED),
    ("DELETED", None, MemberState.STOPPING),
    ("SOFT_DELETED", None, MemberState.STOPPING),
    ("SHUTOFF", None, MemberState.UNKNOWN),
    ("REBOOT", "rebooting", MemberState.UNKNOWN),
    ("VERIFY_RESIZE", None, MemberState.UNKNOWN),
    (None, None, MemberState.UNKNOWN),
], ids=lambda v: str(v))
def test_member_state(status: str | None, task_state: str | None, state: MemberState) -> None:
    assert member_state(status, task_state) is state


@pytest.mark.parametrize(("addresses", "ip"), [
    ({}, None),
    ({"private": [{"version": 6, "addr": "fd00::1", "OS-EXT-IPS:type": "fixed"},
                  {"version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed"}]}, "10.0.0.5"),
    ({"private": [{"version": 4, "addr": "172.24.4.9", "OS-EXT-IPS:type": "floating"},
                  {"version": 4, "addr": "10.0.0.6", "OS-EXT-IPS:type": "fixed"}]}, "10.0.0.6"),
    ({"public": [{"version": 4, "addr": "172.24.4.9", "OS-EXT-IPS:type": "floating"}]}, "172.24.4.9"),
    ({"legacy": [{"version": 4, "addr": "192.168.1.2"}]}, "192.168.1.2"),
], ids=["none", "skips-ipv6", "fixed-before-floating", "only-floating", "no-type"])
def test_first_fixed_ipv4(addresses: dict[str, list[dict[str, object]]], ip: str | None) -> None:
    assert first_fixed_ipv4(addresses) == ip


def test_to_member() -> None:
    server = ServerView(id="u-1", name="web-7-1", status="ACTIVE", metadata={"alertscaler_action": "7"},
                        addresses={"private": [{"version": 4, "addr": "10.0.0.5"}]}, created="2026-11-21T12:00:00Z")
    member = to_member(server, 9100, "alertscaler_action")
    assert member == Member(id="u-1", address="10.0.0.5:9100", state=MemberState.RUNNING, created_at=T0,
                            labels={"name": "web-7-1", "status": "ACTIVE", "action": "7"})
    assert to_member(server, None, "alertscaler_action").address == "10.0.0.5"
    fault = ServerView(id="u", name="n", status="ERROR", fault={"code": 500, "message": "No valid host was found."})
    assert fault.fault_text() == "ERROR: No valid host was found." and fault.fault_code() == 500


def test_names_and_uuids() -> None:
    assert server_name("as-", "web", 12, 3) == "as-web-12-3"
    assert looks_like_uuid("70a599e0-31e7-49b7-b260-868f441e862b")
    assert looks_like_uuid("70a599e031e749b7b260868f441e862b")
    assert not looks_like_uuid("cirros-0.6.2-x86_64-disk")


TEMPLATE = """#cloud-config
hostname: {name}
write_files:
  - path: /etc/alertscaler-group
    content: "{group}"
runcmd:
  - echo "${HOME} $HOSTNAME {{ v1.instance_id }} {{v1.region}}"
  - [sh, -c, 'echo {"json": true}']
"""


def test_template_renders_only_its_placeholders() -> None:
    out = render_template(check_template(TEMPLATE), "web", "web-7-1")
    assert "hostname: web-7-1" in out and 'content: "web"' in out
    assert "${HOME} $HOSTNAME {{ v1.instance_id }} {{v1.region}}" in out and '{"json": true}' in out
    assert base64.b64decode(encode_user_data(out)).decode() == out


@pytest.mark.parametrize(("template", "message"), [
    ("hostname: {hostname}\n", "unknown placeholder(s) {hostname}"),
    ("{gruop} {name} {x}", "unknown placeholder(s) {gruop}, {x}"),
    ("#!/bin/sh\n" + "x" * MAX_USER_DATA, "once base64-encoded for the longest instance names; Nova accepts at "
                                        "most 65535"),
], ids=["typo", "several", "too-large"])
def test_template_errors(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_template(template)
    assert message in str(info.value)
