"""The ``local`` provider's quiet scale-in, with real processes and an injected clock and wait (no sleeping):
the victim leaves the group and is reported leaving BEFORE the drain, answers during the drain, is stopped
after it and reported gone; a drain interrupted by a restart is finished, for what is left of it.

Every process started here carries the contract fixtures' marker; ``no_leftover_processes`` fails the module
if any survives it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.local import provider as local
from alertscaler.providers.local.provider import LocalProvider
from tests.contract.provider_fixtures import CASE_VAR, GROUP, kill_recorded, local_config
from tests.support.waiting import wait_for

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leftover_processes")]

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Recorder:
    """``providers.base.Departures`` that keeps what it is told, in order, next to the waits."""

    events: list[tuple[str, object]] = field(default_factory=list)

    def leaving(self, members: Sequence[Member], why: str) -> None:
        self.events.append(("leaving", [(m.id, m.state.value) for m in members]))

    def gone(self, member_ids: Sequence[str]) -> None:
        self.events.append(("gone", list(member_ids)))


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    kill_recorded(path)


def make(state_dir: Path, clock: Clock, wait: Callable[[float], None]) -> LocalProvider:
    return LocalProvider(local_config(env={CASE_VAR: str(state_dir)}), ProviderContext(GROUP, state_dir),
                         clock=clock, wait=wait)


def request(desired: int, drain: float = 0.0, departures: Recorder | None = None) -> ScaleRequest:
    return ScaleRequest(GROUP, 0, desired, 1, 1, drain=drain, departures=departures or Recorder())


def answers(member: Member) -> bool:
    try:
        return httpx.get(f"http://{member.address}/healthz", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_victim_leaves_first_answers_while_it_drains_and_is_stopped_after(state_dir: Path) -> None:
    clock, departures = Clock(), Recorder()
    seen: dict[str, object] = {}

    def wait(seconds: float) -> None:  # the drain: look at the group at that moment instead of sleeping
        status = provider.status()
        victim = next(m for m in status.members if m.state is MemberState.STOPPING)
        seen.update(seconds=seconds, current=status.current, victim=victim.id, answers=answers(victim),
                    told=list(departures.events))
        departures.events.append(("waited", seconds))
        clock.now += timedelta(seconds=seconds)

    provider = make(state_dir, clock, wait)
    provider.scale(request(2))
    newest = max(provider.members(), key=lambda m: (m.created_at or T0, m.id))
    result = provider.scale(request(1, drain=30.0, departures=departures))
    assert seen == {"seconds": 30.0, "current": 1, "victim": newest.id, "answers": True,
                    "told": [("leaving", [(newest.id, "stopping")])]}
    assert departures.events == [("leaving", [(newest.id, "stopping")]), ("waited", 30.0), ("gone", [newest.id])]
    assert f"stopped 1 ({newest.id}) after a 30s drain" in result
    assert [m.id for m in provider.members()] != [newest.id] and len(provider.members()) == 1
    assert not answers(newest)


def test_no_drain_stops_at_once_and_still_reports(state_dir: Path) -> None:
    waits: list[float] = []
    provider = make(state_dir, Clock(), waits.append)
    provider.scale(request(2))
    departures = Recorder()
    provider.scale(request(1, departures=departures))
    assert waits == [] and [kind for kind, _ in departures.events] == ["leaving", "gone"]


def test_a_member_that_dies_while_it_drains_is_stopping_not_failed(state_dir: Path) -> None:
    states: list[str] = []

    def wait(seconds: float) -> None:
        (victim,) = [m for m in provider.members() if m.state is MemberState.STOPPING]
        os.killpg(int(victim.labels["pid"]), signal.SIGKILL)
        wait_for(lambda: not answers(victim), timeout=10, what="the killed victim to stop answering")
        states.extend(m.state.value for m in provider.members() if m.id == victim.id)

    provider = make(state_dir, Clock(), wait)
    provider.scale(request(2))
    provider.scale(request(1, drain=5.0))
    assert states == ["stopping"]  # a removal in progress, not a failure to heal


class Interrupted(Exception):
    """alertscaler killed in the middle of a drain (the wait never returns)."""


@pytest.mark.parametrize(("later", "waited"), [(10.0, [20.0]), (45.0, [])],
                         ids=["within-the-drain-the-rest-is-waited", "after-the-drain-stops-at-once"])
def test_a_drain_interrupted_by_a_restart_is_finished(state_dir: Path, later: float, waited: list[float]) -> None:
    clock = Clock()

    def crash(seconds: float) -> None:
        raise Interrupted

    first = make(state_dir, clock, crash)
    first.scale(request(2))
    with pytest.raises(Interrupted):
        first.scale(request(1, drain=30.0))
    (victim,) = [m for m in first.members() if m.state is MemberState.STOPPING]
    assert first.status().current == 1 and answers(victim)  # out of the group, still running

    clock.now += timedelta(seconds=later)
    waits: list[float] = []
    departures = Recorder()
    again = make(state_dir, clock, waits.append)  # a new process on the same state directory
    result = again.scale(request(1, drain=30.0, departures=departures))
    assert waits == waited
    assert departures.events == [("leaving", [(victim.id, "stopping")]), ("gone", [victim.id])]
    assert "finished stopping 1" in result and not answers(victim)
    assert victim.id not in [m.id for m in again.members()] and local.LocalProvider is type(again)
