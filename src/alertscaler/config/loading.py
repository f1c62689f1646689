"""The whole policy file (``PolicyFile``) and its loader: every problem at once, each with its path, unknown keys
with a suggestion, provider configs validated by their provider's own model. Part of ``config``."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from alertscaler.config.alarms import (
    AlarmConfig,
    AlarmMetricsConfig,
    alarm_definitions,
    alarm_problems,
    alarm_rule_group,
    load_alarms,
)
from alertscaler.config.alertmanager_api import AlertmanagerSection
from alertscaler.config.anomaly import AnomalySection
from alertscaler.config.groups import GroupConfig
from alertscaler.config.inputs import InputsConfig, input_references
from alertscaler.config.notifications import (
    NotificationMethod,
    load_notification_methods,
    notification_references,
)
from alertscaler.config.prometheus_side import PrometheusRules, ScrapeJobs
from alertscaler.config.render_input import DEFAULT_ALERTMANAGER_URL, DEFAULT_TOKEN_FILE, RenderInput
from alertscaler.config.sections import (
    DEFAULT_RETENTION,
    MISSING_AUTH,
    ActionsConfig,
    ConfigModel,
    PrometheusConfig,
    ServerConfig,
    StoreConfig,
)
from alertscaler.config.tacker import TackerSection, tacker_groups
from alertscaler.model.durations import format_duration
from alertscaler.model.errors import ConfigError, Problem
from alertscaler.providers import registry


class PolicyFile(ConfigModel):
    server: ServerConfig  # no default: server.auth must be said (see ServerConfig)
    store: StoreConfig = StoreConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    actions: ActionsConfig = ActionsConfig()
    groups: dict[str, GroupConfig] = {}
    inputs: InputsConfig = InputsConfig()  # Aodh / Monasca alarms as signals, signed URLs (config/inputs.py)
    # the Prometheus side, rendered by ``alertscaler render`` (see config/prometheus_side.py)
    rules: PrometheusRules | None = None
    alertmanager: AlertmanagerSection = AlertmanagerSection()  # the generated route + where alertscaler asks it
    scrape: ScrapeJobs = ScrapeJobs()
    anomaly: AnomalySection = AnomalySection([])  # anomaly scores exported on /metrics (config/anomaly.py)
    alarms: dict[str, AlarmConfig] = {}  # Aodh / Monasca alarm definitions (config/alarms.py)
    alarm_metrics: AlarmMetricsConfig = AlarmMetricsConfig()
    notification_methods: dict[str, NotificationMethod] = {}  # notify:NAME of alarm actions (config/notifications.py)
    tacker: TackerSection = TackerSection()  # Tacker's alert endpoints, aspects, healing (config/tacker.py)
    base_dir: str = "."

    def state_dir(self) -> Path:
        return _under(self.base_dir, self.server.state_dir)

    def drain_of(self, group: str) -> float:
        """Seconds group ``group``'s scale-in victims stay out of discovery before they are stopped: its
        ``drain``, else long enough for the generated Prometheus to drop them (``ScrapeJobs.default_drain``)."""
        drain = self.groups[group].drain
        return self.scrape.default_drain() if drain is None else drain

    def render_input(self, source: str, token_file: str = DEFAULT_TOKEN_FILE,
                     alertmanager_url: str = DEFAULT_ALERTMANAGER_URL) -> RenderInput:
        """What ``confgen`` needs to generate the Prometheus side of this policy."""
        auth = self.server.auth
        return RenderInput(
            source=source, server_url=self.server.url,
            auth="bearer" if auth.bearer_token is not None else "basic" if auth.basic is not None else "none",
            basic_username=auth.basic.username if auth.basic is not None else None,
            rules=self.rules_with_alarms(), alertmanager=self.alertmanager, scrape=self.scrape,
            token_file=token_file, alertmanager_url=alertmanager_url, carried=self.carried_labels(),
            queries=self.queries(), metrics_job=bool(self.anomaly.root))

    def rules_with_alarms(self) -> PrometheusRules | None:
        """The ``rules`` section plus the rule group the alarms compile to (``config.alarms``)."""
        alarm_group = alarm_rule_group(alarm_definitions(self.alarms), self.alarm_metrics.translations())
        if alarm_group is None:
            return self.rules
        groups = [*(self.rules.groups if self.rules is not None else []), alarm_group]
        return PrometheusRules(groups=groups)

    def queries(self) -> tuple[tuple[str, str], ...]:
        """(path, PromQL) of every query alertscaler runs itself: track metrics, predict, guards, size_by."""
        out: list[tuple[str, str]] = []
        for name, group in self.groups.items():
            if group.track is not None:
                out += [(f"groups.{name}.track.metrics[{i}].query", m.query) for i, m in enumerate(group.track.metrics)]
            if group.predict is not None:
                out.append((f"groups.{name}.predict.query", group.predict.query))
            for direction, step in group.policies():
                where = f"groups.{name}.{direction.value}"
                if step.guard is not None:
                    out.append((f"{where}.guard", step.guard))
                if step.size_by is not None:
                    out.append((f"{where}.size_by.query", step.size_by.query))
        return (*out, *self.anomaly.queries())

    def carried_labels(self) -> dict[str, tuple[str, ...]]:
        """Per group, the alert labels its provider reads (a provider config's ``carried_labels()``, e.g. the
        stack identity of an openstack-heat group addressed by labels)."""
        out: dict[str, tuple[str, ...]] = {}
        for name, group in self.groups.items():
            carried = getattr(group.provider, "carried_labels", None)
            labels = tuple(carried()) if callable(carried) else ()
            if labels:
                out[name] = labels
        return out

    def rules_dir(self) -> Path | None:
        return _under(self.base_dir, self.prometheus.rules_dir) if self.prometheus.rules_dir else None

    def store_url(self) -> str:
        if self.store.url:
            return self.store.url
        path = _under(self.base_dir, self.store.path) if self.store.path else self.state_dir() / "alertscaler.db"
        return f"sqlite:///{path}"

    def group(self, name: str) -> GroupConfig:
        return self.groups[name]


def _under(base: str, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (Path(base) / p).resolve()


_SECTIONS: dict[str, type[BaseModel]] = {
    "server": ServerConfig, "store": StoreConfig, "prometheus": PrometheusConfig, "actions": ActionsConfig,
    "anomaly": AnomalySection,
    "inputs": InputsConfig,
    "tacker": TackerSection,
}


# sections for the Prometheus side: their problems' paths index lists like rules.groups[0].rules[1].expr
_GENERATOR_SECTIONS: dict[str, type[BaseModel]] = {
    "rules": PrometheusRules, "alertmanager": AlertmanagerSection, "scrape": ScrapeJobs,
    "alarm_metrics": AlarmMetricsConfig,
}


_GROUP_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def load_policy_file(path: str | Path) -> PolicyFile:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {file}: {exc.strerror}")], str(file)) from None
    return load_policy(text, base_dir=file.resolve().parent, source=str(file))


def load_policy(text: str, base_dir: Path | None = None, source: str = "") -> PolicyFile:
    """Validate a policy file's text. Raises ConfigError listing every problem, each with its path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([Problem("", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "must be a mapping with server, store, groups, ...")], source)
    ctx = {"base": base_dir}
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    known = [*_SECTIONS, "groups", *_GENERATOR_SECTIONS, "alarms", "notification_methods"]
    for key in data:
        if key not in known:
            problems.append(Problem(str(key), _unknown(str(key), known)))
    for key, model in {**_SECTIONS, **_GENERATOR_SECTIONS}.items():
        if data.get(key) is None:
            continue
        try:
            sections[key] = model.model_validate(data[key], context=ctx)
        except ValidationError as exc:
            problems.extend(_problems(exc, key))
    problems = _missing_auth(data.get("server"), problems)
    groups: dict[str, GroupConfig] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        problems.append(Problem("groups", "must be a mapping of group name to group"))
        raw_groups = {}
    if not raw_groups:
        problems.append(Problem("groups", "define at least one group"))
    for name, raw in raw_groups.items():
        where = f"groups.{name}"
        if not set(str(name)) <= _GROUP_NAME_CHARS:
            problems.append(Problem(where, "group names may use letters, digits, _ and - only"))
        group, group_problems = _load_group(raw, where, ctx)
        problems.extend(group_problems)
        if group is not None:
            groups[str(name)] = group
    groups, tacker_problems = tacker_groups(sections.get("tacker"), groups, [str(n) for n in raw_groups])
    problems.extend(tacker_problems)
    problems.extend(_group_references(data, raw_groups))
    problems.extend(input_references(sections.get("inputs"), groups, [str(n) for n in raw_groups]))
    problems.extend(_retention_covers_heal_periods(sections.get("store"), groups))
    alarms, bad_alarms = load_alarms(data.get("alarms"), _problems)
    problems.extend(bad_alarms)
    if alarms:
        sections["alarms"] = alarms
    methods, bad_methods = load_notification_methods(data.get("notification_methods"), _problems, ctx)
    problems.extend(bad_methods)
    problems.extend(notification_references(data.get("alarms"), data.get("notification_methods")))
    if methods:
        sections["notification_methods"] = methods
    if alarms and "alarm_metrics" not in problem_sections(problems):
        rules = sections.get("rules")
        problems.extend(alarm_problems(
            alarms, sections.get("alarm_metrics", AlarmMetricsConfig()).translations(),
            {**dict.fromkeys(map(str, raw_groups)), **groups},
            [g.name for g in rules.groups] if isinstance(rules, PrometheusRules) else []))
    if problems:
        raise ConfigError(problems, source)
    return PolicyFile(**sections, groups=groups, base_dir=str(base_dir or Path.cwd()))


def problem_sections(problems: list[Problem]) -> set[str]:
    """The top-level keys some problem is about."""
    return {p.path.split(".")[0].split("[")[0] for p in problems}


def _missing_auth(server: Any, problems: list[Problem]) -> list[Problem]:
    """No ``server`` section, or one without ``auth`` (or ``auth: null``): one problem at ``server.auth`` naming
    both ways to fix it, instead of pydantic's bare "required". Safe by default: there is no implicit no-auth."""
    if server is not None and not (isinstance(server, dict) and server.get("auth") is None):
        return problems
    if server is None:
        return [*problems, Problem("server.auth", MISSING_AUTH)]
    return [*(p for p in problems if p.path != "server.auth"), Problem("server.auth", MISSING_AUTH)]


def _retention_covers_heal_periods(store: Any, groups: dict[str, GroupConfig]) -> list[Problem]:
    """Flap detection counts the heal history of ``flap.period``: the retention must not delete it first."""
    retention = store.retention if isinstance(store, StoreConfig) else DEFAULT_RETENTION
    if not retention:
        return []
    return [Problem("store.retention", f"{format_duration(retention)} is shorter than groups.{name}.heal.flap.period "
                                       f"({format_duration(g.heal.flap.period)}): the heal history it counts would be "
                                       "deleted")
            for name, g in groups.items() if g.heal is not None and g.heal.flap.period > retention]


def _group_references(data: dict[Any, Any], raw_groups: dict[Any, Any]) -> list[Problem]:
    """Every ``group:`` in the rules and scrape sections must name a group of this file. Read from the raw
    data, so that a reference is checked even when its section has other problems."""
    names = sorted(str(n) for n in raw_groups)
    refs: list[tuple[str, Any]] = []
    rules = data.get("rules")
    rule_groups = rules.get("groups") if isinstance(rules, dict) else None
    for gi, group in enumerate(rule_groups if isinstance(rule_groups, list) else []):
        items = group.get("rules") if isinstance(group, dict) else None
        for ri, rule in enumerate(items if isinstance(items, list) else []):
            if isinstance(rule, dict) and "alert" in rule and rule.get("group") is not None:
                refs.append((f"rules.groups[{gi}].rules[{ri}].group", rule["group"]))
    scrape = data.get("scrape")
    for job in ("openstack", "linode"):
        raw_job = scrape.get(job) if isinstance(scrape, dict) else None
        if isinstance(raw_job, dict) and raw_job.get("group") is not None:
            refs.append((f"scrape.{job}.group", raw_job["group"]))
    known = ", ".join(names) or "none defined"
    return [Problem(path, f"no group {name!r} in this file (groups: {known})")
            for path, name in refs if str(name) not in names]


def _load_group(raw: Any, where: str, ctx: dict[str, Any]) -> tuple[GroupConfig | None, list[Problem]]:
    if not isinstance(raw, dict):
        return None, [Problem(where, "must be a mapping (provider, min_size, max_size, scale_out, ...)")]
    problems: list[Problem] = []
    provider = None
    raw_provider = raw.get("provider")
    if raw_provider is None:
        problems.append(Problem(f"{where}.provider", "required (e.g. {type: local})"))
    elif not isinstance(raw_provider, dict) or "type" not in raw_provider:
        problems.append(Problem(f"{where}.provider", "must be a mapping with a type (e.g. {type: local})"))
    else:
        try:
            model = registry.config_model(str(raw_provider["type"]))
            provider = model.model_validate(raw_provider, context=ctx)
        except ValueError as exc:  # unknown type, or pydantic's ValidationError (a ValueError)
            if isinstance(exc, ValidationError):
                problems.extend(_problems(exc, f"{where}.provider"))
            else:
                problems.append(Problem(f"{where}.provider.type", str(exc)))
    try:
        group = GroupConfig.model_validate({**raw, "provider": None}, context=ctx)
    except ValidationError as exc:
        problems.extend(_problems(exc, where))
        return None, problems
    if problems:
        return None, problems
    if group.heal is not None and provider is not None:
        can = registry.heal_actions(provider)
        if group.heal.action.value not in can:
            problems.append(Problem(f"{where}.heal.action", (
                f"the {getattr(provider, 'type', '?')} provider cannot "
                f"{group.heal.action.value} a member (it can: {', '.join(sorted(can)) or 'nothing'})")))
            return None, problems
    return group.model_copy(update={"provider": provider}), problems


def _problems(exc: ValidationError, prefix: str) -> list[Problem]:
    """pydantic's errors as problems with paths in the file: list positions as ``[i]``, without pydantic's
    union tags (``rules.groups[0].rules[1].expr``), messages without pydantic's prefixes."""
    out = []
    for err in exc.errors(include_url=False):
        path = prefix
        loc = list(err["loc"])
        for i, part in enumerate(loc):
            if isinstance(part, int):
                path += f"[{part}]"
            elif i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] == "rules" and part in ("alert", "record"):
                continue  # the tag of the rule kind, not a key of the file
            else:
                path += f".{part}"
        msg = err["msg"]
        for head in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(head)
        if err["type"] == "missing":
            msg = "required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
        out.append(Problem(path, msg))
    return out


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key (did you mean {close[0]}?)" if close else f"unknown key (known: {', '.join(known)})"
