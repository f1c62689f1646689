"""The policy file: its typed model and a loader that reports EVERY problem at once, each with its path.

Called by ``cli`` (``check``, ``serve``), ``service`` and ``act``. Secrets (auth tokens, passwords) may be
given literally, as ``<name>_env: VAR`` or as ``<name>_file: PATH``; they are held as ``SecretStr`` and
never printed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.confgen.inputs import DEFAULT_ALERTMANAGER_URL, DEFAULT_TOKEN_FILE, RenderInput
from alertscaler.decide.schedules import active_windows, effective_bounds
from alertscaler.decide.tracking import DirectionRules, LimitKind, RateLimit, Select, TrackingRules
from alertscaler.model.durations import Duration, Interval, format_duration
from alertscaler.model.errors import ConfigError, Problem
from alertscaler.model.healing import HealAction, HealRules
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import AdjustmentType, Bounds, Direction, StepPolicy
from alertscaler.model.rules import AlertmanagerRoute, PrometheusRules, ScrapeJobs
from alertscaler.model.schedules import Schedule
from alertscaler.model.secrets import resolve_secret
from alertscaler.providers import registry

DEFAULT_MAX_BODY = 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_Model):
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "password", (info.context or {}).get("base"))


class AuthConfig(_Model):
    """Who may call the API. State-changing routes always require auth; reads too if ``protect_reads``."""

    bearer_token: SecretStr | None = None
    basic: BasicAuth | None = None
    protect_reads: bool = False
    insecure_no_auth: bool = False

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "bearer_token", (info.context or {}).get("base"))

    @model_validator(mode="after")
    def _something(self) -> AuthConfig:
        if self.bearer_token is None and self.basic is None and not self.insecure_no_auth:
            raise ValueError("set bearer_token (or bearer_token_env / bearer_token_file) or basic; "
                             "insecure_no_auth: true disables authentication explicitly")
        if self.bearer_token is not None and len(self.bearer_token.get_secret_value()) < 8:
            raise ValueError("bearer_token: too short (use at least 8 characters)")
        return self

    @property
    def enabled(self) -> bool:
        return self.bearer_token is not None or self.basic is not None


class ServerConfig(_Model):
    listen: str = "127.0.0.1:8080"
    auth: AuthConfig = AuthConfig(insecure_no_auth=True)
    max_body_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_BODY
    reevaluate_interval: Duration = 5.0
    alert_stale_after: Duration = 24 * 3600.0
    state_dir: str = "./alertscaler-state"
    public_url: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be HOST:PORT like 127.0.0.1:8080, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


DEFAULT_RETENTION = 90 * 86400.0


class StoreConfig(_Model):
    url: str | None = None
    path: str | None = None
    sqlite_synchronous: Literal["full", "normal"] = "full"
    #: finished history (notifications, decisions, actions, heal records) older than this is deleted; 0: kept
    retention: Duration = DEFAULT_RETENTION

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: float) -> float:
        if 0 < value < 86400:
            raise ValueError(f"must be 0 (keep everything) or at least 1d, got {format_duration(value)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "url", (info.context or {}).get("base"))

    @model_validator(mode="after")
    def _one(self) -> StoreConfig:
        if self.url and self.path:
            raise ValueError("give url or path, not both")
        if self.url and not self.url.startswith(("sqlite", "postgresql")):
            raise ValueError("url: must start with sqlite:// or postgresql+psycopg://")
        return self


class PrometheusConfig(_Model):
    url: str = "http://127.0.0.1:9090"
    bearer_token: SecretStr | None = None      # for queries (target tracking); or bearer_token_env / _file
    verify: bool | str = True                  # TLS: system CAs, false, or a CA bundle path
    timeout: Duration = 10.0                   # per query
    rules_dir: str | None = None              # where ``rules sync`` installs the generated rule file
    rule_file: str = "alertscaler.rules.yml"  # its name there (prometheus.yml's rule_files must match it)
    sync_rules_on_start: bool = False         # ``serve`` syncs the rules before taking traffic

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "bearer_token", (info.context or {}).get("base"))

    @field_validator("rule_file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or not value.endswith((".yml", ".yaml")) or value.startswith("."):
            raise ValueError("must be a plain file name ending in .yml, like alertscaler.rules.yml")
        return value


class ActionsConfig(_Model):
    max_attempts: Annotated[int, Field(ge=1)] = 8
    backoff_initial: Duration = 1.0
    backoff_max: Duration = 300.0


class ScaleOutPolicy(StepPolicy):
    @field_validator("adjustment")
    @classmethod
    def _sign(cls, value: int, info: ValidationInfo) -> int:
        return _signed(value, info, Direction.SCALE_OUT)


class ScaleInPolicy(StepPolicy):
    @field_validator("adjustment")
    @classmethod
    def _sign(cls, value: int, info: ValidationInfo) -> int:
        return _signed(value, info, Direction.SCALE_IN)


def _signed(value: int, info: ValidationInfo, direction: Direction) -> int:
    kind = info.data.get("adjustment_type", AdjustmentType.CHANGE_IN_CAPACITY)
    StepPolicy.check_sign(kind, value, direction)
    return value


class FlapConfig(_Model):
    heals: Annotated[int, Field(ge=1)] = 3   # a member slot healed this many times within period ...
    period: Duration = 3600.0               # ... is quarantined (if the provider can) and no longer healed


class FreezeConfig(_Model):
    share: Annotated[float, Field(gt=0, le=1)] = 0.5  # more than this share of members unhealthy at once ...
    min: Annotated[int, Field(ge=1)] = 2               # ... and at least this many: freeze, destroy nothing
    prometheus: bool = True                            # also freeze while prometheus.url does not answer


class HealConfig(_Model):
    """``groups.NAME.heal``: replace, reboot or quarantine unhealthy members, safely. Signals: firing alerts
    matching ``matchers`` (the member named by the first of ``member_labels`` the alert has: a member id or
    its address), and members the provider reports failed (``provider_status``)."""

    matchers: list[str] = Field(default_factory=list)
    member_labels: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["alertscaler_member", "instance"])
    provider_status: bool = True
    action: HealAction = HealAction.REPLACE
    grace: Duration = 120.0
    batch_window: Duration = 20.0
    budget: Annotated[int, Field(ge=1)] = 1
    flap: FlapConfig = FlapConfig()
    freeze: FreezeConfig = FreezeConfig()

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[str]) -> list[str]:
        MatcherSet.parse(value)  # raises ValueError naming the bad matcher
        return value

    @model_validator(mode="after")
    def _some_signal(self) -> HealConfig:
        if not self.matchers and not self.provider_status:
            raise ValueError("nothing would ever signal: give matchers (alerts naming a member) and/or "
                             "provider_status: true")
        return self

    def rules(self, can_quarantine: bool) -> HealRules:
        return HealRules(action=self.action, grace=self.grace, batch_window=self.batch_window, budget=self.budget,
                         flap_heals=self.flap.heals, flap_period=self.flap.period, freeze_share=self.freeze.share,
                         freeze_min=self.freeze.min, can_quarantine=can_quarantine)


class RateLimitConfig(_Model):
    """One HPA-style rate-limit policy: at most ``percent`` % or ``instances`` per ``period``."""

    percent: Annotated[float, Field(gt=0)] | None = None
    instances: Annotated[int, Field(ge=1)] | None = None
    period: Duration = 15.0

    @model_validator(mode="after")
    def _one(self) -> RateLimitConfig:
        if (self.percent is None) == (self.instances is None):
            raise ValueError("give exactly one of percent or instances")
        return self

    def limit(self) -> RateLimit:
        if self.percent is not None:
            return RateLimit(LimitKind.PERCENT, self.percent, self.period)
        return RateLimit(LimitKind.INSTANCES, float(self.instances or 0), self.period)


class DirectionConfig(_Model):
    stabilization: Duration = 0.0
    select: Select = Select.MAX
    limits: list[RateLimitConfig] = Field(default_factory=list)

    def rules(self) -> DirectionRules:
        return DirectionRules(self.stabilization, tuple(lim.limit() for lim in self.limits), self.select)


_HPA_UP = DirectionConfig(stabilization=0, limits=[RateLimitConfig(percent=100, period=15),
                                                   RateLimitConfig(instances=4, period=15)])
_HPA_DOWN = DirectionConfig(stabilization=300, limits=[RateLimitConfig(percent=100, period=15)])


class TrackMetric(_Model):
    query: Annotated[str, Field(min_length=1)]   # PromQL giving ONE value for the group
    target: Annotated[float, Field(gt=0)]


class TrackConfig(_Model):
    """``groups.NAME.track``: target tracking like Kubernetes' HPA (its defaults): every ``interval`` each
    metric's query is evaluated and the group sized so that value / target comes back to 1."""

    metrics: Annotated[list[TrackMetric], Field(min_length=1)]
    interval: Interval = 15.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    scale_up: DirectionConfig = _HPA_UP
    scale_down: DirectionConfig = _HPA_DOWN
    fallback: Literal["hold"] | Annotated[int, Field(ge=0)] = "hold"

    def rules(self, bounds: Bounds) -> TrackingRules:
        return TrackingRules(targets=tuple(m.target for m in self.metrics), tolerance=self.tolerance,
                             scale_up=self.scale_up.rules(), scale_down=self.scale_down.rules(),
                             min_size=bounds.min_size, max_size=bounds.max_size,
                             fallback=None if self.fallback == "hold" else int(self.fallback))


class GroupConfig(_Model):
    provider: Any = None  # replaced by the provider type's own config model in ``load_policy``
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=0)] = 1
    desired: Annotated[int, Field(ge=0)] | None = None
    dry_run: bool = False
    scale_out: ScaleOutPolicy | None = None
    scale_in: ScaleInPolicy | None = None
    heal: HealConfig | None = None
    track: TrackConfig | None = None
    schedule: Schedule | None = None

    @field_validator("max_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and low > value:
            raise ValueError(f"min_size ({low}) is greater than max_size ({value})")
        return value

    @field_validator("desired")
    @classmethod
    def _desired_within(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_size"), info.data.get("max_size")
        if value is not None and low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"desired ({value}) must be within min_size..max_size ({low}..{high})")
        return value

    @property
    def bounds(self) -> Bounds:
        return Bounds(min_size=self.min_size, max_size=self.max_size)

    def bounds_at(self, now: datetime) -> Bounds:
        """min/max at ``now``: the configured ones, overridden by the schedule's open windows."""
        if self.schedule is None:
            return self.bounds
        return effective_bounds(self.bounds, active_windows(self.schedule, now))

    @property
    def initial_desired(self) -> int:
        return self.min_size if self.desired is None else self.desired

    @property
    def provider_type(self) -> str:
        return str(getattr(self.provider, "type", ""))

    def policies(self) -> Iterator[tuple[Direction, StepPolicy]]:
        if self.scale_out is not None:
            yield Direction.SCALE_OUT, self.scale_out
        if self.scale_in is not None:
            yield Direction.SCALE_IN, self.scale_in


class PolicyFile(_Model):
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    actions: ActionsConfig = ActionsConfig()
    groups: dict[str, GroupConfig] = {}
    # the Prometheus side, rendered by ``alertscaler render`` (see model/rules.py)
    rules: PrometheusRules | None = None
    alertmanager: AlertmanagerRoute = AlertmanagerRoute()
    scrape: ScrapeJobs = ScrapeJobs()
    base_dir: str = "."

    def state_dir(self) -> Path:
        return _under(self.base_dir, self.server.state_dir)

    def render_input(self, source: str, token_file: str = DEFAULT_TOKEN_FILE,
                     alertmanager_url: str = DEFAULT_ALERTMANAGER_URL) -> RenderInput:
        """What ``confgen`` needs to generate the Prometheus side of this policy."""
        auth = self.server.auth
        return RenderInput(
            source=source, server_url=self.server.url,
            auth="bearer" if auth.bearer_token is not None else "basic" if auth.basic is not None else "none",
            basic_username=auth.basic.username if auth.basic is not None else None,
            rules=self.rules, alertmanager=self.alertmanager, scrape=self.scrape,
            token_file=token_file, alertmanager_url=alertmanager_url, carried=self.carried_labels(),
            queries=self.queries())

    def queries(self) -> tuple[tuple[str, str], ...]:
        """(path, PromQL) of every query alertscaler runs itself: track metrics, guards, size_by."""
        out: list[tuple[str, str]] = []
        for name, group in self.groups.items():
            if group.track is not None:
                out += [(f"groups.{name}.track.metrics[{i}].query", m.query) for i, m in enumerate(group.track.metrics)]
            for direction, step in group.policies():
                where = f"groups.{name}.{direction.value}"
                if step.guard is not None:
                    out.append((f"{where}.guard", step.guard))
                if step.size_by is not None:
                    out.append((f"{where}.size_by.query", step.size_by.query))
        return tuple(out)

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
}
# sections for the Prometheus side: their problems' paths index lists like rules.groups[0].rules[1].expr
_GENERATOR_SECTIONS: dict[str, type[BaseModel]] = {
    "rules": PrometheusRules, "alertmanager": AlertmanagerRoute, "scrape": ScrapeJobs,
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
    known = [*_SECTIONS, "groups", *_GENERATOR_SECTIONS]
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
    problems.extend(_group_references(data, raw_groups))
    problems.extend(_retention_covers_heal_periods(sections.get("store"), groups))
    if problems:
        raise ConfigError(problems, source)
    return PolicyFile(**sections, groups=groups, base_dir=str(base_dir or Path.cwd()))


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
