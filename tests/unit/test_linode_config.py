"""``linode`` configuration as the policy file loader reports it: every problem at its path, the token never
shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from alertscaler.providers.linode.config import DEFAULT_API_URL, LinodeConfig

GROUP_REST = """
    min_size: 1
    max_size: 4
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
"""
TOKEN = "unit-test-token-9Zr4Lq"
MINIMAL = "type: linode, token: " + TOKEN + ", region: us-east, linode_type: g6-nanode-1, image: linode/debian12"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExhbXBsZS1rZXktZm9yLXVuaXQtdGVzdHMtMDAwMDAwMDA ops@example"
P = "groups.web.provider"


def policy(provider: str) -> str:
    return f"server: {{auth: {{insecure_no_auth: true}}}}\ngroups:\n  web:\n    provider:\n{provider}{GROUP_REST}"


def load(provider: str, base: Path | None = None) -> LinodeConfig:
    config = load_policy(policy(provider), base_dir=base).groups["web"].provider
    assert isinstance(config, LinodeConfig)
    return config


def problems(provider: str, base: Path | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(policy(provider), base_dir=base)
    assert TOKEN not in str(info.value)
    return {p.path: p.message for p in info.value.problems}


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    config = load("      {" + MINIMAL + "}\n", tmp_path)
    assert config.api_url == DEFAULT_API_URL and config.tag is None and config.group_tag("web") == "autoscale-web"
    assert (config.boot_timeout, config.delete_timeout, config.drain_time, config.poll_interval,
            config.request_timeout) == (300.0, 300.0, 30.0, 5.0, 30.0)
    assert config.private_ip is True and config.nodebalancer is None and config.scale_in == "oldest"
    assert config.tags == [] and config.label_prefix == "" and config.user_data_text is None
    assert TOKEN not in repr(config) and TOKEN not in str(config) and TOKEN not in config.model_dump_json()
    assert config.token.get_secret_value() == TOKEN


def test_full_config_with_files_relative_to_the_policy_file(tmp_path: Path) -> None:
    (tmp_path / "linode-token").write_text(TOKEN + "\n")
    (tmp_path / "user-data.yaml").write_text("#cloud-config\npackages: [nginx]\n")
    config = load(f"""
      type: linode
      token_file: linode-token
      api_url: https://api.linode.com/v4beta/
      region: us-east
      linode_type: g6-nanode-1
      image: linode/debian12
      tag: nginx-autoscale
      tags: [khw, autoscale]
      label_prefix: nginx-
      authorized_keys: ["{KEY}"]
      authorized_users: [ops]
      user_data_file: user-data.yaml
      nodebalancer: {{id: 4242, config_id: 5150, port: 80, weight: 50, mode: backup}}
      scale_in: newest
      boot_timeout: 10m
      drain_time: 2m
      poll_interval: 10s
      request_timeout: 20s
""", tmp_path)
    assert config.token.get_secret_value() == TOKEN and config.api_url == "https://api.linode.com/v4beta"
    assert config.group_tag("web") == "nginx-autoscale" and config.tags == ["khw", "autoscale"]
    assert config.user_data_text == "#cloud-config\npackages: [nginx]\n"
    assert config.user_data_file == str(tmp_path / "user-data.yaml")
    assert config.nodebalancer is not None and config.nodebalancer.model_dump() == {
        "id": 4242, "config_id": 5150, "port": 80, "weight": 50, "mode": "backup"}
    assert (config.boot_timeout, config.drain_time, config.scale_in) == (600.0, 120.0, "newest")
    assert TOKEN not in repr(config)


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINODE_TOKEN", TOKEN)
    config = load("      {" + MINIMAL.replace(f"token: {TOKEN}", "token_env: LINODE_TOKEN") + "}\n")
    assert config.token.get_secret_value() == TOKEN


def test_every_problem_at_its_path(tmp_path: Path) -> None:
    found = problems("""
      type: linode
      token_file: missing-token
      api_url: https://api.linode.com
      region: ""
      image: linode/debian12
      tag: "a,b"
      tags: [khw, x]
      label_prefix: "-bad"
      authorized_keys: [~/.ssh/id_ed25519.pub]
      nodebalancer: {id: 1, config_id: 0, mode: drain, weight: 300}
      scale_in: random
      boot_timeout: 0s
      poll_interval: soon
      linode_typo: g6
""", tmp_path)
    assert found == {
        f"{P}.token": f"token_file: cannot read {tmp_path / 'missing-token'}: No such file or directory",
        f"{P}.api_url": "must end with the API version, /v4 or /v4beta (like https://api.linode.com/v4)",
        f"{P}.region": "String should have at least 1 character",
        f"{P}.linode_type": "required",
        f"{P}.tag": "tag 'a,b' must not contain a comma (Prometheus joins tags with commas)",
        f"{P}.tags": "tag 'x' must be 3-50 characters long",
        f"{P}.label_prefix": "may use letters, digits, '-', '_' and '.', starting with a letter or digit "
                             "(it starts Linode labels)",
        f"{P}.authorized_keys": "[0] is not a public SSH key (ssh-ed25519 AAAA..., ssh-rsa AAAA...): give the key "
                                "itself, not a path",
        f"{P}.nodebalancer.config_id": "Input should be greater than 0",
        f"{P}.nodebalancer.port": "required",
        f"{P}.nodebalancer.weight": "Input should be less than or equal to 255",
        f"{P}.nodebalancer.mode": "Input should be 'accept' or 'backup'",
        f"{P}.scale_in": "Input should be 'oldest' or 'newest'",
        f"{P}.boot_timeout": "must be longer than 0s",
        f"{P}.poll_interval": "must be a duration like 60s, got 'soon'",
        f"{P}.linode_typo": "unknown key",
    }


@pytest.mark.parametrize(("extra", "path", "message"), [
    ("", "token", "required: token_file (a file holding a Linode personal access token), token_env or token"),
    ("token_env: LINODE_TOKEN_NOT_SET_ANYWHERE", "token",
     "token_env: environment variable LINODE_TOKEN_NOT_SET_ANYWHERE is not set"),
    (f"token: {TOKEN}, token_env: LINODE_TOKEN", "token", "give only one of token, token_env"),
    ("token: 'two words'", "token", "must be one word (a Linode personal access token)"),
    ("token: '  '", "token", "is empty"),
    (f"token: {TOKEN}, api_url: 'ftp://api.linode.com/v4'", "api_url",
     "must be an http(s) URL like https://api.linode.com/v4"),
    (f"token: {TOKEN}, tag: ab", "tag", "tag 'ab' must be 3-50 characters long"),
    (f"token: {TOKEN}, tag: web-tag, tags: [web-tag]", "", "tags: 'web-tag' is already the group's tag"),
    (f"token: {TOKEN}, label_prefix: 'as--'", "label_prefix", "must not contain '--', '__' or '..' "
                                                                 "(Linode labels cannot)"),
    (f"token: {TOKEN}, stackscript_data: {{a: b}}", "", "stackscript_data needs stackscript_id"),
    (f"token: {TOKEN}, stackscript_id: 10079, user_data: '#!/bin/sh'", "",
     "give either a StackScript (stackscript_id) or cloud-init user data, not both"),
    (f"token: {TOKEN}, user_data: '#!/bin/sh', user_data_file: /etc/hostname", "user_data_file",
     "give either user_data or user_data_file, not both"),
    (f"token: {TOKEN}, private_ip: false, nodebalancer: {{id: 1, config_id: 2, port: 80}}", "",
     "nodebalancer needs private_ip: true (NodeBalancer backends are private addresses)"),
    (f"token: {TOKEN}, boot_timeout: 5s, poll_interval: 10s", "", "poll_interval must not be longer than boot_timeout"),
    (f"token: {TOKEN}, nodebalancer: {{id: 1, config_id: 2, port: 80, extra: 1}}", "nodebalancer.extra",
     "unknown key"),
    (f"token: {TOKEN}, drain_time: -1s", "drain_time", "must be a duration like 60s, got '-1s'"),
], ids=["no-token", "unset-env", "two-sources", "spaces", "empty", "scheme", "short-tag", "tag-twice",
        "double-dash", "udf-without-script", "script-and-user-data", "user-data-twice", "nb-needs-private-ip",
        "poll-longer-than-boot", "nb-unknown-key", "negative-drain"])
def test_one_problem_at_its_path(extra: str, path: str, message: str) -> None:
    base = "type: linode, region: us-east, linode_type: g6-nanode-1, image: linode/debian12"
    provider = "      {" + base + (", " + extra if extra else "") + "}\n"
    assert problems(provider) == {f"{P}.{path}" if path else P: message}


@pytest.mark.parametrize(("action", "problem"), [
    ("replace", None),
    ("reboot", "the linode provider cannot reboot a member (it can: replace)"),
    ("quarantine", "the linode provider cannot quarantine a member (it can: replace)"),
], ids=["replace", "reboot", "quarantine"])
def test_heal_policies_may_replace_members(action: str, problem: str | None) -> None:
    heal = f"    heal: {{matchers: ['alertname=\"InstanceDown\"'], action: {action}}}\n"
    text = policy("      {" + MINIMAL + "}\n") + heal
    if problem is None:
        assert load_policy(text).groups["web"].heal is not None
    else:
        with pytest.raises(ConfigError) as info:
            load_policy(text)
        assert {p.path: p.message for p in info.value.problems} == {"groups.web.heal.action": problem}


def test_the_token_is_not_in_validation_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(policy("      {" + MINIMAL + ", request_timeout: never}\n"))
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.problems)
