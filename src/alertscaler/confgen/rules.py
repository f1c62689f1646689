"""The Prometheus rule file (``rules/alertscaler.rules.yml``) from the policy file's ``rules`` section.

Groups and rules keep the policy file's order (Prometheus evaluates a group's rules in order); labels and
annotations are sorted. An alert rule's ``group: NAME`` becomes the label ``alertscaler_group: NAME``; labels
the group's provider reads from alerts (``RenderInput.carried``) are copied from the firing series.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alertscaler.confgen.yamltext import dump, header
from alertscaler.config.alarms import RULE_GROUP as ALARM_GROUP
from alertscaler.config.prometheus_side import AlertRule, PrometheusRules, RecordingRule, RuleGroup
from alertscaler.model.durations import format_duration

Carried = Mapping[str, tuple[str, ...]]  # group -> labels its provider reads from alerts (RenderInput.carried)


def rule_document(rule: AlertRule | RecordingRule, carried: Carried | None = None) -> dict[str, Any]:
    if isinstance(rule, RecordingRule):
        doc: dict[str, Any] = {"record": rule.record, "expr": rule.expr}
        if rule.labels:
            doc["labels"] = dict(sorted(rule.labels.items()))
        return doc
    doc = {"alert": rule.alert, "expr": rule.expr}
    if rule.for_ is not None:
        doc["for"] = format_duration(rule.for_)
    target = rule.target_group()
    labels = rule.all_labels((carried or {}).get(target, ()) if target is not None else ())
    if labels:
        doc["labels"] = dict(sorted(labels.items()))
    if rule.annotations:
        doc["annotations"] = dict(sorted(rule.annotations.items()))
    return doc


def group_document(group: RuleGroup, rules: list[AlertRule | RecordingRule] | None = None,
                   carried: Carried | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": group.name}
    if group.interval is not None:
        doc["interval"] = format_duration(group.interval)
    doc["rules"] = [rule_document(r, carried) for r in (group.rules if rules is None else rules)]
    return doc


def rules_document(rules: PrometheusRules | None, carried: Carried | None = None) -> dict[str, Any]:
    """``{"groups": [...]}``; no ``rules`` section gives an empty (valid) rule file."""
    return {"groups": [group_document(g, carried=carried) for g in (rules.groups if rules else [])]}


def rules_text(rules: PrometheusRules | None, source: str, carried: Carried | None = None) -> str:
    count = sum(len(g.rules) for g in rules.groups if g.name != ALARM_GROUP) if rules else 0
    alarms = sum(len(g.rules) for g in rules.groups if g.name == ALARM_GROUP) if rules else 0
    note = f"{count} rule(s) from the rules section" if count else "no rules section in the policy file"
    if alarms:
        note += f"; {alarms} from the alarms section (rule group {ALARM_GROUP})"
    return dump(rules_document(rules, carried), header(source, note))


def single_rule_text(group: RuleGroup, rule: AlertRule | RecordingRule, source: str,
                     carried: Carried | None = None) -> str:
    """A rule file holding one rule in its group: lets promtool's verdict be traced to one rule."""
    return dump({"groups": [group_document(group, [rule], carried)]}, header(source))
