"""The ``openstack-nova`` provider driven through the real openstacksdk against the Keystone + Nova stand-in.

Build failures and timeouts cleaned up, API errors translated (5xx / 429 temporary with their delay, 4xx
permanent with Nova's message), ownership (a foreign server is never counted nor deleted), crash-resume of an
action, user data, the four ways to authenticate, token reuse and refresh, secrets kept out of errors and logs.
Polling is fast (10 ms) and every wait has a deadline.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Provider, ProviderContext, ScaleRequest
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.openstack.nova.provider import NovaConfig, NovaProvider
from alertscaler.providers.registry import config_model
from alertscaler.providers.registry import create as registry_create
from tests.contract.provider_fixtures import nova_config
from tests.support import openstack_standin as standin
from tests.support.openstack_standin import OpenStackStandin

pytestmark = [
    pytest.mark.integration,
    # openstacksdk 4.x warns about its own internals on every call; nothing alertscaler can act on
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin() as cloud:
        yield cloud


@pytest.fixture
def providers(tmp_path: Path) -> Iterator[list[NovaProvider]]:
    made: list[NovaProvider] = []
    yield made
    for provider in made:
        provider.close()


@pytest.fixture
def make(cloud: OpenStackStandin, providers: list[NovaProvider], tmp_path: Path) -> Any:
    def make(target: OpenStackStandin | None = None, group: str = GROUP, **overrides: Any) -> NovaProvider:
        config = nova_config(target or cloud, **overrides)
        provider = NovaProvider(config, ProviderContext(group=group, state_dir=tmp_path / group))
        providers.append(provider)
        return provider

    return make


_ids = iter(range(100, 10_000))


def scale(provider: Provider, desired: int, action_id: int | None = None) -> str:
    action = action_id if action_id is not None else next(_ids)
    return provider.scale(ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action,
                                       decision_id=action))


def ours(cloud: OpenStackStandin, group: str = GROUP) -> list[dict[str, Any]]:
    return [s for s in cloud.live_servers() if s["metadata"].get("alertscaler_group") == group]


def created_bodies(cloud: OpenStackStandin) -> list[dict[str, Any]]:
    return [r.body["server"] for r in cloud.requests_to("POST", r"/servers$") if r.status == 202]


# -- the basics, through the registry ---------------------------------------------------------------------


def test_registry_builds_the_provider_and_members_look_right(cloud: OpenStackStandin, tmp_path: Path) -> None:
    raw = nova_config(cloud).model_dump(mode="json")
    raw["auth"]["application_credential_secret"] = standin.APP_CRED_SECRET  # dumped masked
    config = config_model("openstack-nova").model_validate(raw)
    provider = registry_create(config, ProviderContext(group=GROUP, state_dir=tmp_path))
    try:
        assert isinstance(provider, Provider) and provider.idempotent
        message = scale(provider, 2, action_id=7)
        assert message.startswith("created 2 (web-7-1, web-7-2)"), message
        status = provider.status()
        assert status.current == 2 and status.detail == "2 running"
        for member in status.members:
            assert member.state is MemberState.RUNNING
            assert member.address is not None
            assert member.address.startswith("10.0.") and member.address.endswith(":9100")
            assert member.labels["name"] in ("web-7-1", "web-7-2") and member.labels["action"] == "7"
            assert member.created_at is not None and member.created_at.tzinfo is not None
        body = created_bodies(cloud)[0]
        assert body["metadata"] == {"prometheus_autoscaling": "true", "alertscaler_group": GROUP,
                                    "alertscaler_action": "7"}
        assert body["imageRef"] == standin.IMAGE_ID and body["flavorRef"] == "2"  # resolved from the names
        assert body["networks"] == [{"uuid": standin.NETWORK_ID}]
    finally:
        scale(provider, 0)
        provider.close()
    assert ours(cloud) == []


def test_create_body_carries_every_option(cloud: OpenStackStandin, make: Any) -> None:
    provider = make(key_name="mykey", security_groups=["default", "web"], availability_zone="nova",
                    metadata={"stack_name": "web-stack"}, name_prefix="as-", flavor="42", image=standin.IMAGE_ID,
                    user_data="#cloud-config\nhostname: {name}\nwrite_files: [{path: /etc/group, content: '{group}'}]\n"
                              "runcmd: ['echo ${HOME} {{ v1.instance_id }}']\n")
    scale(provider, 1, action_id=3)
    body = created_bodies(cloud)[0]
    assert body["name"] == "as-web-3-1"
    assert body["key_name"] == "mykey" and body["availability_zone"] == "nova"
    assert body["security_groups"] == [{"name": "default"}, {"name": "web"}]
    assert body["flavorRef"] == "42" and body["imageRef"] == standin.IMAGE_ID
    assert body["metadata"]["stack_name"] == "web-stack"
    assert base64.b64decode(body["user_data"]).decode() == (
        "#cloud-config\nhostname: as-web-3-1\nwrite_files: [{path: /etc/group, content: 'web'}]\n"
        "runcmd: ['echo ${HOME} {{ v1.instance_id }}']\n")
    assert not cloud.requests_to("GET", r"^/image/v2/images"), "an image id is used as is"


def test_networks_auto_and_ports(cloud: OpenStackStandin, make: Any) -> None:
    scale(make(networks=[]), 1)
    cloud.ports.add("port-1")
    scale(make(group="api", networks=[{"port": "port-1"}]), 1)
    assert [b["networks"] for b in created_bodies(cloud)] == ["auto", [{"port": "port-1"}]]


# -- build failures and timeouts ----------------------------------------------------------------------------


def test_build_error_is_deleted_and_the_action_fails_temporarily(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    cloud.plan_builds("error", count=1)
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 2, action_id=11)
    message = str(info.value)
    assert "1 of 2 servers ACTIVE" in message and "No valid host was found" in message, message
    assert info.value.delay is not None and info.value.delay > 0
    deletes = cloud.requests_to("DELETE", r"/servers/")
    assert len(deletes) == 1, "the ERROR server is cleaned up"
    assert deletes[0].path.rsplit("/", 1)[1] not in {s["id"] for s in cloud.live_servers()}
    assert provider.status().current == 1
    assert scale(provider, 2, action_id=11).startswith("created 1 (web-11-")  # the retry completes the action
    assert len(ours(cloud)) == 2


def test_build_fault_with_a_4xx_code_is_permanent(cloud: OpenStackStandin, make: Any) -> None:
    cloud.plan_builds("error", code=400, message="Build of instance aborted: Flavor's disk is too small.")
    with pytest.raises(PermanentProviderError, match="Flavor's disk is too small"):
        scale(make(), 1)
    assert ours(cloud) == []


def test_server_stuck_in_build_is_deleted_after_boot_timeout(cloud: OpenStackStandin, make: Any) -> None:
    provider = make(boot_timeout="300ms", poll_interval="20ms")
    cloud.plan_builds("stuck")
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match=r"not ACTIVE within 300ms \(BUILD\)"):
        scale(provider, 1)
    assert time.monotonic() - started < 5
    assert ours(cloud) == [] and len(cloud.requests_to("DELETE", r"/servers/")) == 1
    assert provider.status().current == 0


def test_existing_error_server_is_not_counted_and_deleted_by_the_next_scale(cloud: OpenStackStandin,
                                                                             make: Any) -> None:
    provider = make()
    broken = cloud.add_server("web-1-1", {"alertscaler_group": GROUP}, status="ERROR")
    status = provider.status()
    assert status.current == 0 and [m.state for m in status.members] == [MemberState.FAILED]
    message = scale(provider, 1)
    assert "deleted 1 failed (web-1-1)" in message
    assert broken not in {s["id"] for s in cloud.live_servers()}


# -- API errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after", "delay"), [
    (503, "7", 7.0),
    (429, "3", 3.0),
    (500, None, DEFAULT_DELAY),
    (502, None, DEFAULT_DELAY),
], ids=["503-retry-after", "429-retry-after", "500", "502"])
def test_server_errors_on_create_are_temporary_with_delay(cloud: OpenStackStandin, make: Any, status: int,
                                                          retry_after: str | None, delay: float) -> None:
    provider = make()
    cloud.fail_next(1, status, method="POST", path=r"/servers$", retry_after=retry_after)
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 1)
    assert info.value.delay == delay
    assert f"HTTP {status}" in str(info.value) and "creating server web-" in str(info.value)
    assert ours(cloud) == []
    scale(provider, 1)
    assert provider.status().current == 1


def test_server_error_on_listing_is_temporary(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    cloud.fail_next(1, 503, method="GET", path=r"/servers/detail$", retry_after="2")
    with pytest.raises(TemporaryProviderError, match="listing servers: HTTP 503") as info:
        provider.status()
    assert info.value.delay == 2.0
    assert provider.status().current == 0


def test_transient_errors_while_polling_are_retried_until_active(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    cloud.fail_next(2, 503, method="GET", path=r"/servers/[0-9a-f-]+$")
    scale(provider, 1)
    assert provider.status().current == 1


@pytest.mark.parametrize(("overrides", "inject", "expected"), [
    ({"key_name": "nokey"}, None, "HTTP 400: Invalid key_name provided."),
    ({"security_groups": ["nope"]}, None, "HTTP 400: Security group nope not found"),
    ({"flavor": "m1.huge"}, None, "finding flavor 'm1.huge': NotFoundException: No Flavor found for m1.huge"),
    ({"image": "no-such-image"}, None, "finding image 'no-such-image': NotFoundException: No Image found for no-such"),
    ({}, (403, "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"),
     "HTTP 403: Quota exceeded for instances"),
], ids=["bad-key", "bad-security-group", "unknown-flavor", "unknown-image", "quota"])
def test_client_errors_are_permanent_with_novas_message(cloud: OpenStackStandin, make: Any, overrides: dict[str, Any],
                                                        inject: tuple[int, str] | None, expected: str) -> None:
    provider = make(**overrides)
    if inject:
        cloud.fail_next(1, inject[0], method="POST", path=r"/servers$", message=inject[1])
    with pytest.raises(PermanentProviderError) as info:
        scale(provider, 1)
    assert expected in str(info.value)
    assert str(info.value).startswith(f"{GROUP}: ")
    assert ours(cloud) == []


def test_unreachable_endpoint_is_temporary(make: Any) -> None:
    dead = OpenStackStandin().start()
    dead.stop()  # its port is closed now
    provider = make(dead)
    with pytest.raises(TemporaryProviderError, match="ConnectFailure"):
        provider.status()


# -- ownership, idempotency, scale-in ----------------------------------------------------------------------


def test_foreign_servers_are_never_counted_nor_deleted(cloud: OpenStackStandin, make: Any) -> None:
    foreign = {
        cloud.add_server("web-1-1"),  # our naming, no metadata
        cloud.add_server("web-2-1", {"alertscaler_group": "api"}),  # another group
        cloud.add_server("web-3-1", {"prometheus_autoscaling": "true"}),  # discovered by Prometheus, not ours
        cloud.add_server("web-4-1", {"alertscaler_group": GROUP}, status="BUILD"),  # ours
    }
    provider = make()
    assert provider.status().current == 1
    scale(provider, 3)
    assert provider.status().current == 3
    scale(provider, 0)
    assert provider.status().current == 0
    survivors = {s["id"] for s in cloud.live_servers()}
    assert len(foreign & survivors) == 3
    deleted = {r.path.rsplit("/", 1)[1] for r in cloud.requests_to("DELETE", r"/servers/")}
    assert not deleted & survivors


def test_owner_value_separates_two_deployments(cloud: OpenStackStandin, make: Any) -> None:
    prod, staging = make(owner_value="prod-web"), make(owner_value="staging-web")
    scale(prod, 2)
    assert staging.status().current == 0
    scale(staging, 1)
    scale(staging, 0)
    assert prod.status().current == 2


def test_rerunning_an_interrupted_action_creates_only_what_is_missing(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    cloud.fail_next(1, 503, method="POST", path=r"/servers$", after=1)  # the run stops after one create
    with pytest.raises(TemporaryProviderError, match="creating server web-21-2: HTTP 503"):
        scale(provider, 3, action_id=21)
    assert [s["name"] for s in ours(cloud)] == ["web-21-1"]
    restarted = make()  # alertscaler restarted: a new provider, the same cloud
    scale(restarted, 3, action_id=21)
    names = sorted(s["name"] for s in ours(cloud))
    assert names == ["web-21-1", "web-21-2", "web-21-3"]
    assert len(created_bodies(cloud)) == 3


def test_listing_follows_pagination(make: Any) -> None:
    with OpenStackStandin(max_limit=2) as small_pages:
        for i in range(3):
            small_pages.add_server(f"other-{i}")
        provider = make(small_pages)
        scale(provider, 3)
        assert provider.status().current == 3
        assert any("marker" in r.query for r in small_pages.requests_to("GET", r"/servers/detail$"))


def test_scale_in_removes_unhealthy_first_then_oldest(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    scale(provider, 2, action_id=31)
    shutoff = cloud.add_server("web-30-1", {"alertscaler_group": GROUP}, status="SHUTOFF")
    assert provider.status().current == 3
    scale(provider, 2)
    assert shutoff not in {s["id"] for s in cloud.live_servers()}
    scale(provider, 1)
    assert [s["name"] for s in ours(cloud)] == ["web-31-2"]


def test_scale_in_newest(cloud: OpenStackStandin, make: Any) -> None:
    provider = make(scale_in="newest")
    scale(provider, 1, action_id=41)
    scale(provider, 2, action_id=42)
    scale(provider, 1)
    assert [s["name"] for s in ours(cloud)] == ["web-41-1"]


def test_server_not_gone_after_delete_timeout_fails_temporarily(make: Any) -> None:
    with OpenStackStandin(delete_polls=1000) as slow:
        provider = make(slow, delete_timeout="200ms", poll_interval="20ms")
        scale(provider, 1)
        with pytest.raises(TemporaryProviderError, match=r"servers not gone 200ms after DELETE: web-"):
            scale(provider, 0)


# -- authentication, tokens, secrets ---------------------------------------------------------------------


def test_one_token_for_many_calls_and_one_more_when_it_expired(cloud: OpenStackStandin, make: Any) -> None:
    provider = make()
    for desired in (1, 2, 1):
        scale(provider, desired)
        provider.status()
    assert cloud.token_requests == 1
    cloud.expire_tokens()
    assert provider.status().current == 1  # 401 -> keystoneauth re-authenticates once and retries
    scale(provider, 2)
    assert cloud.token_requests == 2


def test_auth_type_none_with_endpoint_override(make: Any) -> None:
    with OpenStackStandin(keystone=False) as noauth:
        provider = make(noauth, auth={"auth_type": "none", "endpoint_override": {"compute": noauth.compute_url}},
                        image=standin.IMAGE_ID)
        scale(provider, 1)
        assert provider.status().current == 1
        assert not noauth.requests_to("POST", r"/auth/tokens")
        # keystoneauth's noauth plugin sends a placeholder token; nothing was ever issued
        assert {r.headers.get("X-Auth-Token") for r in noauth.requests} <= {None, "notused"}


def test_cloud_from_clouds_yaml(cloud: OpenStackStandin, make: Any, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(f"""
clouds:
  standin:
    auth_type: v3applicationcredential
    auth:
      auth_url: {cloud.identity_url}
      application_credential_id: {standin.APP_CRED_ID}
      application_credential_secret: {standin.APP_CRED_SECRET}
    region_name: {standin.REGION}
""")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    provider = make(auth={"cloud": "standin"})
    scale(provider, 1)
    assert provider.status().current == 1 and cloud.token_requests == 1
    assert "standin" in repr(provider) and standin.APP_CRED_SECRET not in repr(provider)


def test_os_environment_with_password(cloud: OpenStackStandin, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"OS_AUTH_URL": cloud.identity_url, "OS_USERNAME": standin.USERNAME,
                        "OS_PASSWORD": standin.PASSWORD, "OS_PROJECT_NAME": "demo",
                        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                        "OS_REGION_NAME": standin.REGION, "OS_IDENTITY_API_VERSION": "3"}.items():
        monkeypatch.setenv(name, value)
    provider = make(auth={})
    scale(provider, 1)
    assert provider.status().current == 1
    body = cloud.requests_to("POST", r"/auth/tokens$")[0].body
    assert body["auth"]["identity"]["methods"] == ["password"]


def test_explicit_password_auth(cloud: OpenStackStandin, make: Any) -> None:
    provider = make(auth={"auth_url": f"{cloud.url}/identity", "username": standin.USERNAME,
                          "password": standin.PASSWORD, "project_name": "demo", "region_name": standin.REGION})
    assert provider.status().current == 0
    assert cloud.token_requests == 1


@pytest.mark.parametrize("kind", ["application_credential", "password"])
def test_secrets_never_in_errors_logs_or_repr(cloud: OpenStackStandin, make: Any, kind: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-secret-Qm9zLkJhZA"
    if kind == "password":
        auth = {"auth_url": cloud.identity_url, "username": standin.USERNAME, "password": wrong,
                "project_name": "demo"}
        right = {**auth, "password": standin.PASSWORD}
        secret = standin.PASSWORD
    else:
        auth = {"auth_url": cloud.identity_url, "application_credential_id": standin.APP_CRED_ID,
                "application_credential_secret": wrong}
        right = {**auth, "application_credential_secret": standin.APP_CRED_SECRET}
        secret = standin.APP_CRED_SECRET
    caplog.set_level(logging.DEBUG)
    bad = make(auth=auth)
    with pytest.raises(PermanentProviderError, match="HTTP 401") as info:
        bad.status()
    good = make(auth=right)
    scale(good, 1)
    cloud.expire_tokens()
    scale(good, 0)
    texts = [str(info.value), repr(info.value), repr(bad), repr(good), repr(good.config), str(good.config),
             repr(NovaConfig.model_validate(good.config.model_dump())), caplog.text]
    for text in texts:
        assert wrong not in text and secret not in text


# -- the stand-in itself ------------------------------------------------------------------------------------


def test_standin_refuses_requests_without_a_valid_token(cloud: OpenStackStandin) -> None:
    import requests

    answer = requests.get(f"{cloud.compute_url}/servers/detail", timeout=5)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == 401
    assert answer.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.identity_url}"'
    assert requests.get(f"{cloud.compute_url}/servers/detail", headers={"X-Auth-Token": "forged"},
                        timeout=5).status_code == 401
    assert requests.get(cloud.compute_url, timeout=5).json()["version"]["version"] == standin.NOVA_VERSION


def test_build_takes_configured_seconds(make: Any) -> None:
    with OpenStackStandin(build_polls=0, build_seconds=0.3) as slow:
        provider = make(slow, poll_interval="20ms")
        started = time.monotonic()
        scale(provider, 1)
        assert 0.3 <= time.monotonic() - started < 5
        polls = slow.requests_to("GET", r"/servers/[0-9a-f-]+$")
        assert len(polls) > 3  # polled while it was building
