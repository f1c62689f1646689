"""``openstack-nova`` configuration as the policy file loader reports it: every problem at its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from alertscaler.providers.openstack.nova.provider import NovaConfig

GROUP_REST = """
    min_size: 1
    max_size: 4
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
"""


def policy(provider: str) -> str:
    return f"server: {{auth: {{insecure_no_auth: true}}}}\ngroups:\n  web:\n    provider:\n{provider}{GROUP_REST}"


def problems(provider: str, base: Path | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(policy(provider), base_dir=base)
    return {p.path: p.message for p in info.value.problems}


P = "groups.web.provider"


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    loaded = load_policy(policy("      {type: openstack-nova, image: cirros, flavor: m1.small}\n"), base_dir=tmp_path)
    config = loaded.groups["web"].provider
    assert isinstance(config, NovaConfig)
    assert (config.boot_timeout, config.delete_timeout, config.poll_interval) == (300.0, 300.0, 5.0)
    assert config.scale_in == "unhealthy_first" and config.networks == [] and config.port is None
    assert config.owner_key == "alertscaler_group" and config.owner_value is None
    assert config.discovery_metadata == {"prometheus_autoscaling": "true"}
    assert config.auth.describe() == "OS_* environment"


def test_full_config_with_user_data_file_relative_to_the_policy_file(tmp_path: Path) -> None:
    (tmp_path / "cloud-init.yaml").write_text("#cloud-config\nhostname: {name}\n")
    (tmp_path / "ac-secret").write_text("s3cret-from-file\n")
    loaded = load_policy(policy("""
      type: openstack-nova
      auth:
        auth_url: https://keystone.example.org:5000/v3
        application_credential_id: 0123abcd
        application_credential_secret_file: ac-secret
        region_name: RegionOne
      image: 70a599e0-31e7-49b7-b260-868f441e862b
      flavor: m1.small
      networks: [{uuid: d32019d3-bc6e-4319-9c1d-6722fc136a22, fixed_ip: 10.0.0.50}, {port: p-1}]
      key_name: ops
      security_groups: [default, web]
      user_data_file: cloud-init.yaml
      metadata: {stack_name: web}
      name_prefix: as-
      availability_zone: nova
      port: 9100
      boot_timeout: 10m
      delete_timeout: 2m
      poll_interval: 10s
      scale_in: oldest
"""), base_dir=tmp_path)
    config = loaded.groups["web"].provider
    assert isinstance(config, NovaConfig)
    assert config.template == "#cloud-config\nhostname: {name}\n"
    assert config.user_data_file == str(tmp_path / "cloud-init.yaml")
    assert config.boot_timeout == 600.0 and config.networks[0].fixed_ip == "10.0.0.50"
    assert "s3cret" not in repr(loaded)


def test_every_problem_at_its_path(tmp_path: Path) -> None:
    found = problems("""
      type: openstack-nova
      image: ""
      networks: [{uuid: n-1, port: p-1}, {fixed_ip: 10.0.0.1}]
      user_data_file: missing.yaml
      boot_timeout: 0s
      poll_interval: soon
      scale_in: random
      name_prefix: "bad prefix"
      port: 70000
      security_groups: [""]
      metadata: {alertscaler_group: other}
      auth: {cloud: mine, auth_url: "http://keystone:5000/v3"}
      flavour: m1.small
""", tmp_path)
    assert found == {
        f"{P}.auth": "give either cloud (a clouds.yaml entry) or auth_url, not both",
        f"{P}.image": "String should have at least 1 character",
        f"{P}.flavor": "required",
        f"{P}.flavour": "unknown key",
        f"{P}.networks[0]": "give exactly one of uuid (a network) or port",
        f"{P}.networks[1]": "give exactly one of uuid (a network) or port",
        f"{P}.user_data_file": f"cannot read {tmp_path / 'missing.yaml'}: No such file or directory",
        f"{P}.boot_timeout": "must be longer than 0s",
        f"{P}.poll_interval": "must be a duration like 60s, got 'soon'",
        f"{P}.scale_in": "Input should be 'unhealthy_first', 'oldest' or 'newest'",
        f"{P}.name_prefix": "may use letters, digits, '.', '_' and '-' only (it starts host names)",
        f"{P}.port": "Input should be less than or equal to 65535",
        f"{P}.security_groups": "security group names must not be empty",
        f"{P}.metadata": "must not set alertscaler_group (set by alertscaler)",
    }


@pytest.mark.parametrize(("provider", "path", "message"), [
    ("{type: openstack-nova, image: i, flavor: f, networks: some}", "networks",
     "must be auto or a list of {uuid: NETWORK_ID} / {port: PORT_ID}"),
    ("{type: openstack-nova, image: i, flavor: f, networks: [{port: p, fixed_ip: 10.0.0.1}]}", "networks[0]",
     "fixed_ip goes with uuid (a port has its own addresses)"),
    ("{type: openstack-nova, image: i, flavor: f, user_data: 'hostname: {hostname}'}", "user_data",
     "unknown placeholder(s) {hostname} (known: {group}, {name}, {index}; ${VAR} and {{ jinja }} are left as they "
     "are)"),
    ("{type: openstack-nova, image: i, flavor: f, user_data: '#!/bin/sh', user_data_file: /etc/hostname}",
     "user_data_file",
     "give either user_data or user_data_file, not both"),
    ("{type: openstack-nova, image: i, flavor: f, boot_timeout: 5s, poll_interval: 10s}", "",
     "poll_interval must not be longer than boot_timeout"),
    ("{type: openstack-nova, image: i, flavor: f, discovery_metadata: {alertscaler_action: '1'}}",
     "discovery_metadata", "must not set alertscaler_action (set by alertscaler)"),
    ("{type: openstack-nova, image: i, flavor: f, owner_key: team, metadata: {team: x}}", "metadata",
     "must not set team (set by alertscaler)"),
    ("{type: openstack-nova, image: i, flavor: f, metadata: {k: " + "v" * 256 + "}}", "metadata",
     "'k': Nova metadata keys are 1-255 characters, values at most 255"),
    ("{type: openstack-nova, image: i, flavor: f, auth: {auth_type: none}}", "auth",
     "auth_type none needs endpoint_override (service type -> URL)"),
], ids=["networks-word", "fixed-ip-with-port", "placeholder-typo", "user-data-twice", "poll-longer-than-boot",
        "discovery-sets-action", "metadata-sets-owner", "metadata-too-long", "noauth-without-endpoint"])
def test_single_problems(provider: str, path: str, message: str) -> None:
    found = problems(f"      {provider}\n")
    assert found == {f"{P}.{path}" if path else P: message}


def test_user_data_file_with_an_unknown_placeholder(tmp_path: Path) -> None:
    (tmp_path / "ud.sh").write_text("#!/bin/sh\necho {grp}\n")
    found = problems("      {type: openstack-nova, image: i, flavor: f, user_data_file: ud.sh}\n", tmp_path)
    assert found == {f"{P}.user_data_file": f"{tmp_path / 'ud.sh'}: unknown placeholder(s) {{grp}} (known: "
                                             "{group}, {name}, {index}; ${VAR} and {{ jinja }} are left as they are)"}


def test_secrets_are_not_echoed_in_problems() -> None:
    found = problems("      {type: openstack-nova, image: i, flavor: f, auth: {application_credential_id: a, "
                     "application_credential_secret: hunter2-secret}}\n")
    assert found == {f"{P}.auth": "credentials given without auth_url (or set cloud: to use clouds.yaml)"}
    assert "hunter2" not in str(found)
