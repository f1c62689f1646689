"""``act.reloading.diff_policies``: what a new version of the policy file changes, and what needs a restart.
Table-driven: each case is the base file with one edit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from alertscaler.act.reloading import PolicyDiff, diff_policies
from alertscaler.config import PolicyFile, load_policy

BASE = """
server:
  listen: 127.0.0.1:8080
  auth: {bearer_token: first-token-123}
  reevaluate_interval: 5s
store: {retention: 30d}
prometheus: {url: "http://127.0.0.1:9090"}
actions: {max_attempts: 5}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 4
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1}
  batch:
    provider: {type: fake, initial: 2}
    min_size: 0
    max_size: 10
"""

API_GROUP = """
  api:
    provider: {type: fake}
    min_size: 1
    max_size: 3
"""

ALARM = """
alarms:
  cpu_high:
    meter_name: cpu_util
    threshold: 70.0
    comparison_operator: gt
    statistic: avg
    period: 600
    evaluation_periods: 3
"""


def load(text: str, base: Path) -> PolicyFile:
    return load_policy(text, base_dir=base)


@dataclass(frozen=True)
class Case:
    edit: str  # which edit of BASE (``edited``)
    expected: PolicyDiff
    describe: str


def edited(kind: str) -> str:
    return {
        "same": BASE,
        "default-spelled-out": BASE.replace("    max_size: 4\n", "    max_size: 4\n    dry_run: false\n"),
        "add-group": BASE + API_GROUP,
        "remove-group": BASE.split("  batch:")[0],
        "bounds": BASE.replace("max_size: 4", "max_size: 6"),
        "provider": BASE.replace("{type: fake, initial: 2}", "{type: fake, initial: 3}"),
        "add-change-remove": BASE.split("  batch:")[0].replace("max_size: 4", "max_size: 6") + API_GROUP,
        "token": BASE.replace("first-token-123", "second-token-456"),
        "interval": BASE.replace("reevaluate_interval: 5s", "reevaluate_interval: 10s"),
        "prometheus-actions": BASE.replace("9090", "9091").replace("max_attempts: 5", "max_attempts: 3"),
        "listen": BASE.replace("127.0.0.1:8080", "127.0.0.1:8081"),
        "retention": BASE.replace("retention: 30d", "retention: 60d"),
        "store-path": BASE.replace("store: {retention: 30d}", "store: {retention: 30d, path: other.db}"),
        "state-dir": BASE.replace("  reevaluate_interval: 5s\n", "  reevaluate_interval: 5s\n  state_dir: ./st\n"),
        "listen-and-group": BASE.replace("127.0.0.1:8080", "127.0.0.1:8081") + API_GROUP,
        "notification-methods": BASE + "notification_methods: {audit: {type: log}}\n",
        "alarms": BASE + ALARM,
        "anomaly": BASE + "anomaly:\n  - {name: lat, query: 'web:latency_seconds:avg1m', window: 10m}\n",
    }[kind]


CASES = {
    "same": Case("same", PolicyDiff(unchanged=("batch", "web")), "no change"),
    "default-spelled-out": Case("default-spelled-out", PolicyDiff(unchanged=("batch", "web")), "no change"),
    "add-group": Case("add-group", PolicyDiff(added=("api",), unchanged=("batch", "web")), "groups added: api"),
    "remove-group": Case("remove-group", PolicyDiff(removed=("batch",), unchanged=("web",)), "removed: batch"),
    "bounds": Case("bounds", PolicyDiff(changed=("web",), unchanged=("batch",)), "changed: web"),
    "provider": Case("provider", PolicyDiff(changed=("batch",), unchanged=("web",), new_providers=("batch",)),
                     "changed: batch (new provider)"),
    "add-change-remove": Case("add-change-remove", PolicyDiff(added=("api",), changed=("web",), removed=("batch",)),
                              "groups added: api; changed: web; removed: batch"),
    "token": Case("token", PolicyDiff(unchanged=("batch", "web"), sections=("server.auth",)),
                  "settings changed: server.auth"),
    "interval": Case("interval", PolicyDiff(unchanged=("batch", "web"), sections=("server.reevaluate_interval",)),
                     "settings changed: server.reevaluate_interval"),
    "prometheus-actions": Case("prometheus-actions",
                               PolicyDiff(unchanged=("batch", "web"), sections=("prometheus", "actions")),
                               "settings changed: prometheus, actions"),
    "listen": Case("listen", PolicyDiff(unchanged=("batch", "web"), restart=("server.listen",)),
                   "needing a restart: server.listen"),
    "retention": Case("retention", PolicyDiff(unchanged=("batch", "web"), restart=("store.retention",)),
                      "needing a restart: store.retention"),
    "store-path": Case("store-path", PolicyDiff(unchanged=("batch", "web"), restart=("store.path",)),
                       "needing a restart: store.path"),
    # the default database is under the state directory: it moves too
    "state-dir": Case("state-dir", PolicyDiff(unchanged=("batch", "web"), restart=("server.state_dir", "store.path")),
                      "needing a restart: server.state_dir, store.path"),
    "notification-methods": Case("notification-methods",
                                 PolicyDiff(unchanged=("batch", "web"), sections=("notification_methods",)),
                                 "settings changed: notification_methods"),
    # every top-level section is compared (derived from the schema): alarms and anomaly scores are applied live
    "alarms": Case("alarms", PolicyDiff(unchanged=("batch", "web"), sections=("alarms",)),
                   "settings changed: alarms"),
    "anomaly": Case("anomaly", PolicyDiff(unchanged=("batch", "web"), sections=("anomaly",)),
                    "settings changed: anomaly"),
    "listen-and-group": Case("listen-and-group",
                             PolicyDiff(added=("api",), unchanged=("batch", "web"), restart=("server.listen",)),
                             "groups added: api; needing a restart: server.listen"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_diff(tmp_path: Path, case: Case) -> None:
    old = load(BASE, tmp_path)
    new = load(edited(case.edit), tmp_path)

    diff = diff_policies(old, new)

    assert diff == case.expected
    assert diff.describe() == case.describe
    assert diff.empty == (case.describe == "no change")


def test_the_same_file_moved_elsewhere_needs_a_restart(tmp_path: Path) -> None:
    """Relative paths resolve from the file's directory: the same text elsewhere is another database and state."""
    old = load(BASE, tmp_path / "a")
    new = load(BASE, tmp_path / "b")

    assert diff_policies(old, new).restart == ("server.state_dir", "store.path")


def test_a_secret_read_from_a_file_is_compared_by_value(tmp_path: Path) -> None:
    """A rotated token (same file name, new content) is a change to apply: the configurations differ."""
    token = tmp_path / "token"
    token.write_text("first-token-123\n")
    text = BASE.replace("{bearer_token: first-token-123}", f"{{bearer_token_file: {token}}}")
    old = load(text, tmp_path)
    token.write_text("second-token-456\n")

    assert diff_policies(old, load(text, tmp_path)).sections == ("server.auth",)
