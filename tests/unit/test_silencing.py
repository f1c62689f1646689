"""act.silencing.judge: a route's believed-firing alerts against Alertmanager's view — live, silenced, phantom,
and fail open / closed when Alertmanager cannot be asked (time passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.silencing import SilenceGate, View, judge
from alertscaler.alertmanager.client import AmAlert
from alertscaler.config.alertmanager_api import SilencesConfig
from alertscaler.model.errors import AlertmanagerUnavailable
from alertscaler.model.policies import Direction
from alertscaler.store.base import ActiveAlert

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def believed(fp: str, seen: datetime = T0) -> ActiveAlert:
    return ActiveAlert("web", "scale_out", fp, {"alertname": "HighLoad"}, T0 - timedelta(minutes=5), seen, 1)


def am(fp: str, state: str = "active", silenced: tuple[str, ...] = (), inhibited: tuple[str, ...] = ()) -> AmAlert:
    return AmAlert(fp, {"alertname": "HighLoad"}, state, silenced, inhibited)


ASKED = T0 + timedelta(seconds=10)
RESPECT = SilencesConfig()
IGNORE = SilencesConfig(respect=False)
CLOSED_OUT = SilencesConfig.model_validate({"when_unreachable": {"scale_out": "closed"}})
OPEN_IN = SilencesConfig.model_validate({"when_unreachable": {"scale_in": "open"}})


@pytest.mark.parametrize(
    ("alerts", "view", "direction", "setting", "live", "suppressed", "phantoms", "blocked"),
    [
        ([believed("a")], View(ASKED, {"a": am("a")}), Direction.SCALE_OUT, RESPECT, {"a"}, set(), set(), False),
        ([believed("a")], View(ASKED, {"a": am("a", "suppressed", ("s1",))}), Direction.SCALE_OUT, RESPECT,
         set(), {"a"}, set(), False),
        ([believed("a")], View(ASKED, {"a": am("a", "suppressed", inhibited=("f9",))}), Direction.SCALE_IN,
         RESPECT, set(), {"a"}, set(), False),
        ([believed("a"), believed("b")], View(ASKED, {"a": am("a", "suppressed", ("s1",)), "b": am("b")}),
         Direction.SCALE_OUT, RESPECT, {"b"}, {"a"}, set(), False),
        ([believed("a")], View(ASKED, {"a": am("a", "suppressed", ("s1",))}), Direction.SCALE_OUT, IGNORE,
         {"a"}, set(), set(), False),
        ([believed("a")], View(ASKED, {}), Direction.SCALE_OUT, RESPECT, set(), set(), {"a"}, False),
        ([believed("a", seen=ASKED + timedelta(seconds=1))], View(ASKED, {}), Direction.SCALE_OUT, RESPECT,
         {"a"}, set(), set(), False),
        ([believed("a")], View(ASKED, {}), Direction.SCALE_OUT, IGNORE, set(), set(), {"a"}, False),
        ([believed("a")], View(ASKED, {"a": am("a", "unprocessed")}), Direction.SCALE_OUT, RESPECT,
         {"a"}, set(), set(), False),
        ([believed("a")], View(ASKED, error="refused"), Direction.SCALE_OUT, RESPECT, {"a"}, set(), set(), False),
        ([believed("a")], View(ASKED, error="refused"), Direction.SCALE_IN, RESPECT, set(), set(), set(), True),
        ([believed("a")], View(ASKED, error="refused"), Direction.SCALE_OUT, CLOSED_OUT, set(), set(), set(), True),
        ([believed("a")], View(ASKED, error="refused"), Direction.SCALE_IN, OPEN_IN, {"a"}, set(), set(), False),
    ],
    ids=["active-acts", "silenced", "inhibited", "one-of-two-silenced", "respect-false-ignores-silence",
         "unknown-to-am-is-phantom", "confirmed-after-the-question-is-not-phantom", "phantom-even-without-respect",
         "unprocessed-acts", "unreachable-scale-out-fails-open", "unreachable-scale-in-fails-closed",
         "scale-out-set-closed", "scale-in-set-open"],
)
def test_judge(alerts: list[ActiveAlert], view: View, direction: Direction, setting: SilencesConfig,
               live: set[str], suppressed: set[str], phantoms: set[str], blocked: bool) -> None:
    j = judge(alerts, view, direction, setting)
    assert (set(j.live), set(j.suppressed), set(j.phantoms), j.blocked is not None) == (
        live, suppressed, phantoms, blocked)
    assert j.silenced == (not live and bool(suppressed))
    if blocked:
        assert f"silences.when_unreachable.{direction.value}: closed" in (j.blocked or "")
    if view.error and not blocked:
        assert "fails open" in j.note


@pytest.mark.parametrize(
    ("answer", "error"),
    [([am("a", "suppressed", ("s1",))], None), (AlertmanagerUnavailable("Alertmanager at x is unreachable"),
                                                "unreachable")],
    ids=["answer", "unreachable"],
)
def test_gate_asks_with_the_policy_matchers_and_never_raises(answer: list[AmAlert] | Exception,
                                                             error: str | None) -> None:
    asked: list[list[str]] = []

    def alerts_of(filters: object = ()) -> list[AmAlert]:
        asked.append(list(filters))  # type: ignore[call-overload]
        if isinstance(answer, Exception):
            raise answer
        return answer

    view = SilenceGate(alerts_of, 60.0).ask(['alertname="HighLoad"', 'service="web"'], T0, "group=web")
    assert asked == [['alertname="HighLoad"', 'service="web"']]
    assert view.asked_at == T0
    assert (view.error is None, set(view.alerts)) == ((error is None), {"a"} if error is None else set())
    if error:
        assert error in (view.error or "")
