"""Alarms compiled to Prometheus rules (``model.alarm_promql`` through ``config.alarms``): the golden rule file of
``tests/golden/alarms/policy.yml``, each construct's PromQL, the translation table, and every mistake in an
``alarms`` section reported at once with its path (a parse error with its column).

Regenerate the golden file after an intended change and review the diff::

    UPDATE_GOLDEN=1 PYTHONPATH=src python -m pytest tests/unit/test_alarm_rules.py -q

promtool checks it in tests/integration/test_alarm_rules_promtool.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alertscaler.cli import EXIT_OK, main
from alertscaler.config import load_policy
from alertscaler.config.alarms import RULE_GROUP
from alertscaler.model.alarm_grammar import parse_expression
from alertscaler.model.alarm_promql import CompileError, Translations, compile_alarm
from alertscaler.model.alarms import AlarmDefinition, Style
from alertscaler.model.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "alarms"
RULES = "rules/alertscaler.rules.yml"
HEAD = """server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    max_size: 3
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1}
"""


def test_render_matches_the_golden_rule_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    assert main(["render", "-c", "policy.yml", "--out", str(tmp_path)]) == EXIT_OK
    produced = (tmp_path / RULES).read_bytes()
    expected = GOLDEN / "expected" / "alertscaler.rules.yml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_bytes(produced)
    assert expected.exists(), f"no golden file {expected}: run with UPDATE_GOLDEN=1"
    assert produced == expected.read_bytes(), f"{RULES} differs from {expected} (UPDATE_GOLDEN=1 to accept)"


def monasca(expression: str, match_by: tuple[str, ...] = ()) -> AlarmDefinition:
    return AlarmDefinition("a", Style.MONASCA, parse_expression(expression), match_by=match_by)


TR = Translations(metrics={"cpu": "100 * avg without (cpu) (rate(cpu_seconds{$dims}[1m]))", "up1": "up",
                           "load": "node_load1{job=\"node\",$dims}"},
                  dimensions={"hostname": "instance"})


@pytest.mark.parametrize(("expression", "match_by", "expr", "for_"), [
    ("avg(m) > 1", (), "avg(avg_over_time(m[1m])) > 1", 0),
    ("min(m) > 1", (), "min(min_over_time(m[1m])) > 1", 0),
    ("max(m) > 1", (), "max(max_over_time(m[1m])) > 1", 0),
    ("sum(m) > 1", (), "sum(sum_over_time(m[1m])) > 1", 0),
    ("count(m) > 1", (), "sum(count_over_time(m[1m])) > 1", 0),
    ("last(m) > 1", (), "max(m) > 1", 0),
    ("last(m) < 1", (), "min(m) < 1", 0),
    ("last(m) > 1 times 3", (), "max(m) > 1", 0),
    ("m >= 2.5", (), "max(max_over_time(m[1m])) >= 2.5", 0),
    ("m lte -1", (), "min(min_over_time(m[1m])) <= -1", 0),
    ("avg(m, 300) > 1 times 4", (), "avg(avg_over_time(m[5m])) > 1", 900),
    ("avg(cpu.user_perc{hostname=a}) > 80", (), 'avg(avg_over_time(cpu_user_perc{instance="a"}[1m])) > 80', 0),
    ("avg(m{a=x\\y}) > 1", (), 'avg(avg_over_time(m{a="x\\\\y"}[1m])) > 1', 0),
    ("avg(m) > 1", ("hostname", "device"), "avg by (instance, device) (avg_over_time(m[1m])) > 1", 0),
    ("avg(cpu{hostname=h}) > 1", (), 'avg(avg_over_time((100 * avg without (cpu) (rate(cpu_seconds{instance="h"}'
                                     '[1m])))[1m:])) > 1', 0),
    ("avg(cpu) > 1", (), "avg(avg_over_time((100 * avg without (cpu) (rate(cpu_seconds[1m])))[1m:])) > 1", 0),
    ("avg(load{device=sda}) > 1", (), 'avg(avg_over_time(node_load1{job="node",device="sda"}[1m])) > 1', 0),
    ("avg(up1) > 1", (), "avg(avg_over_time(up[1m])) > 1", 0),
    ("a > 1 and b > 2", (), "(max(max_over_time(a[1m])) > 1) and (max(max_over_time(b[1m])) > 2)", 0),
    ("a > 1 or b > 2 and c > 3", (),
     "(max(max_over_time(a[1m])) > 1) or ((max(max_over_time(b[1m])) > 2) and (max(max_over_time(c[1m])) > 3))", 0),
    ("avg(a) > 1 times 2 or b > 2", (),
     "(min_over_time((avg(avg_over_time(a[1m])) > bool 1)[1m:]) == 1) or (max(max_over_time(b[1m])) > 2)", 0),
], ids=["avg", "min", "max", "sum", "count-is-a-sum-of-counts", "last-upward", "last-downward", "last-ignores-times",
        "bare-upward-is-max", "bare-downward-is-min", "period-and-times-make-for",
        "dimension-renamed-and-name-sanitised",
        "quote-escaped", "match-by-renamed", "template-dims-subquery", "template-without-dims",
        "template-dims-after-a-matcher", "template-without-placeholder", "and", "or-and-precedence",
        "times-inside-or-is-a-subquery"])
def test_each_construct_compiles(expression: str, match_by: tuple[str, ...], expr: str, for_: float) -> None:
    rule = compile_alarm(monasca(expression, match_by), TR)[0]

    assert (rule.expr, rule.for_) == (expr, for_)


@pytest.mark.parametrize(("expression", "match_by", "expr", "for_"), [
    ("avg(m, 120) > 1 times 2", (), "absent_over_time(m[2m])", 360),
    ("last(m) > 1", (), "absent(m)", 60),
    ("avg(m) > 1 or avg(n) > 1", (), "(absent_over_time(m[1m])) or (absent_over_time(n[1m]))", 60),
    ("avg(m) > 1 or avg(m) < 0", (), "absent_over_time(m[1m])", 60),
    ("avg(m) > 1", ("hostname",),
     "group by (instance) (last_over_time(m[1h])) unless group by (instance) (last_over_time(m[1m]))", 60),
    ("count(m, deterministic) > 1 or avg(n) > 1", (), "absent_over_time(n[1m])", 60),
], ids=["window-and-twice-the-periods", "last-instant", "each-metric", "a-metric-once",
        "match-by-a-dimension-set-gone", "only-the-non-deterministic"])
def test_missing_data_is_an_alert(expression: str, match_by: tuple[str, ...], expr: str, for_: float) -> None:
    rules = compile_alarm(monasca(expression, match_by), TR)

    assert len(rules) == 3
    assert (rules[1].alert, rules[1].expr, rules[1].for_) == ("a:insufficient_data", expr, for_)
    assert rules[1].labels == {"alertscaler_alarm": "a", "alertscaler_alarm_state": "insufficient_data",
                               "severity": "low"}


@pytest.mark.parametrize(("expression", "match_by", "expr"), [
    ("avg(m, 120) > 1 times 2", (), "group(last_over_time(m[2m]))"),
    ("last(m) > 1", (), "group(m)"),
    ("avg(m) > 1 or avg(n) > 1", (), "(group(last_over_time(m[1m]))) and (group(last_over_time(n[1m])))"),
    ("avg(m) > 1", ("hostname",), "group by (instance) (last_over_time(m[1m]))"),
    ("count(m, deterministic) > 1 or avg(n) > 1", (), "group(last_over_time(n[1m]))"),
], ids=["window", "last-instant", "every-metric", "per-dimension-set", "only-the-non-deterministic"])
def test_data_present_is_an_alert_too(expression: str, match_by: tuple[str, ...], expr: str) -> None:
    rule = compile_alarm(monasca(expression, match_by), TR)[2]

    assert (rule.alert, rule.expr, rule.for_) == ("a:ok", expr, 0)
    assert rule.labels == {"alertscaler_alarm": "a", "alertscaler_alarm_state": "ok", "severity": "low"}


def test_a_deterministic_alarm_has_no_missing_data_rule() -> None:
    assert [r.alert for r in compile_alarm(monasca("count(m, deterministic) > 1"), TR)] == ["a"]


def test_alarm_alerts_carry_what_routes_them() -> None:
    policy = load_policy(HEAD + """alarms:
  cpu_high: {meter_name: cpu_util, threshold: 70, comparison_operator: gt, severity: critical, group: web,
             description: instance running hot}
""")
    rules = policy.rules_with_alarms()
    assert rules is not None and [g.name for g in rules.groups] == [RULE_GROUP]
    alarm, missing, present = rules.groups[0].rules
    assert alarm.all_labels() == {"alertscaler_alarm": "cpu_high", "alertscaler_alarm_state": "alarm",
                                  "severity": "critical", "alertscaler_group": "web"}
    assert missing.all_labels()["alertscaler_alarm_state"] == "insufficient_data"
    assert present.all_labels()["alertscaler_alarm_state"] == "ok"
    assert alarm.annotations == {"summary": "cpu_high: avg(cpu_util) > 70", "description": "instance running hot",
                                 "value": "{{ $value }}"}


@pytest.mark.parametrize(("metric", "says"), [
    ("9lives", "is not a Prometheus metric name (it would be '9lives'): add it to alarm_metrics.metrics"),
    ("up1{a=b}", "the translation of 'up1' has no $dims"),
], ids=["not-a-metric-name", "template-cannot-filter"])
def test_untranslatable_metrics(metric: str, says: str) -> None:
    with pytest.raises(CompileError) as caught:
        compile_alarm(monasca(f"avg({metric}) > 1"), TR)
    assert says in str(caught.value)


def test_the_table_can_drop_the_node_exporter_defaults() -> None:
    policy = load_policy(HEAD + """alarm_metrics: {node_exporter: false}
alarms:
  a: {expression: 'avg(cpu_util{resource_id=x}) > 1'}
""")
    rules = policy.rules_with_alarms()
    assert rules is not None
    assert rules.groups[0].rules[0].expr == 'avg(avg_over_time(cpu_util{resource_id="x"}[1m])) > 1'


BAD = HEAD + """alarm_metrics:
  metrics: {custom: 'my_metric'}
  dimensions: {host name: instance}
rules:
  groups: [{name: alertscaler_alarms, rules: [{alert: X, expr: up == 0}]}]
alarms:
  bad_expression: {expression: 'avg(cpu.user_perc{}) > 85 or avg(disk_read_ops{device=vda}, 90) > 1000'}
  bad_query: {meter_name: cpu_util, threshold: 1, query: 'resource_id'}
  both_spellings: {expression: 'a > 1', meter_name: cpu_util, threshold: 1}
  no_source: {threshold: 1}
  no_threshold: {meter_name: cpu_util}
  bad_operator: {meter_name: cpu_util, threshold: 1, comparison_operator: about}
  bad_statistic: {meter_name: cpu_util, threshold: 1, statistic: median}
  bad_severity: {expression: 'a > 1', severity: URGENT}
  bad_period: {meter_name: cpu_util, threshold: 1, period: 1.5s}
  bad_periods: {meter_name: cpu_util, threshold: 1, evaluation_periods: 0}
  trust_action: {expression: 'a > 1', alarm_actions: ['trust+http://heat:8000/v1/signal/arn']}
  scale_on_ok: {expression: 'a > 1', ok_actions: ['scale://web/scale_out']}
  unknown_group: {expression: 'a > 1', alarm_actions: ['scale://nope/scale_out'], group: nope}
  no_policy: {expression: 'a > 1', alarm_actions: ['scale://web/scale_in']}
  no_heal: {expression: 'a > 1', alarm_actions: ['heal://web']}
  untranslatable: {expression: 'avg(custom{device=x}) > 1'}
  bad_match_by: {expression: 'a > 1', match_by: [bad-dim]}
  bad name: {expression: 'a > 1'}
  unknown_key: {expression: 'a > 1', time_constraints: []}
"""


@pytest.mark.parametrize(("path", "fragment"), [
    ("alarms.bad_expression.expression", "column 61: the period must be a non-zero multiple of 60 seconds"),
    ("alarms.bad_query.query", "column 1: expected name=value"),
    ("alarms.both_spellings", "expression (Monasca) and meter_name, threshold (Aodh threshold) do not mix"),
    ("alarms.no_source", "give expression (a Monasca alarm expression), or one of meter_name, metric or promql"),
    ("alarms.no_threshold", "threshold: required for a threshold alarm"),
    ("alarms.bad_operator.comparison_operator", "must be one of lt, le, eq, ne, ge, gt"),
    ("alarms.bad_statistic.statistic", "must be one of avg, mean, min, max, sum, count, last"),
    ("alarms.bad_severity.severity", "LOW, MEDIUM, HIGH, CRITICAL (Monasca), got 'URGENT'"),
    ("alarms.bad_period.period", "must be a whole number of seconds"),
    ("alarms.bad_periods.evaluation_periods", "greater than or equal to 1"),
    ("alarms.trust_action.alarm_actions", "trust+ URLs need Keystone trusts"),
    ("alarms.scale_on_ok", "scale web scale_out is an alarm action only"),
    ("alarms.unknown_group.group", "no group 'nope' in this file (groups: web)"),
    ("alarms.unknown_group.alarm_actions[0]", "no group 'nope' in this file"),
    ("alarms.no_policy.alarm_actions[0]", "group web has no scale_in policy"),
    ("alarms.no_heal.alarm_actions[0]", "group web has no heal section"),
    ("alarms.untranslatable.expression", "the translation of 'custom' has no $dims"),
    ("alarms.bad_match_by.match_by[0]", "dimension 'bad-dim' is not a Prometheus label name"),
    ("alarms.bad name", "alarm names may use letters, digits, _, . and - only"),
    ("alarms.unknown_key.time_constraints", "unknown key"),
    ("rules.groups", "the rule group name alertscaler_alarms is alertscaler's"),
], ids=lambda v: v if isinstance(v, str) and v.startswith(("alarms", "rules")) else "")
def test_every_mistake_is_reported_with_its_path(path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy(BAD)

    found = [p.message for p in caught.value.problems if p.path == path]
    assert any(fragment in m for m in found), (path, [str(p) for p in caught.value.problems])


def test_alarm_alerts_reach_alertscaler_past_the_routes_matchers() -> None:
    from alertscaler.confgen.alertmanager import alertmanager_config, route_snippet

    plain = load_policy(HEAD + "alertmanager: {matchers: ['alertscaler_group=~\".+\"']}\n")
    with_alarms = load_policy(HEAD + "alertmanager: {matchers: ['alertscaler_group=~\".+\"']}\n"
                              "alarms: {a: {expression: 'm > 1'}}\n")

    def matchers(config: dict[str, object]) -> list[list[str]]:
        return [r["matchers"] for r in config["route"]["routes"]]  # type: ignore[index]

    assert matchers(alertmanager_config(plain.render_input("p.yml"))) == [['alertscaler_group=~".+"']]
    assert matchers(alertmanager_config(with_alarms.render_input("p.yml"))) == [
        ['alertscaler_group=~".+"'], ['alertscaler_alarm=~".+"']]
    assert matchers(route_snippet(with_alarms.render_input("p.yml"))) == [
        ['alertscaler_group=~".+"'], ['alertscaler_alarm=~".+"']]
