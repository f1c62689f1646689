"""Operators stay in control, end to end and all real: Prometheus fires real rules, Alertmanager delivers and is
asked (API v2) whether they are silenced, alertscaler runs as its own process on a SQLite store.

- a silence made through Alertmanager's API stops a persistent alert from stepping; once the silence is expired
  and the alert still fires, it acts again;
- an alert that resolves while silenced (Alertmanager sends no resolved notification for it) is reconciled away
  and never steps again;
- a pause made with the CLI survives a restart of the service: a firing alert is decided ``paused``, nothing is
  executed, ``status`` shows the pause.

Absence of a step is shown against a witness: a second group whose alert fires the whole time, with the same
cooldown, stepping on the same re-evaluation timer. Two of its steps after a point prove that two cooldowns passed
there, without a fixed sleep.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.cli import EXIT_OK, main
from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

SILENCES = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager:
  url: $ALERTMANAGER_URL
  reconcile_interval: 1s
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
groups:
  web:
    provider: {type: fake, initial: 1}
    min_size: 1
    max_size: 6
    desired: 1
    scale_out: {matchers: ['alertname="KeepAdding"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 2s}
  witness:
    provider: {type: fake, initial: 1}
    min_size: 1
    max_size: 100
    desired: 1
    scale_out: {matchers: ['alertname="Tick"', 'alertscaler_group="witness"'], adjustment: 1, cooldown: 2s}
rules:
  groups:
    - name: e2e-silences
      rules:
        - alert: KeepAdding
          expr: control_value{name="add"} > 0
          for: 0s
          group: web
        - alert: Tick
          expr: control_value{name="tick"} > 0
          for: 0s
          group: witness
"""


class Am:
    """Alertmanager's real API v2: silences made and expired as an operator (or amtool) would."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def silence(self, alertname: str) -> str:
        now = datetime.now(UTC)
        response = self.http.post("/api/v2/silences", json={
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "e2e", "comment": "incident 42"})
        assert response.status_code == 200, response.text
        silence_id: str = response.json()["silenceID"]
        return silence_id

    def expire(self, silence_id: str) -> None:
        response = self.http.delete(f"/api/v2/silence/{silence_id}")
        assert response.status_code == 200, response.text

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v2/alerts", params={"filter": f'alertname="{alertname}"'})
        assert response.status_code == 200, response.text
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def close(self) -> None:
        self.http.close()


def after(p: Pipeline, group: str, decision_id: int, outcome: str | None = None) -> list[dict[str, Any]]:
    return [d for d in p.decisions(group=group) if d["id"] > decision_id and outcome in (None, d["outcome"])]


def witness_steps_after(p: Pipeline, decision_id: int, steps: int, what: str) -> None:
    """Wait until the witness group stepped ``steps`` times after ``decision_id``: that many of its 2 s cooldowns
    (the web group's too) passed on the re-evaluation timer."""
    p.wait(lambda: len(after(p, "witness", decision_id, "acted")) >= steps, 30,
           f"{steps} witness steps after decision {decision_id} ({what})")


def fire_step_then_silence(p: Pipeline, am: Am) -> tuple[str, dict[str, Any]]:
    """The alert fires and steps once; a silence on it stops it: (the silence, the ``silenced`` decision)."""
    p.wait(lambda: p.group("web")["current"] == 1 and p.group("witness")["current"] == 1, 30, "both groups up")
    p.control.set("tick", 1)
    p.control.set("add", 1)
    p.wait(lambda: [d for d in p.decisions(group="web") if d["reason"] == "scaled"], 30, "the alert's first step")
    silence_id = am.silence("KeepAdding")
    silenced = p.wait(lambda: next((d for d in p.decisions(group="web") if d["reason"] == "silenced"), None), 30,
                      "a silenced decision")
    return silence_id, silenced


def test_a_silence_stops_scaling_until_it_is_expired(tmp_path: Path) -> None:
    am = None
    with Pipeline(tmp_path, SILENCES) as p:
        am = Am(p.stack.alertmanager_url)
        try:
            silence_id, silenced = fire_step_then_silence(p, am)
            held = silenced["to_capacity"]
            assert silenced["from_capacity"] == held and silence_id in silenced["message"]
            witness_steps_after(p, silenced["id"], 2, "while silenced")
            assert after(p, "web", silenced["id"], "acted") == []  # two cooldowns over, the alert firing: no step
            assert p.group("web")["desired"] == held
            (active,) = p.http.get("/api/v1/alerts/active", params={"group": "web"}).json()
            assert active["last_reason"] == "silenced"

            am.expire(silence_id)  # the alert still fires: it acts at the next re-evaluation
            (step, *_) = p.wait(lambda: after(p, "web", silenced["id"], "acted"), 30, "a step after the silence")
            assert (step["reason"], step["from_capacity"], step["to_capacity"], step["trigger"]) == (
                "scaled", held, held + 1, "timer")
            p.wait(lambda: p.group("web")["current"] == held + 1, 30, "the step carried out")
        finally:
            am.close()


def test_a_resolve_lost_while_silenced_does_not_keep_scaling(tmp_path: Path) -> None:
    am = None
    with Pipeline(tmp_path, SILENCES) as p:
        am = Am(p.stack.alertmanager_url)
        try:
            silence_id, silenced = fire_step_then_silence(p, am)
            held = silenced["to_capacity"]
            p.control.set("add", 0)  # resolves while silenced: Alertmanager notifies nobody
            p.wait(lambda: am.alerts("KeepAdding") == [], 30, "Alertmanager no longer has the resolved alert")
            # still silenced, no resolved notification: the next question to Alertmanager finds a phantom
            reconciled = p.wait(lambda: next((d for d in p.decisions(group="web") if d["reason"] == "reconciled"),
                                             None), 30, "the phantom alert reconciled")
            assert "no longer has" in reconciled["message"]
            assert "resolved" not in [d["reason"] for d in p.decisions(group="web")]  # none came
            assert p.http.get("/api/v1/alerts/active", params={"group": "web"}).json() == []
            am.expire(silence_id)  # the silence ends: nothing believed firing is left to step
            witness_steps_after(p, reconciled["id"], 2, "after the silence ended")
            web = p.decisions(group="web")
            assert [d for d in web if d["id"] > silenced["id"] and d["outcome"] == "acted"] == []
            # Alertmanager may still deliver the resolve once the silence is gone: a no-op by then
            assert all(d["outcome"] == "skipped" for d in web if d["reason"] == "resolved")
            assert (p.group("web")["desired"], p.group("web")["current"]) == (held, held)
        finally:
            am.close()


PAUSED = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
groups:
  web:
    provider: {type: fake, initial: 2}
    min_size: 1
    max_size: 5
    desired: 2
    scale_out: {matchers: ['alertname="Grow"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 1s}
rules:
  groups:
    - name: e2e-pause
      rules:
        - alert: Grow
          expr: control_value{name="grow"} > 0
          for: 0s
          group: web
"""


def test_a_pause_survives_a_restart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Pipeline(tmp_path, PAUSED) as p:
        cli = ["-c", str(p.policy_file)]  # the CLI finds the service and its token in the policy file
        p.wait(lambda: p.group("web")["current"] == 2, 30, "the group up")
        assert main(["pause", "web", "--reason", "incident 42", *cli]) == EXIT_OK
        assert "paused web until resumed" in capsys.readouterr().out

        p.restart_alertscaler()
        assert main(["status", "--json", *cli]) == EXIT_OK
        (web,) = json.loads(capsys.readouterr().out)
        assert (web["paused"]["group"], web["paused"]["reason"], web["paused"]["until"]) == ("web", "incident 42", None)
        assert main(["status", *cli]) == EXIT_OK
        assert "web: PAUSED until resumed: incident 42" in capsys.readouterr().out

        p.control.set("grow", 1)
        paused = p.wait(lambda: p.decisions(group="web", reason="paused"), 30, "the firing alert decided paused")
        assert paused[0]["policy"] == "scale_out" and "would have" in paused[0]["message"]
        assert p.actions(group="web") == []  # nothing executed, before or after the restart
        assert (p.group("web")["desired"], p.group("web")["current"]) == (2, 2)
        assert 'alertscaler_group_paused{alertscaler_group="web"} 1.0' in p.metrics()

        assert main(["resume", "web", *cli]) == EXIT_OK  # the policies decide afresh at once
        assert "resumed web" in capsys.readouterr().out
        p.wait(lambda: p.decisions(group="web", reason="scaled"), 30, "the still-firing alert acting once resumed")
