"""What ``confgen`` needs to render the Prometheus side, as plain values, and the defaults of the two paths
that are not in the policy file (alertscaler's token file, Alertmanager's URL). Part of ``config``.

Built from the policy file by ``PolicyFile.render_input`` (``cli``, ``service``), or by hand in tests;
read by every ``confgen`` generator. It lives here, not in ``confgen``, because ``config`` describes what
``confgen`` renders: ``confgen`` sits above ``config`` in the layers and ``config`` never imports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alertscaler.config.prometheus_side import AlertmanagerRoute, PrometheusRules, ScrapeJobs

DEFAULT_TOKEN_FILE = "/etc/alertscaler/token"
DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"


@dataclass(frozen=True)
class RenderInput:
    source: str                                   # the policy file, as named in the headers
    server_url: str                               # alertscaler's base URL, e.g. http://127.0.0.1:8080
    auth: Literal["none", "bearer", "basic"] = "none"
    basic_username: str | None = None             # with auth == "basic"
    rules: PrometheusRules | None = None
    alertmanager: AlertmanagerRoute = field(default_factory=AlertmanagerRoute)
    scrape: ScrapeJobs = field(default_factory=ScrapeJobs)
    token_file: str = DEFAULT_TOKEN_FILE          # holds alertscaler's token (or basic-auth password)
    alertmanager_url: str = DEFAULT_ALERTMANAGER_URL
    #: group -> labels its provider reads from alerts (openstack-heat with stack_from_labels): the group's
    #: alert rules copy them from the firing series
    carried: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: (path in the policy file, PromQL) of the queries alertscaler itself runs: checked, never rendered
    queries: tuple[tuple[str, str], ...] = ()
    #: scrape alertscaler's own /metrics too (the policy file has ``anomaly:`` scores for alert rules to watch)
    metrics_job: bool = False

    @property
    def url(self) -> str:
        return self.server_url.rstrip("/")

    def http_auth(self) -> dict[str, object]:
        """The ``authorization`` / ``basic_auth`` block for calls to alertscaler (empty without auth)."""
        if self.auth == "bearer":
            return {"authorization": {"credentials_file": self.token_file}}
        if self.auth == "basic":
            return {"basic_auth": {"username": self.basic_username or "", "password_file": self.token_file}}
        return {}

    def credentials_note(self) -> list[str]:
        """Header lines saying where the credentials come from."""
        if self.auth == "none":
            return ["alertscaler runs without authentication (server.auth.insecure_no_auth): no credentials here."]
        what = "token" if self.auth == "bearer" else f"basic-auth password of user {self.basic_username}"
        return [f"alertscaler's {what} is read from {self.token_file} (render --token-file PATH);",
                "put it there, readable by Prometheus and Alertmanager: it is never written into generated files."]
