"""All generated files by name, and the one function here that writes: atomically (temporary file in the
same directory, then ``os.replace``), so Prometheus never reads half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from alertscaler.confgen.alertmanager import alertmanager_text, route_snippet_text
from alertscaler.confgen.rules import rules_text
from alertscaler.confgen.scrape import RULE_FILES, prometheus_text, scrape_configs_text
from alertscaler.config.render_input import RenderInput

RULES_FILE = RULE_FILES[0]
PROMETHEUS_FILE = "prometheus.yml"
SCRAPE_FILE = "scrape_configs.yml"
ALERTMANAGER_FILE = "alertmanager.yml"
ROUTE_FILE = "alertmanager-route.yml"


def render_all(inp: RenderInput) -> dict[str, str]:
    """Relative path -> file content, in a fixed order."""
    return {
        RULES_FILE: rules_text(inp.rules, inp.source, inp.carried),
        PROMETHEUS_FILE: prometheus_text(inp),
        SCRAPE_FILE: scrape_configs_text(inp),
        ALERTMANAGER_FILE: alertmanager_text(inp),
        ROUTE_FILE: route_snippet_text(inp),
    }


def write_files(out_dir: str | Path, files: dict[str, str]) -> list[Path]:
    """Write each file under ``out_dir`` atomically; return the paths written. Raises OSError."""
    written = []
    for name, text in files.items():
        target = Path(out_dir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
