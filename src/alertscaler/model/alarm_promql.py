"""Alarms compiled to Prometheus alerting rules. Pure: no I/O; called by ``config`` (the ``alarms`` section is
compiled when the policy file is loaded, so a problem is reported with its path by ``check``) and so rendered by
``confgen`` as one more rule group.

A metric name (a Ceilometer meter, a Monasca metric) becomes PromQL through ``Translations``: a table of
PromQL templates, ``$dims`` marking where the dimensions' label matchers go, with defaults for node_exporter
(``NODE_EXPORTER``); a name not in the table is taken as a Prometheus metric name (``.`` and other characters
Prometheus does not allow become ``_``: ``cpu.user_perc`` → ``cpu_user_perc``). Dimension names become label
names through ``Translations.dimensions``.

A comparison ``f(metric, P) op T`` becomes ``agg by (match_by) (f_over_time(series[P])) op T`` (``count``:
``sum`` of ``count_over_time``; ``last``: the series' latest value, ``max`` for ``>``/``>=``, ``min`` for
``<``/``<=``). ``times N`` (Aodh: ``evaluation_periods``) is the rule's ``for: (N-1)·P`` for a single
comparison, and ``min_over_time((... op bool T)[(N-1)·P:]) == 1`` inside an and/or expression; ``and`` / ``or``
are PromQL's (every comparison aggregates by the same ``match_by`` labels, so their series match).

Missing data is an alert too (unless the alarm is deterministic): a companion rule fires while a metric the
condition reads has no sample for a period (``absent_over_time``), or, with ``match_by``, while a dimension set
seen within ``absent_lookback`` has none (``group by (...) (last_over_time(x[lookback])) unless ...``); its
``for`` is ``(2·N-1)·P``, so the state changes after ``2·N·P`` without data (Monasca's rule). A third rule fires
while every metric has data (``NAME:ok``, per dimension set): it takes the alarm out of its initial state
(INSUFFICIENT_DATA / UNDETERMINED) to OK without the condition having to hold once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from alertscaler.model.alarm_grammar import (
    Expression,
    Function,
    Logical,
    MetricRef,
    SubExpression,
    format_number,
    sub_expressions,
)
from alertscaler.model.alarms import ALARM_LABEL, SIGNAL_LABEL, AlarmDefinition, AlarmSignal
from alertscaler.model.durations import format_duration

DIMS: Final = "$dims"
_LABEL_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME: Final = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_SELECTOR: Final = re.compile(r"^\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{[^{}]*\})?\s*$")

_CPU: Final = 'avg without (cpu, mode) (rate(node_cpu_seconds_total{{mode="{mode}",$dims}}[1m]))'
_REAL_FS: Final = 'fstype!~"tmpfs|overlay|squashfs|ramfs"'
_NO_LO: Final = 'device!="lo"'

#: Ceilometer meters and Monasca (monasca-agent) metrics as node_exporter PromQL
NODE_EXPORTER: Final[Mapping[str, str]] = {
    # Ceilometer
    "cpu_util": "100 * (1 - " + _CPU.format(mode="idle") + ")",
    "cpu": 'sum without (cpu, mode) (node_cpu_seconds_total{mode!="idle",$dims}) * 1e9',
    "memory.usage": "(node_memory_MemTotal_bytes{$dims} - node_memory_MemAvailable_bytes{$dims}) / 1048576",
    "disk.read.bytes.rate": "sum without (device) (rate(node_disk_read_bytes_total{$dims}[1m]))",
    "disk.write.bytes.rate": "sum without (device) (rate(node_disk_written_bytes_total{$dims}[1m]))",
    "disk.read.requests.rate": "sum without (device) (rate(node_disk_reads_completed_total{$dims}[1m]))",
    "disk.write.requests.rate": "sum without (device) (rate(node_disk_writes_completed_total{$dims}[1m]))",
    "network.incoming.bytes.rate":
        f"sum without (device) (rate(node_network_receive_bytes_total{{{_NO_LO},$dims}}[1m]))",
    "network.outgoing.bytes.rate":
        f"sum without (device) (rate(node_network_transmit_bytes_total{{{_NO_LO},$dims}}[1m]))",
    "network.incoming.packets.rate":
        f"sum without (device) (rate(node_network_receive_packets_total{{{_NO_LO},$dims}}[1m]))",
    "network.outgoing.packets.rate":
        f"sum without (device) (rate(node_network_transmit_packets_total{{{_NO_LO},$dims}}[1m]))",
    # Monasca
    "cpu.user_perc": "100 * " + _CPU.format(mode="user"),
    "cpu.system_perc": "100 * " + _CPU.format(mode="system"),
    "cpu.wait_perc": "100 * " + _CPU.format(mode="iowait"),
    "cpu.idle_perc": "100 * " + _CPU.format(mode="idle"),
    "cpu.percent": "100 * (1 - " + _CPU.format(mode="idle") + ")",
    "mem.usable_perc": "100 * node_memory_MemAvailable_bytes{$dims} / node_memory_MemTotal_bytes{$dims}",
    "mem.usable_mb": "node_memory_MemAvailable_bytes{$dims} / 1048576",
    "mem.free_mb": "node_memory_MemFree_bytes{$dims} / 1048576",
    "mem.total_mb": "node_memory_MemTotal_bytes{$dims} / 1048576",
    "disk.space_used_perc": f"100 * (1 - node_filesystem_avail_bytes{{{_REAL_FS},$dims}} / "
                            f"node_filesystem_size_bytes{{{_REAL_FS},$dims}})",
    "io.read_req_sec": "rate(node_disk_reads_completed_total{$dims}[1m])",
    "io.write_req_sec": "rate(node_disk_writes_completed_total{$dims}[1m])",
    "io.read_kbytes_sec": "rate(node_disk_read_bytes_total{$dims}[1m]) / 1024",
    "io.write_kbytes_sec": "rate(node_disk_written_bytes_total{$dims}[1m]) / 1024",
    "disk_read_ops": "rate(node_disk_reads_completed_total{$dims}[1m])",
    "disk_write_ops": "rate(node_disk_writes_completed_total{$dims}[1m])",
    "net.in_bytes_sec": f"rate(node_network_receive_bytes_total{{{_NO_LO},$dims}}[1m])",
    "net.out_bytes_sec": f"rate(node_network_transmit_bytes_total{{{_NO_LO},$dims}}[1m])",
    "net.in_packets_sec": f"rate(node_network_receive_packets_total{{{_NO_LO},$dims}}[1m])",
    "net.out_packets_sec": f"rate(node_network_transmit_packets_total{{{_NO_LO},$dims}}[1m])",
    "load.avg_1_min": "node_load1{$dims}",
    "load.avg_5_min": "node_load5{$dims}",
    "load.avg_15_min": "node_load15{$dims}",
}

#: dimension names that are not label names of the same name: Ceilometer's resource_id is the member id label
#: alertscaler's scrape targets carry
DEFAULT_DIMENSIONS: Final[Mapping[str, str]] = {"resource_id": "alertscaler_member"}

DEFAULT_LOOKBACK: Final = 3600.0


class CompileError(ValueError):
    """An alarm that cannot become PromQL (a metric or dimension the table cannot translate)."""


@dataclass(frozen=True)
class Translations:
    """Metric name → PromQL template (``$dims``: the dimension matchers), dimension → label name."""

    metrics: Mapping[str, str] = field(default_factory=lambda: dict(NODE_EXPORTER))
    dimensions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DIMENSIONS))
    absent_lookback: float = DEFAULT_LOOKBACK

    def label(self, dimension: str) -> str:
        name = self.dimensions.get(dimension, dimension)
        if not _LABEL_NAME.match(name):
            raise CompileError(f"dimension {dimension!r} is not a Prometheus label name: map it to one in "
                               "alarm_metrics.dimensions")
        return name

    def series(self, metric: MetricRef) -> Series:
        matchers = ",".join(f"{self.label(k)}={quote(v)}" for k, v in metric.dimensions)
        template = self.metrics.get(metric.name)
        if template is None:
            name = re.sub(r"[^a-zA-Z0-9_:]", "_", metric.name)
            if not _METRIC_NAME.match(name):
                raise CompileError(f"metric {metric.name!r} is not in alarm_metrics.metrics and is not a Prometheus "
                                   f"metric name (it would be {name!r}): add it to alarm_metrics.metrics")
            template = name + "{" + DIMS + "}"
        if DIMS in template:
            text = _tidy(template.replace(DIMS, matchers))
        elif metric.dimensions:
            raise CompileError(f"the translation of {metric.name!r} has no {DIMS}, so it cannot be filtered by "
                               f"{{{','.join(f'{k}={v}' for k, v in metric.dimensions)}}}: put {DIMS} in its "
                               "selector in alarm_metrics.metrics")
        else:
            text = _tidy(template)
        return Series(text, bool(_SELECTOR.match(text)))


def _tidy(text: str) -> str:
    text = re.sub(r"\{\s*,", "{", text)
    text = re.sub(r",\s*\}", "}", text)
    text = re.sub(r",\s*,", ",", text)
    return re.sub(r"([a-zA-Z0-9_:])\{\s*\}", r"\1", text)


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Series:
    """The PromQL of a metric; ``selector``: a plain selector (a range ``[P]`` applies; else a subquery)."""

    text: str
    selector: bool

    def over(self, seconds: float) -> str:
        """A range vector of the last ``seconds``."""
        window = format_duration(seconds)
        return f"{self.text}[{window}]" if self.selector else f"({self.text})[{window}:]"

    def instant(self) -> str:
        return self.text if self.selector else f"({self.text})"


@dataclass(frozen=True)
class CompiledRule:
    """An alerting rule, as ``config`` turns it into the rule file's entry."""

    alert: str
    expr: str
    for_: float
    labels: dict[str, str]
    annotations: dict[str, str]


_OVER_TIME: Final = {Function.AVG: "avg_over_time", Function.MIN: "min_over_time", Function.MAX: "max_over_time",
                     Function.SUM: "sum_over_time", Function.COUNT: "count_over_time"}
_AGGREGATE: Final = {Function.AVG: "avg", Function.MIN: "min", Function.MAX: "max", Function.SUM: "sum",
                     Function.COUNT: "sum"}


def insufficient_data_alert(name: str) -> str:
    """The alert name of an alarm's missing-data rule."""
    return f"{name}:insufficient_data"


def data_alert(name: str) -> str:
    """The alert name of an alarm's data-present rule."""
    return f"{name}:ok"


def compile_alarm(alarm: AlarmDefinition, tr: Translations) -> list[CompiledRule]:
    """The alarm's rules: the condition's, and (unless deterministic) the missing-data companion's and the
    data-present one's. Raises ``CompileError``."""
    by = tuple(dict.fromkeys(tr.label(d) for d in alarm.match_by))
    labels = {ALARM_LABEL: alarm.name, "severity": alarm.severity}
    condition = alarm.condition
    if isinstance(condition, SubExpression):
        expr = _value(condition, by, tr) + f" {condition.operator.value} {format_number(condition.threshold)}"
        wait = _times_wait(condition)
    else:
        expr, wait = _expression(condition, by, tr), 0.0
    annotations = {"summary": f"{alarm.name}: {condition}", "value": "{{ $value }}"}
    if alarm.description:
        annotations["description"] = alarm.description
    rules = [CompiledRule(alarm.name, expr, wait, {**labels, SIGNAL_LABEL: AlarmSignal.ALARM.value}, annotations)]
    missing = [s for s in sub_expressions(condition) if not s.deterministic]
    if missing:
        parts = list(dict.fromkeys(_absent(s, by, tr) for s in missing))
        wait = max((2 * s.periods - 1) * s.period for s in missing)
        rules.append(CompiledRule(
            insufficient_data_alert(alarm.name), " or ".join(parts) if len(parts) == 1 else
            " or ".join(f"({p})" for p in parts), float(wait),
            {**labels, SIGNAL_LABEL: AlarmSignal.INSUFFICIENT_DATA.value},
            {"summary": f"{alarm.name}: no data for {', '.join(alarm.metrics())}"}))
        present = list(dict.fromkeys(_present(s, by, tr) for s in missing))
        rules.append(CompiledRule(
            data_alert(alarm.name), present[0] if len(present) == 1 else " and ".join(f"({p})" for p in present),
            0.0, {**labels, SIGNAL_LABEL: AlarmSignal.OK.value},
            {"summary": f"{alarm.name}: data for {', '.join(alarm.metrics())}"}))
    return rules


def _series(sub: SubExpression, tr: Translations) -> Series:
    if sub.promql is not None:
        return Series(sub.promql.strip(), bool(_SELECTOR.match(sub.promql)))
    assert sub.metric is not None
    return tr.series(sub.metric)


def _value(sub: SubExpression, by: tuple[str, ...], tr: Translations) -> str:
    """The aggregated value a comparison compares (no comparison yet)."""
    series = _series(sub, tr)
    if sub.function is None:
        return series.instant()
    if sub.function is Function.LAST:
        inner = series.instant()
        agg = "max" if sub.operator.upward else "min" if sub.operator.downward else "avg"
    else:
        inner = f"{_OVER_TIME[sub.function]}({series.over(sub.period)})"
        agg = _AGGREGATE[sub.function]
    return f"{agg} by ({', '.join(by)}) ({inner})" if by else f"{agg}({inner})"


def _times_wait(sub: SubExpression) -> float:
    return 0.0 if sub.function is Function.LAST else float((sub.periods - 1) * sub.period)


def _expression(expr: Expression, by: tuple[str, ...], tr: Translations) -> str:
    if isinstance(expr, Logical):
        return f"{_operand(expr.left, expr, by, tr)} {expr.op.value} {_operand(expr.right, expr, by, tr)}"
    value, threshold = _value(expr, by, tr), format_number(expr.threshold)
    wait = _times_wait(expr)
    if not wait:
        return f"{value} {expr.operator.value} {threshold}"
    return f"min_over_time(({value} {expr.operator.value} bool {threshold})[{format_duration(wait)}:]) == 1"


def _operand(expr: Expression, parent: Logical, by: tuple[str, ...], tr: Translations) -> str:
    """An operand of ``parent``: a comparison in parentheses; a chain of the same operator as it is (both are
    left-associative), another operator in parentheses."""
    text = _expression(expr, by, tr)
    return text if isinstance(expr, Logical) and expr.op is parent.op else f"({text})"


def _present(sub: SubExpression, by: tuple[str, ...], tr: Translations) -> str:
    """Series while the comparison's metric has data (per ``by`` dimension set): the complement of ``_absent``."""
    series = _series(sub, tr)
    window = series.instant() if sub.function is Function.LAST and not by else (
        f"last_over_time({series.over(60.0 * 5 if sub.function is Function.LAST else sub.period)})")
    return f"group by ({', '.join(by)}) ({window})" if by else f"group({window})"


def _absent(sub: SubExpression, by: tuple[str, ...], tr: Translations) -> str:
    series = _series(sub, tr)
    if not by:
        return f"absent({series.instant()})" if sub.function is Function.LAST else \
            f"absent_over_time({series.over(sub.period)})"
    labels = ", ".join(by)
    recent = series.over(60.0 * 5) if sub.function is Function.LAST else series.over(sub.period)
    return (f"group by ({labels}) (last_over_time({series.over(tr.absent_lookback)})) unless "
            f"group by ({labels}) (last_over_time({recent}))")

