"""The ``linode`` provider driven through the real linode-api4 SDK against the Linode API stand-in.

Create, wait for ``running``, NodeBalancer node added and read back; scale-in drains, waits, removes the node,
deletes the Linode, in that order; a Linode that never runs is cleaned up; API errors translated (429 / 5xx /
timeouts / unreachable temporary with their delay, 4xx permanent with Linode's reasons and fields); ownership
by exact tag (foreign Linodes with the same label prefix survive); crash-resume of an action; heal replaces
first, then removes; the token and the root passwords kept out of logs, errors and ``repr``. Polling is fast
(10 ms) and every wait has a deadline.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Healer, Provider, ProviderContext, ScaleRequest
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.linode.config import LinodeConfig
from alertscaler.providers.linode.provider import LinodeProvider
from alertscaler.providers.registry import config_model
from alertscaler.providers.registry import create as registry_create
from tests.support import linode_standin as standin
from tests.support.linode_standin import LinodeStandin, Recorded, linode_config

pytestmark = pytest.mark.integration

GROUP = "web"
TAG = "autoscale-web"
NODES = rf"^/v4/nodebalancers/{standin.NODEBALANCER_ID}/configs/{standin.CONFIG_ID}/nodes"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5bm9kZS1zdGFuZGluLXRlc3Qta2V5LTAwMDAwMDAw ops@example"


@pytest.fixture
def api() -> Iterator[LinodeStandin]:
    with LinodeStandin() as api:
        yield api


@pytest.fixture
def providers() -> Iterator[list[LinodeProvider]]:
    made: list[LinodeProvider] = []
    yield made
    for provider in made:
        provider.close()


@pytest.fixture
def make(api: LinodeStandin, providers: list[LinodeProvider], tmp_path: Path) -> Any:
    def make(target: LinodeStandin | None = None, group: str = GROUP, sleep: Any = None,
             **overrides: Any) -> LinodeProvider:
        config = linode_config(target or api, **overrides)
        extra = {} if sleep is None else {"sleep": sleep}
        provider = LinodeProvider(config, ProviderContext(group=group, state_dir=tmp_path / group), **extra)
        providers.append(provider)
        return provider

    return make


_ids = iter(range(100, 10_000))


def scale(provider: Provider, desired: int, action_id: int | None = None) -> str:
    action = action_id if action_id is not None else next(_ids)
    return provider.scale(ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action,
                                       decision_id=action))


def ours(api: LinodeStandin, tag: str = TAG) -> list[dict[str, Any]]:
    return [x for x in api.live_linodes() if tag in x["tags"]]


def created_bodies(api: LinodeStandin) -> list[dict[str, Any]]:
    return [r.body for r in api.requests_to("POST", r"^/v4/linode/instances$") if r.status == 200]


def first(api: LinodeStandin, method: str, pattern: str) -> Recorded:
    found = api.requests_to(method, pattern)
    assert found, f"no {method} {pattern} in {[(r.method, r.path) for r in api.requests]}"
    return found[0]


def index_of(api: LinodeStandin, record: Recorded) -> int:
    return next(i for i, r in enumerate(api.requests) if r is record)


# -- scale-out: create, wait, NodeBalancer ---------------------------------------------------------------


def test_registry_builds_the_provider_and_members_sit_behind_the_nodebalancer(api: LinodeStandin,
                                                                               tmp_path: Path) -> None:
    raw = linode_config(api).model_dump(mode="json")
    raw["token"] = api.token  # dumped masked
    config = config_model("linode").model_validate(raw)
    provider = registry_create(config, ProviderContext(group=GROUP, state_dir=tmp_path))
    try:
        assert isinstance(provider, Provider) and isinstance(provider, Healer) and provider.idempotent
        message = scale(provider, 2, action_id=7)
        assert message.startswith("created 2 (web-7-1, web-7-2)"), message
        assert "added to NodeBalancer 4242 config 5150: web-7-1, web-7-2" in message
        status = provider.status()
        assert status.current == 2 and status.detail == "2 running"
        nodes = {n["address"]: n for n in api.node_list()}
        for member in status.members:
            assert member.state is MemberState.RUNNING
            assert member.address is not None and member.address.startswith("192.168.")
            assert member.address.endswith(":9100") and member.address in nodes
            node = nodes[member.address]
            assert node["mode"] == "accept" and node["label"] == member.labels["label"]
            assert member.labels["node_status"] == "UP" and member.labels["status"] == "running"
            assert member.created_at is not None and member.created_at.tzinfo is not None
        body = created_bodies(api)[0]
        assert {k: v for k, v in body.items() if k != "root_pass"} == {
            "type": standin.TYPES[0], "region": standin.REGIONS[0], "image": standin.IMAGES[0], "label": "web-7-1",
            "tags": [TAG], "private_ip": True}
        # each node is read back once it is added
        for post in api.requests_to("POST", NODES + "$"):
            later = api.requests[index_of(api, post) + 1:]
            assert any(r.method == "GET" and re.match(NODES + r"/\d+$", r.path) for r in later)
    finally:
        scale(provider, 0)
        provider.close()
    assert ours(api) == [] and api.node_list() == []


def test_each_node_is_added_only_once_the_linode_runs(api: LinodeStandin, make: Any) -> None:
    scale(make(), 1)
    post = first(api, "POST", NODES + "$")
    linode = api.live_linodes()[0]
    linode_id = linode["id"]
    polls = [r for r in api.requests_to("GET", rf"^/v4/linode/instances/{linode_id}$") if r.status == 200]
    assert index_of(api, post) > index_of(api, polls[-1])
    ips = first(api, "GET", rf"^/v4/linode/instances/{linode_id}/ips$")
    assert index_of(api, ips) < index_of(api, post)
    assert post.body == {"label": linode["label"], "address": f"{api.private_ip(linode_id)}:9100", "mode": "accept"}


def test_create_body_carries_every_option(api: LinodeStandin, make: Any) -> None:
    provider = make(label_prefix="as-", tags=["autoscale", "khw"], authorized_keys=[KEY], authorized_users=["ops"],
                    firewall_id=standin.FIREWALL_ID,
                    stackscript_id=standin.STACKSCRIPT_ID, stackscript_data={"gh_username": "linode"},
                    linode_type="g6-standard-1", region="eu-west", image="linode/ubuntu24.04",
                    nodebalancer={"id": standin.NODEBALANCER_ID, "config_id": standin.CONFIG_ID, "port": 80,
                                  "weight": 50, "mode": "backup"})
    scale(provider, 1, action_id=3)
    body = created_bodies(api)[0]
    assert body["label"] == "as-web-3-1" and body["tags"] == [TAG, "autoscale", "khw"]
    assert body["authorized_keys"] == [KEY] and body["authorized_users"] == ["ops"]
    assert body["firewall_id"] == standin.FIREWALL_ID
    assert body["stackscript_id"] == standin.STACKSCRIPT_ID and body["stackscript_data"] == {"gh_username": "linode"}
    assert (body["type"], body["region"], body["image"]) == ("g6-standard-1", "eu-west", "linode/ubuntu24.04")
    node = api.node_list()[0]
    assert node["mode"] == "backup" and node["weight"] == 50 and node["address"].endswith(":80")
    assert provider.status().current == 1


def test_user_data_goes_to_the_metadata_service_base64(api: LinodeStandin, make: Any, tmp_path: Path) -> None:
    cloud_init = "#cloud-config\npackages: [prometheus-node-exporter]\n"
    (tmp_path / "user-data.yaml").write_text(cloud_init)
    config = LinodeConfig.model_validate({**linode_config(api).model_dump(mode="json"), "token": api.token,
                                          "user_data_file": "user-data.yaml"}, context={"base": tmp_path})
    provider = LinodeProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path))
    try:
        scale(provider, 1)
    finally:
        provider.close()
    assert base64.b64decode(created_bodies(api)[0]["metadata"]["user_data"]).decode() == cloud_init
    assert api.live_linodes()[0]["has_user_data"] is True


def test_without_a_nodebalancer_members_are_their_public_ipv4(api: LinodeStandin, make: Any) -> None:
    provider = make(nodebalancer=None, private_ip=False)
    scale(provider, 2)
    addresses = sorted(str(m.address) for m in provider.members())
    assert addresses == sorted(x["ipv4"][0] for x in ours(api)) and all(a.startswith("198.18.") for a in addresses)
    assert created_bodies(api)[0]["private_ip"] is False
    scale(provider, 0)
    assert not [r for r in api.requests if r.path.startswith("/v4/nodebalancers")]


# -- scale-in: drain, wait, remove the node, delete ---------------------------------------------------------


def test_scale_in_drains_waits_removes_the_node_then_deletes(api: LinodeStandin, make: Any) -> None:
    provider = make(drain_time="150ms")
    scale(provider, 2, action_id=11)
    victim = next(x for x in ours(api) if x["label"] == "web-11-1")  # oldest first (same second: lower label)
    address = f"{api.private_ip(victim['id'])}:9100"
    node_id = next(n["id"] for n in api.node_list() if n["address"] == address)
    message = scale(provider, 1)
    assert message.startswith("removed 1 (web-11-1)"), message
    drain = first(api, "PUT", rf"{NODES}/{node_id}$")
    remove = first(api, "DELETE", rf"{NODES}/{node_id}$")
    delete = first(api, "DELETE", rf"^/v4/linode/instances/{victim['id']}$")
    assert drain.body == {"mode": "drain"}
    assert index_of(api, drain) < index_of(api, remove) < index_of(api, delete)
    assert remove.at - drain.at >= 0.15, "the node stays in drain mode for drain_time"
    gone = api.requests_to("GET", rf"^/v4/linode/instances/{victim['id']}$")
    assert gone[-1].status == 404 and index_of(api, gone[-1]) > index_of(api, delete), "waited until gone"
    assert [x["label"] for x in ours(api)] == ["web-11-2"]
    assert [n["address"] for n in api.node_list()] == [provider.members()[0].address]


def test_drain_time_is_waited_with_the_injected_sleep(api: LinodeStandin, make: Any) -> None:
    slept: list[float] = []
    provider = make(drain_time="45s", sleep=slept.append)
    scale(provider, 1)
    started = time.monotonic()
    scale(provider, 0)
    assert 45.0 in slept and time.monotonic() - started < 5


def test_scale_in_removes_unhealthy_first_then_the_newest(api: LinodeStandin, make: Any) -> None:
    provider = make(scale_in="newest")
    scale(provider, 1, action_id=41)
    scale(provider, 2, action_id=42)
    scale(provider, 3, action_id=43)
    sick = next(m for m in provider.members() if m.labels["label"] == "web-41-1")
    api.set_node_health(str(sick.address), "DOWN")
    assert next(m for m in provider.members() if m.id == sick.id).labels["node_status"] == "DOWN"
    scale(provider, 2)
    assert sorted(x["label"] for x in ours(api)) == ["web-42-1", "web-43-1"]
    scale(provider, 1)
    assert [x["label"] for x in ours(api)] == ["web-42-1"]


def test_a_drained_member_is_not_counted_and_the_next_scale_finishes_removing_it(api: LinodeStandin,
                                                                                make: Any) -> None:
    provider = make()
    scale(provider, 2, action_id=51)
    node = api.node_list()[0]
    api.nodes[(standin.NODEBALANCER_ID, standin.CONFIG_ID)][node["id"]]["mode"] = "drain"  # a scale-in interrupted
    status = provider.status()
    assert status.current == 1 and sorted(m.state.value for m in status.members) == ["running", "stopping"]
    message = scale(provider, 2, action_id=52)
    assert "finished removing 1 drained" in message and message.startswith("created 1 (web-52-1)"), message
    added = api.requests_to("POST", NODES + "$")[-1]
    removed = first(api, "DELETE", rf"{NODES}/{node['id']}$")
    assert index_of(api, added) < index_of(api, removed), "the replacement serves before the drained one goes"
    assert not api.requests_to("PUT", NODES), "already in drain mode"
    assert len(ours(api)) == 2 and all(n["mode"] == "accept" for n in api.node_list()) and len(api.node_list()) == 2


# -- boots that fail ------------------------------------------------------------------------------------------


def test_a_linode_that_never_runs_is_deleted_and_the_action_fails_temporarily(api: LinodeStandin,
                                                                               make: Any) -> None:
    # 1 s: the Linode that does boot must be running by then even on a loaded machine
    provider = make(boot_timeout="1s", poll_interval="20ms")
    api.plan_boots(count=1)
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 2, action_id=61)
    assert time.monotonic() - started < 8
    message = str(info.value)
    assert "1 of 2 Linodes running" in message and "web-61-1: not running within 1s (booting)" in message
    assert info.value.delay is not None and info.value.delay > 0
    stuck = created_bodies(api)[0]["label"]
    assert stuck not in {x["label"] for x in api.live_linodes() if x["status"] != "deleting"}
    assert len(api.node_list()) == 1, "only the Linode that runs is a backend"
    assert provider.status().current == 1
    assert scale(provider, 2, action_id=61).startswith("created 1 (web-61-")  # the retry completes the action
    assert len(ours(api)) == 2 and len(api.node_list()) == 2


def test_a_member_left_booting_by_a_crash_is_waited_for_and_added(api: LinodeStandin, make: Any) -> None:
    api.add_linode("web-70-1", tags=[TAG], status="provisioning")
    provider = make()
    assert provider.status().detail == "1 starting"
    message = scale(provider, 1, action_id=70)
    assert message == "added to NodeBalancer 4242 config 5150: web-70-1, now 1"
    assert not created_bodies(api) and len(api.node_list()) == 1


# -- API errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after", "delay"), [
    (429, "3", 3.0),
    (503, "7", 7.0),
    (500, None, DEFAULT_DELAY),
    (502, None, DEFAULT_DELAY),
    (408, None, DEFAULT_DELAY),
], ids=["429-retry-after", "503-retry-after", "500", "502", "408"])
def test_busy_or_broken_api_on_create_is_temporary_with_its_delay(api: LinodeStandin, make: Any, status: int,
                                                                  retry_after: str | None, delay: float) -> None:
    provider = make()
    api.fail_next(1, status, method="POST", path=r"^/v4/linode/instances$", retry_after=retry_after)
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 1)
    assert info.value.delay == delay
    assert f"HTTP {status}" in str(info.value) and "creating Linode web-" in str(info.value)
    assert ours(api) == []
    scale(provider, 1)
    assert provider.status().current == 1


def test_retry_after_as_an_http_date(api: LinodeStandin, make: Any) -> None:
    import email.utils

    provider = make()
    api.fail_next(1, 429, method="GET", retry_after=email.utils.formatdate(time.time() + 30, usegmt=True))
    with pytest.raises(TemporaryProviderError, match="HTTP 429") as info:
        provider.status()
    assert info.value.delay is not None and 25 <= info.value.delay <= 31


@pytest.mark.parametrize(("method", "path", "doing"), [
    ("GET", r"^/v4/linode/instances$", "listing Linodes"),
    ("GET", NODES + "$", "listing the nodes of NodeBalancer 4242 config 5150"),
], ids=["linodes", "nodes"])
def test_server_error_on_listing_is_temporary(api: LinodeStandin, make: Any, method: str, path: str,
                                              doing: str) -> None:
    provider = make()
    api.fail_next(1, 503, method=method, path=path, retry_after="2")
    with pytest.raises(TemporaryProviderError, match=f"{doing}: HTTP 503") as info:
        provider.status()
    assert info.value.delay == 2.0
    assert provider.status().current == 0


def test_transient_errors_while_polling_are_retried_until_running(api: LinodeStandin, make: Any) -> None:
    provider = make()
    api.fail_next(2, 503, method="GET", path=r"^/v4/linode/instances/\d+$")
    scale(provider, 1)
    assert provider.status().current == 1


@pytest.mark.parametrize(("overrides", "inject", "expected"), [
    ({"linode_type": "g6-huge-1"}, None, "HTTP 400: type: A valid plan type by that ID was not found"),
    ({"region": "mars-1"}, None, "HTTP 400: region: region is not valid"),
    ({"stackscript_id": 1}, None, "HTTP 400: stackscript_id: StackScript not found"),
    ({"firewall_id": 1}, None, "HTTP 400: firewall_id: Firewall not found"),
    ({}, (403, "Unauthorized", None), "HTTP 403: Unauthorized"),
    ({}, (400, "Account limit reached. Please open a support ticket.", "type"),
     "HTTP 400: type: Account limit reached"),
], ids=["bad-type", "bad-region", "bad-stackscript", "bad-firewall", "forbidden", "limit"])
def test_client_errors_are_permanent_with_linodes_reasons(api: LinodeStandin, make: Any, overrides: dict[str, Any],
                                                          inject: tuple[int, str, str | None] | None,
                                                          expected: str) -> None:
    provider = make(**overrides)
    if inject:
        api.fail_next(1, inject[0], method="POST", path=r"^/v4/linode/instances$", reason=inject[1], field=inject[2])
    with pytest.raises(PermanentProviderError) as info:
        scale(provider, 1)
    assert expected in str(info.value)
    assert str(info.value).startswith(f"{GROUP}: creating Linode web-")
    assert ours(api) == []


def test_a_refused_node_is_permanent_and_the_next_scale_adds_it(api: LinodeStandin, make: Any) -> None:
    provider = make()
    api.fail_next(1, 400, method="POST", path=NODES + "$", reason="Must begin with 192.168", field="address")
    with pytest.raises(PermanentProviderError, match=r"adding Linode web-\d+-1 \(192\.168\.\S+:9100\) to "
                                                     r"NodeBalancer 4242 config 5150: HTTP 400: address: Must begin"):
        scale(provider, 1, action_id=81)
    assert len(ours(api)) == 1 and api.node_list() == []
    assert scale(provider, 1, action_id=81) == "added to NodeBalancer 4242 config 5150: web-81-1, now 1"
    assert len(created_bodies(api)) == 1


def test_wrong_token_is_permanent(api: LinodeStandin, make: Any) -> None:
    provider = make(token="not-the-token")
    with pytest.raises(PermanentProviderError, match="HTTP 401: Invalid Token"):
        provider.status()


def test_unreachable_api_is_temporary(make: Any) -> None:
    dead = LinodeStandin().start()
    dead.stop()  # its port is closed now
    with pytest.raises(TemporaryProviderError, match="cannot reach the Linode API") as info:
        make(dead).status()
    assert info.value.delay == DEFAULT_DELAY


def test_a_stalled_api_times_out_temporarily(api: LinodeStandin, make: Any) -> None:
    provider = make(request_timeout="200ms")
    api.stall_next(1, 3.0, method="GET", path=r"^/v4/linode/instances$")
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match="no answer from the Linode API in time"):
        provider.status()
    assert time.monotonic() - started < 2.5, "gave up after its timeout, not after the 3 s stall"


# -- ownership, idempotency, pagination ----------------------------------------------------------------------


def test_foreign_linodes_are_never_counted_drained_nor_deleted(api: LinodeStandin, make: Any) -> None:
    foreign = {
        api.add_linode("web-1-1"),  # our label, no tag
        api.add_linode("web-2-1", tags=["autoscale-api"]),  # another group
        api.add_linode("web-3-1", tags=["autoscale-web2"]),  # a tag our tag is a substring of
        api.add_linode("web-4-1", tags=["autoscale"]),  # scraped by Prometheus, not ours
    }
    for linode_id in sorted(foreign):
        api.add_node(f"{api.private_ip(linode_id)}:9100", label=f"foreign-{linode_id}")
    mine = api.add_linode("web-5-1", tags=[TAG, "autoscale"])
    provider = make()
    assert [m.id for m in provider.members()] == [str(mine)]
    scale(provider, 3, action_id=1)  # labels web-1-1 is taken (not ours): ours are web-1-2, web-1-3
    assert sorted(x["label"] for x in ours(api)) == ["web-1-2", "web-1-3", "web-5-1"]
    scale(provider, 0)
    assert provider.status().current == 0
    survivors = {x["id"] for x in api.live_linodes() if x["status"] != "deleting"}
    assert foreign <= survivors
    assert len(api.node_list()) == len(foreign), "only the foreign nodes are left"
    touched = {r.path.rsplit("/", 1)[1] for r in api.requests if r.method in ("PUT", "DELETE")}
    assert not touched & {str(i) for i in foreign}
    assert not touched & {str(n["id"]) for n in api.node_list()}


def test_the_tag_separates_two_groups_on_one_account(api: LinodeStandin, make: Any) -> None:
    web, api_group = make(), make(group="api")
    scale(web, 2)
    scale(api_group, 1)
    assert web.status().current == 2 and api_group.status().current == 1
    scale(api_group, 0)
    assert web.status().current == 2 and len(api.node_list()) == 2


def test_rerunning_an_interrupted_action_creates_only_what_is_missing(api: LinodeStandin, make: Any) -> None:
    provider = make()
    api.fail_next(1, 503, method="POST", path=r"^/v4/linode/instances$", after=1)  # stops after one create
    with pytest.raises(TemporaryProviderError, match="creating Linode web-21-2: HTTP 503"):
        scale(provider, 3, action_id=21)
    assert [x["label"] for x in ours(api)] == ["web-21-1"]
    restarted = make()  # alertscaler restarted: a new provider, the same account
    scale(restarted, 3, action_id=21)
    assert sorted(x["label"] for x in ours(api)) == ["web-21-1", "web-21-2", "web-21-3"]
    assert len(created_bodies(api)) == 3
    addresses = [n["address"] for n in api.node_list()]
    assert len(addresses) == 3 == len(set(addresses)), "one node per member"


def test_listings_follow_pagination(make: Any) -> None:
    with LinodeStandin(page_size=2) as small_pages:
        for i in range(3):
            small_pages.add_linode(f"other-{i}", tags=[TAG + "-old"])
        provider = make(small_pages)
        scale(provider, 3)
        assert provider.status().current == 3 and len(provider.members()) == 3
        assert any(r.query.get("page") == ["2"] for r in small_pages.requests_to("GET", r"^/v4/linode/instances$"))
        assert any(r.query.get("page") == ["2"] for r in small_pages.requests_to("GET", NODES + "$"))
        scale(provider, 1)
        assert provider.status().current == 1 and len(small_pages.node_list()) == 1


# -- heal --------------------------------------------------------------------------------------------------------


def test_heal_creates_the_replacement_first_then_removes_the_old_member(api: LinodeStandin, make: Any) -> None:
    provider = make()
    scale(provider, 2, action_id=91)
    old = next(m for m in provider.members() if m.labels["label"] == "web-91-1")
    mark = len(api.requests)
    message = provider.heal(old.id)
    assert message == f"replaced web-91-1 ({old.id}) by web-r{old.id} ({message.rsplit('(', 1)[1][:-1]})"
    log = api.requests[mark:]
    create = next(i for i, r in enumerate(log) if r.method == "POST" and r.path == "/v4/linode/instances")
    add = next(i for i, r in enumerate(log) if r.method == "POST" and r.path.endswith("/nodes"))
    drain = next(i for i, r in enumerate(log) if r.method == "PUT" and r.path.endswith(f"/{old.labels['node_id']}"))
    remove = next(i for i, r in enumerate(log) if r.method == "DELETE" and r.path.endswith(f"/{old.labels['node_id']}"))
    delete = next(i for i, r in enumerate(log) if r.method == "DELETE" and r.path.endswith(f"/instances/{old.id}"))
    assert create < add < drain < remove < delete
    assert log[create].body["label"] == f"web-r{old.id}" and log[create].body["tags"] == [TAG]
    members = provider.members()
    assert len(members) == 2 and old.id not in {m.id for m in members}
    assert all(m.state is MemberState.RUNNING and m.labels["node_mode"] == "accept" for m in members)


def test_heal_refuses_a_linode_that_is_not_a_member(api: LinodeStandin, make: Any) -> None:
    foreign = api.add_linode("web-1-1")
    with pytest.raises(PermanentProviderError, match=f"no member {foreign}"):
        make().heal(str(foreign))
    assert [r for r in api.requests if r.method != "GET"] == []


def test_heal_keeps_the_old_member_when_the_replacement_does_not_boot(api: LinodeStandin, make: Any) -> None:
    scale(make(), 1)  # set up with the default boot timeout: a loaded machine must not fail the set-up
    provider = make(boot_timeout="200ms", poll_interval="20ms")
    old = provider.members()[0]
    api.plan_boots(count=1)
    with pytest.raises(TemporaryProviderError, match=r"replacement web-r\d+: not running within 200ms.*kept"):
        provider.heal(old.id)
    assert not api.requests_to("PUT", NODES) and not api.requests_to("DELETE", rf"/instances/{old.id}$")
    assert [m.id for m in provider.members()] == [old.id]


def test_heal_rerun_after_a_crash_finds_the_replacement(api: LinodeStandin, make: Any) -> None:
    provider = make()
    scale(provider, 1)
    old = provider.members()[0]
    api.fail_next(1, 500, method="DELETE", path=rf"^/v4/linode/instances/{old.id}$")
    with pytest.raises(TemporaryProviderError, match="deleting Linode"):
        provider.heal(old.id)
    assert provider.status().current == 2
    restarted = make()
    assert restarted.heal(old.id).startswith(f"replaced {old.labels['label']} ({old.id}) by web-r{old.id} (")
    assert len(created_bodies(api)) == 2, "no second replacement"
    assert [m.labels["label"] for m in restarted.members()] == [f"web-r{old.id}"]
    assert restarted.heal(old.id).startswith(f"member {old.id} was already replaced by web-r{old.id}")
    assert len(created_bodies(api)) == 2 and len(api.node_list()) == 1


# -- secrets ------------------------------------------------------------------------------------------------------


def test_token_and_root_passwords_never_in_logs_errors_repr_or_state(api: LinodeStandin, make: Any, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make()
    scale(provider, 2)
    api.fail_next(1, 400, method="POST", path=r"^/v4/linode/instances$", reason="root_pass is too weak",
                  field="root_pass")
    with pytest.raises(PermanentProviderError) as refused:
        scale(provider, 3)
    bad = make(token="wrong-token-Yq2vP0")
    with pytest.raises(PermanentProviderError) as unauthorized:
        bad.status()
    provider.heal(provider.members()[0].id)
    scale(provider, 0)
    passwords = [r.body["root_pass"] for r in api.requests_to("POST", r"^/v4/linode/instances$")]
    assert len(passwords) == 4 and len(set(passwords)) == 4, "one password per Linode"
    assert all(len(p) >= 40 for p in passwords)
    texts = [str(refused.value), repr(refused.value), str(unauthorized.value), repr(provider), repr(bad),
             repr(provider.config), str(provider.config), repr(vars(provider)), caplog.text,
             repr(LinodeConfig.model_validate(provider.config.model_dump())), provider.config.model_dump_json()]
    texts += [f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file()]
    for text in texts:
        assert api.token not in text and "wrong-token-Yq2vP0" not in text
        assert not [p for p in passwords if p in text]
    assert "root_pass: root_pass is too weak" in str(refused.value)


def test_token_from_a_file_or_the_environment_through_the_policy_loader(api: LinodeStandin, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "linode-token").write_text(api.token + "\n")
    monkeypatch.setenv("LINODE_TOKEN_FOR_TEST", api.token)
    for secret in ("token_file: linode-token", "token_env: LINODE_TOKEN_FOR_TEST"):
        policy = load_policy(f"""
server: {{auth: {{insecure_no_auth: true}}}}
groups:
  web:
    provider:
      type: linode
      {secret}
      api_url: {api.api_url}
      region: {standin.REGIONS[0]}
      linode_type: {standin.TYPES[0]}
      image: {standin.IMAGES[0]}
      nodebalancer: {{id: {standin.NODEBALANCER_ID}, config_id: {standin.CONFIG_ID}, port: 9100}}
    min_size: 0
    max_size: 3
    scale_out: {{matchers: ['alertname="HighLoad"'], adjustment: 1}}
""", base_dir=tmp_path)
        provider = registry_create(policy.groups["web"].provider, ProviderContext(group="web", state_dir=tmp_path))
        try:
            assert provider.status().current == 0
        finally:
            provider.close()
        assert api.token not in repr(policy)


# -- the stand-in itself -------------------------------------------------------------------------------------------


def test_standin_refuses_requests_without_the_token_and_filters_tags_by_substring(api: LinodeStandin) -> None:
    import requests

    answer = requests.get(f"{api.api_url}/linode/instances", timeout=5)
    assert answer.status_code == 401 and answer.json() == {"errors": [{"reason": "Invalid Token"}]}
    api.add_linode("a-1", tags=["autoscale-web2"])
    api.add_linode("b-1", tags=["other"])
    found = requests.get(f"{api.api_url}/linode/instances", timeout=5,
                         headers={"Authorization": f"Bearer {api.token}",
                                  "X-Filter": '{"tags": {"+contains": "autoscale-web"}}'}).json()
    assert [x["label"] for x in found["data"]] == ["a-1"]
    assert (found["page"], found["pages"], found["results"]) == (1, 1, 1)
    bad = requests.get(f"{api.api_url}/linode/instances", timeout=5,
                       headers={"Authorization": f"Bearer {api.token}", "X-Filter": '{"root_pass": "x"}'})
    assert bad.status_code == 400 and bad.json()["errors"][0] == {"reason": "Cannot filter on root_pass",
                                                                  "field": "X-Filter"}


def test_standin_boots_take_the_configured_time(make: Any) -> None:
    with LinodeStandin(boot_polls=0, boot_seconds=0.3) as slow:
        provider = make(slow, poll_interval="20ms")
        started = time.monotonic()
        scale(provider, 1)
        assert 0.3 <= time.monotonic() - started < 5
        assert len(slow.requests_to("GET", r"^/v4/linode/instances/\d+$")) > 3  # polled while it booted


# -- quiet scale-in: leaving reported first, the group's drain, gone reported last ------------------------


class Departed:
    """``providers.base.Departures`` that records, with the API requests made so far and the waits."""

    def __init__(self, api: LinodeStandin) -> None:
        self.api = api
        self.events: list[tuple[str, object, int]] = []
        self.waited: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waited.append(seconds)
        return True

    def leaving(self, members: Any, why: str) -> None:
        self.events.append(("leaving", [(m.id, m.state.value) for m in members], len(self.api.requests)))

    def gone(self, member_ids: Any) -> None:
        self.events.append(("gone", list(member_ids), len(self.api.requests)))


@pytest.mark.parametrize(("nodebalancer", "drain_time", "drain", "waited"), [
    (True, "30s", 8.0, [30.0]),
    (True, "5s", 40.0, [40.0]),
    (False, "30s", 8.0, [8.0]),
    (False, "30s", 0.0, []),
], ids=["nodebalancer-drain-time-is-longer", "the-groups-drain-is-longer", "no-nodebalancer-the-groups-drain",
        "no-nodebalancer-no-drain"])
def test_scale_in_reports_leaving_before_the_pool_and_waits_the_longer_drain(
        api: LinodeStandin, make: Any, nodebalancer: bool, drain_time: str, drain: float,
        waited: list[float]) -> None:
    slept: list[float] = []
    departed = Departed(api)
    overrides: dict[str, Any] = {} if nodebalancer else {"nodebalancer": None, "private_ip": False}
    provider = make(drain_time=drain_time, sleep=lambda s: slept.append(s) if s >= 1 else None, **overrides)
    scale(provider, 2, action_id=61)
    victim = next(x for x in ours(api) if x["label"] == "web-61-1")
    before = len(api.requests)
    provider.scale(ScaleRequest(GROUP, 2, 1, 62, 62, drain=drain, departures=departed))
    assert departed.waited == waited and slept == []  # the drain is waited through the departures
    (leaving, told_at_leaving), (gone, told_at_gone) = [(e[:2], e[2]) for e in departed.events]
    assert leaving == ("leaving", [(str(victim["id"]), "running")]) and gone == ("gone", [str(victim["id"])])
    changes = [i for i, r in enumerate(api.requests) if i >= before and r.method in ("PUT", "DELETE")]
    assert told_at_leaving <= changes[0], "reported leaving before the NodeBalancer or the Linode is touched"
    delete = first(api, "DELETE", rf"^/v4/linode/instances/{victim['id']}$")
    assert told_at_gone > index_of(api, delete), "reported gone after the Linode is deleted"


def test_a_drain_ended_by_the_service_stopping_leaves_the_victim_drained_for_the_next_run(api: LinodeStandin,
                                                                                        make: Any) -> None:
    class Stopping(Departed):
        def wait(self, seconds: float) -> bool:
            return False

    provider = make(drain_time="30s")
    scale(provider, 2, action_id=71)
    with pytest.raises(TemporaryProviderError, match="stopping during the drain of web-71-1"):
        provider.scale(ScaleRequest(GROUP, 2, 1, 72, 72, drain=10.0, departures=Stopping(api)))
    assert len(ours(api)) == 2 and [n["mode"] for n in api.node_list()].count("drain") == 1
    assert provider.status().current == 1  # out of the group: drained
    departed = Departed(api)
    assert "finished removing 1 drained (web-71-1)" in provider.scale(
        ScaleRequest(GROUP, 1, 1, 73, 73, drain=10.0, departures=departed))
    assert [x["label"] for x in ours(api)] == ["web-71-2"] and departed.waited == [30.0]
