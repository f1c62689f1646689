"""Scrape jobs and a complete prometheus.yml from the policy file's ``scrape`` section.

- ``alertscaler``: the group members, from alertscaler's ``/api/v1/targets`` (http_sd); their labels are
  ``alertscaler_group``, ``alertscaler_member``, ``alertscaler_provider``, ``alertscaler_state`` (names no
  exporter uses, so a metric's own labels are never renamed to ``exported_*``).
- ``openstack``: Nova instances whose metadata carries the ownership tag, relabelled like the Heat
  autoscaling guides do (instance name, id, status, stack/project metadata).
- ``linode``: Linodes with a tag, scraped on their public IPv6 (their public IPv4 when they have none), named by
  their label: seed 002's ``linode_sd_configs`` job, with the token read from a file; ``alertscaler_member`` is
  the Linode id (the ``linode`` provider's member id).
- ``alertscaler-metrics``: alertscaler's own ``/metrics``, when the policy file has ``anomaly:`` scores (alert
  rules watch ``alertscaler_anomaly_score``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from alertscaler.confgen.yamltext import dump, header
from alertscaler.config.prometheus_side import GROUP_LABEL, LinodeScrape, OpenStackScrape
from alertscaler.config.render_input import RenderInput
from alertscaler.model.durations import format_duration

RULE_FILES = ["rules/alertscaler.rules.yml"]
_OPENSTACK_META = "__meta_openstack_"


def _meta_name(key: str) -> str:
    """Prometheus' name for a metadata key (its SanitizeLabelName): other characters become ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _literal_regex(text: str) -> str:
    """``text`` matched literally by an RE2 regex."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _group_relabel(group: str | None) -> list[dict[str, Any]]:
    return [] if group is None else [{"target_label": GROUP_LABEL, "replacement": group}]


def alertscaler_job(inp: RenderInput) -> dict[str, Any]:
    sd: dict[str, Any] = {"url": f"{inp.url}/api/v1/targets",
                          "refresh_interval": format_duration(inp.scrape.refresh_interval)}
    sd.update(inp.http_auth())
    return {"job_name": "alertscaler", "http_sd_configs": [sd]}


def alertscaler_metrics_job(inp: RenderInput) -> dict[str, Any]:
    """alertscaler's own /metrics (its anomaly scores); it needs no credentials."""
    parts = urlsplit(inp.url)
    job: dict[str, Any] = {"job_name": "alertscaler-metrics", "metrics_path": f"{parts.path}/metrics"}
    if parts.scheme != "http":
        job["scheme"] = parts.scheme
    job["static_configs"] = [{"targets": [parts.netloc]}]
    return job


def openstack_job(job: OpenStackScrape) -> dict[str, Any]:
    sd: dict[str, Any] = {"role": job.role, "region": job.region, "port": job.port,
                          "refresh_interval": format_duration(job.refresh_interval)}
    if job.availability != "public":
        sd["availability"] = job.availability
    if job.all_tenants:
        sd["all_tenants"] = True
    relabel: list[dict[str, Any]] = [
        {"source_labels": [f"{_OPENSTACK_META}tag_{_meta_name(job.tag_key)}"], "regex": job.tag_value,
         "action": "keep"},
        {"source_labels": [f"{_OPENSTACK_META}instance_name"], "target_label": "instance"},
        {"source_labels": [f"{_OPENSTACK_META}instance_id"], "target_label": "openstack_id"},
        {"source_labels": [f"{_OPENSTACK_META}instance_status"], "target_label": "openstack_status"},
    ]
    relabel += [{"source_labels": [f"{_OPENSTACK_META}tag_{_meta_name(key)}"], "target_label": label}
                for key, label in sorted(job.labels.items())]
    if job.group is None:  # each server says its group (openstack-nova sets this metadata key)
        relabel.append({"source_labels": [f"{_OPENSTACK_META}tag_{_meta_name(job.group_metadata)}"],
                        "regex": "(.+)", "target_label": GROUP_LABEL})
    relabel += _group_relabel(job.group)
    return {"job_name": job.job_name, "openstack_sd_configs": [sd], "relabel_configs": relabel}


def linode_job(job: LinodeScrape) -> dict[str, Any]:
    sd = {"authorization": {"credentials_file": job.authorization_credentials_file}, "port": job.port,
          "refresh_interval": format_duration(job.refresh_interval)}
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["__meta_linode_tags"], "regex": f".*,{_literal_regex(job.tag)},.*", "action": "keep"},
        # a Linode without a public IPv6 keeps the SD's address (its public IPv4 and ``port``), not "[]:port"
        {"source_labels": ["__meta_linode_public_ipv6"], "regex": "(.+)", "target_label": "__address__",
         "replacement": f"[$1]:{job.port}"},
        {"source_labels": ["__meta_linode_instance_label"], "action": "replace", "target_label": "instance"},
        # the member id of the linode provider: an alert on a member's series (up == 0) names it for healing
        {"source_labels": ["__meta_linode_instance_id"], "target_label": "alertscaler_member"},
    ]
    relabel += _group_relabel(job.group)
    return {"job_name": job.job_name, "linode_sd_configs": [sd], "relabel_configs": relabel}


def scrape_configs(inp: RenderInput) -> list[dict[str, Any]]:
    """The scrape jobs, in a fixed order: alertscaler, alertscaler-metrics, openstack, linode."""
    jobs = []
    if inp.scrape.http_sd:
        jobs.append(alertscaler_job(inp))
    if inp.metrics_job:
        jobs.append(alertscaler_metrics_job(inp))
    if inp.scrape.openstack is not None:
        jobs.append(openstack_job(inp.scrape.openstack))
    if inp.scrape.linode is not None:
        jobs.append(linode_job(inp.scrape.linode))
    return jobs


def alertmanager_target(url: str) -> dict[str, Any]:
    """``alerting.alertmanagers`` entry for an Alertmanager URL (``http://host:9093[/prefix]`` or ``host:port``)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.netloc:
        raise ValueError(f"not an Alertmanager URL like http://127.0.0.1:9093: {url!r}")
    entry: dict[str, Any] = {}
    if parts.scheme != "http":
        entry["scheme"] = parts.scheme
    if parts.path.strip("/"):
        entry["path_prefix"] = parts.path
    entry["static_configs"] = [{"targets": [parts.netloc]}]
    return entry


def prometheus_config(inp: RenderInput) -> dict[str, Any]:
    scrape = inp.scrape
    evaluation = scrape.evaluation_interval if scrape.evaluation_interval is not None else scrape.scrape_interval
    return {
        "global": {"scrape_interval": format_duration(scrape.scrape_interval),
                   "evaluation_interval": format_duration(evaluation)},
        "alerting": {"alertmanagers": [alertmanager_target(inp.alertmanager_url)]},
        "rule_files": list(RULE_FILES),
        "scrape_configs": scrape_configs(inp),
    }


def notes(inp: RenderInput) -> list[str]:
    """Header lines: where credentials come from (never the credentials themselves)."""
    out = list(inp.credentials_note()) if inp.scrape.http_sd else []
    job = inp.scrape.openstack
    if job is not None:
        out += ["", f"job {job.job_name}: Prometheus 2.42 cannot read an OpenStack secret from a file, so the",
                "credentials are not in this file: Prometheus reads them from its environment",
                "(Debian: /etc/default/prometheus; openstack_sd_configs has no identity_endpoint here):"]
        env = job.environment()
        out += [f"  {k}={v}" for k, v in env] if env else ["  OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, ... (none given)"]
    if inp.scrape.linode is not None:
        out += ["", f"job {inp.scrape.linode.job_name}: the Linode API token is read from "
                f"{inp.scrape.linode.authorization_credentials_file}",
                "(linode_sd_configs is missing from Debian's prometheus package; use an upstream build)"]
    return out


def prometheus_text(inp: RenderInput) -> str:
    return dump(prometheus_config(inp), header(inp.source, *notes(inp)))


def scrape_configs_text(inp: RenderInput) -> str:
    head = header(inp.source, "add these jobs to scrape_configs in your prometheus.yml, and the rule file",
                  f"{RULE_FILES[0]} to rule_files", "", *notes(inp))
    return dump({"scrape_configs": scrape_configs(inp)}, head)

