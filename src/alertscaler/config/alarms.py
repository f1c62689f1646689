"""The policy file's ``alarms`` section (alarm definitions a user of Aodh / Ceilometer or Monasca can paste)
and ``alarm_metrics`` (how their metric and dimension names become PromQL). Part of ``config``.

Two spellings of an alarm, told apart by ``expression``:

* Monasca: ``expression`` (the alarm-definition grammar, ``model.alarm_grammar``), ``match_by``, ``severity``
  (LOW, MEDIUM, HIGH, CRITICAL), ``alarm_actions`` / ``ok_actions`` / ``undetermined_actions``.
* Aodh / Ceilometer threshold: ``meter_name`` or ``metric`` (translated) or ``promql`` (a PromQL query; Aodh's
  ``prometheus`` type calls it ``query``), ``query`` (Ceilometer's ``resource_id=VM_ID``, or a mapping),
  ``statistic`` / ``aggregation_method``, ``comparison_operator``, ``threshold``, ``period`` / ``granularity``,
  ``evaluation_periods``, ``severity`` (low, moderate, critical), ``alarm_actions`` / ``ok_actions`` /
  ``insufficient_data_actions``, ``repeat_actions``. Aodh's API form with the rule nested under
  ``type: X`` + ``X_rule: {...}`` is accepted too.

Actions are URLs, as in Aodh: ``log://``, ``scale://GROUP/scale_out`` (the group's step policy, like posting to a
Heat policy's alarm_url) and ``heal://GROUP`` (the group's heal policy, on the member the alert names); scale
and heal are alarm actions only (an OK or missing-data state has no alert to act on). ``config.loading`` checks
the groups they name and compiles every alarm (``model.alarm_promql``), so ``check`` reports each problem with
its path; the compiled rules are rendered as the rule group ``alertscaler_alarms``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from alertscaler.config.prometheus_side import AlertRule, RuleGroup
from alertscaler.config.sections import ConfigModel
from alertscaler.model.alarm_grammar import (
    OPERATOR_NAMES,
    Function,
    MetricRef,
    SubExpression,
    parse_dimensions,
    parse_expression,
)
from alertscaler.model.alarm_promql import (
    DEFAULT_DIMENSIONS,
    DEFAULT_LOOKBACK,
    NODE_EXPORTER,
    CompileError,
    Translations,
    compile_alarm,
)
from alertscaler.model.alarms import (
    SEVERITIES,
    Actions,
    AlarmAction,
    AlarmDefinition,
    HealAction,
    LogAction,
    NotifyAction,
    ScaleAction,
    Style,
    UrlAction,
)
from alertscaler.model.durations import Duration
from alertscaler.model.errors import Problem
from alertscaler.model.policies import Direction
from alertscaler.model.urls import http_url, shown_url

RULE_GROUP: Final = "alertscaler_alarms"
"""The rule group the alarms' rules are rendered in."""

_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_STATISTICS: Final = {"avg": Function.AVG, "mean": Function.AVG, "min": Function.MIN, "max": Function.MAX,
                      "sum": Function.SUM, "count": Function.COUNT, "last": Function.LAST}
_ACTION_HINT: Final = ("give log://, scale://GROUP/scale_out (or scale_in), heal://GROUP, notify:METHOD (a "
                       "notification method) or an http(s):// URL")
_METHOD_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_action(text: str) -> AlarmAction:
    """An action URL: ``log://``, ``scale://GROUP/POLICY``, ``heal://GROUP``, ``notify:METHOD`` (a notification
    method of ``notification_methods``), ``http(s)://...`` (POSTed the alarm's payload, like Aodh's REST
    notifier). Raises ValueError saying why (never echoing a URL's credentials or query)."""
    if text.strip().lower().startswith("notify:"):
        method = text.strip()[len("notify:"):].removeprefix("//")
        if not _METHOD_NAME.match(method):
            raise ValueError(f"{text!r}: a notify action is notify:METHOD, METHOD a name of notification_methods")
        return NotifyAction(method)
    scheme, sep, rest = text.strip().partition("://")
    scheme = scheme.lower()
    if sep and scheme == "log":
        return LogAction()
    if sep and scheme == "scale":
        group, slash, policy = rest.strip("/").partition("/")
        if not group or not slash or policy not in (d.value for d in Direction):
            raise ValueError(f"{text!r}: a scale action is scale://GROUP/scale_out or scale://GROUP/scale_in")
        return ScaleAction(group, Direction(policy))
    if sep and scheme == "heal":
        group = rest.strip("/")
        if not group or "/" in group:
            raise ValueError(f"{text!r}: a heal action is heal://GROUP")
        return HealAction(group)
    if sep and scheme in ("http", "https"):
        http_url(text.strip(), "https://hooks.example.com/alarm")
        return UrlAction(text.strip())
    if sep and scheme in ("trust+http", "trust+https", "trust+heat"):
        raise ValueError(f"{shown_url(text.strip())}: trust+ URLs need Keystone trusts, which alertscaler does not "
                         f"use: to scale like a Heat alarm_url, {_ACTION_HINT}; to call a URL with a signature, "
                         "use notify:METHOD with a webhook method's secret")
    raise ValueError(f"{text!r} is not an action: {_ACTION_HINT}")


def _actions(values: list[str] | None) -> tuple[AlarmAction, ...]:
    return tuple(dict.fromkeys(parse_action(v) for v in values or ()))  # Aodh drops duplicates


class AlarmConfig(ConfigModel):
    """One alarm (``alarms.NAME``), in either spelling; ``definition`` gives its value."""

    description: str = ""
    severity: str = "low"
    enabled: bool = True
    group: str | None = None
    match_by: list[str] = []
    alarm_actions: list[str] = []
    ok_actions: list[str] = []
    insufficient_data_actions: list[str] | None = None
    undetermined_actions: list[str] | None = None
    repeat_actions: bool = False
    actions_enabled: bool = True
    # Monasca
    expression: str | None = None
    # Aodh / Ceilometer
    type: Literal["threshold", "gnocchi_resources_threshold", "gnocchi_aggregation_by_metrics_threshold",
                  "gnocchi_aggregation_by_resources_threshold", "prometheus"] | None = None
    meter_name: str | None = None
    metric: str | None = None
    resource_id: str | None = None
    resource_type: str | None = None
    query: str | dict[str, str] | None = None
    promql: str | None = None
    statistic: str | None = None
    aggregation_method: str | None = None
    comparison_operator: str = "eq"
    threshold: float | None = None
    period: Duration | None = None
    granularity: Duration | None = None
    evaluation_periods: Annotated[int, Field(ge=1, le=100)] = 1

    @model_validator(mode="before")
    @classmethod
    def _nested_rule(cls, data: Any) -> Any:
        """Aodh's API form: ``type: X`` and the rule's fields under ``X_rule``; a ``prometheus`` rule's ``query``
        is PromQL."""
        if not isinstance(data, dict):
            return data
        nested = [k for k in data if isinstance(k, str) and k.endswith("_rule")]
        if not nested:
            return data
        if len(nested) > 1:
            raise ValueError(f"give one rule, not {', '.join(nested)}")
        key = nested[0]
        rule, kind = data[key], key.removesuffix("_rule")
        if not isinstance(rule, dict):
            raise ValueError(f"{key} must be a mapping of the rule's fields")
        if data.get("type") not in (None, kind):
            raise ValueError(f"{key} does not go with type {data.get('type')!r} (the rule of type X is X_rule)")
        merged = {k: v for k, v in data.items() if k != key}
        merged.setdefault("type", kind)
        for field_name, value in rule.items():
            target = "promql" if kind == "prometheus" and field_name == "query" else field_name
            if target in merged:
                raise ValueError(f"{field_name} is given both in {key} and beside it")
            merged[target] = value
        return merged

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        lowered = value.lower()
        if lowered not in SEVERITIES:
            raise ValueError(f"must be one of low, moderate, critical (Aodh) or LOW, MEDIUM, HIGH, CRITICAL "
                             f"(Monasca), got {value!r}")
        return lowered

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            parse_expression(value)  # ExpressionError (a ValueError): "column N: ..."
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(value, str):
            parse_dimensions(value)
        return value

    @field_validator("comparison_operator")
    @classmethod
    def _operator(cls, value: str) -> str:
        if value.lower() not in OPERATOR_NAMES:
            raise ValueError(f"must be one of lt, le, eq, ne, ge, gt (or <, <=, ==, !=, >=, >), got {value!r}")
        return value

    @field_validator("statistic", "aggregation_method")
    @classmethod
    def _statistic(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in _STATISTICS:
            raise ValueError(f"must be one of {', '.join(_STATISTICS)}, got {value!r}")
        return value

    @field_validator("period", "granularity")
    @classmethod
    def _whole_seconds(cls, value: float | None) -> float | None:
        if value is not None and (value < 1 or value != int(value)):
            raise ValueError("must be a whole number of seconds, at least 1s")
        return value

    @field_validator("alarm_actions", "ok_actions", "insufficient_data_actions", "undetermined_actions")
    @classmethod
    def _action_urls(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            parse_action(text)
        return value

    @model_validator(mode="after")
    def _one_spelling(self) -> AlarmConfig:
        sources = [k for k in ("meter_name", "metric", "promql") if getattr(self, k) is not None]
        if self.expression is not None:
            aodh = [k for k in (*sources, "threshold", "statistic", "aggregation_method", "period", "granularity",
                                "query", "type", "resource_id") if getattr(self, k) is not None]
            if aodh:
                raise ValueError(f"expression (Monasca) and {', '.join(aodh)} (Aodh threshold) do not mix: give one "
                                 "spelling")
        else:
            if len(sources) != 1:
                raise ValueError("give expression (a Monasca alarm expression), or one of meter_name, metric or "
                                 "promql (an Aodh / Ceilometer threshold alarm)"
                                 + (f"; got {', '.join(sources)}" if sources else ""))
            if self.threshold is None:
                raise ValueError("threshold: required for a threshold alarm")
            if self.promql is not None and (self.query is not None or self.resource_id is not None):
                raise ValueError("query / resource_id filter a metric; a PromQL query filters itself")
        for a, b in (("statistic", "aggregation_method"), ("period", "granularity"),
                     ("insufficient_data_actions", "undetermined_actions")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ValueError(f"{a} and {b} are the same setting: give one")
        for action in (*_actions(self.ok_actions), *_actions(self.insufficient_data_actions),
                       *_actions(self.undetermined_actions)):
            if isinstance(action, ScaleAction | HealAction):
                raise ValueError(f"{action} is an alarm action only: a scale or heal needs the firing alert (for the "
                                 "opposite direction, give a second alarm with the opposite comparison, as with "
                                 "Heat's scale-up and scale-down alarms)")
        return self

    @property
    def style(self) -> Style:
        return Style.MONASCA if self.expression is not None else Style.AODH

    def condition(self) -> SubExpression | Any:
        """The parsed condition (the expression, or the threshold alarm as one comparison)."""
        if self.expression is not None:
            return parse_expression(self.expression)
        stat = self.statistic or self.aggregation_method
        function = _STATISTICS[stat.lower()] if stat else (None if self.promql is not None else Function.AVG)
        metric = None
        if self.promql is None:
            dims = dict(parse_dimensions(self.query) if isinstance(self.query, str) else (self.query or {}))
            if self.resource_id is not None:
                dims.setdefault("resource_id", self.resource_id)
            metric = MetricRef(self.meter_name or self.metric or "", tuple(dims.items()))
        period = self.period if self.period is not None else self.granularity
        return SubExpression(function=function, metric=metric,
                             operator=OPERATOR_NAMES[self.comparison_operator.lower()],
                             threshold=float(self.threshold or 0.0), period=int(period or 60),
                             periods=self.evaluation_periods, promql=self.promql)

    def definition(self, name: str) -> AlarmDefinition:
        enabled = self.actions_enabled
        undetermined = self.insufficient_data_actions if self.insufficient_data_actions is not None \
            else self.undetermined_actions
        actions = Actions(alarm=_actions(self.alarm_actions), ok=_actions(self.ok_actions),
                          insufficient_data=_actions(undetermined)) if enabled else Actions()
        return AlarmDefinition(name=name, style=self.style, condition=self.condition(), severity=self.severity,
                               description=self.description, match_by=tuple(self.match_by), actions=actions,
                               repeat_actions=self.repeat_actions, enabled=self.enabled, group=self.group)


def load_alarms(raw: Any, problems_of: Callable[[ValidationError, str], list[Problem]],
                ) -> tuple[dict[str, AlarmConfig], list[Problem]]:
    """The ``alarms`` section, each alarm validated on its own (every problem of every alarm, with its path);
    ``problems_of`` turns pydantic's errors into problems (``config.loading``)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [Problem("alarms", "must be a mapping of alarm name to alarm")]
    alarms: dict[str, AlarmConfig] = {}
    problems: list[Problem] = []
    for name, body in raw.items():
        where = f"alarms.{name}"
        if not _NAME.match(str(name)):
            problems.append(Problem(where, "alarm names may use letters, digits, _, . and - only (at most 255)"))
        try:
            alarms[str(name)] = AlarmConfig.model_validate(body if body is not None else {})
        except ValidationError as exc:
            problems.extend(problems_of(exc, where))
    return alarms, problems


def alarm_definitions(alarms: Mapping[str, AlarmConfig]) -> dict[str, AlarmDefinition]:
    return {name: alarm.definition(name) for name, alarm in alarms.items()}


class AlarmMetricsConfig(ConfigModel):
    """``alarm_metrics``: how alarm metric names and dimensions become PromQL."""

    node_exporter: bool = True  # start from the built-in node_exporter translations (model.alarm_promql)
    metrics: dict[str, Annotated[str, Field(min_length=1)]] = {}
    dimensions: dict[str, str] = {}
    absent_lookback: Duration = DEFAULT_LOOKBACK

    @field_validator("absent_lookback")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value < 60:
            raise ValueError("must be at least 1m")
        return value

    def translations(self) -> Translations:
        metrics = {**(NODE_EXPORTER if self.node_exporter else {}), **self.metrics}
        dimensions = {**(DEFAULT_DIMENSIONS if self.node_exporter else {}), **self.dimensions}
        return Translations(metrics, dimensions, self.absent_lookback)


def alarm_problems(alarms: Mapping[str, AlarmConfig], translations: Translations,
                   groups: Mapping[str, Any], rule_groups: list[str]) -> list[Problem]:
    """What the alarms need from the rest of the file: the groups their actions name (with the policy / heal
    section the action uses), and PromQL for every metric and dimension. ``groups``: name → GroupConfig (None: a
    group with problems of its own)."""
    problems: list[Problem] = []
    known = ", ".join(sorted(groups)) or "none defined"
    if alarms and RULE_GROUP in rule_groups:
        problems.append(Problem("rules.groups", f"the rule group name {RULE_GROUP} is alertscaler's (the alarms' "
                                                "rules): rename yours"))
    for name, alarm in alarms.items():
        where = f"alarms.{name}"
        if alarm.group is not None and alarm.group not in groups:
            problems.append(Problem(f"{where}.group", f"no group {alarm.group!r} in this file (groups: {known})"))
        for i, text in enumerate(alarm.alarm_actions):
            action = parse_action(text)
            path = f"{where}.alarm_actions[{i}]"
            if not isinstance(action, ScaleAction | HealAction):
                continue
            group = groups.get(action.group)
            if action.group not in groups:
                problems.append(Problem(path, f"no group {action.group!r} in this file (groups: {known})"))
            elif group is None:
                continue  # the group has problems of its own
            elif isinstance(action, ScaleAction) and getattr(group, action.policy.value) is None:
                problems.append(Problem(path, f"group {action.group} has no {action.policy.value} policy"))
            elif isinstance(action, HealAction) and group.heal is None:
                problems.append(Problem(path, f"group {action.group} has no heal section (heal needs its member "
                                              "labels, action and budget)"))
        bad_dims = False
        for i, dim in enumerate(alarm.match_by):
            try:
                translations.label(dim)
            except CompileError as exc:
                problems.append(Problem(f"{where}.match_by[{i}]", str(exc)))
                bad_dims = True
        if bad_dims:
            continue
        try:
            compile_alarm(alarm.definition(name), translations)
        except CompileError as exc:
            source = next(k for k in ("expression", "meter_name", "metric", "promql") if getattr(alarm, k) is not None)
            problems.append(Problem(f"{where}.{source}", str(exc)))
    return problems


def alarm_rule_group(definitions: Mapping[str, AlarmDefinition], translations: Translations) -> RuleGroup | None:
    """The rule group of the enabled alarms' rules (None: no alarm). Call on a checked file (it compiles)."""
    rules: list[Any] = []
    for alarm in definitions.values():
        if not alarm.enabled:
            continue
        for rule in compile_alarm(alarm, translations):
            rules.append(AlertRule(alert=rule.alert, expr=rule.expr, for_=rule.for_ or None, labels=rule.labels,
                                   annotations=rule.annotations, group=alarm.group))
    return RuleGroup(name=RULE_GROUP, rules=rules) if rules else None
