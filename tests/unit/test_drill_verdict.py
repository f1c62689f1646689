"""``cli.drill_verdict``: the fire drill's labels and the verdict on each hop, from what Alertmanager and alertscaler
said (values in, time passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alertscaler.alertmanager.client import AmAlert
from alertscaler.alertmanager.routes import AmRoute
from alertscaler.cli import drill_verdict as v
from alertscaler.model.drills import DRILL_LABEL

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

# (id, matchers, --label, labels wanted (without the drill label) or the error's text)
LABELS: list[tuple[str, list[str], dict[str, str], dict[str, str] | str]] = [
    ("equal-matchers", ['alertname="Busy"', 'alertscaler_group="web"'], {},
     {"alertname": "Busy", "alertscaler_group": "web"}),
    ("am-route-regex-takes-the-equal-value", ['alertname="Busy"', 'alertscaler_group="web"',
                                              'alertscaler_group=~".+"'], {},
     {"alertname": "Busy", "alertscaler_group": "web"}),
    ("regex-alternatives", ['alertname=~"(Busy|Hot)"', 'tier=~"front|back"'], {},
     {"alertname": "Busy", "tier": "front"}),
    ("not-equal-leaves-the-label-out", ['alertname="Busy"', 'env!="prod"'], {}, {"alertname": "Busy"}),
    ("a-word-for-any-value", ['alertname="Busy"', 'job=~".+"'], {}, {"alertname": "Busy", "job": "web"}),
    ("no-alertname-gets-one", ['alertscaler_group="web"'], {},
     {"alertname": "AlertscalerDrill", "alertscaler_group": "web"}),
    ("alertname-refused-stays-out", ['alertscaler_group="web"', 'alertname!~"Alertscaler.*"'], {},
     {"alertscaler_group": "web"}),
    ("label-option-gives-a-value", ['alertname="Busy"', 'instance=~"10[.]0[.].*"'], {"instance": "10.0.0.7"},
     {"alertname": "Busy", "instance": "10.0.0.7"}),
    ("label-option-adds-a-label", ['alertname="Busy"'], {"severity": "page"},
     {"alertname": "Busy", "severity": "page"}),
    ("no-value-found", ['alertname="Busy"', 'instance=~"10[.]0[.].*"'], {},
     "no value found for label 'instance' that matches instance=~\"10[.]0[.].*\": give one with --label "
     "instance=VALUE"),
    ("label-option-breaks-a-matcher", ['alertname="Busy"'], {"alertname": "Other"},
     "the drill's labels do not match alertname=\"Busy\""),
]


@pytest.mark.parametrize(("matchers", "extra", "want"), [c[1:] for c in LABELS], ids=[c[0] for c in LABELS])
def test_drill_labels(matchers: list[str], extra: dict[str, str], want: dict[str, str] | str) -> None:
    if isinstance(want, str):
        with pytest.raises(ValueError) as caught:
            v.drill_labels(matchers, extra, "d1", "web")
        assert str(caught.value) == want
        return
    assert v.drill_labels(matchers, extra, "d1", "web") == {**want, DRILL_LABEL: "d1"}


def am_alert(receivers: tuple[str, ...] = ("alertscaler",), silenced: tuple[str, ...] = ()) -> AmAlert:
    return AmAlert("f1", {"alertname": "Busy", DRILL_LABEL: "d1"}, "suppressed" if silenced else "active",
                   silenced_by=silenced, receivers=receivers)


ROOT = AmRoute("alertscaler", (), (), ("alertname",), 1.0, 5.0)
NULL = AmRoute("null", ('alertname="Busy"',), (('alertname="Busy"',),), ("alertname",), 30.0, 300.0)

# (id, the alert as Alertmanager lists it, the routes its config gives (None: unreadable), sure, unknown,
#  ok, the route chosen, in the detail)
ROUTED: list[tuple[str, AmAlert | None, list[AmRoute] | None, set[str], set[str], bool, AmRoute | None, str]] = [
    ("to-alertscaler", am_alert(), [ROOT], {"alertscaler"}, set(), True, ROOT,
     "to receiver 'alertscaler': the root route → receiver 'alertscaler'"),
    ("to-a-null-receiver", am_alert(("null",)), [NULL], {"alertscaler"}, set(), False, None,
     "Alertmanager routed the drill to receiver 'null', which does not send to alertscaler (route "
     "{alertname=\"Busy\"} → receiver 'null'); alertscaler's webhook is in receiver 'alertscaler'"),
    ("no-receiver-posts-to-alertscaler", am_alert(("null",)), [NULL], set(), set(), False, None,
     "no receiver posts to alertscaler's /api/v1/alerts"),
    ("webhook-url-hidden", am_alert(("hidden",)), [AmRoute("hidden", (), (), (), 1.0, 5.0)], set(), {"hidden"},
     True, AmRoute("hidden", (), (), (), 1.0, 5.0), "its webhook URL cannot be read: assumed to be alertscaler's"),
    ("silenced", am_alert(silenced=("s-1",)), [ROOT], {"alertscaler"}, set(), False, None,
     "Alertmanager holds the drill silenced by s-1: it sends no notification"),
    ("not-listed", None, [ROOT], {"alertscaler"}, set(), False, None, "does not list it"),
    ("config-unreadable", am_alert(), None, set(), set(), True, None,
     "to receiver 'alertscaler' (Alertmanager's configuration could not be read: not checked"),
]


@pytest.mark.parametrize(("alert", "routes", "sure", "unknown", "ok", "route", "detail"), [c[1:] for c in ROUTED],
                         ids=[c[0] for c in ROUTED])
def test_the_routed_hop(alert: AmAlert | None, routes: list[AmRoute] | None, sure: set[str], unknown: set[str],
                        ok: bool, route: AmRoute | None, detail: str) -> None:
    hop, chosen = v.routed(alert, routes, sure, unknown, 0.25)
    assert (hop.name, hop.ok, hop.at, chosen) == ("routed", ok, 0.25, route)
    assert detail in hop.detail


def decision(id: int, group: str | None = "web", policy: str | None = "scale_out", drill: str = "d1",
             to: int | None = 3, received: float = 1.0, decided: float = 1.002) -> dict[str, Any]:
    return {"id": id, "group": group, "policy": policy, "reason": "drill", "from_capacity": None if to is None else 2,
            "to_capacity": to, "message": f"fire drill {drill}: would have scale 2 -> 3", "notification_id": 40 + id,
            "received_at": (START + timedelta(seconds=received)).isoformat(),
            "decided_at": (START + timedelta(seconds=decided)).isoformat(),
            "alerts": [{"labels": {"alertname": "Busy", DRILL_LABEL: drill}}]}


# (id, the API's decisions, the one found (id), the others (ids))
FOUND: list[tuple[str, list[dict[str, Any]], int | None, list[int]]] = [
    ("none-yet", [], None, []),
    ("its-decision", [decision(7)], 7, []),
    ("another-drill-is-ignored", [decision(6, drill="zz"), decision(7)], 7, []),
    ("the-firing-one-not-the-resolve", [decision(9, to=None), decision(7)], 7, []),
    ("another-group-too", [decision(8, group="api"), decision(7)], 7, [8]),
    ("only-no-group", [decision(5, group=None, policy=None, to=None)], None, [5]),
]


@pytest.mark.parametrize(("decisions", "hit", "others"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND])
def test_finding_the_drills_decision(decisions: list[dict[str, Any]], hit: int | None, others: list[int]) -> None:
    got, rest = v.found(decisions, "d1", "web", "scale_out")
    assert (got["id"] if got else None, [d["id"] for d in rest]) == (hit, others)


def test_received_and_decided_are_timed_from_the_start() -> None:
    received, decided = v.decided(decision(7, received=1.5, decided=1.503), START)
    assert (received.ok, received.at, received.detail) == (True, 1.5, "notification 47")
    assert (decided.ok, decided.at) == (True, 1.503)
    assert decided.detail == "fire drill d1: would have scale 2 -> 3 (decision 7, 2 -> 3)"


def test_decided_elsewhere_names_where() -> None:
    received, decided = v.elsewhere([decision(5, group=None, policy=None, to=None)], "web", "scale_out", START)
    assert received.ok and decided.ok is False
    assert "decided the drill for no group, not web scale_out" in decided.detail
    assert "same policy file" in decided.detail


@pytest.mark.parametrize(("waited", "route", "joined", "failures", "detail"), [
    (16.0, ROOT, False, None, "webhook never received within 16s (group_wait 1s + 15s margin): check the "
                              "receiver's url, its credentials (auth) and the network between Alertmanager and "
                              "alertscaler"),
    (20.0, ROOT, True, 0.0, "within 20s: the drill joined an Alertmanager group that already had alerts, so it goes "
                            "with the group's next flush (group_interval 5s + 15s margin)"),
    (6.0, None, False, 3.0, "within 6s: check the receiver's url"),
], ids=["group-wait", "joined-group-interval", "timeout-given-with-failures"])
def test_never_received(waited: float, route: AmRoute | None, joined: bool, failures: float | None,
                        detail: str) -> None:
    hop = v.never_received(waited, route, joined, 15.0, failures)
    assert (hop.name, hop.ok, hop.at) == ("received", False, waited)
    assert detail in hop.detail
    assert ("webhook requests failed 3 time(s)" in hop.detail) == bool(failures)


@pytest.mark.parametrize(("metrics", "failures"), [
    ('alertmanager_notification_requests_failed_total{integration="webhook"} 6\n'
     'alertmanager_notification_requests_failed_total{integration="email"} 2\n'
     'alertmanager_notifications_failed_total{integration="webhook"} 1\n', 6.0),
    ('alertmanager_notifications_failed_total{integration="webhook",reason="other"} 1\n'
     'alertmanager_notifications_failed_total{integration="webhook",reason="clientError"} 2\n', 3.0),
    ("# nothing\n", None),
], ids=["attempts", "after-retries-summed", "absent"])
def test_webhook_failures(metrics: str, failures: float | None) -> None:
    assert v.webhook_failures(metrics) == failures


@pytest.mark.parametrize(("hops", "passed", "failed"), [
    ([True, True, True, True], True, None),
    ([True, False, None, None], False, "routed"),
    ([True, True, True, None], False, None),
], ids=["all-ok", "routed-failed", "not-finished"])
def test_the_report(hops: list[bool | None], passed: bool, failed: str | None) -> None:
    report = v.Report("d1", "web", "scale_out", {"alertname": "Busy"})
    for name, ok in zip(v.HOPS, hops, strict=True):
        report = report.with_hop(v.Hop(name, ok, 0.1 if ok is not None else None))
    assert (report.passed, report.failed.name if report.failed else None) == (passed, failed)
    data = report.as_json()
    assert (data["passed"], data["failed_hop"], [h["name"] for h in data["hops"]]) == (passed, failed, list(v.HOPS))
