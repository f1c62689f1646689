"""``alertmanager.routes``: Alertmanager's running configuration (``config.original``, as 0.25 prints it) → the
routes an alert takes with their inherited timing, and the receivers that post to alertscaler's webhook."""

from __future__ import annotations

import pytest

from alertscaler.alertmanager.routes import AmRoute, parse_config, split_matchers
from alertscaler.model.errors import InputError

CONFIG = """
global: {resolve_timeout: 5m}
route:
  receiver: "null"
  group_by: [alertname]
  group_wait: 2s
  routes:
    - receiver: paging
      matchers: ['severity="page"']
      continue: true
    - receiver: alertscaler
      matchers: ['{alertscaler_group=~".+", team!="ops"}']
      group_interval: 10s
      routes:
        - receiver: web-hook
          match: {alertscaler_group: web}
          match_re: {alertname: "Busy|Idle"}
          group_by: [alertname, alertscaler_group]
    - receiver: other
      matchers: [team=ops]
receivers:
  - name: "null"
  - name: paging
    webhook_configs: [{url: "https://pager.example/hook"}]
  - name: alertscaler
    webhook_configs: [{url: "http://127.0.0.1:8080/api/v1/alerts", send_resolved: true}]
  - name: web-hook
    webhook_configs: [{url: "https://scaler.internal/prefix/api/v1/alerts/"}]
  - name: other
    webhook_configs: [{url: "<secret>"}, {url_file: /etc/am/url}]
"""

# (id, labels, [(receiver, own matchers, group_by, group_wait, group_interval)])
ROUTES = [
    ("nothing-matches-the-root-takes-it", {"alertname": "X"}, [("null", (), ("alertname",), 2.0, 300.0)]),
    ("child-inherits-group-wait", {"alertname": "X", "alertscaler_group": "api"},
     [("alertscaler", ('alertscaler_group=~".+"', 'team!="ops"'), ("alertname",), 2.0, 10.0)]),
    ("grandchild-legacy-match-and-match-re", {"alertname": "Busy", "alertscaler_group": "web"},
     [("web-hook", ('alertscaler_group="web"', 'alertname=~"Busy|Idle"'), ("alertname", "alertscaler_group"), 2.0,
       10.0)]),
    ("match-re-is-anchored", {"alertname": "Busy2", "alertscaler_group": "web"},
     [("alertscaler", ('alertscaler_group=~".+"', 'team!="ops"'), ("alertname",), 2.0, 10.0)]),
    ("continue-goes-on-to-the-next-sibling", {"alertname": "Busy", "alertscaler_group": "api", "severity": "page"},
     [("paging", ('severity="page"',), ("alertname",), 2.0, 300.0),
      ("alertscaler", ('alertscaler_group=~".+"', 'team!="ops"'), ("alertname",), 2.0, 10.0)]),
    ("first-match-wins-unquoted-value", {"alertname": "X", "alertscaler_group": "web", "team": "ops"},
     [("other", ('team="ops"',), ("alertname",), 2.0, 300.0)]),
]


@pytest.mark.parametrize(("labels", "want"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
def test_the_routes_an_alert_takes(labels: dict[str, str], want: list[tuple[object, ...]]) -> None:
    got = parse_config(CONFIG).route(labels)
    assert [(r.receiver, r.matchers, r.group_by, r.group_wait, r.group_interval) for r in got] == want


def test_the_receivers_that_post_to_alertscaler() -> None:
    sure, unknown = parse_config(CONFIG).to_alertscaler()
    assert (sure, unknown) == ({"alertscaler", "web-hook"}, {"other"})


@pytest.mark.parametrize(("route", "text"), [
    (AmRoute("null", (), (), (), 30, 300), "the root route → receiver 'null'"),
    (AmRoute("null", ('a="1"',), ((), ('a="1"',)), (), 30, 300), "route {a=\"1\"} → receiver 'null'"),
    (AmRoute("x", ('b="2"',), (('a="1"',), ('b="2"',)), (), 30, 300), "route {a=\"1\"} > {b=\"2\"} → receiver 'x'"),
], ids=["root", "child", "grandchild"])
def test_a_route_describes_itself(route: AmRoute, text: str) -> None:
    assert route.describe() == text


@pytest.mark.parametrize(("text", "parts"), [
    ('a="1"', ['a="1"']),
    ('{a="1", b=~"x,y"}', ['a="1"', 'b=~"x,y"']),
    ('a=1,b!=2', ["a=1", "b!=2"]),
    (r'a="q\",r", b="2"', [r'a="q\",r"', 'b="2"']),
], ids=["one", "braces-comma-in-quotes", "unquoted", "escaped-quote"])
def test_split_matchers(text: str, parts: list[str]) -> None:
    assert split_matchers(text) == parts


@pytest.mark.parametrize(("text", "error"), [
    ("route: [", "not YAML"),
    ("receivers: []", "has no route"),
    ("route: {receiver: x, routes: [{receiver: y, matchers: ['a=~\"(\"']}]}", "route.routes[0]: cannot read"),
    ("route: {receiver: x, group_wait: soon}", "route.group_wait: not a duration"),
], ids=["not-yaml", "no-route", "bad-regex", "bad-duration"])
def test_what_cannot_be_read_is_named(text: str, error: str) -> None:
    with pytest.raises(InputError, match=error.replace("[", r"\[").replace("]", r"\]")):
        parse_config(text).route({"a": "1"})
