"""Instance bootstrap (``providers.common.userdata``): templates rendered per instance, the checks ``check`` runs
(format, cloud-config YAML, placeholders, the clouds' size limits), its warnings and report, and each booting
provider's config reporting a problem at its path. That the rendered user data reaches the clouds is tested
against the stand-ins and real processes in tests/integration/test_user_data_providers.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from alertscaler.cli import main
from alertscaler.cli.common import EXIT_NO, EXIT_OK
from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from alertscaler.providers.common import userdata
from alertscaler.providers.common.userdata import LINODE, NOVA, Limit

CLOUD_CONFIG = """#cloud-config
hostname: {name}
write_files:
  - path: /etc/alertscaler
    content: "group={group} index={index}"
runcmd:
  - echo "${HOME} $HOSTNAME {{ v1.instance_id }} {{v1.region}}"
  - [sh, -c, 'echo {"json": true}']
"""


@pytest.mark.parametrize(("template", "expected"), [
    ("hostname: {name}", "hostname: web-7-2"),
    ("{group}/{index}/{name}", "web/2/web-7-2"),
    ("${HOME} $name ${name} {{ name }} {{name}}", "${HOME} $name ${name} {{ name }} {{name}}"),
    ("{unknown} {group}", "{unknown} web"),     # render leaves what it does not know (check refuses it first)
    ('[sh, -c, \'echo {"json": true}\']', '[sh, -c, \'echo {"json": true}\']'),
    ("{ name }", "{ name }"),                   # a YAML flow mapping, not a placeholder
    ("{group}{group}", "webweb"),
], ids=["name", "all-three", "shell-and-jinja-kept", "unknown-kept", "json-kept", "spaced-kept", "twice"])
def test_render(template: str, expected: str) -> None:
    assert userdata.render_for(template, "web", "web-7-2", 2) == expected


def test_a_full_cloud_config_renders_and_checks() -> None:
    out = userdata.render_for(userdata.check(CLOUD_CONFIG, NOVA), "web", "web-7-2", 2)
    assert "hostname: web-7-2" in out and 'content: "group=web index=2"' in out
    assert "${HOME} $HOSTNAME {{ v1.instance_id }} {{v1.region}}" in out and '{"json": true}' in out
    assert base64.b64decode(userdata.encode(out)).decode() == out
    assert userdata.warnings(CLOUD_CONFIG) == []


@pytest.mark.parametrize(("template", "kind"), [
    ("#cloud-config\npackages: [nginx]\n", "cloud-config"),
    ("#cloud-config  \npackages: [nginx]\n", "cloud-config"),
    ("\ufeff#cloud-config\nruncmd: [ls]\n", "cloud-config"),
    ("#!/bin/bash\necho {name}\n", "a script"),
    ("#include\nhttps://example.com/ud\n", "an include list"),
    ("#cloud-boothook\necho hi\n", "a boothook"),
    ("#cloud-config-archive\n- type: text/cloud-config\n", "a cloud-config archive"),
    ("Content-Type: multipart/mixed; boundary=x\n\n--x--\n", "a MIME multipart"),
    ("## template: jinja\n#cloud-config\nhostname: '{{ v1.local_hostname }}'\n",
     "a Jinja template of cloud-config"),
], ids=["cloud-config", "trailing-space", "bom", "script", "include", "boothook", "archive", "mime", "jinja"])
def test_formats_cloud_init_runs(template: str, kind: str) -> None:
    assert userdata.check(template) == template
    assert userdata.describe(template) == kind


@pytest.mark.parametrize(("template", "message"), [
    ("packages: [nginx]\n", "must start with #cloud-config (or another cloud-init format"),
    ("", "is empty"),
    ("   \n", "is empty"),
    ("#cloud-config\n- a\n- b\n", "#cloud-config must be a YAML mapping (packages:, runcmd:, write_files: ...), "
                                 "got a list"),
    ("#cloud-config\n", "must be a YAML mapping (packages:, runcmd:, write_files: ...), got nothing"),
    ("#cloud-config\npackages: [nginx\n", "#cloud-config is not valid YAML: line 3, column 1:"),
    ("#cloud-config\nhostname: {hostname}\n", "unknown placeholder(s) {hostname} (known: {group}, {name}, "
                                              "{index}; ${VAR} and {{ jinja }} are left as they are)"),
    ("## template: jinja\npackages: []\n", "must start with #cloud-config"),
    ("#cloud-configure\nx: 1\n", "must start with #cloud-config"),
], ids=["yaml-without-header", "empty", "blank", "a-list", "nothing", "bad-yaml", "placeholder-typo",
        "jinja-of-nothing", "header-typo"])
def test_check_refuses_what_cloud_init_would_not_run(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        userdata.check(template)
    assert message in str(info.value)


def test_a_placeholder_the_provider_cannot_fill_says_why() -> None:
    with pytest.raises(ValueError) as info:
        userdata.check("#cloud-config\nhostname: {name}\n", placeholders=("group",),
                       why_not="Heat names the servers")
    assert str(info.value) == "{name}: Heat names the servers (this provider fills: {group})"


@pytest.mark.parametrize(("limit", "size", "ok"), [
    (NOVA, 49_000, True),      # base64: 65,336 of 65,535 (with the header and the longest names)
    (NOVA, 49_300, False),
    (LINODE, 65_000, True),    # Linode counts the text itself
    (LINODE, 65_600, False),
    (Limit("Tiny", 300, encoded=False), 50, True),
], ids=["nova-fits", "nova-too-big", "linode-fits", "linode-too-big", "custom"])
def test_size_limits_for_the_longest_instance_names(limit: Limit, size: int, ok: bool) -> None:
    template = "#!/bin/sh\n# {name}\n" + "x" * size
    if ok:
        userdata.check(template, limit)
        return
    with pytest.raises(ValueError) as info:
        userdata.check(template, limit)
    assert f"{limit.cloud} accepts at most {limit.size}" in str(info.value)


def test_warnings_name_unknown_cloud_config_keys_with_a_suggestion() -> None:
    template = "#cloud-config\npackges: [nginx]\nruncmd: [ls]\nmy_own_key: 1\nwrite_files: []\n"
    assert userdata.warnings(template) == [
        "unknown cloud-config key 'packges' (did you mean packages?): no cloud-init module reads it",
        "unknown cloud-config key 'my_own_key': no cloud-init module reads it",
    ]
    assert userdata.warnings("#!/bin/sh\npackges\n") == []  # scripts are not YAML


def test_report_says_format_size_and_limit() -> None:
    report = userdata.report("#cloud-config\nhostname: {name}\npackges: []\n", "/etc/ud.yaml", NOVA)
    assert report is not None
    assert report.key == "user_data_file"
    assert report.summary().startswith("user_data_file (/etc/ud.yaml): cloud-config, up to 165 bytes (220 in base64, "
                                       "Nova accepts 65535)")
    assert report.warnings == ("unknown cloud-config key 'packges' (did you mean packages?): no cloud-init module "
                               "reads it",)
    assert userdata.report(None, None, NOVA) is None


# -- each booting provider's config: problems at their path ---------------------------------------------------

POLICY = """
server: {{auth: {{bearer_token: s3cret-token}}}}
groups:
  web:
    provider: {provider}
"""
LINODE_BASE = "{type: linode, token: tok3n-0123456789, region: us-east, linode_type: g6-nanode-1, image: i, "


def _problems(provider: str, base: Path | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(POLICY.format(provider=provider), base_dir=base)
    return {p.path: p.message for p in info.value.problems}


@pytest.mark.parametrize(("provider", "path", "fragment"), [
    ("{type: openstack-nova, image: i, flavor: f, user_data: 'packages: [x]'}", "user_data",
     "must start with #cloud-config"),
    ("{type: openstack-nova, image: i, flavor: f, user_data: \"#cloud-config\\nx: [\"}", "user_data",
     "not valid YAML"),
    (LINODE_BASE + "user_data: \"#cloud-config\\nhostname: {host}\"}", "user_data", "unknown placeholder(s) {host}"),
    (LINODE_BASE + "user_data: 'runcmd: [ls]'}", "user_data", "must start with #cloud-config"),
    ("{type: local, user_data: \"#cloud-config\\n- a\"}", "user_data", "must be a YAML mapping"),
    ("{type: exec, command: [x], user_data: \"#cloud-config\\nhostname: {name}\"}", "user_data",
     "{name}: the command creates and names the instances"),
    ("{type: openstack-heat, stack: s, user_data: \"#cloud-config\\nhostname: {index}\"}", "user_data",
     "{index}: Heat creates the servers"),
    ("{type: openstack-heat, stack: s, user_data: \"#cloud-config\\nhostname: {group}\"}", "user_data_parameter",
     "required with user_data"),
], ids=["nova-no-header", "nova-bad-yaml", "linode-placeholder", "linode-no-header", "local-list", "exec-name",
        "heat-index", "heat-needs-parameter"])
def test_provider_configs_report_user_data_problems_at_their_path(provider: str, path: str, fragment: str) -> None:
    problems = _problems(provider)
    key = f"groups.web.provider.{path}"
    assert key in problems, problems
    assert fragment in problems[key]


@pytest.mark.parametrize("provider", [
    "{type: openstack-nova, image: i, flavor: f, user_data_file: ud.yaml}",
    LINODE_BASE + "user_data_file: ud.yaml}",
    "{type: local, user_data_file: ud.yaml}",
], ids=["nova", "linode", "local"])
def test_a_user_data_file_problem_names_the_file(tmp_path: Path, provider: str) -> None:
    (tmp_path / "ud.yaml").write_text("packages: [nginx]\n")
    problems = _problems(provider, tmp_path)
    message = problems["groups.web.provider.user_data_file"]
    assert message.startswith(f"{tmp_path / 'ud.yaml'}: must start with #cloud-config")


# -- alertscaler check ------------------------------------------------------------------------------------------


def test_check_reports_user_data_and_warns_about_unknown_keys(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ud.yaml").write_text("#cloud-config\npackges: [nginx]\nhostname: {name}\n")
    policy = tmp_path / "p.yml"
    policy.write_text(POLICY.format(provider="{type: local, user_data_file: ud.yaml}"))
    assert main(["check", str(policy)]) == EXIT_OK
    captured = capsys.readouterr()
    assert f"web: user data user_data_file ({tmp_path / 'ud.yaml'}): cloud-config, up to 170 bytes" in captured.out
    assert ("web: WARNING: groups.web.provider.user_data_file: unknown cloud-config key 'packges' (did you mean "
            "packages?)") in captured.err


def test_check_refuses_user_data_cloud_init_would_ignore(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text(POLICY.format(provider="{type: local, user_data: 'packages: [nginx]'}"))
    assert main(["check", str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "groups.web.provider.user_data: must start with #cloud-config" in err
    assert "Traceback" not in err


def test_the_readme_example_is_valid_user_data() -> None:
    """README "Instance bootstrap": seed 003's user data, as shown there, passes the check with no warning."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```yaml\n", readme.index("Seed 003's user data, for Nova:")) + len("```yaml\n")
    template = readme[start:readme.index("```\n", start)]
    assert userdata.check(template, NOVA) == template
    assert userdata.warnings(template) == []
    out = userdata.render_for(template, "web", "web-4-1", 1)
    assert "hostname: web-4-1" in out and 'echo "group=web index=1"' in out
