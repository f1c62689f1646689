"""The one polling helper of the test suite: wait until a condition holds, or fail naming what was awaited.

``wait_for(predicate, timeout=..., what=...)`` calls ``predicate`` every ``interval`` seconds until it returns
a truthy value, and returns that value; after ``timeout`` seconds it raises :class:`WaitTimeout` (an
``AssertionError``, so pytest reports it as a failed check) whose message names ``what``, the timeout and
the last value or error seen. Options cover what the suite's waits need:

* ``retry_on``: exceptions that mean "not yet" (an HTTP error while a server starts, an assertion of a
  probe that checks as it reads); anything else propagates at once.
* ``abort``: called each round; a string it returns stops the wait at once with that reason (the server
  under test has exited, a child died), so a test does not sit out its timeout for nothing.
* ``details``: called once on failure; its text is appended to the message (a log tail).
* ``clock`` / ``sleep``: injectable, so the helper itself is tested without real time.

``until`` is the same for a test that runs on the event loop of the engine it waits on (in-process API tests):
it awaits between looks, so the engine's loops run meanwhile; its predicate may be a coroutine function.

Used by the integration and e2e tests (``tests/integration``, ``tests/e2e/harness.py``,
``tests/integration/heat_fixtures.py``); the fixture classes there keep their methods as thin wrappers.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar, overload

T = TypeVar("T")

__all__ = ["WaitTimeout", "until", "wait_for"]


class WaitTimeout(AssertionError):
    """A waited-for condition did not hold in time (or the wait was aborted): the message says what and why."""


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
    abort: Callable[[], str | None] | None = None,
    details: Callable[[], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``predicate()``'s first truthy value, polled every ``interval`` s; :class:`WaitTimeout` after ``timeout`` s.

    ``predicate`` is always called at least once, and once more at (or after) the deadline, so a condition
    that holds on the last look passes however slow the machine.
    """
    deadline = clock() + timeout
    last: object = None
    while True:
        if abort is not None:
            reason = abort()
            if reason is not None:
                _fail(f"gave up waiting for {what}: {reason}", details)
        expired = clock() >= deadline
        try:
            value = predicate()
        except retry_on as error:
            last = error
        else:
            if value:
                return value
            last = value
        if expired:
            _fail(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}", details)
        sleep(interval)


@overload
async def until(predicate: Callable[[], Awaitable[T | None]], *, timeout: float, what: str,
                interval: float = 0.01) -> T: ...


@overload
async def until(predicate: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.01) -> T: ...


async def until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.01) -> Any:
    """``wait_for`` on the running event loop: ``predicate()``'s (awaited if a coroutine) first truthy value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        expired = loop.time() >= deadline
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        last = value
        if expired:
            _fail(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}", None)
        await asyncio.sleep(interval)


def _fail(message: str, details: Callable[[], str] | None) -> NoReturn:
    if details is not None:
        message = f"{message}\n{details()}"
    raise WaitTimeout(message)
