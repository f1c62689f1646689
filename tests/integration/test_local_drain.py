"""The ``local`` provider's quiet scale-in, with real processes, an injected clock, and the drain waited through
the request's departures (no sleeping): the victim leaves the group and is reported leaving BEFORE the drain,
answers during the drain, is stopped after it and reported gone; a drain interrupted by a restart, or ended by
the service stopping, is finished by the next run, for what is left of it.

Every process started here carries the contract fixtures' marker; ``no_leftover_processes`` fails the module
if any survives it.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alertscaler.model.errors import TemporaryProviderError
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
    """``providers.base.Departures`` that keeps what it is told, in order, with the drains it is asked to wait
    (``on_wait`` looks at the group instead of sleeping; its answer: False, the service is stopping)."""

    events: list[tuple[str, object]] = field(default_factory=list)
    on_wait: Callable[[float], bool] = lambda seconds: True

    def leaving(self, members: Sequence[Member], why: str) -> None:
        self.events.append(("leaving", [(m.id, m.state.value) for m in members]))

    def gone(self, member_ids: Sequence[str]) -> None:
        self.events.append(("gone", list(member_ids)))

    def wait(self, seconds: float) -> bool:
        self.events.append(("waited", seconds))
        return self.on_wait(seconds)


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


def make(state_dir: Path, clock: Clock) -> LocalProvider:
    return LocalProvider(local_config(env={CASE_VAR: str(state_dir)}), ProviderContext(GROUP, state_dir),
                         clock=clock)


def request(desired: int, drain: float = 0.0, departures: Recorder | None = None) -> ScaleRequest:
    return ScaleRequest(GROUP, 0, desired, 1, 1, drain=drain, departures=departures or Recorder())


def answers(member: Member) -> bool:
    try:
        return httpx.get(f"http://{member.address}/healthz", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_victim_leaves_first_answers_while_it_drains_and_is_stopped_after(state_dir: Path) -> None:
    clock = Clock()
    seen: dict[str, object] = {}

    def wait(seconds: float) -> bool:  # the drain: look at the group at that moment instead of sleeping
        status = provider.status()
        victim = next(m for m in status.members if m.state is MemberState.STOPPING)
        seen.update(seconds=seconds, current=status.current, victim=victim.id, answers=answers(victim),
                    told=list(departures.events))
        clock.now += timedelta(seconds=seconds)
        return True

    departures = Recorder(on_wait=wait)
    provider = make(state_dir, clock)
    provider.scale(request(2))
    newest = max(provider.members(), key=lambda m: (m.created_at or T0, m.id))
    result = provider.scale(request(1, drain=30.0, departures=departures))
    assert seen == {"seconds": 30.0, "current": 1, "victim": newest.id, "answers": True,
                    "told": [("leaving", [(newest.id, "stopping")]), ("waited", 30.0)]}
    assert departures.events == [("leaving", [(newest.id, "stopping")]), ("waited", 30.0), ("gone", [newest.id])]
    assert f"stopped 1 ({newest.id}) after a 30s drain" in result
    assert [m.id for m in provider.members()] != [newest.id] and len(provider.members()) == 1
    assert not answers(newest)


def test_no_drain_stops_at_once_and_still_reports(state_dir: Path) -> None:
    provider = make(state_dir, Clock())
    provider.scale(request(2))
    departures = Recorder()
    provider.scale(request(1, departures=departures))
    assert [kind for kind, _ in departures.events] == ["leaving", "gone"]


def test_a_member_that_dies_while_it_drains_is_stopping_not_failed(state_dir: Path) -> None:
    states: list[str] = []

    def wait(seconds: float) -> bool:
        (victim,) = [m for m in provider.members() if m.state is MemberState.STOPPING]
        os.killpg(int(victim.labels["pid"]), signal.SIGKILL)
        wait_for(lambda: not answers(victim), timeout=10, what="the killed victim to stop answering")
        states.extend(m.state.value for m in provider.members() if m.id == victim.id)
        return True

    provider = make(state_dir, Clock())
    provider.scale(request(2))
    provider.scale(request(1, drain=5.0, departures=Recorder(on_wait=wait)))
    assert states == ["stopping"]  # a removal in progress, not a failure to heal


class Interrupted(Exception):
    """alertscaler killed in the middle of a drain (the wait never returns)."""


def crash(seconds: float) -> bool:
    raise Interrupted


def stopping(seconds: float) -> bool:
    return False


@pytest.mark.parametrize(("ended", "later", "waited"), [
    (crash, 10.0, [("waited", 20.0)]),
    (crash, 45.0, []),
    (stopping, 10.0, [("waited", 20.0)]),
], ids=["killed-within-the-drain-the-rest-is-waited", "killed-after-the-drain-stops-at-once",
        "the-service-stopped-the-rest-is-waited"])
def test_a_drain_interrupted_is_finished_by_the_next_run(state_dir: Path, ended: Callable[[float], bool],
                                                         later: float, waited: list[tuple[str, float]]) -> None:
    clock = Clock()
    first = make(state_dir, clock)
    first.scale(request(2))
    with pytest.raises((Interrupted, TemporaryProviderError)) as raised:
        first.scale(request(1, drain=30.0, departures=Recorder(on_wait=ended)))
    if ended is stopping:
        assert "stopping during the drain" in str(raised.value)
    (victim,) = [m for m in first.members() if m.state is MemberState.STOPPING]
    assert first.status().current == 1 and answers(victim)  # out of the group, still running

    clock.now += timedelta(seconds=later)
    departures = Recorder()
    again = make(state_dir, clock)  # a new process on the same state directory
    result = again.scale(request(1, drain=30.0, departures=departures))
    assert departures.events == [("leaving", [(victim.id, "stopping")]), *waited, ("gone", [victim.id])]
    assert "finished stopping 1" in result and not answers(victim)
    assert victim.id not in [m.id for m in again.members()] and local.LocalProvider is type(again)


def test_an_instance_being_started_is_no_failure_to_heal(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "contract-0000beef.json").write_text(json.dumps({  # the intent, written before the fork
        "id": "contract-0000beef", "group": GROUP, "pid": 0, "port": 1, "created_at": T0.isoformat(),
        "start_time": None, "phase": "spawning", "command": ["starting"]}))
    status = make(state_dir, Clock()).status()
    assert [(m.id, m.state) for m in status.members] == [("contract-0000beef", MemberState.UNKNOWN)]
    assert status.current == 0
