"""Heal actions of the ``openstack-nova`` provider through the real openstacksdk against the Nova stand-in.

``replace``: the replacement is created and ACTIVE before the old server is deleted (the stand-in's request log
and its ``lifecycle``), the group never has fewer live servers than before; a replacement that fails to build
is deleted and the old server kept (temporary, or permanent for a 4xx fault); a re-run after a crash (here: the
old server's DELETE failing) reuses the replacement it finds by its ``alertscaler_replaces`` metadata.
``reboot``: a HARD reboot through ``POST /servers/{id}/action``, waited until ACTIVE again, same id; ending in
ERROR fails. ``quarantine``: one metadata replacement (PUT); the server keeps running, leaves status, members,
scale-in and discovery, also for a new provider object, and is listed by ``quarantined()``. A server that is not
the group's (another group's, an unowned one, a quarantined one, an unknown id) is refused as permanent and
never touched. Polling is 10 ms and every wait has a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Healer, ProviderContext, Quarantiner, Rebooter, ScaleRequest
from alertscaler.providers.openstack.nova.provider import NovaProvider
from tests.contract.provider_fixtures import nova_config
from tests.support.openstack_standin import OpenStackStandin, Recorded

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"
AT = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)

Make = Callable[..., NovaProvider]


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin(build_polls=2, reboot_polls=2) as cloud:
        yield cloud


@pytest.fixture
def make(cloud: OpenStackStandin, tmp_path: Path) -> Iterator[Make]:
    made: list[NovaProvider] = []

    def build(**overrides: Any) -> NovaProvider:
        provider = NovaProvider(nova_config(cloud, **overrides), ProviderContext(group=GROUP, state_dir=tmp_path),
                                now=lambda: AT)
        assert isinstance(provider, Healer) and isinstance(provider, Rebooter) and isinstance(provider, Quarantiner)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def scale(provider: NovaProvider, desired: int, action_id: int = 7) -> str:
    return provider.scale(ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action_id,
                                       decision_id=action_id))


def by_name(provider: NovaProvider) -> dict[str, str]:
    """name -> id of the group's members (one second of ``created`` cannot order them)."""
    return {m.labels["name"]: m.id for m in provider.members()}


def server(cloud: OpenStackStandin, server_id: str) -> dict[str, Any]:
    (body,) = [s for s in cloud.live_servers() if s["id"] == server_id]
    return body


def alive(cloud: OpenStackStandin) -> set[str]:
    return {s["id"] for s in cloud.live_servers()}


def changes_to(cloud: OpenStackStandin, server_id: str) -> list[Recorded]:
    """Every request that could change the server: anything but a GET of it."""
    return [r for r in cloud.requests if r.method != "GET" and server_id in r.path]


def live_counts(cloud: OpenStackStandin, live: set[str], since: int) -> list[int]:
    """The number of live servers (ACTIVE, not being deleted) after each lifecycle event from ``since`` on."""
    live, counts = set(live), []
    for event, server_id in cloud.lifecycle[since:]:
        if event == "active":
            live.add(server_id)
        elif event in ("delete", "error"):
            live.discard(server_id)
        counts.append(len(live))
    return counts


# -- replace -----------------------------------------------------------------------------------------------------


def test_heal_boots_the_replacement_first_then_deletes_the_old_server(cloud: OpenStackStandin, make: Make) -> None:
    provider = make()
    scale(provider, 2)
    old, other = by_name(provider)["web-7-1"], by_name(provider)["web-7-2"]
    requests, events = len(cloud.requests), len(cloud.lifecycle)

    result = provider.heal(old)

    (post,) = [i for i, r in enumerate(cloud.requests[requests:]) if r.method == "POST" and r.path.endswith("/servers")]
    (delete,) = [i for i, r in enumerate(cloud.requests[requests:]) if r.method == "DELETE"]
    assert post < delete and cloud.requests[requests + delete].path.endswith(f"/servers/{old}")
    body = cloud.requests[requests + post].body["server"]
    new = next(s["id"] for s in cloud.live_servers() if s["name"] == body["name"])
    assert body["name"] == f"web-r{old[:8]}"
    assert body["metadata"] == {"prometheus_autoscaling": "true", "alertscaler_group": GROUP,
                                "alertscaler_replaces": old}
    assert result == f"replaced web-7-1 ({old}) by web-r{old[:8]} ({new})"
    lifecycle = cloud.lifecycle[events:]
    assert lifecycle.index(("active", new)) < lifecycle.index(("delete", old)) < lifecycle.index(("gone", old))
    assert min(live_counts(cloud, {old, other}, events)) == 2  # never below the original count
    status = provider.status()
    assert status.current == 2 and {m.id for m in status.members} == {other, new}
    assert alive(cloud) == {other, new}
    assert changes_to(cloud, other) == []  # the other member untouched


@pytest.mark.parametrize(("plan", "overrides", "error", "why"), [
    ({"outcome": "error"}, {}, TemporaryProviderError, "ERROR: No valid host was found"),
    ({"outcome": "stuck"}, {"boot_timeout": "300ms"}, TemporaryProviderError, "not ACTIVE within 300ms (BUILD)"),
    ({"outcome": "error", "code": 400, "message": "Flavor's disk is too small."}, {}, PermanentProviderError,
     "Flavor's disk is too small."),
], ids=["build-error", "build-timeout", "build-fault-4xx"])
def test_failed_replacement_is_deleted_and_the_old_server_kept(cloud: OpenStackStandin, make: Make,
                                                               plan: dict[str, Any], overrides: dict[str, Any],
                                                               error: type[Exception], why: str) -> None:
    scale(make(), 1)  # set up with the default boot timeout: a loaded machine must not fail the set-up
    provider = make(**overrides)  # the short timeout is for the replacement that never boots
    (old,) = (m.id for m in provider.members())
    cloud.plan_builds(count=1, **plan)
    with pytest.raises(error) as info:
        provider.heal(old)
    assert why in str(info.value) and "(deleted; web-7-1 is kept)" in str(info.value)
    assert alive(cloud) == {old} and server(cloud, old)["status"] == "ACTIVE"
    assert changes_to(cloud, old) == []
    assert provider.status().current == 1
    # the next attempt (the build plan used up) heals
    assert provider.heal(old).startswith(f"replaced web-7-1 ({old}) by web-r{old[:8]} (")
    assert old not in alive(cloud) and len(alive(cloud)) == 1


def test_rerun_after_a_crash_reuses_the_replacement(cloud: OpenStackStandin, make: Make) -> None:
    provider = make()
    scale(provider, 1)
    (old,) = (m.id for m in provider.members())
    cloud.fail_next(1, 503, method="DELETE", path=f"/servers/{old}$")  # dies before the old server is deleted
    with pytest.raises(TemporaryProviderError, match="503"):
        provider.heal(old)
    (new,) = alive(cloud) - {old}
    assert server(cloud, new)["status"] == "ACTIVE" and server(cloud, new)["metadata"]["alertscaler_replaces"] == old
    assert provider.status().current == 2  # one more, never one less

    restarted = make()  # a new process: finds the replacement by its metadata, boots nothing
    posts = len(cloud.requests_to("POST", r"/servers$"))
    assert restarted.heal(old) == f"replaced web-7-1 ({old}) by web-r{old[:8]} ({new})"
    assert len(cloud.requests_to("POST", r"/servers$")) == posts
    assert alive(cloud) == {new}
    assert restarted.heal(old) == f"{old} was already replaced by web-r{old[:8]} ({new})"
    assert alive(cloud) == {new}


# -- reboot ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("before", ["ACTIVE", "SHUTOFF", "ERROR"], ids=["active", "shutoff", "error"])
def test_reboot_is_hard_in_place_and_waits_for_active(cloud: OpenStackStandin, make: Make, before: str) -> None:
    provider = make()
    scale(provider, 2)
    member, other = by_name(provider)["web-7-1"], by_name(provider)["web-7-2"]
    if before != "ACTIVE":
        cloud.set_status(member, before)
    events = len(cloud.lifecycle)
    result = provider.reboot(member)
    assert result == f"rebooted web-7-1 ({member}) (HARD): ACTIVE again (it was {before})"
    (action,) = cloud.requests_to("POST", f"/servers/{member}/action$")
    assert action.body == {"reboot": {"type": "HARD"}} and action.status == 202
    assert cloud.lifecycle[events:] == [("reboot", member), ("rebooted", member)]
    assert server(cloud, member)["status"] == "ACTIVE" and server(cloud, member)["OS-EXT-STS:task_state"] is None
    assert {m.id for m in provider.members()} == {member, other}  # same id, nothing created or deleted
    assert [m.state for m in provider.members()] == [MemberState.RUNNING, MemberState.RUNNING]
    assert cloud.requests_to("POST", r"/servers$")[2:] == [] and cloud.requests_to("DELETE", "/servers/") == []


def test_reboot_ending_in_error_fails(cloud: OpenStackStandin, make: Make) -> None:
    provider = make()
    scale(provider, 1)
    (member,) = (m.id for m in provider.members())
    cloud.plan_reboots(count=1)
    with pytest.raises(TemporaryProviderError, match="did not come back from a HARD reboot: ERROR: Failed to start "
                                                     "libvirt guest"):
        provider.reboot(member)
    assert alive(cloud) == {member} and server(cloud, member)["status"] == "ERROR"


def test_reboot_refused_by_nova_during_a_build_is_temporary(cloud: OpenStackStandin, make: Make) -> None:
    provider = make()
    building = cloud.add_server("web-3-1", {"alertscaler_group": GROUP}, status="BUILD", stuck=True)
    with pytest.raises(TemporaryProviderError, match=f"HTTP 409: Cannot 'reboot' instance {building} while it is "
                                                     "in vm_state building"):
        provider.reboot(building)
    assert server(cloud, building)["status"] == "BUILD"


# -- quarantine --------------------------------------------------------------------------------------------------


def test_quarantine_takes_the_server_out_of_the_group_and_keeps_it_running(cloud: OpenStackStandin,
                                                                          make: Make) -> None:
    provider = make(metadata={"team": "web"})
    scale(provider, 3)
    held = by_name(provider)["web-7-2"]
    result = provider.quarantine(held)
    assert result == (f"quarantined web-7-2 ({held}): alertscaler_group=quarantined:web, without "
                      "prometheus_autoscaling; left ACTIVE for inspection")
    (put,) = [r for r in changes_to(cloud, held) if r.method == "PUT"]
    assert put.path.endswith(f"/servers/{held}/metadata") and put.status == 200
    expected = {"team": "web", "alertscaler_group": "quarantined:web", "alertscaler_action": "7",
                "alertscaler_quarantined_at": "2026-11-22T03:04:05Z"}
    assert put.body == {"metadata": expected}
    assert [r.method for r in changes_to(cloud, held)] == ["PUT"]  # one request, nothing else
    assert server(cloud, held)["metadata"] == expected and server(cloud, held)["status"] == "ACTIVE"

    status = provider.status()
    assert status.current == 2 and held not in {m.id for m in status.members}
    (listed,) = provider.quarantined()
    assert listed.id == held and listed.labels["quarantined_at"] == "2026-11-22T03:04:05Z"
    assert listed.labels["name"] == "web-7-2" and listed.state is MemberState.RUNNING
    assert provider.quarantine(held) == f"web-7-2 ({held}) is already quarantined (since 2026-11-22T03:04:05Z)"

    assert scale(provider, 3, action_id=8).startswith("created 1 (web-8-1)")  # the engine restores the size
    assert scale(provider, 0, action_id=9).startswith("deleted 3")  # scale-in never picks it
    assert alive(cloud) == {held} and server(cloud, held)["status"] == "ACTIVE"
    restarted = make()  # a new provider object: still not a member, still listed as quarantined
    assert restarted.status().current == 0 and restarted.members() == []
    assert [m.id for m in restarted.quarantined()] == [held]
    scale(restarted, 0, action_id=10)
    assert alive(cloud) == {held} and [r.method for r in changes_to(cloud, held)] == ["PUT"]
    for action in (restarted.heal, restarted.reboot):  # no longer the group's: refused
        with pytest.raises(PermanentProviderError, match="is not a member"):
            action(held)


def test_quarantine_of_a_server_in_error_is_refused(cloud: OpenStackStandin, make: Make) -> None:
    provider = make()
    scale(provider, 1)
    (member,) = (m.id for m in provider.members())
    cloud.set_status(member, "ERROR")
    with pytest.raises(PermanentProviderError, match="it is ERROR, and Nova changes the metadata of a server only "
                                                     "while it is ACTIVE, SHUTOFF, PAUSED or SUSPENDED"):
        provider.quarantine(member)
    assert changes_to(cloud, member) == [] and server(cloud, member)["metadata"]["alertscaler_group"] == GROUP


# -- not the group's ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["heal", "reboot", "quarantine"])
@pytest.mark.parametrize("whose", ["other-group", "unowned", "unknown-id"])
def test_a_server_that_is_not_a_member_is_permanent_and_untouched(cloud: OpenStackStandin, make: Make,
                                                                  action: str, whose: str) -> None:
    provider = make()
    scale(provider, 1)
    if whose == "other-group":
        foreign = cloud.add_server("web-7-1", {"alertscaler_group": "api", "prometheus_autoscaling": "true"})
    elif whose == "unowned":
        foreign = cloud.add_server("web-7-2")  # our naming, no metadata
    else:
        foreign = "4b4f0b62-0000-4000-8000-000000000000"
    before = [s for s in cloud.live_servers() if s["id"] == foreign]
    requests = len(cloud.requests)
    with pytest.raises(PermanentProviderError, match=f"{foreign} is not a member"):
        getattr(provider, action)(foreign)
    assert [(r.method, r.path) for r in cloud.requests[requests:] if r.method != "GET"] == []
    assert [s for s in cloud.live_servers() if s["id"] == foreign] == before
    assert provider.status().current == 1
