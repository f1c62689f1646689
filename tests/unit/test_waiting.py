"""``tests/support/waiting.wait_for``, the suite's one polling helper, on a fake clock (no real time passes); its
event-loop twin ``until``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.support.waiting import WaitTimeout, until, wait_for


class FakeTime:
    """A monotonic clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(*values: object) -> Callable[[], object]:
    """A predicate giving ``values`` in turn (an exception instance is raised), then the last one forever."""
    queue = list(values)

    def predicate() -> object:
        value = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(value, BaseException):
            raise value
        return value

    return predicate


@pytest.mark.parametrize(("values", "returned", "sleeps"), [
    ((True,), True, 0),
    ((0, "", [], ["x"]), ["x"], 3),
    ((None, 7.25), 7.25, 1),
    ((ConnectionError("down"), ConnectionError("down"), "up"), "up", 2),
], ids=["at-once", "first-truthy-value", "value-returned", "retried-error"])
def test_returns_the_first_truthy_value(values: tuple[object, ...], returned: object, sleeps: int) -> None:
    fake = FakeTime()
    value = wait_for(answers(*values), timeout=10, what="x", interval=0.5, retry_on=(ConnectionError,),
                     clock=fake.clock, sleep=fake.sleep)
    assert value == returned
    assert fake.sleeps == [0.5] * sleeps


@pytest.mark.parametrize(("values", "message"), [
    ((False,), "timed out after 2 s waiting for the thing; last: False"),
    ((ConnectionError("refused"),), "timed out after 2 s waiting for the thing; last: ConnectionError('refused')"),
], ids=["falsy", "error"])
def test_timeout_names_what_was_awaited_and_the_last_answer(values: tuple[object, ...], message: str) -> None:
    fake = FakeTime()
    with pytest.raises(WaitTimeout) as info:
        wait_for(answers(*values), timeout=2, what="the thing", interval=0.5, retry_on=(ConnectionError,),
                 clock=fake.clock, sleep=fake.sleep)
    assert str(info.value) == message
    assert isinstance(info.value, AssertionError)
    assert fake.now == 102.0  # polled until the deadline, then once more at it: 5 looks, 4 sleeps
    assert len(fake.sleeps) == 4


def test_a_condition_true_on_the_last_look_passes() -> None:
    fake = FakeTime()
    assert wait_for(lambda: fake.now >= 102.0, timeout=2, what="x", interval=0.5,
                    clock=fake.clock, sleep=fake.sleep) is True


def test_an_error_not_listed_propagates_at_once() -> None:
    fake = FakeTime()
    with pytest.raises(KeyError):
        wait_for(answers(KeyError("k")), timeout=10, what="x", retry_on=(ConnectionError,),
                 clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == []


@pytest.mark.parametrize(("abort_after", "looks"), [(0, 0), (2, 2)], ids=["before-the-first-look", "later"])
def test_abort_stops_the_wait_with_its_reason_and_the_details(abort_after: int, looks: int) -> None:
    fake = FakeTime()
    calls: list[int] = []

    def predicate() -> bool:
        calls.append(1)
        return False

    def abort() -> str | None:
        return "server exited with 1" if len(calls) >= abort_after else None

    with pytest.raises(WaitTimeout) as info:
        wait_for(predicate, timeout=60, what="readiness", abort=abort, details=lambda: "log: boom",
                 clock=fake.clock, sleep=fake.sleep)
    assert str(info.value) == "gave up waiting for readiness: server exited with 1\nlog: boom"
    assert len(calls) == looks


async def test_until_awaits_a_coroutine_predicate_while_the_loop_runs() -> None:
    """``until``: the event loop runs between looks (the awaited work progresses), the value is returned."""
    done = asyncio.Event()
    asyncio.get_running_loop().call_soon(done.set)

    async def predicate() -> str | None:
        return "set" if done.is_set() else None

    assert await until(predicate, timeout=5, what="the event") == "set"


async def test_until_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0 s waiting for nothing; last: 0"):
        await until(lambda: 0, timeout=0, what="nothing")
