"""Safe by default (issue 13 item 5): no implicit "no authentication". The loader refuses a policy file without
``server.auth`` (reported at its path with both ways to fix it, alongside every other problem); an explicit
``insecure_no_auth: true`` loads, ``check`` warns (and exits 1 beyond loopback) and ``serve`` says it at every
start; ``serve`` refuses a file without auth with the usual config-error exit, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alertscaler import service
from alertscaler.cli import EXIT_NO, EXIT_OK, main
from alertscaler.config import load_policy
from alertscaler.config.sections import MISSING_AUTH
from alertscaler.model.errors import ConfigError

GROUPS = "groups:\n  web: {provider: {type: fake}, max_size: 3}\n"


def _problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    return {p.path: p.message for p in info.value.problems}


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("", MISSING_AUTH),
        ("server: {listen: 127.0.0.1:9000}\n", MISSING_AUTH),
        ("server: {auth: null}\n", MISSING_AUTH),
        ("server: {auth: {}}\n", MISSING_AUTH),
        ("server: {auth: {protect_reads: true}}\n", MISSING_AUTH),
        ("server: {auth: {insecure_no_auth: false}}\n", MISSING_AUTH),
        ("server: {auth: {insecure_no_auth: true, bearer_token: abcdefghij}}\n",
         "insecure_no_auth: true contradicts the credentials set here (bearer_token / basic): remove one or the other"),
        ("server: {auth: {insecure_no_auth: true, basic: {username: am, password: pw}}}\n",
         "insecure_no_auth: true contradicts the credentials set here (bearer_token / basic): remove one or the other"),
        ("server: {auth: {insecure_no_auth: true, protect_reads: true}}\n",
         "protect_reads: true needs credentials, and insecure_no_auth: true says there are none"),
    ],
    ids=["no-server-section", "server-without-auth", "auth-null", "auth-empty", "only-protect-reads",
         "insecure-false", "insecure-and-token", "insecure-and-basic", "insecure-and-protect-reads"],
)
def test_a_policy_without_authentication_is_refused_at_server_auth(server: str, message: str) -> None:
    assert _problems(server + GROUPS) == {"server.auth": message}


def test_the_missing_auth_names_both_ways_to_fix_it() -> None:
    for way in ("bearer_token_file", "basic", "insecure_no_auth: true"):
        assert way in MISSING_AUTH


def test_missing_auth_is_reported_with_every_other_problem_at_once() -> None:
    problems = _problems("server: {listen: nowhere}\n"
                         "groups:\n  web: {provider: {type: fake}, max_size: 3, scale_out: {cooldown: soon}}\n")
    assert problems["server.auth"] == MISSING_AUTH
    assert "must be HOST:PORT" in problems["server.listen"]
    assert "must be a duration" in problems["groups.web.scale_out.cooldown"]


@pytest.mark.parametrize(
    ("auth", "enabled"),
    [("{bearer_token: abcdefghij}", True), ("{basic: {username: am, password: pw}}", True),
     ("{insecure_no_auth: true}", False)],
    ids=["bearer", "basic", "insecure"],
)
def test_credentials_or_an_explicit_insecure_no_auth_load(auth: str, enabled: bool) -> None:
    assert load_policy(f"server: {{auth: {auth}}}\n" + GROUPS).server.auth.enabled is enabled


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [("127.0.0.1:8080", True), ("127.9.9.9:8080", True), ("[::1]:8080", True), ("localhost:8080", True),
     ("LOCALHOST:8080", True), ("0.0.0.0:8080", False), ("[::]:8080", False), ("10.0.0.5:8080", False),
     ("alertscaler.internal:8080", False)],
    ids=["ipv4-loopback", "ipv4-loopback-net", "ipv6-loopback", "localhost", "localhost-upper", "all-ipv4",
         "all-ipv6", "private-address", "host-name"],
)
def test_loopback_only(listen: str, loopback: bool) -> None:
    policy = load_policy(f"server: {{listen: '{listen}', auth: {{insecure_no_auth: true}}}}\n" + GROUPS)
    assert policy.server.loopback_only is loopback
    warning = policy.server.insecure_warning()
    assert warning is not None and "insecure_no_auth" in warning
    assert ("beyond loopback" in warning) is not loopback


def test_no_warning_with_credentials() -> None:
    policy = load_policy("server: {listen: '0.0.0.0:8080', auth: {bearer_token: abcdefghij}}\n" + GROUPS)
    assert policy.server.insecure_warning() is None


@pytest.mark.parametrize(
    ("server", "code", "said", "not_said"),
    [
        ("server: {listen: '127.0.0.1:8080', auth: {bearer_token: abcdefghij}}", EXIT_OK, [], ["WARNING", "DANGER"]),
        ("server: {listen: '127.0.0.1:8080', auth: {insecure_no_auth: true}}", EXIT_OK,
         ["WARNING: server.auth.insecure_no_auth is true", "any process on this machine"], ["DANGER", "refused"]),
        ("server: {listen: '0.0.0.0:8080', auth: {insecure_no_auth: true}}", EXIT_NO,
         ["DANGER: server.auth.insecure_no_auth is true", "anyone who can reach 0.0.0.0:8080",
          "refused", "server.listen 0.0.0.0:8080 (beyond loopback)"], []),
        ("server: {listen: '0.0.0.0:8080'}", EXIT_NO, ["server.auth: no authentication configured", "1 problem(s)"],
         ["Traceback"]),
    ],
    ids=["token", "insecure-loopback", "insecure-beyond-loopback", "no-auth"],
)
def test_check_reports_authentication(server: str, code: int, said: list[str], not_said: list[str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(server + "\n" + GROUPS)
    assert main(["check", str(policy)]) == code
    printed = capsys.readouterr()
    text = printed.out + printed.err
    for fragment in said:
        assert fragment in text, text
    for fragment in not_said:
        assert fragment not in text, text


def test_serve_refuses_a_policy_without_auth_like_any_config_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(GROUPS)
    assert main(["serve", "-c", str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert f"server.auth: {MISSING_AUTH}" in " ".join(err.split())
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("server", "level"),
    [("{listen: '127.0.0.1:8080', auth: {bearer_token: abcdefghij}}", None),
     ("{listen: '127.0.0.1:8080', auth: {insecure_no_auth: true}}", logging.WARNING),
     ("{listen: '0.0.0.0:8080', auth: {insecure_no_auth: true}}", logging.ERROR)],
    ids=["token-silent", "insecure-loopback-warning", "insecure-beyond-loopback-error"],
)
def test_serve_says_it_runs_without_authentication_at_every_start(server: str, level: int | None,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    policy = load_policy(f"server: {server}\n" + GROUPS)
    caplog.set_level(logging.INFO, logger=service.__name__)
    for _ in range(2):  # every start, not once per process
        assert service.warn_if_unauthenticated(policy) is (level is not None)
    said = [r for r in caplog.records if "INSECURE" in r.getMessage()]
    assert [r.levelno for r in said] == ([level, level] if level is not None else [])
    assert all("insecure_no_auth" in r.getMessage() for r in said)
