"""Rule sync, Tacker-style but safe: put the generated rule file where Prometheus loads it, and never leave
Prometheus with a broken or half-written file.

Steps: render → ``promtool check rules`` in a private temporary directory (Prometheus never sees a file
promtool rejected) → back up the current file → atomic replace → ``POST /-/reload`` → confirm through
``GET /api/v1/rules`` that every generated group and rule is loaded from that file → on any failure,
restore the previous file (or remove the new one), reload again, and report what happened.

Called by ``cli`` (``alertscaler rules sync``) and ``service`` (``prometheus.sync_rules_on_start``), each with
the one Prometheus client of the policy file's ``prometheus`` section (``PrometheusClient.from_config``: URL,
bearer token, TLS, timeout): this module talks to Prometheus only through the ``RuleReloader`` it is given
(a ``Protocol``: the client is passed in, never built here, and tests pass a fake).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from alertscaler.confgen.output import write_files
from alertscaler.confgen.rules import rules_text
from alertscaler.confgen.validate import check_rules
from alertscaler.config.render_input import RenderInput
from alertscaler.model.errors import PrometheusUnavailable

log = logging.getLogger(__name__)


class SyncError(Exception):
    """Rule sync refused or failed; ``rolled_back`` says whether a change had to be undone."""

    def __init__(self, message: str, problems: list[str] | None = None, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.problems = problems or []
        self.rolled_back = rolled_back


class RuleReloader(Protocol):
    """What rule sync asks of Prometheus (``prometheus.client.PrometheusClient`` has it). Both raise
    ``PrometheusUnavailable`` when Prometheus cannot be reached or refuses."""

    def reload(self) -> None:
        """``POST /-/reload``."""

    def rules(self) -> dict[str, Any]:
        """``GET /api/v1/rules``: Prometheus' JSON answer."""


@dataclass(frozen=True)
class SyncResult:
    path: Path
    changed: bool
    groups: int
    rules: int
    steps: list[str] = field(default_factory=list)


def expected_rules(text: str) -> dict[str, list[str]]:
    """Group name → rule names (alert or record) of a rule file's text."""
    doc = yaml.safe_load(text) or {}
    return {g["name"]: [r.get("alert") or r.get("record") for r in g.get("rules", [])]
            for g in doc.get("groups", [])}


def loaded_rules(rules_api: dict[str, Any], path: Path) -> dict[str, list[str]]:
    """Group name → rule names that Prometheus reports loaded from ``path`` (``GET /api/v1/rules``)."""
    out: dict[str, list[str]] = {}
    for group in rules_api.get("data", {}).get("groups", []):
        if _same_file(Path(group.get("file", "")), path):
            out[group["name"]] = [r.get("name", "") for r in group.get("rules", [])]
    return out


def _same_file(reported: Path, path: Path) -> bool:
    """Prometheus reports rule files as written in rule_files (maybe relative to its config file)."""
    if reported.is_absolute():
        return reported.resolve() == path.resolve()
    return path.resolve().parts[-len(reported.parts):] == reported.parts


def sync_rules(inp: RenderInput, rules_dir: Path, file_name: str, prometheus: RuleReloader,
               require_promtool: bool = True) -> SyncResult:
    """Install the rule file for ``inp`` into ``rules_dir / file_name`` and make ``prometheus`` load it."""
    text = rules_text(inp.rules, inp.source, inp.carried)
    target = rules_dir / file_name
    steps: list[str] = []
    want = expected_rules(text)
    count = sum(len(v) for v in want.values())
    previous = target.read_text() if target.exists() else None
    if previous == text:
        _confirm(prometheus, target, want)
        return SyncResult(target, False, len(want), count, ["unchanged; Prometheus has it loaded"])
    _validate(inp, require_promtool, steps)
    rules_dir.mkdir(parents=True, exist_ok=True)
    write_files(rules_dir, {file_name: text})
    steps.append(f"wrote {target}")
    try:
        _reload(prometheus)
        steps.append("Prometheus reloaded")
        _confirm(prometheus, target, want)
        steps.append(f"Prometheus reports {len(want)} group(s), {count} rule(s) loaded from {target.name}")
    except SyncError as exc:
        _restore(target, previous, rules_dir)
        try:
            _reload(prometheus)
            undo = "previous rules restored and reloaded"
        except SyncError as again:
            undo = f"previous rules restored; reloading them failed too: {again}"
        log.error("rule sync failed, rolled back: %s (%s)", exc, undo)
        raise SyncError(f"{exc}; {undo}", exc.problems, rolled_back=True) from None
    log.info("rule sync: %s", "; ".join(steps))
    return SyncResult(target, True, len(want), count, steps)


def _validate(inp: RenderInput, require_promtool: bool, steps: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="alertscaler-sync-") as tmp:
        report = check_rules(inp, Path(tmp))
    if report.status == "failed":
        raise SyncError("promtool rejected the generated rules; nothing changed", report.problems)
    if report.status != "ok":
        if require_promtool:
            raise SyncError(f"{report.summary}; refusing to sync unvalidated rules (or pass --no-promtool)")
        steps.append(f"NOT validated: {report.summary}")
        return
    steps.append(f"promtool: {report.summary}")


def _reload(prometheus: RuleReloader) -> None:
    try:
        prometheus.reload()
    except PrometheusUnavailable as exc:
        raise SyncError(str(exc) if exc.status_code is not None else f"cannot reach Prometheus: {exc}") from None


def _confirm(prometheus: RuleReloader, target: Path, want: dict[str, list[str]]) -> None:
    try:
        loaded = loaded_rules(prometheus.rules(), target)
    except PrometheusUnavailable as exc:
        raise SyncError(f"cannot read Prometheus' loaded rules: {exc}") from None
    if loaded != want:
        missing = sorted(set(want) - set(loaded))
        hint = (f"groups {', '.join(missing)} not loaded from {target}: is {target.parent} in prometheus.yml's "
                "rule_files?") if missing else f"loaded rules differ from the file: {loaded} != {want}"
        raise SyncError(f"Prometheus did not load the new rules: {hint}")


def _restore(target: Path, previous: str | None, rules_dir: Path) -> None:
    if previous is None:
        target.unlink(missing_ok=True)
        return
    write_files(rules_dir, {target.name: previous})


