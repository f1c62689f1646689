"""The pure parts of healing for ``openstack-heat`` and ``openstack-nova``, table-driven.

Heat (``openstack_heat_healing``): the size a no-change stack update will leave (``template_desired``,
``plan_update``: the unhealthy member must be replaced, not dropped), where the update stands
(``judge_heal_update``), which member replaced the old one (``replacement``). Nova (``nova_servers``): the
metadata of a quarantined server, how far a reboot has got, the replacement's name; the config refusing the
metadata keys healing sets. ``registry.heal_actions`` for both provider types.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from alertscaler.model.errors import PermanentProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers import registry
from alertscaler.providers.openstack.heat.events import GroupView, StackInfo, Verdict
from alertscaler.providers.openstack.heat.healing import (
    Desired,
    find_member,
    judge_heal_update,
    plan_update,
    replacement,
    template_desired,
)
from alertscaler.providers.openstack.nova.provider import NovaConfig
from alertscaler.providers.openstack.nova.servers import (
    ServerView,
    quarantine_metadata,
    reboot_progress,
    replacement_name,
)

# -- registry -------------------------------------------------------------------------------------------------

HEAT = {"type": "openstack-heat", "stack": "web"}
NOVA = {"type": "openstack-nova", "image": "cirros", "flavor": "m1.small"}

ACTIONS: list[tuple[str, dict[str, Any], frozenset[str]]] = [
    ("heat-signal", HEAT, frozenset({"replace"})),
    ("heat-capacity", {**HEAT, "mode": "capacity", "capacity_parameter": "desired_capacity"}, frozenset({"replace"})),
    ("heat-labels", {"type": "openstack-heat", "stack_from_labels": True, "allowed_projects": ["p"]},
     frozenset({"replace"})),
    ("nova-defaults", NOVA, frozenset({"replace", "reboot", "quarantine"})),
    ("nova-custom-owner", {**NOVA, "owner_key": "team", "owner_value": "web", "discovery_metadata": {}},
     frozenset({"replace", "reboot", "quarantine"})),
]


@pytest.mark.parametrize(("config", "expected"), [(c, e) for _, c, e in ACTIONS], ids=[n for n, _, _ in ACTIONS])
def test_heal_actions(config: dict[str, Any], expected: frozenset[str]) -> None:
    model = registry.config_model(str(config["type"]))
    assert registry.heal_actions(model.model_validate(config)) == expected


# -- Heat: the size an update leaves --------------------------------------------------------------------------


def hot(**props: Any) -> dict[str, Any]:
    return {"heat_template_version": "2018-08-31",
            "resources": {"asg": {"type": "OS::Heat::AutoScalingGroup", "properties": props}}}


DESIRED: list[tuple[str, dict[str, Any], dict[str, str], Desired]] = [
    ("literal", hot(desired_capacity=3), {}, Desired(3, source="a literal")),
    ("get-param", hot(desired_capacity={"get_param": "size"}), {"size": "2"}, Desired(2, source="parameter size")),
    ("get-param-list", hot(desired_capacity={"get_param": ["size"]}), {"size": "4"},
     Desired(4, source="parameter size")),
    ("cfn-ref", {"Resources": {"asg": {"Properties": {"DesiredCapacity": {"Ref": "Size"}}}}}, {"Size": "5"},
     Desired(5, source="parameter Size")),
    ("absent", hot(min_size=1), {}, Desired(None, absent=True, source="no desired_capacity property")),
    ("missing-parameter", hot(desired_capacity={"get_param": "size"}), {}, Desired(None, source="parameter size")),
    ("not-a-number", hot(desired_capacity={"get_param": "size"}), {"size": "many"},
     Desired(None, source="parameter size = 'many'")),
    ("path-into-a-parameter", hot(desired_capacity={"get_param": ["sizes", "web"]}), {},
     Desired(None, source="desired_capacity: {'get_param': ['sizes', 'web']}")),
    ("other-resource", {"resources": {"other": {"properties": {"desired_capacity": 1}}}}, {},
     Desired(None, absent=True, source="no desired_capacity property")),
]


@pytest.mark.parametrize(("template", "parameters", "expected"), [(t, p, e) for _, t, p, e in DESIRED],
                         ids=[n for n, _, _, _ in DESIRED])
def test_template_desired(template: dict[str, Any], parameters: dict[str, str], expected: Desired) -> None:
    assert template_desired(template, parameters, "asg") == expected


BY_PARAM = hot(desired_capacity={"get_param": "desired_capacity"}, min_size={"get_param": "min_size"},
               max_size={"get_param": "max_size"})
PARAMS = {"desired_capacity": "1", "min_size": "1", "max_size": "3"}

PLANS: list[tuple[str, dict[str, Any], dict[str, str], int, str | None, dict[str, int] | str]] = [
    ("capacity-parameter-sends-the-current-size", BY_PARAM, PARAMS, 2, "desired_capacity", {"desired_capacity": 2}),
    ("capacity-parameter-already-right", BY_PARAM, {**PARAMS, "desired_capacity": "2"}, 2, "desired_capacity",
     {"desired_capacity": 2}),
    ("no-parameter-but-it-agrees", BY_PARAM, {**PARAMS, "desired_capacity": "2"}, 2, None, {}),
    ("literal-agrees", hot(desired_capacity=2), {}, 2, None, {}),
    ("signals-moved-the-group", BY_PARAM, PARAMS, 2, None,
     "would resize asg from 2 to 1 (desired_capacity from parameter desired_capacity, e.g. after scaling signals); "
     "set capacity_parameter"),
    ("no-desired-capacity", hot(min_size=1), {}, 2, None, "asg has no desired_capacity: on a stack update Heat sizes"),
    ("no-desired-capacity-even-with-a-parameter", hot(min_size=1), {"size": "2"}, 2, "size",
     "asg has no desired_capacity"),
    ("unreadable", hot(desired_capacity={"get_param": ["sizes", "web"]}), {}, 2, None,
     "cannot tell the size a stack update would give asg"),
    ("parameter-not-behind-desired-capacity", hot(desired_capacity=1), {"size": "1"}, 2, "size",
     "would resize asg from 2 to 1 (desired_capacity from a literal, e.g. after scaling signals); make it get_param "
     "size"),
    ("capacity-parameter-missing", BY_PARAM, PARAMS, 2, "size",
     "the stack has no parameter 'size' (capacity_parameter); its parameters: desired_capacity, max_size, min_size"),
    ("above-max-size", BY_PARAM, {**PARAMS, "max_size": "2"}, 3, "desired_capacity",
     "asg has 3 member(s), outside its min_size/max_size 1/2"),
]


@pytest.mark.parametrize(("template", "parameters", "current", "capacity_parameter", "expected"),
                         [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_plan_update(template: dict[str, Any], parameters: dict[str, str], current: int,
                     capacity_parameter: str | None, expected: dict[str, int] | str) -> None:
    def plan() -> dict[str, int]:
        return plan_update(template=template, parameters=parameters, resource="asg", current=current,
                           capacity_parameter=capacity_parameter).parameters

    if isinstance(expected, dict):
        assert plan() == expected
    else:
        with pytest.raises(PermanentProviderError) as info:
            plan()
        assert expected in str(info.value)


def stack(status: str, updated: str | None = "2026-11-22T02:00:00Z") -> StackInfo:
    return StackInfo(id="i", name="s", status=status, status_reason="r", updated_time=updated)


BEFORE = stack("UPDATE_COMPLETE")
LATER = "2026-11-22T02:00:05Z"

JUDGE: list[tuple[str, StackInfo, bool, bool, Verdict]] = [
    ("running", stack("UPDATE_IN_PROGRESS"), False, False, Verdict.IN_PROGRESS),
    ("not-started-yet", stack("UPDATE_COMPLETE"), False, False, Verdict.WAITING),
    ("done-after-running", stack("UPDATE_COMPLETE"), True, False, Verdict.COMPLETED),
    ("done-updated-time-moved", stack("UPDATE_COMPLETE", LATER), False, False, Verdict.COMPLETED),
    ("done-within-the-same-second", stack("UPDATE_COMPLETE"), False, True, Verdict.COMPLETED),
    ("failed", stack("UPDATE_FAILED", LATER), False, False, Verdict.FAILED),
    ("rolled-back", stack("ROLLBACK_COMPLETE"), True, False, Verdict.FAILED),
]


@pytest.mark.parametrize(("now", "active", "replaced", "verdict"), [j[1:] for j in JUDGE], ids=[j[0] for j in JUDGE])
def test_judge_heal_update(now: StackInfo, active: bool, replaced: bool, verdict: Verdict) -> None:
    assert judge_heal_update(BEFORE, now, was_active=active, replaced=replaced).verdict is verdict


def member(member_id: str, name: str, state: MemberState = MemberState.RUNNING) -> Member:
    return Member(id=member_id, address=None, state=state, labels={"resource_name": name,
                                                                   "resource_status": "CREATE_COMPLETE"})


def group(*members: Member) -> GroupView:
    return GroupView(resource="asg", status="UPDATE_COMPLETE", status_reason="", nested_path="/stacks/n/1",
                     members=members)


A, B, B2, C = member("a-1", "a"), member("b-1", "b"), member("b-2", "b"), member("c-1", "c")

REPLACEMENTS: list[tuple[str, GroupView, str]] = [
    ("replaced", group(A, B2), "b-2"),
    ("kept", group(A, B), "Heat finished the stack update but kept b-1 (CREATE_COMPLETE); asg was not healed"),
    ("shrunk", group(A), "Heat removed b-1 but changed asg from 2 to 1 member(s)"),
    ("grew", group(A, B2, C), "Heat removed b-1 but changed asg from 2 to 3 member(s)"),
]


@pytest.mark.parametrize(("after", "expected"), [r[1:] for r in REPLACEMENTS], ids=[r[0] for r in REPLACEMENTS])
def test_replacement(after: GroupView, expected: str) -> None:
    before = group(A, B)
    if expected == "b-2":
        assert replacement(before, after, B).id == "b-2"
    else:
        with pytest.raises(PermanentProviderError) as info:
            replacement(before, after, B)
        assert str(info.value) == expected


def test_find_member_skips_members_being_deleted() -> None:
    leaving = member("c-1", "c", MemberState.STOPPING)
    view = group(A, leaving)
    assert find_member(view, "a-1") == A
    assert find_member(view, "c-1") is None and find_member(view, "a") is None


# -- Nova ---------------------------------------------------------------------------------------------------------

AT = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)

QUARANTINES: list[tuple[str, dict[str, str], dict[str, Any], dict[str, str]]] = [
    ("defaults", {"alertscaler_group": "web", "prometheus_autoscaling": "true", "alertscaler_action": "7"},
     {"owner_key": "alertscaler_group", "owner_value": "web", "discovery_keys": ["prometheus_autoscaling"]},
     {"alertscaler_group": "quarantined:web", "alertscaler_action": "7",
      "alertscaler_quarantined_at": "2026-11-22T03:04:05Z"}),
    ("custom-keys-and-other-metadata-kept", {"team": "prod-web", "scrape": "yes", "prometheus_autoscaling": "true",
                                             "role": "frontend"},
     {"owner_key": "team", "owner_value": "prod-web", "discovery_keys": ["scrape"]},
     {"team": "quarantined:prod-web", "prometheus_autoscaling": "true", "role": "frontend",
      "alertscaler_quarantined_at": "2026-11-22T03:04:05Z"}),
    ("no-discovery-metadata", {"alertscaler_group": "web"},
     {"owner_key": "alertscaler_group", "owner_value": "web", "discovery_keys": []},
     {"alertscaler_group": "quarantined:web", "alertscaler_quarantined_at": "2026-11-22T03:04:05Z"}),
]


@pytest.mark.parametrize(("metadata", "keys", "expected"), [q[1:] for q in QUARANTINES],
                         ids=[q[0] for q in QUARANTINES])
def test_quarantine_metadata(metadata: dict[str, str], keys: dict[str, Any], expected: dict[str, str]) -> None:
    assert quarantine_metadata(metadata, at=AT, **keys) == expected


def test_quarantine_metadata_time_is_utc_and_value_length_is_checked() -> None:
    local = AT.astimezone(timezone(timedelta(hours=2)))
    out = quarantine_metadata({}, owner_key="g", owner_value="web", discovery_keys=[], at=local)
    assert out["alertscaler_quarantined_at"] == "2026-11-22T03:04:05Z"
    assert len(quarantine_metadata({}, owner_key="g", owner_value="w" * 243, discovery_keys=[], at=AT)["g"]) == 255
    with pytest.raises(ValueError, match="would exceed Nova's 255 characters"):
        quarantine_metadata({}, owner_key="g", owner_value="w" * 244, discovery_keys=[], at=AT)


REBOOTS: list[tuple[str, str, str | None, str]] = [
    ("hard-reboot-of-an-active-server", "HARD_REBOOT", "rebooting_hard", "running"),
    ("hard-reboot-of-a-stopped-server", "SHUTOFF", "rebooting_hard", "running"),
    ("hard-reboot-of-a-failed-server", "ERROR", "rebooting_hard", "running"),
    ("soft-reboot", "REBOOT", "rebooting", "running"),
    ("active-again", "ACTIVE", None, "done"),
    ("ended-in-error", "ERROR", None, "failed"),
    ("ended-stopped", "SHUTOFF", None, "failed"),
]


@pytest.mark.parametrize(("status", "task", "expected"), [r[1:] for r in REBOOTS], ids=[r[0] for r in REBOOTS])
def test_reboot_progress(status: str, task: str | None, expected: str) -> None:
    assert reboot_progress(ServerView(id="1", name="web-1-1", status=status, task_state=task)) == expected


def test_replacement_name() -> None:
    assert replacement_name("as-", "web", "4168779c-62cd-88a9-4ca7-000000000000") == "as-web-r4168779c"


@pytest.mark.parametrize("key", ["alertscaler_replaces", "alertscaler_quarantined_at"], ids=["replaces", "at"])
@pytest.mark.parametrize("field", ["metadata", "discovery_metadata"])
def test_nova_config_refuses_the_keys_healing_sets(key: str, field: str) -> None:
    with pytest.raises(ValidationError, match=f"must not set {key} \\(set by alertscaler\\)"):
        NovaConfig.model_validate({**NOVA, field: {key: "x"}})
