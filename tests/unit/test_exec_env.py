"""``amx_environment``: the variables prometheus-am-executor would set, from a real Alertmanager 0.25 body.

Reference: imgix/prometheus-am-executor ``server.go`` (``amDataToEnv``, ``timeToStr``) and its
``server_test.go``: alerts numbered from 1, times as whole Unix seconds, ``0`` for Go's zero time, names
used verbatim.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from alertscaler.providers.base import ScaleRequest
from alertscaler.providers.exec.provider import amx_environment, synthetic_notification

REAL_BODY: dict[str, Any] = json.loads(
    r"""{"receiver":"pyhook","status":"firing","alerts":[{"status":"firing","labels":{"action":"scale_up","alertname":"QuickFire","env":"probe","group":"web","severity":"page"},"annotations":{"scale_by":"1","summary":"always firing test alert"},"startsAt":"2026-11-21T22:44:17.812Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:19090/graph?g0.expr=vector%281%29+%3E+0\u0026g0.tab=1","fingerprint":"6f946de853c59d1d"}],"groupLabels":{"alertname":"QuickFire","group":"web"},"commonLabels":{"action":"scale_up","alertname":"QuickFire","env":"probe","group":"web","severity":"page"},"commonAnnotations":{"scale_by":"1","summary":"always firing test alert"},"externalURL":"http://127.0.0.1:19093","version":"4","groupKey":"{}/{}:{alertname=\"QuickFire\", group=\"web\"}","truncatedAlerts":0}"""  # noqa: E501
)

REQUEST = ScaleRequest(group="web", from_capacity=2, desired=3, action_id=41, decision_id=17)

EXPECTED_REAL = {
    "AMX_RECEIVER": "pyhook",
    "AMX_STATUS": "firing",
    "AMX_EXTERNAL_URL": "http://127.0.0.1:19093",
    "AMX_ALERT_LEN": "1",
    "AMX_LABEL_action": "scale_up",
    "AMX_LABEL_alertname": "QuickFire",
    "AMX_LABEL_env": "probe",
    "AMX_LABEL_group": "web",
    "AMX_LABEL_severity": "page",
    "AMX_GLABEL_alertname": "QuickFire",
    "AMX_GLABEL_group": "web",
    "AMX_ANNOTATION_scale_by": "1",
    "AMX_ANNOTATION_summary": "always firing test alert",
    "AMX_ALERT_1_STATUS": "firing",
    "AMX_ALERT_1_START": "1795301057",  # 2026-11-21T22:44:17.812Z, floored to whole seconds
    "AMX_ALERT_1_END": "0",  # Go's zero time: Alertmanager's endsAt of a firing alert
    "AMX_ALERT_1_URL": "http://127.0.0.1:19090/graph?g0.expr=vector%281%29+%3E+0&g0.tab=1",
    "AMX_ALERT_1_FINGERPRINT": "6f946de853c59d1d",
    "AMX_ALERT_1_LABEL_action": "scale_up",
    "AMX_ALERT_1_LABEL_alertname": "QuickFire",
    "AMX_ALERT_1_LABEL_env": "probe",
    "AMX_ALERT_1_LABEL_group": "web",
    "AMX_ALERT_1_LABEL_severity": "page",
    "AMX_ALERT_1_ANNOTATION_scale_by": "1",
    "AMX_ALERT_1_ANNOTATION_summary": "always firing test alert",
    "AS_GROUP": "web",
    "AS_FROM": "2",
    "AS_TO": "3",
    "AS_ACTION_ID": "41",
    "AS_DECISION_ID": "17",
}


def test_real_alertmanager_body_gives_exactly_the_am_executor_variables() -> None:
    assert amx_environment(REAL_BODY, REQUEST) == EXPECTED_REAL


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param(k, v, id=k) for k, v in EXPECTED_REAL.items()],
)
def test_real_body_variable(name: str, value: str) -> None:
    assert amx_environment(REAL_BODY, REQUEST)[name] == value


def _with_alert(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REAL_BODY)
    body["alerts"][0].update(changes)
    return body


def _with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REAL_BODY)
    body.update(changes)
    return body


SECOND_ALERT = {
    "status": "resolved",
    "labels": {"alertname": "QuickFire", "instance": "b"},
    "annotations": {},
    "startsAt": "2026-11-21T22:40:00Z",
    "endsAt": "2026-11-21T22:45:00.999999999Z",
    "generatorURL": "",
    "fingerprint": "00000000000000b2",
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            _with_alert(status="resolved", endsAt="2026-11-21T22:50:00.5Z"),
            {"AMX_ALERT_1_STATUS": "resolved", "AMX_ALERT_1_END": "1795301400"},
            id="resolved-end-is-epoch-seconds",
        ),
        pytest.param(
            _with_alert(startsAt="2026-11-21T22:44:17.999999999Z"),
            {"AMX_ALERT_1_START": "1795301057"},
            id="nanoseconds-floored",
        ),
        pytest.param(
            _with_alert(startsAt="2026-11-22T00:44:17+02:00"),
            {"AMX_ALERT_1_START": "1795301057"},
            id="offset-time",
        ),
        pytest.param(
            _with_alert(startsAt="1969-12-31T23:59:59.5Z"),
            {"AMX_ALERT_1_START": "-1"},
            id="before-epoch-floored-like-go",
        ),
        pytest.param(_with_alert(startsAt="1970-01-01T00:00:00Z"), {"AMX_ALERT_1_START": "0"}, id="epoch"),
        pytest.param(_with_alert(startsAt=None), {"AMX_ALERT_1_START": "0"}, id="missing-time-is-0"),
        pytest.param(_with_alert(startsAt="yesterday"), {"AMX_ALERT_1_START": "0"}, id="garbage-time-is-0"),
        pytest.param(
            _with_alert(fingerprint=None, generatorURL=None),
            {"AMX_ALERT_1_FINGERPRINT": "", "AMX_ALERT_1_URL": ""},
            id="missing-strings-empty",
        ),
        pytest.param(
            _with(alerts=[*REAL_BODY["alerts"], SECOND_ALERT]),
            {
                "AMX_ALERT_LEN": "2",
                "AMX_ALERT_2_STATUS": "resolved",
                "AMX_ALERT_2_START": "1795300800",
                "AMX_ALERT_2_END": "1795301100",
                "AMX_ALERT_2_URL": "",
                "AMX_ALERT_2_FINGERPRINT": "00000000000000b2",
                "AMX_ALERT_2_LABEL_instance": "b",
            },
            id="second-alert-numbered-2",
        ),
        pytest.param(_with(alerts=[]), {"AMX_ALERT_LEN": "0"}, id="no-alerts"),
        pytest.param(_with(status="resolved"), {"AMX_STATUS": "resolved"}, id="resolved-notification"),
        pytest.param(
            _with(commonLabels={"Mixed_Case": "v", "_lead": "w", "0digit": "x"}),
            {"AMX_LABEL_Mixed_Case": "v", "AMX_LABEL__lead": "w", "AMX_LABEL_0digit": "x"},
            id="names-verbatim-case-preserved",
        ),
        pytest.param(
            _with(commonLabels={"service.name": "api", "k8s-pod/ü": "p"}),
            {"AMX_LABEL_service_name": "api", "AMX_LABEL_k8s_pod__": "p"},
            id="utf8-label-names-sanitised",
        ),
        pytest.param(
            _with(commonLabels={"a.b": "dotted", "a_b": "plain", "a-b": "dashed"}),
            {"AMX_LABEL_a_b": "plain"},
            id="collision-unchanged-name-wins",
        ),
        pytest.param(
            _with(commonLabels={"a.b": "dotted", "a-b": "dashed"}),
            {"AMX_LABEL_a_b": "dashed"},  # "a-b" sorts before "a.b"
            id="collision-first-sorted-wins",
        ),
        pytest.param(
            _with(commonLabels={"evil": 'x"; touch /tmp/pwned-$$; echo "', "sub": "$(id)", "tick": "`id`"}),
            {
                "AMX_LABEL_evil": 'x"; touch /tmp/pwned-$$; echo "',
                "AMX_LABEL_sub": "$(id)",
                "AMX_LABEL_tick": "`id`",
            },
            id="hostile-values-verbatim",
        ),
        pytest.param(
            _with(commonAnnotations={"multi": "line one\nline two\r\n;rm -rf /", "quote": "it's"}),
            {"AMX_ANNOTATION_multi": "line one\nline two\r\n;rm -rf /", "AMX_ANNOTATION_quote": "it's"},
            id="newlines-kept",
        ),
        pytest.param(
            _with(commonLabels={"nul": "a\x00b", "sur": "x\ud800y", "uni": "Zürich ✓"}),
            {"AMX_LABEL_nul": "ab", "AMX_LABEL_sur": "x?y", "AMX_LABEL_uni": "Zürich ✓"},
            id="nul-dropped-surrogate-replaced-unicode-kept",
        ),
        pytest.param(
            {"alerts": "nonsense", "commonLabels": ["x"]},
            {"AMX_RECEIVER": "", "AMX_STATUS": "", "AMX_EXTERNAL_URL": "", "AMX_ALERT_LEN": "0"},
            id="malformed-body-tolerated",
        ),
    ],
)
def test_variations(body: dict[str, Any], expected: dict[str, str]) -> None:
    env = amx_environment(body, REQUEST)
    assert {k: env.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("body", "absent"),
    [
        pytest.param(REAL_BODY, "AMX_ALERT_0_STATUS", id="numbering-starts-at-1"),
        pytest.param(REAL_BODY, "AMX_ALERT_2_STATUS", id="no-phantom-alert"),
        pytest.param(REAL_BODY, "AMX_TRUNCATED_ALERTS", id="truncated-not-exported"),
        pytest.param(REAL_BODY, "AMX_GROUP_KEY", id="group-key-not-exported"),
        pytest.param(_with(commonLabels={"a.b": "dotted"}), "AMX_LABEL_a.b", id="no-unsanitised-name"),
    ],
)
def test_absent(body: dict[str, Any], absent: str) -> None:
    assert absent not in amx_environment(body, REQUEST)


def test_every_name_is_a_portable_environment_name() -> None:
    body = _with(commonLabels={"service.name": "a", "ü": "b", "": "c"}, groupLabels={"x y": "d"})
    for name in amx_environment(body, REQUEST):
        assert name.replace("_", "").isalnum() and name.isascii() and not name[0].isdigit(), name


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        pytest.param(
            [],
            {"status": "firing", "alerts": [], "commonLabels": {}, "commonAnnotations": {}},
            id="timer-no-alerts",
        ),
        pytest.param(
            [{"status": "resolved", "labels": {"a": "1", "b": "2"}, "annotations": {"s": "x"}}],
            {"status": "resolved", "commonLabels": {"a": "1", "b": "2"}, "commonAnnotations": {"s": "x"}},
            id="all-resolved",
        ),
        pytest.param(
            [
                {"status": "resolved", "labels": {"a": "1", "b": "2"}, "annotations": {}},
                {"status": "firing", "labels": {"a": "1", "b": "3"}},
            ],
            {"status": "firing", "commonLabels": {"a": "1"}, "commonAnnotations": {}},
            id="mixed-common-intersection",
        ),
    ],
)
def test_synthetic_notification(alerts: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    request = ScaleRequest(group="web", from_capacity=1, desired=2, action_id=1, decision_id=1, alerts=alerts)
    body = synthetic_notification(request)
    assert {k: body[k] for k in expected} == expected
    assert body["version"] == "4" and body["receiver"] == "alertscaler" and body["alerts"] == alerts
    env = amx_environment(body, request)
    assert env["AMX_RECEIVER"] == "alertscaler" and env["AMX_ALERT_LEN"] == str(len(alerts))


def _body_with(alerts: int, value: str) -> dict[str, Any]:
    body = copy.deepcopy(REAL_BODY)
    one = body["alerts"][0]
    body["alerts"] = [dict(one, labels=dict(one["labels"], big=value), fingerprint=f"f{i}") for i in range(alerts)]
    return body


@pytest.mark.parametrize(("alerts", "value_bytes", "truncated", "alert_vars_kept"), [
    (1, 100, None, 1),
    (1, 200 * 1024, "values", 1),                 # one label over the kernel's 128 KiB per string
    (40, 30 * 1024, "alerts>33", 33),             # 40 alerts x 30 KiB: over the 1 MiB budget
    (40, 200 * 1024, "values,alerts>31", 31),     # both
], ids=["small", "one-huge-value", "many-alerts", "both"])
def test_environment_fits_what_the_kernel_accepts(alerts: int, value_bytes: int, truncated: str | None,
                                                  alert_vars_kept: int) -> None:
    from alertscaler.providers.exec.env import TOTAL_LIMIT, VALUE_LIMIT

    env = amx_environment(_body_with(alerts, "é" * (value_bytes // 2)), REQUEST)
    assert env.get("AS_ENV_TRUNCATED") == truncated
    assert max(len(v.encode()) for v in env.values()) <= VALUE_LIMIT
    assert sum(len(k) + len(v.encode()) + 2 for k, v in env.items()) <= TOTAL_LIMIT + 64
    assert env["AMX_ALERT_LEN"] == str(alerts)  # the count of alerts is never cut (stdin has them all)
    kept = {int(k.split("_")[2]) for k in env if k.startswith("AMX_ALERT_") and k != "AMX_ALERT_LEN"}
    assert kept == set(range(1, alert_vars_kept + 1))
    assert env["AS_TO"] == "3"
