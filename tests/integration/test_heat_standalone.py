"""Smoke tests of the real standalone Heat (fixture ``heat``), and what Heat 27 records when it scales.

These run against a REAL OpenStack Heat 27.0.1 (API + engine, ``tests/heat/launcher.py``) with plain httpx;
nothing is mocked. They pin down the behaviour the openstack-heat provider relies on. ``{base}`` is
``http://127.0.0.1:PORT/v1/admin``, ``{stack}`` is ``{base}/stacks/{name}/{id}``.

Signals (``POST {stack}/resources/{policy}/signal``, optional JSON body = signal details)
  * Name AND id are needed; ``{base}/stacks/{name}/resources/...`` answers 404 (a GET on
    ``{base}/stacks/{name}`` answers 302 to the name/id URL). The output ``scaleup_signal_url`` (attribute
    ``signal_url``) is exactly ``{stack}/resources/scaleup_policy/signal``.
  * The POST is asynchronous: 200 with body ``null`` as soon as the policy exists, whatever happens next.
    Its response header ``x-openstack-request-id`` (``req-<uuid>``) also tags the engine's log lines for
    that signal.
  * Successful scaling signal: ONE event, on the policy resource, written when the resize has finished
    (about 2.5 s after the POST here): ``resource_name``/``logical_resource_id`` = the policy
    (``scaleup_policy``), ``resource_status`` = ``SIGNAL_COMPLETE``, ``resource_status_reason`` derived from
    the body: no body -> ``No signal details provided``; ``{"previous": P, "current": C, "reason": R}``
    (all three keys) -> ``alarm state changed from P to C (R)``; any other dict -> ``Unknown`` (from Heat's
    code); a JSON string body is dropped (``No signal details provided``). The policy acts whatever P/C say.
    Members are added in the nested stack ``{name}-asg-<suffix>`` (its events: ``UPDATE_IN_PROGRESS``
    "Stack UPDATE started", member ``CREATE_IN_PROGRESS``/``CREATE_COMPLETE`` "state changed",
    ``UPDATE_COMPLETE`` "Stack UPDATE completed successfully"; ``GET {stack}/events?nested_depth=1`` lists
    them with the top-level ones). The ``asg`` resource itself gets no event for a signal.
  * Cooldown no-op and no-op at max_size (or min_size, or while the group is busy scaling): NO event at
    all (Heat raises NoActionRequired and deliberately records nothing), size unchanged. Only Heat's log
    tells, on a line carrying the request id: ``Can not perform scaling action: resource asg is in
    cooldown (5).`` (5 = the policy's cooldown) / ``asg NOT performing scaling adjustment, as there is no
    change in capacity.`` / ``Can not perform scaling action: resource asg is already in scaling.`` (the
    last one from Heat's code, not exercised here).
  * Telling the events of one signal apart: send ``{"previous": "ok", "current": "alarm", "reason":
    "<unique marker, e.g. the action id>"}`` and look for that reason; no event = declined (or still
    running). ``event_time`` has one-second resolution (``2026-11-22T02:01:29Z``); events come newest
    first; each has a unique ``id``. Filter with ``?resource_action=SIGNAL`` (optionally
    ``&resource_status=COMPLETE``); ``?resource_status=SIGNAL_COMPLETE`` matches nothing.
  * Cooldown state is readable: ``GET {stack}/resources/asg/metadata`` ->
    ``{"metadata": {"cooldown_end": {"<naive UTC ISO time>": "change_in_capacity : 1"},
    "scaling_in_progress": false}}``; the time is when the resize finished + the signalled policy's
    cooldown. Create and stack updates write ``"ExactCapacity : N"`` with the group's own cooldown (0 here).

Members: ``GET {stack}/resources?nested_depth=1`` lists the top-level resources and the members; members
have ``parent_resource == "asg"``, ``resource_type == "OS::Heat::TestResource"``, a random 12-character
``resource_name`` (== ``logical_resource_id``), a ``physical_resource_id`` ``{name}-asg-<sfx>-<member>-<sfx>``
for TestResource (a server id for OS::Nova::Server), ``creation_time``, ``resource_status`` and a ``stack``
link to the nested stack. The ``asg`` resource's ``physical_resource_id`` is the nested stack's id (link
``nested``). Scaling in removes the OLDEST members first (creation time, then name).

Stack update (``PATCH {stack}`` with ``{"parameters": {"desired_capacity": 3}}``: existing template, other
parameters kept): 202 at once, ``stack_status`` ``UPDATE_IN_PROGRESS`` -> ``UPDATE_COMPLETE`` "Stack
UPDATE completed successfully" in about 2.5-4 s here (about 1 s per member added or removed); ``asg``
events ``UPDATE_IN_PROGRESS``/``UPDATE_COMPLETE`` "state changed". EVERY stack update, even one that only
changes ``max_size`` or ``cooldown``, resizes the group to the ``desired_capacity`` parameter: capacity
gained or lost by signals is undone unless the update sends ``desired_capacity`` = the wanted size. A
``desired_capacity`` outside ``[min_size, max_size]`` is refused synchronously: 400
``StackValidationFailed`` "DesiredCapacity must be between MinSize and MaxSize", stack unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.heat_fixtures import HeatServer, HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]

pytestmark = pytest.mark.integration

COOLDOWN_LOG = "Can not perform scaling action: resource asg is in cooldown (5)."
NO_CHANGE_LOG = "asg NOT performing scaling adjustment, as there is no change in capacity."


def _signal_events(stack: HeatStack) -> list[dict[str, Any]]:
    return stack.events(resource_action="SIGNAL")


def _post_signal(stack: HeatStack, policy: str, details: dict[str, Any] | None = None) -> str:
    """POST a signal with plain httpx; asserts Heat's immediate answer and returns the request id."""
    response = httpx.post(f"{stack.url}/resources/{policy}/signal", json=details, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() is None
    request_id = response.headers["x-openstack-request-id"]
    assert request_id.startswith("req-")
    return request_id


def _wait_for_declined(heat: HeatServer, request_id: str, message: str) -> None:
    """Wait for the engine's log line saying that the signal ``request_id`` was declined with ``message``."""
    heat.wait_for(lambda: heat.log_lines(request_id, message), 30, what=f"log line {message!r} for {request_id}")


def test_stack_is_created_with_one_member(heat: HeatServer, heat_stack: HeatStack) -> None:
    assert httpx.get(f"{heat.root_url}/healthcheck").status_code == 200
    assert heat.base_url == f"http://127.0.0.1:{heat.port}/v1/admin"
    assert heat.process.poll() is None

    assert heat_stack.current_size() == 1
    assert heat_stack.output("scaleup_signal_url") == f"{heat_stack.url}/resources/scaleup_policy/signal"
    newest = heat_stack.events()[0]
    assert (newest["resource_name"], newest["resource_status"]) == (heat_stack.name, "CREATE_COMPLETE")
    assert newest["resource_status_reason"] == "Stack CREATE completed successfully"

    asg = httpx.get(f"{heat_stack.url}/resources/asg").json()["resource"]
    assert asg["resource_type"] == "OS::Heat::AutoScalingGroup"
    nested = next(link["href"] for link in asg["links"] if link["rel"] == "nested")
    assert nested.endswith(f"/{asg['physical_resource_id']}")
    assert f"/stacks/{heat_stack.name}-asg-" in nested

    [member] = heat_stack.members()
    assert member["resource_type"] == "OS::Heat::TestResource"
    assert member["resource_status"] == "CREATE_COMPLETE"
    assert member["logical_resource_id"] == member["resource_name"]
    assert member["physical_resource_id"].startswith(f"{heat_stack.name}-asg-")
    assert any(link["rel"] == "stack" and link["href"] == nested for link in member["links"])

    # Signals need the stack's name AND id.
    by_name = httpx.post(f"{heat.base_url}/stacks/{heat_stack.name}/resources/scaleup_policy/signal")
    assert by_name.status_code == 404
    assert heat_stack.current_size() == 1


def test_signal_scales_up_and_a_signal_in_the_cooldown_is_declined(heat: HeatServer, heat_stack: HeatStack) -> None:
    marker = f"alertscaler test {uuid.uuid4().hex}"
    details = {"previous": "ok", "current": "alarm", "reason": marker}
    [first_member] = heat_stack.members()

    _post_signal(heat_stack, "scaleup_policy", details)
    heat_stack.wait_for_size(2)
    event = heat.wait_for(lambda: _signal_events(heat_stack), 30, what="the SIGNAL event")[0]
    assert event["resource_name"] == event["logical_resource_id"] == "scaleup_policy"
    assert event["resource_status"] == "SIGNAL_COMPLETE"
    assert event["resource_status_reason"] == f"alarm state changed from ok to alarm ({marker})"
    assert event["event_time"].endswith("Z")
    assert heat_stack.events("scaleup_policy")[0]["id"] == event["id"]
    # The status filter takes the bare status: SIGNAL_COMPLETE is resource_action SIGNAL + status COMPLETE.
    assert [e["id"] for e in heat_stack.events(resource_action="SIGNAL", resource_status="COMPLETE")] == [event["id"]]
    assert heat_stack.events(resource_status="SIGNAL_COMPLETE") == []

    members = heat_stack.members()
    assert len(members) == 2
    assert first_member["resource_name"] in {m["resource_name"] for m in members}
    metadata = httpx.get(f"{heat_stack.url}/resources/asg/metadata").json()["metadata"]
    [(cooldown_end, cooldown_reason)] = metadata["cooldown_end"].items()
    assert cooldown_reason == "change_in_capacity : 1"
    assert cooldown_end > datetime.now(UTC).replace(tzinfo=None).isoformat()
    assert metadata["scaling_in_progress"] is False

    # Inside the 5 s cooldown: accepted by the API, declined by the engine, and no event at all.
    request_id = _post_signal(heat_stack, "scaleup_policy", {"previous": "ok", "current": "alarm", "reason": "2nd"})
    _wait_for_declined(heat, request_id, COOLDOWN_LOG)
    assert [e["id"] for e in _signal_events(heat_stack)] == [event["id"]]
    assert heat_stack.current_size() == 2


def test_signals_at_max_and_min_size_are_declined_without_event(
    heat: HeatServer, heat_stacks: Callable[..., HeatStack]
) -> None:
    stack = heat_stacks({"cooldown": 0, "max_size": 2, "desired_capacity": 2})
    assert stack.current_size() == 2

    at_max = _post_signal(stack, "scaleup_policy")
    _wait_for_declined(heat, at_max, NO_CHANGE_LOG)
    assert _signal_events(stack) == []
    assert stack.current_size() == 2

    # A signal without a body scales (down here) and says so in its reason.
    _post_signal(stack, "scaledown_policy")
    [event] = heat.wait_for(lambda: _signal_events(stack), 30, what="the scale-down SIGNAL event")
    assert (event["resource_name"], event["resource_status"]) == ("scaledown_policy", "SIGNAL_COMPLETE")
    assert event["resource_status_reason"] == "No signal details provided"
    assert stack.current_size() == 1

    at_min = _post_signal(stack, "scaledown_policy")
    _wait_for_declined(heat, at_min, NO_CHANGE_LOG)
    assert [e["id"] for e in _signal_events(stack)] == [event["id"]]
    assert stack.current_size() == 1


def test_stack_update_sets_the_exact_capacity(heat: HeatServer, heat_stack: HeatStack) -> None:
    _post_signal(heat_stack, "scaleup_policy")
    heat.wait_for(lambda: _signal_events(heat_stack), 30, what="the SIGNAL event")
    before = {m["resource_name"] for m in heat_stack.members()}
    assert len(before) == 2

    response = httpx.patch(heat_stack.url, json={"parameters": {"desired_capacity": 3}}, timeout=30)
    assert response.status_code == 202, response.text
    status = heat.stack_status(heat_stack.id)
    assert status is not None and status[0] in {"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"}
    assert heat.wait_for_stack(heat_stack.id) == ("UPDATE_COMPLETE", "Stack UPDATE completed successfully")

    assert heat_stack.current_size() == 3
    after = {m["resource_name"] for m in heat_stack.members()}
    assert len(after) == 3 and before < after
    parameters = httpx.get(heat_stack.url).json()["stack"]["parameters"]
    assert (parameters["desired_capacity"], parameters["cooldown"], parameters["max_size"]) == ("3", "5", "3")
    asg_events = heat_stack.events("asg")
    assert [(e["resource_status"], e["resource_status_reason"]) for e in asg_events[:2]] == [
        ("UPDATE_COMPLETE", "state changed"),
        ("UPDATE_IN_PROGRESS", "state changed"),
    ]
    metadata = httpx.get(f"{heat_stack.url}/resources/asg/metadata").json()["metadata"]
    assert list(metadata["cooldown_end"].values()) == ["ExactCapacity : 3"]


def test_any_stack_update_resizes_to_the_desired_capacity_parameter(
    heat: HeatServer, heat_stacks: Callable[..., HeatStack]
) -> None:
    stack = heat_stacks({"cooldown": 0})
    [oldest] = stack.members()
    _post_signal(stack, "scaleup_policy")
    heat.wait_for(lambda: _signal_events(stack), 30, what="the SIGNAL event")
    [newest] = [m for m in stack.members() if m["resource_name"] != oldest["resource_name"]]

    # Only max_size changes, but the group goes back to desired_capacity (1), dropping the oldest member.
    stack.update(max_size=4)
    assert stack.current_size() == 1
    assert [m["resource_name"] for m in stack.members()] == [newest["resource_name"]]

    with pytest.raises(httpx.HTTPStatusError) as refused:
        httpx.patch(stack.url, json={"parameters": {"desired_capacity": 9}}, timeout=30).raise_for_status()
    assert refused.value.response.status_code == 400
    error = refused.value.response.json()["error"]
    assert error["type"] == "StackValidationFailed"
    assert error["message"] == "DesiredCapacity must be between MinSize and MaxSize"
    assert heat.stack_status(stack.id) == ("UPDATE_COMPLETE", "Stack UPDATE completed successfully")
    assert stack.current_size() == 1
