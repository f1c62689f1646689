"""User data through the ``openstack-heat`` provider, against a REAL Heat 27 (fixture ``heat``): the group's
template is rendered for the group and sent as the stack parameter ``user_data_parameter`` with the capacity
update, Heat stores it and the members it creates get it (their ``value``: the template passes the parameter to
each member as a server passes it to its ``user_data``); a stack without that parameter is refused with the
stack's parameters named, before anything changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.openstack.heat.provider import HeatConfig, HeatProvider
from tests.integration.heat_fixtures import ASG_TEMPLATE, HeatServer, HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"
USER_DATA = "#cloud-config\nwrite_files: [{path: /etc/alertscaler-group, content: '{group}'}]\n"
RENDERED = "#cloud-config\nwrite_files: [{path: /etc/alertscaler-group, content: 'web'}]\n"
# asg.yaml with a user_data parameter, passed to every member (OS::Heat::TestResource's value stands in for
# OS::Nova::Server's user_data)
TEMPLATE = (ASG_TEMPLATE.read_text()
            .replace("  desired_capacity:\n    type: number\n    default: 1\n",
                     "  desired_capacity:\n    type: number\n    default: 1\n"
                     "  user_data:\n    type: string\n    default: ''\n")
            .replace("properties: {value: member}", "properties: {value: {get_param: user_data}}"))
_ids = itertools.count(5000)


@pytest.fixture
def make(heat: HeatServer, tmp_path: Path) -> Iterator[Callable[..., HeatProvider]]:
    made: list[HeatProvider] = []

    def build(**keys: Any) -> HeatProvider:
        config = HeatConfig.model_validate({
            "type": "openstack-heat", "auth": {"auth_type": "none",
                                               "endpoint_override": {"orchestration": heat.base_url}},
            "poll_interval": "100ms", "decline_after": "2s", "timeout": "60s", "mode": "capacity",
            "capacity_parameter": "desired_capacity", "user_data": USER_DATA, **keys})
        provider = HeatProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path / "state"))
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def want(desired: int) -> ScaleRequest:
    action = next(_ids)
    return ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action, decision_id=action)


def test_the_rendered_user_data_goes_with_the_capacity_update(heat: HeatServer, make: Callable[..., HeatProvider],
                                                              heat_stacks: Callable[..., HeatStack]) -> None:
    stack = heat_stacks(template=TEMPLATE)
    provider = make(stack=stack.name, user_data_parameter="user_data")
    assert provider.scale(want(2)).endswith("asg 1 -> 2")
    assert heat.get_json(stack.url, resolve_outputs="false")["stack"]["parameters"]["user_data"] == RENDERED
    members = stack.members()
    assert len(members) == 2
    for member in members:
        self_link = next(link["href"] for link in member["links"] if link["rel"] == "self")
        resource = heat.get_json(self_link)["resource"]
        assert resource["attributes"]["output"] == RENDERED, resource


def test_a_stack_without_the_parameter_is_refused_unchanged(heat: HeatServer, make: Callable[..., HeatProvider],
                                                            heat_stack: HeatStack) -> None:
    provider = make(stack=heat_stack.name, user_data_parameter="user_data")
    with pytest.raises(PermanentProviderError) as info:
        provider.scale(want(2))
    assert "has no parameter 'user_data' (user_data_parameter); its parameters: cooldown, desired_capacity, " \
           "max_size, min_size" in str(info.value)
    assert heat_stack.current_size() == 1
