"""Validate generated files with the real tools: ``promtool check rules``, ``promtool check config`` and
``amtool check-config``. The one module of confgen that runs programs; used by ``alertscaler check``.

A rejection is traced back to the policy file: promtool names the rule group and the rule's position
(``group "g", rule 2, "HighLoad": ...``), which maps to ``rules.groups[i].rules[j]``; when its message does
not, every rule is checked on its own to find the culprits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alertscaler.confgen.alertmanager import NULL_RECEIVER, route_snippet
from alertscaler.confgen.output import ALERTMANAGER_FILE, PROMETHEUS_FILE, RULES_FILE, render_all, write_files
from alertscaler.confgen.rules import rules_text, single_rule_text
from alertscaler.confgen.scrape import prometheus_config
from alertscaler.confgen.yamltext import dump, header
from alertscaler.config.render_input import RenderInput

TIMEOUT = 60.0
PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}
_RULE_ERROR = re.compile(r'group "(?P<group>.*?)", rule (?P<index>\d+), "(?P<name>.*?)": (?P<message>.*)$')
_LINODE_MISSING = "field linode_sd_configs not found"

Status = Literal["ok", "failed", "missing", "warning"]


@dataclass(frozen=True)
class Report:
    """One check's outcome. ``failed`` means the generated files were rejected (the policy needs fixing)."""

    check: str                       # "promtool check rules"
    status: Status
    summary: str
    problems: list[str] = field(default_factory=list)   # "rules.groups[0].rules[2] (alert X): promtool: ..."


def validate(inp: RenderInput, workdir: Path) -> list[Report]:
    """Render into ``workdir`` and run every available tool on the result."""
    write_files(workdir, render_all(inp))
    reports = []
    promtool = shutil.which("promtool")
    rules = _check_rules(promtool, inp, workdir)
    reports.append(rules)
    reports.append(_check_config(promtool, inp, workdir, syntax_only=rules.status == "failed"))
    reports.append(_check_alertmanager(shutil.which("amtool"), inp, workdir))
    if inp.queries:
        reports.append(_check_queries(promtool, inp.queries, workdir))
    return reports


def _missing(tool: str, what: str, check: str) -> Report:
    return Report(check, "missing",
                  f"{tool} not found on PATH: generated {what} not validated (install the Debian package "
                  f"{PACKAGES[tool]})")


def _run(argv: Sequence[str], cwd: Path) -> tuple[int, str] | str:
    """(exit code, stdout + stderr), or a sentence saying why the tool could not run."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"{argv[0]} did not finish within {TIMEOUT:.0f}s"
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror or exc}"
    return done.returncode, (done.stdout + "\n" + done.stderr)


def _clean(output: str, *paths: Path | str) -> str:
    """promtool's / amtool's message without the progress lines and the temporary paths."""
    lines = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line.startswith(("Checking ", "SUCCESS", "amtool: error: failed to validate")):
            continue
        line = line.removeprefix("FAILED:").strip()
        for path in paths:
            line = line.replace(f"{path}: ", "").replace(str(path), Path(str(path)).name)
        if line:
            lines.append(line)
    return "; ".join(lines)


# --- rules ------------------------------------------------------------------------------------------------
def check_rules(inp: RenderInput, workdir: Path) -> Report:
    """Render only the rule file into ``workdir`` and run ``promtool check rules`` on it."""
    write_files(workdir, {RULES_FILE: rules_text(inp.rules, inp.source, inp.carried)})
    return _check_rules(shutil.which("promtool"), inp, workdir)


def _check_rules(promtool: str | None, inp: RenderInput, workdir: Path) -> Report:
    check = "promtool check rules"
    if promtool is None:
        return _missing("promtool", "rules", check)
    count = sum(1 for _ in inp.rules.walk()) if inp.rules else 0
    result = _run([promtool, "check", "rules", RULES_FILE], workdir)
    if isinstance(result, str):
        return Report(check, "warning", f"{result}: generated rules not validated")
    code, output = result
    if code == 0:
        return Report(check, "ok", f"{count} rule(s) valid")
    problems = _mapped_rule_errors(inp, output) or _rule_by_rule(promtool, inp, workdir)
    if not problems:
        problems = [f"rules: promtool: {_clean(output, RULES_FILE)}"]
    return Report(check, "failed", "promtool rejected the generated rules", problems)


def _mapped_rule_errors(inp: RenderInput, output: str) -> list[str]:
    if inp.rules is None:
        return []
    origins = {(o.group.name, o.rule_index + 1): o for o in inp.rules.walk()}
    problems = []
    for line in output.splitlines():
        match = _RULE_ERROR.search(line)
        if not match:
            continue
        origin = origins.get((match["group"], int(match["index"])))
        if origin is None:
            return []  # not what we generated: let the rule-by-rule check find it
        problems.append(f"{origin}: promtool: {match['message'].strip()}")
    return problems


def _rule_by_rule(promtool: str, inp: RenderInput, workdir: Path) -> list[str]:
    if inp.rules is None:
        return []
    single = workdir / "single"
    single.mkdir(exist_ok=True)
    problems = []
    for origin in inp.rules.walk():
        name = f"rule-{origin.group_index}-{origin.rule_index}.yml"
        write_files(single, {name: single_rule_text(origin.group, origin.rule, inp.source, inp.carried)})
        result = _run([promtool, "check", "rules", name], single)
        if isinstance(result, tuple) and result[0] != 0:
            text = _clean(result[1], name)
            match = _RULE_ERROR.search(text)
            problems.append(f"{origin}: promtool: {match['message'].strip() if match else text}")
    return problems


# --- the policy file's own PromQL (track metrics, guard, size_by) -----------------------------------------
_QUERIES_FILE = "alertscaler-queries.check.yml"


def _check_queries(promtool: str | None, queries: Sequence[tuple[str, str]], workdir: Path) -> Report:
    """Each query as a recording rule in a group of its own, so that promtool's verdict names the query."""
    check = "promtool check rules (queries)"
    if promtool is None:
        return _missing("promtool", "queries", check)
    groups = [{"name": f"q{i}", "rules": [{"record": "alertscaler:query_check", "expr": query}]}
              for i, (_, query) in enumerate(queries)]
    (workdir / _QUERIES_FILE).write_text(dump({"groups": groups}, header("the policy file's PromQL queries")))
    result = _run([promtool, "check", "rules", _QUERIES_FILE], workdir)
    if isinstance(result, str):
        return Report(check, "warning", f"{result}: the policy file's queries not validated")
    code, output = result
    if code == 0:
        return Report(check, "ok", f"{len(queries)} quer{'y' if len(queries) == 1 else 'ies'} valid PromQL")
    problems = []
    for line in output.splitlines():
        match = _RULE_ERROR.search(line)
        if match and match["group"].startswith("q") and match["group"][1:].isdigit():
            index = int(match["group"][1:])
            if index < len(queries):
                message = match["message"].strip().removeprefix("could not parse expression:").strip()
                problems.append(f"{queries[index][0]}: promtool: {message}")
    if not problems:
        problems = [f"queries: promtool: {_clean(output, _QUERIES_FILE)}"]
    return Report(check, "failed", "promtool rejected PromQL in the policy file", problems)


# --- prometheus.yml ---------------------------------------------------------------------------------------
def _check_config(promtool: str | None, inp: RenderInput, workdir: Path, syntax_only: bool) -> Report:
    check = "promtool check config"
    if promtool is None:
        return _missing("promtool", PROMETHEUS_FILE, check)
    argv = [promtool, "check", "config", *(["--syntax-only"] if syntax_only else []), PROMETHEUS_FILE]
    result = _run(argv, workdir)
    if isinstance(result, str):
        return Report(check, "warning", f"{result}: generated {PROMETHEUS_FILE} not validated")
    code, output = result
    note = ""
    if code != 0 and _LINODE_MISSING in output and inp.scrape.linode is not None:
        # Debian's prometheus package is built without Linode service discovery: check the rest.
        config = prometheus_config(inp)
        config["scrape_configs"] = [j for j in config["scrape_configs"] if "linode_sd_configs" not in j]
        (workdir / "prometheus-without-linode.yml").write_text(dump(config, header(inp.source)))
        result = _run([*argv[:-1], "prometheus-without-linode.yml"], workdir)
        if isinstance(result, str):
            return Report(check, "warning", f"{result}: generated {PROMETHEUS_FILE} not validated")
        code, output = result
        note = (f"; job {inp.scrape.linode.job_name} not validated: this promtool has no linode_sd_configs "
                "(Debian's package leaves Linode discovery out; upstream builds have it)")
    if code == 0:
        valid = "syntax valid (its rule file is rejected above)" if syntax_only else "valid"
        return Report(check, "warning" if note else "ok", f"{PROMETHEUS_FILE} {valid}{note}")
    message = _clean(output, PROMETHEUS_FILE, "prometheus-without-linode.yml")
    return Report(check, "failed", f"promtool rejected the generated {PROMETHEUS_FILE}",
                  [f"{PROMETHEUS_FILE} (scrape, alertmanager url): promtool: {message}"])


# --- alertmanager.yml -------------------------------------------------------------------------------------
def _check_alertmanager(amtool: str | None, inp: RenderInput, workdir: Path) -> Report:
    check = "amtool check-config"
    if amtool is None:
        return _missing("amtool", ALERTMANAGER_FILE, check)
    merged = "alertmanager-route.check.yml"
    (workdir / merged).write_text(dump(_snippet_in_a_config(inp), header(inp.source)))
    problems = []
    for name, origin in ((ALERTMANAGER_FILE, "alertmanager"), (merged, "alertmanager (route snippet)")):
        result = _run([amtool, "check-config", name], workdir)
        if isinstance(result, str):
            return Report(check, "warning", f"{result}: generated {ALERTMANAGER_FILE} not validated")
        code, output = result
        if code != 0:
            problems.append(f"{origin}: amtool: {_clean(output, name)}")
    if problems:
        return Report(check, "failed", f"amtool rejected the generated {ALERTMANAGER_FILE}", problems)
    return Report(check, "ok", f"{ALERTMANAGER_FILE} and the route snippet valid")


def _snippet_in_a_config(inp: RenderInput) -> dict[str, Any]:
    """The route snippet merged into a minimal configuration, as a user would merge it."""
    snippet = route_snippet(inp)
    default = NULL_RECEIVER if inp.alertmanager.receiver != NULL_RECEIVER else "default"
    return {"route": {"receiver": default, "routes": snippet["route"]["routes"]},
            "receivers": [{"name": default}, *snippet["receivers"]]}

