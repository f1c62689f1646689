"""The policy file's ``notification_methods`` (``config.notifications``) and the alarms' ``notify:`` and URL
actions (``config.alarms``): what loads, and every mistake reported with its path, never echoing a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from alertscaler.config import PolicyFile, load_policy
from alertscaler.config.alarms import alarm_definitions
from alertscaler.config.notifications import EmailMethod, LogMethod, WebhookMethod
from alertscaler.model.alarms import LogAction, NotifyAction, UrlAction
from alertscaler.model.errors import ConfigError
from alertscaler.model.notifications import Shape

SECRET = "s3cr3t-value-for-hmac-0123456789"
BASE = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 5
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
"""
ALARM = """
alarms:
  cpu_high:
    meter_name: cpu_util
    threshold: 70
    comparison_operator: gt
    alarm_actions: {alarm_actions}
    ok_actions: {ok_actions}
"""


def policy(methods: str = "", alarm_actions: str = "[]", ok_actions: str = "[]", base: Path | None = None,
           ) -> PolicyFile:
    text = BASE + (f"notification_methods:\n{methods}" if methods else "") + ALARM.format(
        alarm_actions=alarm_actions, ok_actions=ok_actions)
    return load_policy(text, base_dir=base)


def problems(methods: str = "", alarm_actions: str = "[]", ok_actions: str = "[]") -> list[str]:
    with pytest.raises(ConfigError) as info:
        policy(methods, alarm_actions, ok_actions)
    return [str(p) for p in info.value.problems]


def test_methods_of_every_type_load_with_their_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    (tmp_path / "smtp-password").write_text("mail-pass\n")
    loaded = policy("""
  hook: {type: webhook, url: "https://hooks.example.com/a", secret_env: HOOK_SECRET, shape: aodh}
  plain: {type: webhook, url: "http://127.0.0.1:8080/"}
  mail: {type: email, to: ops@example.com, from: alertscaler@example.com, host: smtp.example.com,
          security: starttls, username: u, password_file: smtp-password, retries: 2, backoff: 1m}
  audit: {type: log}
""", '["notify:hook", "notify://mail", "https://hooks.example.com/aodh?token=x"]', '["notify:audit", "log://"]',
                    base=tmp_path)
    methods = loaded.notification_methods
    hook, plain, mail, audit = methods["hook"], methods["plain"], methods["mail"], methods["audit"]
    assert isinstance(hook, WebhookMethod) and hook.shape is Shape.AODH and hook.secret == SecretStr(SECRET)
    assert isinstance(plain, WebhookMethod) and plain.shape is Shape.MONASCA and plain.secret is None
    assert (plain.timeout, plain.retry().attempts, plain.retry().backoff, plain.retry().max_backoff) == (
        5.0, 6, 30.0, 600.0)  # Monasca's: 5 s timeout, 5 retries every 30 s (then doubling here)
    assert isinstance(mail, EmailMethod) and mail.to == ["ops@example.com"] and mail.smtp_port == 587
    assert mail.password == SecretStr("mail-pass") and mail.retry().attempts == 3 and mail.retry().backoff == 60.0
    assert isinstance(audit, LogMethod) and audit.retry().attempts == 1
    alarm = alarm_definitions(loaded.alarms)["cpu_high"]
    assert alarm.actions.alarm == (NotifyAction("hook"), NotifyAction("mail"),
                                   UrlAction("https://hooks.example.com/aodh?token=x"))
    assert alarm.actions.ok == (NotifyAction("audit"), LogAction())
    assert str(alarm.actions.alarm[2]) == "https://hooks.example.com/aodh?..."  # as stored and logged
    assert SECRET not in repr(loaded) and "mail-pass" not in repr(loaded)


@pytest.mark.parametrize(
    ("methods", "alarm_actions", "expected"),
    [
        ("  hook: {type: webhook}\n", "[]", ["notification_methods.hook.url: required"]),
        ("  hook: {type: webhook, url: 'ftp://x'}\n", "[]",
         ["notification_methods.hook.url: must be an http:// or https:// URL with a host, like "
          "https://hooks.example.com/alarms, got 'ftp://x'"]),
        ("  hook: {type: webhook, url: 'http://h/', shape: heat}\n", "[]",
         ["notification_methods.hook.shape: Input should be 'monasca' or 'aodh'"]),
        ("  hook: {type: webhook, url: 'http://h/', secret: short}\n", "[]",
         ["notification_methods.hook.secret: too short: use at least 16 characters (e.g. head -c 32 /dev/urandom |"
          " base64 > FILE)"]),
        ("  hook: {type: webhook, url: 'http://h/', secret_env: NOT_SET_ANYWHERE_42}\n", "[]",
         ["notification_methods.hook: secret_env: environment variable NOT_SET_ANYWHERE_42 is not set"]),
        ("  hook: {type: webhook, url: 'http://h/', retries: 21, backoff: 0s}\n", "[]",
         ["notification_methods.hook.retries: Input should be less than or equal to 20",
          "notification_methods.hook.backoff: must be longer than 0s"]),
        ("  hook: {type: webhook, url: 'http://h/', backoff: 5m, max_backoff: 1m}\n", "[]",
         ["notification_methods.hook: max_backoff (1m) is shorter than backoff (5m)"]),
        ("  hook: {type: webhook, url: 'http://h/', ca_file: /nonexistent/ca.pem}\n", "[]",
         ["notification_methods.hook.ca_file: cannot read /nonexistent/ca.pem: No such file or directory"]),
        ("  hook: {type: webhook, url: 'http://h/', headers: {}}\n", "[]",
         ["notification_methods.hook.headers: unknown key"]),
        ("  mail: {type: email, to: [ops@example.com, 'not an address'], from: a@b.c}\n", "[]",
         ["notification_methods.mail.to[1]: 'not an address' is not an email address like ops@example.com"]),
        ("  mail: {type: email, to: [], from: a@b.c}\n", "[]",
         ["notification_methods.mail.to: List should have at least 1 item after validation, not 0"]),
        ("  mail: {type: email, to: [a@b.c]}\n", "[]", ["notification_methods.mail.from: required"]),
        ("  mail: {type: email, to: [a@b.c], from: a@b.c, username: u}\n", "[]",
         ["notification_methods.mail: username and password go together (password_env / password_file / "
          "password)"]),
        ("  mail: {type: email, to: [a@b.c], from: a@b.c, host: smtp.example.com, username: u, password: pw}\n",
         "[]", ["notification_methods.mail: the password would cross the network in clear to smtp.example.com: "
                "set security: starttls or ssl"]),
        ("  mail: {type: email, to: [a@b.c], from: a@b.c, security: tls}\n", "[]",
         ["notification_methods.mail.security: Input should be 'none', 'starttls' or 'ssl'"]),
        ("  sms: {type: sms}\n", "[]", ["notification_methods.sms.type: must be webhook, email or log, got 'sms'"]),
        ("  nothing: {}\n", "[]", ["notification_methods.nothing.type: required: webhook, email or log"]),
        ("  'bad name': {type: log}\n", "[]",
         ["notification_methods.bad name: method names may use letters, digits, _, . and - only (at most 64)"]),
        ("  audit: {type: log, level: debug}\n", "[]",
         ["notification_methods.audit.level: Input should be 'info', 'warning' or 'error'"]),
        ("", '["notify:ops"]',
         ["alarms.cpu_high.alarm_actions[0]: no notification method 'ops' (notification_methods: none defined)"]),
        ("  audit: {type: log}\n", '["notify:audit", "notify:audti"]',
         ["alarms.cpu_high.alarm_actions[1]: no notification method 'audti' (notification_methods: audit)"]),
        ("", '["notify:"]', ["alarms.cpu_high.alarm_actions: 'notify:': a notify action is notify:METHOD, METHOD a "
                             "name of notification_methods"]),
        ("", '["http://"]', ["alarms.cpu_high.alarm_actions: must be an http:// or https:// URL with a host, like "
                             "https://hooks.example.com/alarm, got 'http://'"]),
        ("", '["trust+https://id:delete@heat.example.com/v1/signal?sig=1"]',
         ["alarms.cpu_high.alarm_actions: trust+https://heat.example.com/v1/signal?...: trust+ URLs need Keystone "
          "trusts, which alertscaler does not use: to scale like a Heat alarm_url, give log://, "
          "scale://GROUP/scale_out (or scale_in), heal://GROUP, notify:METHOD (a notification method) or an "
          "http(s):// URL; to call a URL with a signature, use notify:METHOD with a webhook method's secret"]),
    ],
    ids=["webhook-no-url", "webhook-bad-url", "webhook-bad-shape", "webhook-short-secret", "webhook-secret-env-unset",
         "webhook-retries-and-backoff", "webhook-backoff-over-max", "webhook-ca-file-missing", "webhook-unknown-key",
         "email-bad-recipient", "email-no-recipient", "email-no-from", "email-user-without-password",
         "email-password-in-clear", "email-bad-security", "unknown-type", "no-type", "bad-name", "log-bad-level",
         "notify-unknown-none-defined", "notify-typo", "notify-empty", "url-without-host", "trust-url"],
)
def test_every_mistake_is_reported_with_its_path(methods: str, alarm_actions: str, expected: list[str]) -> None:
    assert problems(methods, alarm_actions) == expected


def test_scale_stays_an_alarm_action_only_but_notify_and_urls_go_on_any_state() -> None:
    loaded = policy("  audit: {type: log}\n", "[]", '["notify:audit", "http://127.0.0.1:9/ok"]')
    alarm = alarm_definitions(loaded.alarms)["cpu_high"]
    assert alarm.actions.ok == (NotifyAction("audit"), UrlAction("http://127.0.0.1:9/ok"))
    assert problems("", "[]", '["scale://web/scale_out"]') == [
        "alarms.cpu_high: scale web scale_out is an alarm action only: a scale or heal needs the firing alert (for "
        "the opposite direction, give a second alarm with the opposite comparison, as with Heat's scale-up and "
        "scale-down alarms)"]


@pytest.mark.parametrize(
    "methods",
    [
        f"  hook: {{type: webhook, url: 'ftp://x', secret: {SECRET}}}\n",
        f"  mail: {{type: email, to: [bad], from: a@b.c, host: smtp.example.com, username: u, password: {SECRET}}}\n",
        f"  hook: {{type: webhook, url: 'http://h/', secret: {SECRET}, secret_env: X}}\n",
    ],
    ids=["webhook-secret", "email-password", "secret-twice"],
)
def test_a_secret_never_appears_in_a_problem(methods: str) -> None:
    found = problems(methods)
    assert found and not any(SECRET in p for p in found)
