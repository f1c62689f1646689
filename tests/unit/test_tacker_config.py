"""The ``tacker:`` section (``config.tacker``): the policies an aspect and a healing mapping give their group,
and every mistake reported at its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.config.tacker import MEMBER_LABEL, heal_matchers, quoted, scale_matchers
from alertscaler.model.errors import ConfigError
from alertscaler.model.matchers import MatcherSet

BASE = """
server: {auth: {bearer_token: t0ken-t0ken}}
groups:
  vdu1: {provider: {type: fake}, min_size: 1, max_size: 5}
  vdu2: {provider: {type: fake}, min_size: 1, max_size: 5}
"""


def test_an_aspect_gives_its_group_both_step_policies(tmp_path: Path) -> None:
    policy = load_policy(BASE + """
tacker:
  aspects: [{vnf_instance_id: v1, aspect_id: VDU1_aspect, group: vdu1, step: 2, cooldown: 5m}]
  healing: [{vnf_instance_id: v1, group: vdu2, vnfc_prefix: VDU2-}]
  timer_interval: 30s
""", base_dir=tmp_path)
    out, into = policy.groups["vdu1"].scale_out, policy.groups["vdu1"].scale_in
    assert out is not None and into is not None
    assert (out.adjustment, into.adjustment, out.cooldown) == (2, -2, 300.0)
    labels = {"receiver_type": "tacker", "function_type": "auto_scale", "vnf_instance_id": "v1",
              "aspect_id": "VDU1_aspect", "auto_scale_type": "SCALE_OUT"}
    assert out.matcher_set.matches(labels) and not into.matcher_set.matches(labels)
    assert into.matcher_set.matches({**labels, "auto_scale_type": "SCALE_IN"})
    assert not out.matcher_set.matches({**labels, "aspect_id": "VDU2_aspect"})
    heal = policy.groups["vdu2"].heal
    assert heal is not None and heal.member_labels == [MEMBER_LABEL] and heal.batch_window == 30.0
    assert policy.groups["vdu1"].heal is None and policy.groups["vdu2"].scale_out is None


PROBLEMS = {
    "unknown-group": ("aspects: [{vnf_instance_id: v, aspect_id: a, group: nope}]", "tacker.aspects[0].group",
                      "no group 'nope'"),
    "group-has-policies": ("aspects: [{vnf_instance_id: v, aspect_id: a, group: web}]", "tacker.aspects[0].group",
                           "already has scale_out"),
    "zero-step": ("aspects: [{vnf_instance_id: v, aspect_id: a, group: vdu1, step: 0}]", "tacker.aspects[0].step",
                  "greater than or equal to 1"),
    "no-aspect-id": ("aspects: [{vnf_instance_id: v, group: vdu1}]", "tacker.aspects[0].aspect_id", "required"),
    "heal-unknown-group": ("healing: [{vnf_instance_id: v, group: nope}]", "tacker.healing[0].group",
                           "no group 'nope'"),
    "heal-twice": ("healing: [{vnf_instance_id: v, group: vdu1}, {vnf_instance_id: v, group: vdu2}]",
                   "tacker.healing[1].vnf_instance_id", "one group per VNF instance"),
    "bad-auth": ("auth: none", "tacker.auth", "'required' or 'open'"),
    "unknown-key": ("timer: 20s", "tacker.timer", ""),
}


@pytest.mark.parametrize(("text", "path", "says"), list(PROBLEMS.values()), ids=list(PROBLEMS))
def test_mistakes_are_reported_at_their_path(tmp_path: Path, text: str, path: str, says: str) -> None:
    policy = BASE + """  web:
    provider: {type: fake}
    scale_out: {matchers: ['alertname="Hi"'], adjustment: 1}
tacker:
  """ + text + "\n"
    with pytest.raises(ConfigError) as err:
        load_policy(policy, base_dir=tmp_path)
    found = {p.path: p.message for p in err.value.problems}
    assert path in found, found
    assert says in found[path]


def test_a_heal_action_the_provider_lacks_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("vdu2: {provider: {type: fake}", "vdu2: {provider: {type: exec, command: [/bin/true]}")
    with pytest.raises(ConfigError) as err:
        load_policy(text + "tacker: {healing: [{vnf_instance_id: v, group: vdu2}]}\n", base_dir=tmp_path)
    (problem,) = err.value.problems
    assert problem.path == "tacker.healing[0].action" and "cannot replace" in problem.message


QUOTED = {"plain": ("VDU1_aspect", '"VDU1_aspect"'), "quote": ('a"b', '"a\\"b"'), "backslash": ("a\\b", '"a\\\\b"')}


@pytest.mark.parametrize(("value", "expected"), list(QUOTED.values()), ids=list(QUOTED))
def test_ids_are_quoted_so_any_id_matches_only_itself(value: str, expected: str) -> None:
    assert quoted(value) == expected
    matchers = MatcherSet.parse(scale_matchers(value, value, "SCALE_OUT"))
    labels = {"receiver_type": "tacker", "function_type": "auto_scale", "vnf_instance_id": value,
              "aspect_id": value, "auto_scale_type": "SCALE_OUT"}
    assert matchers.matches(labels)
    assert MatcherSet.parse(heal_matchers(value)).matches({**labels, "function_type": "auto_heal"})
