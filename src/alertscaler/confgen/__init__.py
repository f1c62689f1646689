"""Generate the Prometheus side from a policy file: the rule file, the scrape jobs, a complete
prometheus.yml, the Alertmanager route + receiver and a complete alertmanager.yml.

Everything here is a pure function of its input (``config.render_input.RenderInput``, built by
``PolicyFile.render_input``) returning dicts or YAML text, the same bytes for the same input;
``output.write_files`` is the only writer and ``validate`` the only module that runs programs (promtool,
amtool). Secrets are never written: generated files point at credential files.

Sits above ``config`` in the layers (it renders what ``config`` describes), beside ``act``; called by ``cli``,
``service`` (rule sync on start) and ``demo``.
"""

from alertscaler.confgen.output import (
    ALERTMANAGER_FILE,
    PROMETHEUS_FILE,
    ROUTE_FILE,
    RULES_FILE,
    SCRAPE_FILE,
    render_all,
    write_files,
)

__all__ = [
    "ALERTMANAGER_FILE",
    "PROMETHEUS_FILE",
    "ROUTE_FILE",
    "RULES_FILE",
    "SCRAPE_FILE",
    "render_all",
    "write_files",
]
