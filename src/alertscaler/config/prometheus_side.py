"""The policy file's sections for the Prometheus side, as pure values: ``rules`` (Prometheus rule groups),
``alertmanager`` (the route and receiver that reach alertscaler) and ``scrape`` (the scrape jobs). Part of
``config``.

``config.loading`` puts them into the policy file and checks what needs the rest of the file (an alert rule's
``group`` must name a group); ``confgen`` turns them into Prometheus and Alertmanager configuration.
PromQL and templates are not checked here: ``alertscaler check`` runs promtool on the generated files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.model.drills import DRILL_LABEL
from alertscaler.model.durations import Duration
from alertscaler.model.matchers import Matcher
from alertscaler.model.removals import discovery_lag

GROUP_LABEL = "alertscaler_group"
"""The label alertscaler's http_sd targets carry and alert rules with ``group:`` get."""

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _label_names(value: dict[str, str]) -> dict[str, str]:
    bad = [k for k in value if not _LABEL_NAME.match(k)]
    if bad:
        raise ValueError(f"not a label name: {', '.join(repr(b) for b in bad)} (letters, digits and _; "
                         "not starting with a digit)")
    reserved = [k for k in value if k.startswith("__")]
    if reserved:
        raise ValueError(f"label names starting with __ are reserved: {', '.join(reserved)}")
    if DRILL_LABEL in value:
        raise ValueError(f"{DRILL_LABEL} is reserved for fire drills (alertscaler drill): an alert carrying it never "
                         "changes capacity")
    return value


# --- rules ------------------------------------------------------------------------------------------------
class RecordingRule(_Model):
    """``record: NAME`` + ``expr`` (+ ``labels``): a new series computed from ``expr``."""

    record: str
    expr: Annotated[str, Field(min_length=1)]
    labels: dict[str, str] = {}

    @field_validator("record")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not _METRIC_NAME.match(value):
            raise ValueError(f"must be a metric name like avg_cpu_load5 (letters, digits, _ and :), got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _label_names(value)

    @property
    def kind(self) -> str:
        return "record"

    @property
    def name(self) -> str:
        return self.record


class AlertRule(_Model):
    """``alert: NAME`` + ``expr`` + ``for`` + ``labels`` + ``annotations``. ``group: NAME`` adds the label
    ``alertscaler_group: NAME`` so that the group's matchers (``alertscaler_group="NAME"``) route it."""

    alert: Annotated[str, Field(min_length=1)]
    expr: Annotated[str, Field(min_length=1)]
    for_: Annotated[Duration | None, Field(alias="for")] = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    group: str | None = None
    #: labels of the firing series copied onto the alert (``NAME: '{{ $labels.NAME }}'``), e.g. the stack
    #: identity an openstack-heat group reads; a group's provider may add its own (see ``carried``)
    carry: list[str] = []

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _label_names(value)

    @field_validator("carry")
    @classmethod
    def _carry(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _label_names(dict.fromkeys(value, ""))
        both = sorted(set(value) & set(info.data.get("labels") or {}))
        if both:
            raise ValueError(f"{', '.join(both)}: in labels too; give a label a value or carry it, not both")
        return value

    @field_validator("annotations")
    @classmethod
    def _annotation_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _LABEL_NAME.match(k)]
        if bad:
            raise ValueError(f"not an annotation name: {', '.join(repr(b) for b in bad)}")
        return value

    @field_validator("group")
    @classmethod
    def _group_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        labels = info.data.get("labels") or {}
        if value is not None and GROUP_LABEL in labels and labels[GROUP_LABEL] != value:
            raise ValueError(f"labels.{GROUP_LABEL} is {labels[GROUP_LABEL]!r}: give group or the label, not both")
        return value

    @property
    def kind(self) -> str:
        return "alert"

    @property
    def name(self) -> str:
        return self.alert

    def all_labels(self, carried: tuple[str, ...] = ()) -> dict[str, str]:
        """The labels as written to the rule file: ``labels`` plus ``alertscaler_group`` from ``group``, plus
        ``carry`` and ``carried`` (labels a group's provider reads) copied from the firing series."""
        out = {name: "{{ $labels.%s }}" % name for name in (*carried, *self.carry)}  # noqa: UP031
        out.update(self.labels)
        if self.group is not None:
            out[GROUP_LABEL] = self.group
        return out

    def target_group(self) -> str | None:
        """The alertscaler group this rule's alerts go to, when its labels say."""
        return self.group if self.group is not None else self.labels.get(GROUP_LABEL)


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "alert" in value and "record" not in value:
            return "alert"
        if "record" in value and "alert" not in value:
            return "record"
        return None
    return getattr(value, "kind", None)


Rule = Annotated[
    Annotated[AlertRule, Tag("alert")] | Annotated[RecordingRule, Tag("record")],
    Discriminator(_rule_kind, custom_error_type="rule_kind",
                  custom_error_message="give either record: (recording rule) or alert: (alerting rule)"),
]


class RuleGroup(_Model):
    name: Annotated[str, Field(min_length=1)]
    interval: Duration | None = None
    rules: Annotated[list[Rule], Field(min_length=1)]


class PrometheusRules(_Model):
    """The ``rules:`` section: Prometheus rule groups, rendered to ``rules/alertscaler.rules.yml``."""

    groups: list[RuleGroup] = []

    @model_validator(mode="after")
    def _unique_names(self) -> PrometheusRules:
        seen: set[str] = set()
        for group in self.groups:
            if group.name in seen:
                raise ValueError(f"rule group names must be unique: {group.name!r} appears more than once")
            seen.add(group.name)
        return self

    def walk(self) -> Iterator[RuleOrigin]:
        """Every rule with where it comes from in the policy file, in file order."""
        for gi, group in enumerate(self.groups):
            for ri, rule in enumerate(group.rules):
                yield RuleOrigin(f"rules.groups[{gi}].rules[{ri}]", gi, ri, group, rule)


@dataclass(frozen=True)
class RuleOrigin:
    path: str                 # rules.groups[0].rules[1]
    group_index: int
    rule_index: int
    group: RuleGroup
    rule: AlertRule | RecordingRule

    def __str__(self) -> str:
        return f"{self.path} ({self.rule.kind} {self.rule.name})"


# --- alertmanager -----------------------------------------------------------------------------------------
class AlertmanagerRoute(_Model):
    """The ``alertmanager:`` section: how Alertmanager reaches alertscaler (route + webhook receiver)."""

    receiver: Annotated[str, Field(min_length=1)] = "alertscaler"
    group_by: list[str] = ["alertname", GROUP_LABEL]
    group_wait: Duration = 10.0
    group_interval: Duration = 60.0
    repeat_interval: Duration = 3600.0
    send_resolved: bool = True
    max_alerts: Annotated[int, Field(ge=0)] = 0
    matchers: list[str] = []

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        if "..." in value and len(value) > 1:
            raise ValueError("'...' (group by every label) must be the only entry")
        bad = [v for v in value if v != "..." and not _LABEL_NAME.match(v)]
        if bad:
            raise ValueError(f"not a label name: {', '.join(repr(b) for b in bad)}")
        return value

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            Matcher.parse(text)  # raises ValueError naming the bad matcher
        return value

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than 0s")
        return value


# --- scrape -----------------------------------------------------------------------------------------------
_SECRET_HINT = ("alertscaler never writes secrets into generated files, and Prometheus 2.42's "
                "openstack_sd_configs cannot read one from a file: put the secret in a file, give its path as "
                "{name}_file, and give Prometheus the environment variables printed in prometheus.yml")


class OpenStackScrape(_Model):
    """``scrape.openstack``: an ``openstack_sd_configs`` job like the Heat autoscaling guides use.

    Only instances whose metadata has ``tag_key`` matching ``tag_value`` are kept; metadata keys listed in
    ``labels`` become target labels. Credentials are not written into prometheus.yml: Prometheus reads
    them from its ``OS_*`` environment variables (the fields below name the values to put there)."""

    job_name: Annotated[str, Field(min_length=1)] = "openstack"
    region: Annotated[str, Field(min_length=1)]
    role: Literal["instance"] = "instance"
    port: Annotated[int, Field(gt=0, lt=65536)] = 9100
    refresh_interval: Duration = 60.0
    availability: Literal["public", "internal", "admin"] = "public"
    all_tenants: bool = False
    # -> OS_* environment variables of the Prometheus process
    identity_endpoint: str | None = None
    username: str | None = None
    userid: str | None = None
    password_file: str | None = None
    project_name: str | None = None
    project_id: str | None = None
    domain_name: str | None = None
    domain_id: str | None = None
    application_credential_name: str | None = None
    application_credential_id: str | None = None
    application_credential_secret_file: str | None = None
    # rejected with an explanation: a secret must never end up in a generated file
    password: Any = None
    application_credential_secret: Any = None
    # ownership filter and labels
    tag_key: Annotated[str, Field(min_length=1)] = "prometheus_autoscaling"
    tag_value: str = "true"
    labels: dict[str, str] = {"stack_id": "tenant_stack_id", "project_id": "tenant_project_id",
                              "stack_name": "tenant_stack_name"}
    #: a fixed alertscaler group for every instance of the job; without it, each instance's group is read from
    #: its metadata key ``group_metadata`` (set by the openstack-nova provider on the servers it creates)
    group: str | None = None
    group_metadata: str = "alertscaler_group"

    @field_validator("password", "application_credential_secret", mode="before")
    @classmethod
    def _no_literal_secret(cls, value: Any, info: ValidationInfo) -> None:
        if value is not None:
            raise ValueError(_SECRET_HINT.format(name=info.field_name))
        return None

    @field_validator("tag_value")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from None
        return value

    @field_validator("labels")
    @classmethod
    def _target_labels(cls, value: dict[str, str]) -> dict[str, str]:
        _label_names({v: "" for v in value.values()})
        return value

    @model_validator(mode="after")
    def _secret_for_auth(self) -> OpenStackScrape:
        if self.password_file and self.application_credential_secret_file:
            raise ValueError("give password_file or application_credential_secret_file, not both")
        return self

    def environment(self) -> list[tuple[str, str]]:
        """The ``OS_*`` variables Prometheus needs, with the values (secrets only as ``<contents of FILE>``)."""
        pairs = [
            ("OS_AUTH_URL", self.identity_endpoint), ("OS_USERNAME", self.username), ("OS_USERID", self.userid),
            ("OS_PROJECT_NAME", self.project_name), ("OS_PROJECT_ID", self.project_id),
            ("OS_DOMAIN_NAME", self.domain_name), ("OS_DOMAIN_ID", self.domain_id),
            ("OS_APPLICATION_CREDENTIAL_NAME", self.application_credential_name),
            ("OS_APPLICATION_CREDENTIAL_ID", self.application_credential_id),
        ]
        out = [(k, v) for k, v in pairs if v]
        if self.password_file:
            out.append(("OS_PASSWORD", f"<contents of {self.password_file}>"))
        if self.application_credential_secret_file:
            out.append(("OS_APPLICATION_CREDENTIAL_SECRET", f"<contents of {self.application_credential_secret_file}>"))
        return out


class LinodeScrape(_Model):
    """``scrape.linode``: a ``linode_sd_configs`` job: Linodes tagged ``tag``, scraped on their public IPv6."""

    job_name: Annotated[str, Field(min_length=1)] = "linode"
    authorization_credentials_file: Annotated[str, Field(min_length=1)]
    tag: Annotated[str, Field(min_length=1)] = "autoscale"
    port: Annotated[int, Field(gt=0, lt=65536)] = 9100
    refresh_interval: Duration = 60.0
    group: str | None = None

    @field_validator("tag")
    @classmethod
    def _no_separator(cls, value: str) -> str:
        if "," in value:
            raise ValueError("one tag, without commas")
        return value


class ScrapeJobs(_Model):
    """The ``scrape:`` section: the scrape jobs of the generated prometheus.yml."""

    http_sd: bool = True
    refresh_interval: Duration = 15.0
    scrape_interval: Duration = 15.0
    evaluation_interval: Duration | None = None
    openstack: OpenStackScrape | None = None
    linode: LinodeScrape | None = None

    @field_validator("refresh_interval", "scrape_interval", "evaluation_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than 0s")
        return value

    def discovery_lag(self) -> float:
        """Seconds until the generated Prometheus has stopped scraping a member that left discovery: the slowest
        discovery job's refresh, Prometheus' 5 s discovery throttle and 5 s scrape reload ticker, a scrape under
        way (``model.removals``)."""
        refresh = [self.refresh_interval] if self.http_sd else []
        refresh += [j.refresh_interval for j in (self.openstack, self.linode) if j is not None]
        return discovery_lag(max(refresh, default=self.refresh_interval), self.scrape_interval)

    def default_drain(self) -> float:
        """A group's ``drain`` when it sets none: the discovery lag and one more scrape interval of margin."""
        return self.discovery_lag() + self.scrape_interval

    @model_validator(mode="after")
    def _distinct_jobs(self) -> ScrapeJobs:
        names = [j.job_name for j in (self.openstack, self.linode) if j is not None]
        if self.http_sd:
            names.append("alertscaler")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"job names must be distinct: {', '.join(dup)}")
        return self
