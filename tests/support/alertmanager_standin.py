"""An in-process Alertmanager API v2 stand-in: ``GET /api/v2/alerts`` answers the alerts a test sets (each
``active`` or silenced), ``filter`` matchers of the form ``name="value"`` applied; ``down`` answers 503. A real
HTTP server on 127.0.0.1 (a free port, a daemon thread), so the real ``AlertmanagerClient`` talks to it."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_EQ = re.compile(r'^(\w+)="(.*)"$')


@dataclass
class AlertmanagerStandin:
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> API v2 alert
    down: bool = False
    asked: int = 0

    def fire(self, webhook_alert: dict[str, Any], silenced_by: tuple[str, ...] = ()) -> None:
        """Hold ``webhook_alert`` (a tests.support.webhooks.alert) as Alertmanager would, maybe silenced."""
        self.alerts[webhook_alert["fingerprint"]] = {
            "fingerprint": webhook_alert["fingerprint"], "labels": webhook_alert["labels"], "annotations": {},
            "startsAt": webhook_alert["startsAt"], "endsAt": "2999-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "receivers": [{"name": "alertscaler"}],
            "status": {"state": "suppressed" if silenced_by else "active", "silencedBy": list(silenced_by),
                       "inhibitedBy": []}}

    def forget(self, webhook_alert: dict[str, Any]) -> None:
        self.alerts.pop(webhook_alert["fingerprint"], None)

    def __enter__(self) -> AlertmanagerStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                standin.asked += 1
                if standin.down:
                    return self._answer(503, "down for maintenance")
                if parts.path != "/api/v2/alerts":
                    return self._answer(404, "not found")
                wanted = [_EQ.match(f) for f in parse_qs(parts.query).get("filter", [])]
                found = [a for a in list(standin.alerts.values())
                         if all(m is not None and a["labels"].get(m[1]) == m[2] for m in wanted)]
                return self._answer(200, found)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
