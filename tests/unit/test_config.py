"""Policy file validation: every problem at once, each with its path; secrets from env and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError

GOOD = """
server:
  listen: 127.0.0.1:8080
  auth: {bearer_token: s3cret-token}
groups:
  web:
    provider: {type: local}
    min_size: 1
    max_size: 5
    desired: 2
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
    scale_in: {matchers: ['alertname="LowLoad"'], adjustment: -1, cooldown: 2m}
"""


def test_good_file_loads() -> None:
    policy = load_policy(GOOD)
    web = policy.groups["web"]
    assert (web.min_size, web.max_size, web.initial_desired, web.provider_type) == (1, 5, 2, "local")
    assert web.scale_in is not None and web.scale_in.cooldown == 120.0
    assert policy.server.auth.bearer_token is not None
    assert "s3cret" not in repr(policy) and "s3cret" not in str(policy.server.auth)


def _problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    return {p.path: p.message for p in info.value.problems}


def test_every_problem_reported_at_once_with_paths() -> None:
    problems = _problems("""
server: {listen: nowhere, auth: {insecure_no_auth: true}}
stor: {}
groups:
  web:
    provider: {type: local, comand: [x]}
    min_size: 3
    max_size: 2
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: soon}
    scale_in: {matchers: ['alertname~"LowLoad"'], adjustment: 1}
  api:
    provider: {type: cloud9}
""")
    assert problems["groups.web.scale_out.cooldown"].startswith("must be a duration like 60s")
    assert "must be HOST:PORT" in problems["server.listen"]
    assert "did you mean store" in problems["stor"]
    assert problems["groups.web.provider.comand"] == "unknown key"
    assert "not a matcher" in problems["groups.web.scale_in.matchers"]
    assert "unknown provider type 'cloud9'" in problems["groups.api.provider.type"]
    assert any("min_size (3) is greater than max_size (2)" in m for m in problems.values())


@pytest.mark.parametrize(
    ("group", "path", "fragment"),
    [
        ("scale_in: {matchers: ['a=\"b\"'], adjustment: 1}", "groups.g.scale_in.adjustment", "negative for scale_in"),
        ("scale_out: {matchers: ['a=\"b\"'], adjustment: -1}", "groups.g.scale_out.adjustment",
         "positive for scale_out"),
        ("scale_out: {matchers: [], adjustment: 1}", "groups.g.scale_out.matchers", "at least 1"),
        ("scale_out: {matchers: ['a=\"b\"'], adjustment: 1, adjustment_type: double}",
         "groups.g.scale_out.adjustment_type", "change_in_capacity"),
        ("desired: 9", "groups.g.desired", "within min_size..max_size"),
        ("scale_out: {matchers: ['a=\"b\"']}", "groups.g.scale_out.adjustment", "required"),
    ],
    ids=["scale-in-positive", "scale-out-negative", "no-matchers", "bad-adjustment-type", "desired-outside",
         "missing-adjustment"],
)
def test_group_problems(group: str, path: str, fragment: str) -> None:
    text = f"server: {{auth: {{insecure_no_auth: true}}}}\ngroups:\n  g:\n    provider: {{type: local}}\n" \
           f"    min_size: 1\n    max_size: 3\n    {group}\n"
    problems = _problems(text)
    assert fragment in problems[path], problems


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("groups: [", "not valid YAML: line"), ("- a\n- b", "must be a mapping"), ("server: {}", "at least one group")],
    ids=["yaml-syntax", "not-a-mapping", "no-groups"],
)
def test_file_level_problems(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    assert fragment in str(info.value)


def test_auth_is_required_unless_explicitly_disabled() -> None:
    problems = _problems("server: {auth: {}}\ngroups: {g: {provider: {type: local}}}")
    assert "insecure_no_auth" in problems["server.auth"]


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS_TEST_TOKEN", "from-the-environment")
    policy = load_policy(GOOD.replace("bearer_token: s3cret-token", "bearer_token_env: AS_TEST_TOKEN"))
    assert policy.server.auth.bearer_token is not None
    assert policy.server.auth.bearer_token.get_secret_value() == "from-the-environment"
    (tmp_path / "token").write_text("from-a-file-123\n")
    policy = load_policy(GOOD.replace("bearer_token: s3cret-token", "bearer_token_file: token"), base_dir=tmp_path)
    assert policy.server.auth.bearer_token is not None
    assert policy.server.auth.bearer_token.get_secret_value() == "from-a-file-123"


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [("bearer_token_env: AS_TEST_UNSET_VAR", "environment variable AS_TEST_UNSET_VAR is not set"),
     ("bearer_token_file: /nonexistent/token", "cannot read /nonexistent/token"),
     ("{bearer_token: abcdefghij, bearer_token_env: X}", "give only one of")],
    ids=["env-unset", "file-missing", "two-sources"],
)
def test_secret_problems_never_show_the_secret(auth: str, fragment: str) -> None:
    text = GOOD.replace("{bearer_token: s3cret-token}", auth if auth.startswith("{") else "{" + auth + "}")
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    assert fragment in str(info.value)
    assert "abcdefghij" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 100), ("queries_per_request: 1", 1), ("queries_per_request: 1000", 1000),
     ("queries_per_request: 0", "greater than or equal to 1"),
     ("queries_per_request: 1001", "less than or equal to 1000"),
     ("queries_per_request: many", "valid integer")],
    ids=["default", "off", "most", "zero", "too-many", "not-a-number"],
)
def test_prometheus_queries_per_request(value: str, expected: int | str) -> None:
    text = ("server: {auth: {insecure_no_auth: true}}\nprometheus: {" + value + "}\n"
            "groups: {g: {provider: {type: local}}}\n")
    if isinstance(expected, int):
        assert load_policy(text).prometheus.queries_per_request == expected
    else:
        assert expected in _problems(text)["prometheus.queries_per_request"]


@pytest.mark.parametrize(
    ("section", "path", "expected"),
    [("prometheus: {url: 'https://prom.example.com:9443/prefix'}", "prometheus.url", None),
     ("prometheus: {url: 'http://[::1]:9090'}", "prometheus.url", None),
     ("prometheus: {url: 'not a url'}", "prometheus.url", "must be an http:// or https:// URL with a host"),
     ("prometheus: {url: '127.0.0.1:9090'}", "prometheus.url", "got '127.0.0.1:9090'"),
     ("prometheus: {url: 'ftp://prom:9090'}", "prometheus.url", "http:// or https://"),
     ("prometheus: {url: 'http://'}", "prometheus.url", "with a host"),
     ("prometheus: {url: 'http://prom:99999'}", "prometheus.url", "out of range"),
     ("prometheus: {url: 'http://u:hunter2@prom:x'}", "prometheus.url", "a URL with credentials"),
     ("prometheus: {verify: /nonexistent/ca.pem}", "prometheus.verify", "cannot load '/nonexistent/ca.pem'"),
     ("server: {public_url: 'alertscaler.example.com'}", "server.public_url", "http:// or https://"),
     ("server: {public_url: 'https://alertscaler.example.com/x'}", "server.public_url", None)],
    ids=["https-prefix", "ipv6", "words", "no-scheme", "ftp", "no-host", "bad-port", "credentials-not-echoed",
         "ca-missing", "public-url-no-scheme", "public-url-ok"],
)
def test_urls_are_checked_with_their_path(section: str, path: str, expected: str | None) -> None:
    text = f"{section}\ngroups: {{g: {{provider: {{type: local}}}}}}\n"
    if "server:" not in section:
        text = "server: {auth: {insecure_no_auth: true}}\n" + text
    else:
        text = text.replace("server: {", "server: {auth: {insecure_no_auth: true}, ")
    if expected is None:
        load_policy(text)
        return
    problems = _problems(text)
    assert list(problems) == [path]
    assert expected in problems[path] and "hunter2" not in problems[path]


@pytest.mark.parametrize(
    ("section", "url", "url_set"),
    [("", "http://127.0.0.1:9090", False), ("prometheus: {timeout: 5s}", "http://127.0.0.1:9090", False),
     ("prometheus: {url: 'http://127.0.0.1:9090'}", "http://127.0.0.1:9090", True)],
    ids=["no-section", "section-without-url", "default-url-written"],
)
def test_prometheus_url_set_only_when_the_file_gives_it(section: str, url: str, url_set: bool) -> None:
    policy = load_policy(f"server: {{auth: {{insecure_no_auth: true}}}}\n{section}\n"
                         "groups: {g: {provider: {type: local}}}\n")
    assert (policy.prometheus.url, policy.prometheus.url_set) == (url, url_set)
