"""Webhook v4 parsing: a real Alertmanager 0.25 body, and every rejection names its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alertscaler.ingest.alertmanager import parse_body
from alertscaler.model.alerts import AlertStatus
from alertscaler.model.errors import InputError

REAL = (  # Alertmanager 0.25 body, verbatim
    '{"receiver":"pyhook","status":"firing","alerts":[{"status":"firing","labels":{"action":"scale_up",'
    '"alertname":"QuickFire","env":"probe","group":"web","severity":"page"},"annotations":{"scale_by":"1",'
    '"summary":"always firing test alert"},"startsAt":"2026-11-21T22:44:17.812Z","endsAt":"0001-01-01T00:00:00Z",'
    '"generatorURL":"http://127.0.0.1:19090/graph?g0.expr=vector%281%29+%3E+0\\u0026g0.tab=1",'
    '"fingerprint":"6f946de853c59d1d"}],"groupLabels":{"alertname":"QuickFire","group":"web"},"commonLabels":'
    '{"action":"scale_up","alertname":"QuickFire","env":"probe","group":"web","severity":"page"},'
    '"commonAnnotations":{"scale_by":"1","summary":"always firing test alert"},"externalURL":'
    '"http://127.0.0.1:19093","version":"4","groupKey":"{}/{}:{alertname=\\"QuickFire\\", group=\\"web\\"}",'
    '"truncatedAlerts":0}'
)


def test_real_body_parses() -> None:
    n = parse_body(REAL.encode())
    assert (n.receiver, n.status, n.truncated_alerts) == ("pyhook", AlertStatus.FIRING, 0)
    (alert,) = n.alerts
    assert alert.name == "QuickFire" and alert.fingerprint == "6f946de853c59d1d"
    assert alert.ends_at is None and alert.starts_at.microsecond == 812000
    assert alert.starts_at.utcoffset() is not None
    assert n.raw["groupKey"] == '{}/{}:{alertname="QuickFire", group="web"}'


@pytest.mark.parametrize(("encoding", "kept"), [("utf-8", True), ("utf-16", False)], ids=["utf-8", "utf-16"])
def test_the_body_text_is_kept_as_received_when_utf8(encoding: str, kept: bool) -> None:
    text = REAL.replace(",", ", ")  # not how json.dumps would write it
    n = parse_body(text.encode(encoding))
    assert n.raw_text == (text if kept else None)
    assert json.loads(text) == n.raw


def test_dedup_key_identifies_resends_only() -> None:
    n = parse_body(REAL.encode())
    again = parse_body(REAL.encode())
    resolved = parse_body(REAL.replace('"status":"firing","labels"', '"status":"resolved","labels"').encode())
    restarted = parse_body(REAL.replace("22:44:17.812Z", "22:50:00.000Z").encode())
    assert n.dedup_keys() == again.dedup_keys()
    assert n.dedup_keys() != resolved.dedup_keys()
    assert n.dedup_keys() != restarted.dedup_keys()


def _mutate(path: list[Any], value: Any) -> bytes:
    data = json.loads(REAL)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, ""),
        (b"[1,2]", 400, ""),
        (_mutate(["version"], "3"), 422, "version"),
        (_mutate(["version"], KeyError), 422, "version"),
        (_mutate(["alerts"], KeyError), 422, "alerts"),
        (_mutate(["receiver"], 5), 422, "receiver"),
        (_mutate(["groupKey"], KeyError), 422, "groupKey"),
        (_mutate(["alerts", 0, "status"], "pending"), 422, "alerts[0].status"),
        (_mutate(["alerts", 0, "startsAt"], "yesterday"), 422, "alerts[0].startsAt"),
        (_mutate(["alerts", 0, "fingerprint"], KeyError), 422, "alerts[0].fingerprint"),
        (_mutate(["alerts", 0, "labels"], KeyError), 422, "alerts[0].labels"),
        (_mutate(["alerts", 0, "labels", "severity"], 3), 422, "alerts[0].labels.severity"),
        (_mutate(["truncatedAlerts"], -1), 422, "truncatedAlerts"),
        ("\udcff".encode("utf-8", "surrogatepass"), 400, ""),
    ],
    ids=["bad-json", "not-object", "version-3", "no-version", "no-alerts", "receiver-not-string", "no-groupkey",
         "bad-alert-status", "bad-startsAt", "no-fingerprint", "no-labels", "label-not-string",
         "negative-truncated", "not-utf8"],
)
def test_rejections_name_the_field(body: bytes, status: int, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_body(body)
    assert info.value.status_code == status
    assert info.value.field == field
    if field:
        assert str(info.value).startswith(field)
