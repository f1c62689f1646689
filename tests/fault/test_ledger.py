"""The fault suite's checker checked: a hand-made bad run must be reported violation by violation, a good one
not at all (a checker that cannot fail proves nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fault.ledger import KINDS, Accepted, Answer, Command, Evidence, check, read_ledger, summary


def cmd(action: int, group: str = "g0", from_: int = 1, to: int = 2, start: float = 0.0, end: float = 1.0,
        before: int | None = None, outcome: str = "ok", pid: int = 100) -> Command:
    before = from_ if before is None else before
    after = before + (to - from_) if outcome == "ok" else before
    return Command(action, group, from_, to, before, after, start, end, pid, outcome)


def decision(nid: int | None, *fingerprints: str) -> dict[str, Any]:
    return {"id": nid or 0, "notification_id": nid, "alerts": [{"fingerprint": f} for f in fingerprints]}


def action(aid: int, state: str = "succeeded", group: str = "g0", error: str | None = None,
           result: str | None = None) -> dict[str, Any]:
    return {"id": aid, "group": group, "state": state, "from_capacity": 1, "desired": 2, "attempts": 1,
            "error": error, "result": result}


def good() -> Evidence:
    return Evidence(
        ledger=[cmd(1, start=0, end=1), cmd(2, from_=2, to=3, start=1.5, end=2), cmd(3, "g1", start=0.5, end=3),
                cmd(4, from_=3, to=2, start=2.5, end=2.6, outcome="fail"),
                cmd(4, from_=3, to=2, start=2.7, end=2.8)],
        accepted=[Accepted(1, ("a", "b")), Accepted(2, ("c",)), Accepted(3, ("d",))],
        decisions=[decision(1, "a"), decision(1, "b"), decision(2, "c"), decision(3, "d"), decision(None)],
        actions=[action(1), action(2), action(3, group="g1"), action(4)],
        desired={"g0": 2, "g1": 2}, real={"g0": 2, "g1": 2},
        answers=[Answer("bad body", 400), Answer("huge", 413)], retried_503=2,
    )


def test_a_good_run_has_no_violation() -> None:
    ev = good()
    assert check(ev) == []
    figures = summary(ev, [])
    assert figures["accepted_alerts"] == 4 and figures["commands_ok"] == 4 and figures["commands_failed"] == 1
    assert all(figures[k] == 0 for k in KINDS)


def kinds(ev: Evidence) -> list[str]:
    return sorted(v.kind for v in check(ev))


def test_a_notification_never_decided_is_lost() -> None:
    ev = good()
    ev.accepted.append(Accepted(9, ("z",)))
    (v,) = check(ev)
    assert v.kind == "lost" and "notification 9" in v.detail


def test_an_alert_in_no_decision_of_its_notification_is_lost() -> None:
    ev = good()
    ev.decisions = [d for d in ev.decisions if d["alerts"] != [{"fingerprint": "b"}]]
    (v,) = check(ev)
    assert v.kind == "lost" and "'b'" in v.detail


def test_an_action_applied_twice_is_doubled_and_stale() -> None:
    ev = good()
    ev.ledger.append(cmd(1, start=5, end=6, before=2))  # action 1 again, on the size it already made
    ev.real["g0"] = 3
    assert kinds(ev) == ["diverged", "doubled", "stale"]


def test_a_change_on_another_size_than_planned_is_stale() -> None:
    ev = good()
    ev.ledger[1] = cmd(2, from_=2, to=3, start=1.5, end=2, before=1)
    ev.real["g0"] = 1
    violations = check(ev)
    assert [v.kind for v in violations] == ["stale", "diverged"]
    assert "real size was 1" in violations[0].detail


def test_two_commands_of_one_group_at_once_overlap() -> None:
    ev = good()
    ev.ledger[1] = cmd(2, from_=2, to=3, start=0.9, end=2)  # starts before action 1 ended
    (v,) = check(ev)
    assert v.kind == "overlap" and "action 2" in v.detail and "action 1" in v.detail


def test_overlap_with_a_long_command_that_is_not_the_previous_one() -> None:
    ev = good()
    ev.ledger = [cmd(1, start=0, end=10), cmd(2, from_=2, to=3, start=1, end=2), cmd(3, from_=3, to=2, start=3,
                                                                                       end=4)]
    ev.actions = [action(1), action(2), action(3)]
    ev.real["g0"] = 2
    assert kinds(ev) == ["overlap", "overlap"]


def test_commands_of_different_groups_may_run_at_once() -> None:
    ev = good()
    assert any(c.group == "g1" and c.start < 1 for c in ev.ledger)  # g1's command runs while g0's does
    assert check(ev) == []


def test_a_5xx_is_reported() -> None:
    ev = good()
    ev.answers.append(Answer("deep nesting", 500, "Internal Server Error"))
    ev.answers.append(Answer("NUL in receiver", 503, "retry later"))
    assert kinds(ev) == ["input_5xx", "input_5xx"]


def test_desired_not_real_is_diverged() -> None:
    ev = good()
    ev.desired["g1"] = 3
    (v,) = check(ev)
    assert v.kind == "diverged" and "desired 3, real 2" in v.detail


def test_a_group_missing_on_one_side_is_diverged() -> None:
    ev = good()
    ev.real["g9"] = 1
    assert kinds(ev) == ["diverged"]


def test_pending_and_running_actions_at_the_end_are_unfinished() -> None:
    ev = good()
    ev.actions += [action(7, "pending"), action(8, "running")]
    assert kinds(ev) == ["unfinished", "unfinished"]


def test_history_that_says_otherwise_than_the_ledger() -> None:
    ev = good()
    ev.actions[0] = action(1, "failed")  # it ran
    ev.actions.append(action(5, "succeeded"))  # it never ran
    assert kinds(ev) == ["history", "history"]


SETTLED_OK = "settled after an interruption: verified: status_command reports 2"
SETTLED_FAILED = "settled after an interruption: verified: status_command still reports 1"
UNKNOWN_MSG = "outcome unknown: its command was started; without status_command its outcome cannot be verified"


@pytest.mark.parametrize(("state", "error", "result", "ran", "expected", "unknown"), [
    ("succeeded", None, SETTLED_OK, True, [], 0),
    ("succeeded", None, SETTLED_OK, False, ["history"], 0),
    ("failed", SETTLED_FAILED, None, False, [], 0),
    ("failed", SETTLED_FAILED, None, True, ["history"], 0),
    ("failed", UNKNOWN_MSG, None, True, [], 1),
    ("failed", UNKNOWN_MSG, None, False, [], 1),
    ("failed", "interrupted by a restart; outcome unknown", None, True, ["history"], 0),
    ("failed", None, None, True, ["history"], 0),
], ids=["verified-succeeded-ran", "verified-succeeded-never-ran", "verified-failed-never-ran",
        "verified-failed-but-ran", "unknown-ran", "unknown-never-ran", "unknown-not-first-words-ran",
        "failed-no-error-ran"])
def test_an_interrupted_action_settled_at_recovery(state: str, error: str | None, result: str | None, ran: bool,
                                                   expected: list[str], unknown: int) -> None:
    ev = good()
    if not ran:
        ev.ledger = [c for c in ev.ledger if c.action != 1]
        ev.ledger.append(cmd(1, start=0, end=1, outcome="fail"))
    ev.actions[0] = action(1, state, error=error, result=result)
    violations = [v for v in check(ev) if v.kind == "history"]  # a missing change also shows as stale elsewhere
    assert sorted(v.kind for v in violations) == expected
    figures = summary(ev, violations)
    assert figures["outcome_unknown"] == unknown
    assert figures["settled_verified"] == int(error != UNKNOWN_MSG and (error or result or "").startswith("settled"))


def test_unverifiable_is_a_violation() -> None:
    ev = good()
    ev.unverifiable.append("too many")
    assert kinds(ev) == ["unverifiable"]


def test_every_kind_at_once() -> None:
    ev = good()
    ev.accepted.append(Accepted(9, ("z",)))
    ev.ledger.append(cmd(1, start=0.5, end=6, before=3))
    ev.answers.append(Answer("x", 500))
    ev.actions += [action(7, "pending"), action(1, "failed")]
    ev.unverifiable.append("x")
    ev.desired["g1"] = 5
    assert set(kinds(ev)) == set(KINDS)


def test_read_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    assert read_ledger(path) == []
    line = {"action": 3, "group": "g", "from": 1, "to": 2, "real_before": 1, "real_after": 2, "start": 1.5,
            "end": 2.5, "pid": 9, "outcome": "ok", "replica": "r0"}
    path.write_text(json.dumps(line) + "\n\n")
    assert read_ledger(path) == [Command(3, "g", 1, 2, 1, 2, 1.5, 2.5, 9, "ok")]
