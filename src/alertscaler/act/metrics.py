"""alertscaler's own Prometheus metrics (one private registry per engine). Served by ``api`` at /metrics.

The registry is private (tests build several engines in one process), so it registers the standard process,
platform and GC collectors itself (``process_*``, ``python_info``, ``python_gc_*``), and
``alertscaler_build_info``. Every per-group series is labelled ``alertscaler_group`` (``GROUP_LABEL``), the name
the scrape targets and alerts use, so a group's metrics join with its members' (``on(alertscaler_group)``).
``_created`` series are disabled process-wide (``disable_created_metrics``): nothing reads them.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

from alertscaler import __version__
from alertscaler.config.prometheus_side import GROUP_LABEL
from alertscaler.model.prediction import PredictionView

G = GROUP_LABEL  # the group label of every per-group series
# Buckets by what is measured. The webhook's answer is a durable write (SQLite/PostgreSQL commit): a few ms, tens
# under load. A tracking cycle: combined PromQL queries and records, ms to a few s. A provider call: a local
# process or an exec command in ms, a cloud API call seconds, a Heat stack update or a drained removal minutes.
WEBHOOK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TRACKING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ACTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        self.build_info = Info("alertscaler_build", "alertscaler's version and the Python running it (value 1)",
                               registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version(),
                              "implementation": platform.python_implementation()})
        self.webhook_duration = Histogram(
            "alertscaler_webhook_duration_seconds", "Time from a webhook request's start to its answer (the "
            "notification durably recorded), by HTTP status", ["status"], buckets=WEBHOOK_BUCKETS, registry=r)
        self.notifications = Counter(
            "alertscaler_notifications_received_total", "Webhook notifications durably recorded", registry=r)
        self.alerts = Counter(
            "alertscaler_alerts_received_total", "Alerts in recorded notifications, by new/duplicate",
            ["kind"], registry=r)
        self.rejected = Counter(
            "alertscaler_notifications_rejected_total", "Webhook calls refused, by HTTP status",
            ["status"], registry=r)
        self.decisions = Counter(
            "alertscaler_decisions_total", "Decisions by group, outcome and reason",
            [G, "outcome", "reason"], registry=r)
        self.actions = Counter(
            "alertscaler_actions_total", "Finished provider actions by group and result",
            [G, "result"], registry=r)
        self.heals = Counter(
            "alertscaler_heals_total", "Members healed by a succeeded heal action, by group and action",
            [G, "action"], registry=r)
        self.action_retries = Counter(
            "alertscaler_action_retries_total", "Provider calls that failed temporarily and were retried",
            [G], registry=r)
        self.action_duration = Histogram(
            "alertscaler_action_duration_seconds", "Duration of one provider call", [G],
            buckets=ACTION_BUCKETS, registry=r)
        self.desired = Gauge("alertscaler_group_desired", "Desired capacity", [G], registry=r)
        self.current = Gauge("alertscaler_group_current", "Capacity reported by the provider",
                             [G], registry=r)
        self.min_size = Gauge("alertscaler_group_min_size", "The lower bound in force (min_size, or an open "
                              "schedule window's)", [G], registry=r)
        self.max_size = Gauge("alertscaler_group_max_size", "The upper bound in force (max_size, or an open "
                              "schedule window's)", [G], registry=r)
        self.paused = Gauge("alertscaler_group_paused", "1 while the group is paused (its own pause or a global "
                            "one): decisions are recorded as paused, nothing is executed", [G], registry=r)
        self.approvals_pending = Gauge("alertscaler_approvals_pending", "Changes of the group waiting for an "
                                       "operator's approval (alertscaler approvals)", [G], registry=r)
        self.active_alerts = Gauge("alertscaler_active_alerts", "Firing alerts routed to the group",
                                   [G], registry=r)
        self.tracking_cycle = Histogram(
            "alertscaler_tracking_cycle_seconds", "Wall time of a target-tracking cycle that had groups due "
            "(queries, decisions, records); near the shortest track.interval, it falls behind",
            buckets=TRACKING_BUCKETS, registry=r)
        self.tracking_groups = Counter(
            "alertscaler_tracking_groups_evaluated_total", "Target-tracking evaluations of a group", registry=r)
        self.config_reload_ok = Gauge(
            "alertscaler_config_last_reload_successful", "1 when the last load of the policy file (the start, a "
            "SIGHUP or POST /-/reload) was applied; 0 when it was refused and the previous configuration runs on",
            registry=r)
        self.config_reload_at = Gauge(
            "alertscaler_config_last_reload_success_timestamp_seconds",
            "When the policy file in use was loaded and applied (Unix time)", registry=r)
        self.tracking_requests = Counter(
            "alertscaler_tracking_prometheus_requests_total",
            "Requests to Prometheus' query API made by target tracking (queries are combined into few)",
            registry=r)
        # predictive scaling (act.prediction): a group's series are absent while it has no forecast
        self.forecast = Gauge(
            "alertscaler_forecast", "The group's load forecast (predict.query's unit) one predict.lead ahead: "
            "bound=mean, lower or upper (the central 80 % of the forecast), planned (its predict.quantile)",
            [G, "bound"], registry=r)
        self.forecast_desired = Gauge(
            "alertscaler_forecast_desired", "Capacity the forecast needs (ceil(planned / predict.per_instance), "
            "before the bounds)", [G], registry=r)
        self.forecast_skill = Gauge(
            "alertscaler_forecast_skill", "1 - the forecast's mean squared one-step error / the last value's (above "
            "predict.min_skill the forecast is used)", [G], registry=r)
        self.forecast_applied = Gauge(
            "alertscaler_forecast_applied", "1 when the forecast takes part in the group's decisions (it has skill "
            "and predict.forecast_only is off), else 0", [G], registry=r)
        self._forecast_groups: set[str] = set()
        # anomaly scores (act.anomaly): absent while a score cannot be computed
        self.anomaly_score = Gauge(
            "alertscaler_anomaly_score", "Anomaly score of a configured series (anomaly: in the policy file): "
            "kind=ks the two-sample Kolmogorov-Smirnov statistic D of the recent window against the reference "
            "window (0..1); kind=seasonal the median residual (value minus the value one season ago) of the "
            "recent window against the reference window's, in robust standard deviations", ["name", "kind"],
            registry=r)
        self.anomaly_p_value = Gauge(
            "alertscaler_anomaly_p_value", "Asymptotic p-value of the KS test behind alertscaler_anomaly_score"
            "{kind=\"ks\"} (small: the recent window is unlikely to follow the reference window's distribution)",
            ["name"], registry=r)
        self.anomaly_evaluations = Counter(
            "alertscaler_anomaly_evaluations_total", "Anomaly score evaluations by result: ok, insufficient_data "
            "(too few points), error (the query failed)", ["name", "result"], registry=r)

    def show_forecasts(self, views: Mapping[str, PredictionView]) -> None:
        """Set the forecast gauges from each predict group's view; drop the series of groups without one."""
        shown: set[str] = set()
        for group, view in views.items():
            f = view.forecast
            if f is None:
                continue
            shown.add(group)
            for bound, value in (("mean", f.mean), ("lower", f.lower), ("upper", f.upper), ("planned", f.planned)):
                self.forecast.labels(group, bound).set(value)
            self.forecast_desired.labels(group).set(f.ask)
            self.forecast_skill.labels(group).set(f.skill)
            self.forecast_applied.labels(group).set(1 if f.applies and not view.forecast_only else 0)
        for group in self._forecast_groups - shown:
            for bound in ("mean", "lower", "upper", "planned"):
                self.forecast.remove(group, bound)
            for gauge in (self.forecast_desired, self.forecast_skill, self.forecast_applied):
                gauge.remove(group)
        self._forecast_groups = shown
