"""Reading Heat's JSON and judging a pending signal or stack update (openstack_heat_events), without Heat.

Every body here has the keys, link layout and values of a real Heat 27 answer, recorded from the standalone
Heat of the integration tests (stack ``rec1795313457``: a scale-in 2 -> 1 signalled with alertscaler's body).
What Heat 27 does NOT record matters as much: a declined signal (cooldown, min/max) leaves no event and no
metadata change, so "declined" is judged from silence plus the state read before the signal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.model.groups import MemberState
from alertscaler.providers.openstack.heat.events import (
    HeatEvent,
    Limits,
    MissingGroup,
    Probe,
    ScalingMetadata,
    StackInfo,
    Verdict,
    decline_reason,
    group_limits,
    group_view,
    heat_events,
    judge_signal,
    judge_update,
    member_state,
    scaling_metadata,
    signal_body,
    signal_marker,
    stack_info,
)

BASE = "http://127.0.0.1:18704/v1/admin"
STACK_NAME, STACK_ID = "rec1795313457", "7a3f9264-1ef2-42aa-956e-3450f6482a4d"
NESTED_NAME, NESTED_ID = "rec1795313457-asg-gchgms6qujjg", "1c52ae45-8419-413e-aece-8dda533b0221"
TEMPLATE = Path(__file__).resolve().parents[1] / "heat" / "templates" / "asg.yaml"

# -- recorded bodies --------------------------------------------------------------------------------------


def _links(stack: tuple[str, str], name: str, nested: tuple[str, str] | None = None) -> list[dict[str, str]]:
    home = f"{BASE}/stacks/{stack[0]}/{stack[1]}"
    links = [{"href": f"{home}/resources/{name}", "rel": "self"}, {"href": home, "rel": "stack"}]
    if nested:
        links.append({"href": f"{BASE}/stacks/{nested[0]}/{nested[1]}", "rel": "nested"})
    return links


def _resource(name: str, kind: str, status: str, physical: str, *, parent: str | None = None,
              stack: tuple[str, str] = (STACK_NAME, STACK_ID), nested: tuple[str, str] | None = None,
              created: str = "2026-11-22T02:10:57Z") -> dict[str, Any]:
    row: dict[str, Any] = {
        "updated_time": created, "creation_time": created, "logical_resource_id": name, "resource_name": name,
        "physical_resource_id": physical, "resource_status": status, "resource_status_reason": "state changed",
        "resource_type": kind, "links": _links(stack, name, nested), "required_by": [],
    }
    if parent is not None:
        row["parent_resource"] = parent
    return row


NESTED = (NESTED_NAME, NESTED_ID)
# GET .../resources?nested_depth=1 during the scale-in: the removed member shows DELETE_COMPLETE for a moment.
RESOURCES_MID_SCALE_IN = {"resources": [
    _resource("scaledown_policy", "OS::Heat::ScalingPolicy", "CREATE_COMPLETE", "1234"),
    _resource("scaleup_policy", "OS::Heat::ScalingPolicy", "CREATE_COMPLETE", "1234"),
    _resource("asg", "OS::Heat::AutoScalingGroup", "CREATE_COMPLETE", NESTED_ID, nested=NESTED),
    _resource("swa26qjawlso", "OS::Heat::TestResource", "CREATE_COMPLETE",
              f"{NESTED_NAME}-swa26qjawlso-ikijr2lhx4bb", parent="asg", stack=NESTED),
    _resource("pta3ixnenh6o", "OS::Heat::TestResource", "DELETE_COMPLETE",
              f"{NESTED_NAME}-pta3ixnenh6o-fl3a66ln5stc", parent="asg", stack=NESTED,
              created="2026-11-22T02:10:56Z"),
]}

METADATA_BEFORE = {"metadata": {"cooldown_end": {"2026-11-22T02:10:59.503559": "ExactCapacity : 2"},
                                "scaling_in_progress": False}}
METADATA_MID = {"metadata": {"cooldown_end": {"2026-11-22T02:10:59.503559": "ExactCapacity : 2"},
                             "scaling_in_progress": True}}
METADATA_AFTER = {"metadata": {"cooldown_end": {"2026-11-22T02:11:02.297157": "change_in_capacity : -1"},
                               "scaling_in_progress": False}}

MARKER = signal_marker("web", 7)
OUR_EVENT = {
    "id": "8937e48c-537b-4897-a4c9-acbf6638655c",
    "links": _links((STACK_NAME, STACK_ID), "scaledown_policy"),
    "event_time": "2026-11-22T02:11:02Z", "logical_resource_id": "scaledown_policy",
    "resource_name": "scaledown_policy", "physical_resource_id": "1234", "resource_status": "SIGNAL_COMPLETE",
    "resource_status_reason": "alarm state changed from ok to alarm (alertscaler group web action 7: decision 3, "
                              "scaledown_policy for 2 -> 1)",
}
OLDER_EVENT = {**OUR_EVENT, "id": "0f1e2d3c-0000-4000-8000-000000000001", "event_time": "2026-11-22T02:09:40Z",
               "resource_status_reason": "alarm state changed from ok to alarm (alertscaler group web action 6: "
                                         "decision 2, scaledown_policy for 3 -> 2)"}
EVENTS_BEFORE = {"events": [OLDER_EVENT]}
EVENTS_AFTER = {"events": [OUR_EVENT, OLDER_EVENT]}

STACK = {"stack": {
    "stack_name": STACK_NAME, "id": STACK_ID,
    "links": [{"href": f"{BASE}/stacks/{STACK_NAME}/{STACK_ID}", "rel": "self"}],
    "creation_time": "2026-11-22T02:10:57Z", "updated_time": None, "deletion_time": None,
    "parameters": {"OS::stack_id": STACK_ID, "OS::project_id": "admin", "OS::stack_name": STACK_NAME,
                   "cooldown": "0", "min_size": "1", "max_size": "3", "desired_capacity": "2"},
    "stack_owner": "admin", "parent": None, "stack_user_project_id": "aprojectid", "tags": [],
    "stack_status": "CREATE_COMPLETE", "stack_status_reason": "Stack CREATE completed successfully",
}}


def _stack(**changes: Any) -> StackInfo:
    body = {**STACK["stack"], **changes}
    return stack_info({"stack": body})


def _nested(status: str, updated: str | None, reason: str = "Stack UPDATE completed successfully") -> dict[str, str]:
    return {"nested_status": status, "nested_updated": updated or "", "nested_reason": reason}


def _probe(metadata: dict[str, Any], events: dict[str, Any], status: str = "UPDATE_COMPLETE",
           updated: str | None = "2026-11-22T02:10:58Z", reason: str = "Stack UPDATE completed successfully") -> Probe:
    return Probe(metadata=scaling_metadata(metadata), events=heat_events(events), nested_status=status,
                 nested_updated=updated, nested_reason=reason)


# -- stacks, groups, members -------------------------------------------------------------------------------


def test_stack_info_reads_project_from_the_pseudo_parameter_or_the_self_link() -> None:
    stack = stack_info(STACK)
    assert (stack.id, stack.name, stack.project, stack.status) == (STACK_ID, STACK_NAME, "admin", "CREATE_COMPLETE")
    assert stack.path == f"/stacks/{STACK_NAME}/{STACK_ID}" and stack.parameters["max_size"] == "3"
    no_param = {"stack": {**STACK["stack"], "parameters": {}, "links": [
        {"href": f"http://heat:8004/v1/3f2a/stacks/{STACK_NAME}/{STACK_ID}", "rel": "self"}]}}
    assert stack_info(no_param).project == "3f2a"
    assert stack_info({"stack": {"id": STACK_ID, "stack_name": STACK_NAME}}).project is None


def test_group_view_of_a_scale_in_in_flight() -> None:
    view = group_view(RESOURCES_MID_SCALE_IN, "asg", stack_info(STACK))
    assert view.nested_path == f"/stacks/{NESTED_NAME}/{NESTED_ID}"
    assert (view.status, view.settled) == ("CREATE_COMPLETE", True)
    assert [(m.labels["resource_name"], m.state) for m in view.members] == [
        ("pta3ixnenh6o", MemberState.STOPPING), ("swa26qjawlso", MemberState.RUNNING)]  # oldest first
    assert view.current == 1  # the member being deleted is not counted
    member = view.members[1]
    assert member.id == f"{NESTED_NAME}-swa26qjawlso-ikijr2lhx4bb"
    assert member.labels["stack_name"] == STACK_NAME and member.labels["stack_id"] == STACK_ID
    assert member.created_at == datetime(2026, 11, 22, 2, 10, 57, tzinfo=UTC)


def test_group_view_ignores_members_of_other_nested_stacks_and_reports_a_missing_group() -> None:
    other = (f"{STACK_NAME}-other-x", "99999999-0000-4000-8000-000000000000")
    stray = _resource("abc", "OS::Heat::TestResource", "CREATE_COMPLETE", "x", parent="asg", stack=other)
    body = {"resources": [*RESOURCES_MID_SCALE_IN["resources"], stray]}
    assert group_view(body, "asg", stack_info(STACK)).current == 1
    with pytest.raises(MissingGroup) as info:
        group_view(RESOURCES_MID_SCALE_IN, "web_group", stack_info(STACK))
    assert info.value.resources == ("asg", "scaledown_policy", "scaleup_policy")


@pytest.mark.parametrize(
    ("status", "state"),
    [("CREATE_COMPLETE", MemberState.RUNNING), ("UPDATE_COMPLETE", MemberState.RUNNING),
     ("CHECK_COMPLETE", MemberState.RUNNING), ("CREATE_IN_PROGRESS", MemberState.STARTING),
     ("UPDATE_IN_PROGRESS", MemberState.STARTING), ("INIT_COMPLETE", MemberState.STARTING),
     ("CREATE_FAILED", MemberState.FAILED), ("CHECK_FAILED", MemberState.FAILED),
     ("DELETE_IN_PROGRESS", MemberState.STOPPING), ("DELETE_COMPLETE", MemberState.STOPPING),
     ("DELETE_FAILED", MemberState.STOPPING), ("SUSPEND_COMPLETE", MemberState.UNKNOWN),
     ("", MemberState.UNKNOWN)],
    ids=lambda v: v.value if isinstance(v, MemberState) else (v or "empty"),
)
def test_member_state(status: str, state: MemberState) -> None:
    assert member_state(status) is state


def test_metadata_and_events_parse() -> None:
    assert scaling_metadata(METADATA_AFTER) == ScalingMetadata(
        "2026-11-22T02:11:02.297157", "change_in_capacity : -1", False)
    assert scaling_metadata(METADATA_MID).in_progress
    assert scaling_metadata({"metadata": {}}) == ScalingMetadata()
    assert heat_events(EVENTS_AFTER)[0] == HeatEvent(OUR_EVENT["id"], "2026-11-22T02:11:02Z", "SIGNAL_COMPLETE",
                                                     OUR_EVENT["resource_status_reason"])


def test_signal_body_is_what_heat_turns_into_event_text() -> None:
    body = signal_body(group="web", action_id=7, decision_id=3, current=2, desired=1, policy="scaledown_policy",
                       stack=stack_info(STACK), alerts=[{"labels": {"alertname": "LowLoad"}}, {"labels": {}}])
    assert body["current"] == "alarm"  # Heat lower-cases it; a number would break its signal handler
    # heat.engine.resource.Resource._handle_signal.get_string_details, for a Ceilometer-shaped body:
    text = "alarm state changed from {previous} to {current} ({reason})".format(**body)
    assert MARKER in text and "LowLoad" in text
    assert body["alertscaler"]["action_id"] == 7 and body["alertscaler"]["stack"] == f"{STACK_NAME}/{STACK_ID}"
    assert signal_marker("web", 7) not in signal_body(
        group="web", action_id=71, decision_id=3, current=2, desired=1, policy="p", stack=stack_info(STACK))["reason"]


# -- a pending signal --------------------------------------------------------------------------------------

BEFORE = _probe(METADATA_BEFORE, EVENTS_BEFORE)


@pytest.mark.parametrize(
    ("now", "waited", "was_active", "verdict", "fragment"),
    [
        (_probe(METADATA_AFTER, EVENTS_AFTER), 3.0, True, Verdict.COMPLETED, "SIGNAL_COMPLETE: alarm state"),
        (_probe(METADATA_AFTER, EVENTS_BEFORE), 2.6, True, Verdict.COMPLETED, "change_in_capacity : -1"),
        (_probe(METADATA_MID, EVENTS_BEFORE, "UPDATE_IN_PROGRESS", "2026-11-22T02:11:00Z", "Stack UPDATE started"),
         0.5, False, Verdict.IN_PROGRESS, "scaling in progress"),
        (_probe(METADATA_BEFORE, EVENTS_BEFORE, "UPDATE_IN_PROGRESS", "2026-11-22T02:11:00Z"), 0.5, False,
         Verdict.IN_PROGRESS, ""),
        (BEFORE, 1.0, False, Verdict.WAITING, ""),
        (BEFORE, 10.0, False, Verdict.DECLINED, "neither a size limit nor a cooldown"),
        (_probe(METADATA_BEFORE, EVENTS_BEFORE, "UPDATE_FAILED", "2026-11-22T02:11:00Z", "Resource CREATE failed"),
         1.0, False, Verdict.FAILED, "UPDATE_FAILED: Resource CREATE failed"),
        (BEFORE, 2.0, True, Verdict.FAILED, "recorded no change"),
        (_probe(METADATA_BEFORE, {"events": [OLDER_EVENT, {**OUR_EVENT, "resource_status_reason": "alarm state "
                "changed from ok to alarm (alertscaler group web action 8: decision 4, scaledown_policy)"}]}),
         1.0, False, Verdict.WAITING, ""),
    ],
    ids=["completed-event", "completed-metadata-before-event", "in-progress-metadata", "in-progress-nested-stack",
         "nothing-yet", "declined-silence", "failed-nested-stack", "failed-started-then-nothing",
         "another-actions-event-ignored"],
)
def test_judge_signal(now: Probe, waited: float, was_active: bool, verdict: Verdict, fragment: str) -> None:
    judgement = judge_signal(BEFORE, now, MARKER, waited=waited, decline_after=10.0, was_active=was_active)
    assert judgement.verdict is verdict, judgement
    assert fragment in judgement.reason
    assert judgement.active is (verdict not in (Verdict.WAITING, Verdict.DECLINED))


@pytest.mark.parametrize(
    ("scale_out", "current", "limits", "metadata", "expected"),
    [
        (True, 3, Limits(1, 3), METADATA_BEFORE, "asg is at its max_size 3"),
        (False, 1, Limits(1, 3), METADATA_BEFORE, "asg is at its min_size 1"),
        (True, 2, Limits(1, 3), METADATA_AFTER, "asg is in Heat's cooldown until 2026-11-22T02:11:02.297157 UTC "
                                                "(1.3s left; last scaling: change_in_capacity : -1)"),
        (True, 3, Limits(1, 3), METADATA_AFTER, "asg is at its max_size 3"),  # Heat checks limits first
        (True, 2, Limits(1, 3), METADATA_BEFORE, None),  # cooldown over, room to grow
        (False, 1, Limits(None, None), METADATA_BEFORE, None),  # limits unknown
    ],
    ids=["declined-limit-max", "declined-limit-min", "declined-cooldown", "limit-before-cooldown", "no-reason",
         "limits-unknown"],
)
def test_decline_reason(scale_out: bool, current: int, limits: Limits, metadata: dict[str, Any],
                        expected: str | None) -> None:
    now = datetime(2026, 11, 22, 2, 11, 1, tzinfo=UTC)
    reason = decline_reason(scale_out=scale_out, group="asg", current=current, limits=limits,
                            metadata=scaling_metadata(metadata), now=now)
    assert reason == expected


def test_declined_judgement_carries_the_inferred_reason() -> None:
    why = decline_reason(scale_out=True, group="asg", current=3, limits=Limits(1, 3),
                         metadata=BEFORE.metadata, now=datetime(2026, 11, 22, 2, 11, 1, tzinfo=UTC))
    judgement = judge_signal(BEFORE, BEFORE, MARKER, waited=10.5, decline_after=10.0, why_not=why)
    assert (judgement.verdict, judgement.reason) == (Verdict.DECLINED, "asg is at its max_size 3")


@pytest.mark.parametrize(
    ("template", "parameters", "expected"),
    [
        (yaml.safe_load(TEMPLATE.read_text()), {"min_size": "1", "max_size": "3"}, Limits(1, 3)),
        ({"resources": {"asg": {"properties": {"min_size": 2, "max_size": 5}}}}, {}, Limits(2, 5)),
        ({"resources": {"asg": {"properties": {"min_size": {"get_param": ["sizes", "min"]}}}}}, {},
         Limits(None, None)),
        ({"Resources": {"asg": {"Properties": {"MinSize": "1", "MaxSize": {"Ref": "Max"}}}}}, {"Max": "4"},
         Limits(1, 4)),
        ({}, {}, Limits(None, None)),
    ],
    ids=["fixture-template", "literals", "unresolvable", "cfn", "no-template"],
)
def test_group_limits(template: dict[str, Any], parameters: dict[str, str], expected: Limits) -> None:
    assert group_limits(template, parameters, "asg") == expected


# -- a pending stack update --------------------------------------------------------------------------------

UPDATED = "2026-11-22T02:12:44Z"
WANTS_3 = {**STACK["stack"]["parameters"], "desired_capacity": "3"}


@pytest.mark.parametrize(
    ("before", "now", "was_active", "verdict", "fragment"),
    [
        (STACK, _stack(stack_status="UPDATE_IN_PROGRESS", updated_time=UPDATED), False, Verdict.IN_PROGRESS, ""),
        (STACK, _stack(stack_status="UPDATE_COMPLETE", updated_time=UPDATED, parameters=WANTS_3), False,
         Verdict.COMPLETED, "completed successfully"),
        (STACK, _stack(stack_status="UPDATE_COMPLETE", parameters=WANTS_3), False, Verdict.COMPLETED, ""),
        (STACK, _stack(stack_status="UPDATE_FAILED", updated_time=UPDATED,
                       stack_status_reason="Resource UPDATE failed: NotFound: resources.asg: ResourcePropertiesData "
                                           "with id 14 not found"), False, Verdict.FAILED,
         "UPDATE_FAILED: Resource UPDATE"),
        (STACK, _stack(stack_status="ROLLBACK_COMPLETE", updated_time=UPDATED), False, Verdict.FAILED,
         "ROLLBACK_COMPLETE"),
        (STACK, _stack(), False, Verdict.WAITING, ""),
        # the parameter already held the value (a policy moved the group since): only time or activity tell
        ({"stack": {**STACK["stack"], "parameters": WANTS_3}}, _stack(parameters=WANTS_3), False, Verdict.WAITING, ""),
        ({"stack": {**STACK["stack"], "parameters": WANTS_3}},
         _stack(stack_status="UPDATE_COMPLETE", parameters=WANTS_3), True, Verdict.COMPLETED, ""),
        ({"stack": {**STACK["stack"], "parameters": WANTS_3, "updated_time": "2026-11-22T02:11:00Z"}},
         _stack(stack_status="UPDATE_COMPLETE", parameters=WANTS_3, updated_time=UPDATED), False,
         Verdict.COMPLETED, ""),
    ],
    ids=["in-progress", "complete", "complete-same-second", "failed", "rolled-back", "not-started",
         "same-value-not-started", "same-value-seen-running", "same-value-updated-time-moved"],
)
def test_judge_update(before: dict[str, Any], now: StackInfo, was_active: bool, verdict: Verdict,
                      fragment: str) -> None:
    judgement = judge_update(stack_info(before), now, "desired_capacity", 3, was_active=was_active)
    assert judgement.verdict is verdict, judgement
    assert fragment in judgement.reason
