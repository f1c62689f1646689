"""The ``fake`` provider: an in-memory group, for trying a policy file without touching anything and for
tests of the layers above providers. Members are made up; nothing runs. It has every heal ability
(replace, reboot, quarantine), in memory.

``fail_next`` lets a test make the next calls fail temporarily or permanently. A scale-in removes the newest
members the quiet way (``providers.base.Departures``): reported leaving, ``wait(request.drain)`` (a no-op unless
a test sets it), removed, reported gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.declaration import Declaration


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["fake"]
    initial: int = Field(default=0, ge=0)


class FakeProvider:
    idempotent = True
    adopts_size = False

    def __init__(self, config: FakeConfig, context: ProviderContext) -> None:
        self.group = context.group
        self._lock = threading.Lock()
        self._members: list[Member] = []
        self._serial = 0
        self.calls: list[ScaleRequest] = []
        self.heal_calls: list[tuple[str, str]] = []  # (ability, member id)
        self.failures: list[Exception] = []  # raised, in order, by the next scale() / heal calls
        self.quarantined: list[Member] = []
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # members' created_at; tests set it
        self.wait: Callable[[float], None] = lambda seconds: None  # a scale-in's drain; tests set it
        self._resize(config.initial)

    def fail_next(self, *errors: TemporaryProviderError | PermanentProviderError) -> None:
        with self._lock:
            self.failures.extend(errors)

    def status(self) -> GroupStatus:
        with self._lock:
            return GroupStatus(current=len(self._members), members=tuple(self._members))

    def members(self) -> list[Member]:
        return list(self.status().members)

    def scale(self, request: ScaleRequest) -> str:
        with self._lock:
            self.calls.append(request)
            if self.failures:
                raise self.failures.pop(0)
            before = len(self._members)
            victims = self._members[request.desired:]
            if victims:
                request.departures.leaving(victims, f"scale-in to {request.desired}")
                self.wait(request.drain)
            self._resize(request.desired)
            request.departures.gone([m.id for m in victims])
            return f"{before} -> {len(self._members)}"

    def _resize(self, desired: int) -> None:
        while len(self._members) < desired:
            self._members.append(self._new_member())
        del self._members[desired:]

    def _new_member(self) -> Member:
        self._serial += 1
        return Member(f"{self.group}-{self._serial}", f"127.0.0.1:{9000 + self._serial}", MemberState.RUNNING,
                      self.clock())

    # --- heal abilities (replace, reboot, quarantine), in memory --------------------------------------------

    def mark_failed(self, member_id: str) -> None:
        """Test helper: the member's instance died (status reports it FAILED)."""
        with self._lock:
            i = self._index(member_id)
            self._members[i] = replace(self._members[i], state=MemberState.FAILED)

    def heal(self, member_id: str) -> str:
        with self._lock:
            i = self._begin("replace", member_id)
            new = self._new_member()
            old, self._members[i] = self._members[i], new
            return f"replaced {old.id} by {new.id} ({new.address})"

    def reboot(self, member_id: str) -> str:
        with self._lock:
            i = self._begin("reboot", member_id)
            self._members[i] = replace(self._members[i], state=MemberState.RUNNING)
            return f"rebooted {member_id}"

    def quarantine(self, member_id: str) -> str:
        with self._lock:
            i = self._begin("quarantine", member_id)
            self.quarantined.append(self._members.pop(i))
            return f"quarantined {member_id} (kept, out of the group)"

    def _begin(self, ability: str, member_id: str) -> int:
        self.heal_calls.append((ability, member_id))
        if self.failures:
            raise self.failures.pop(0)
        return self._index(member_id)

    def _index(self, member_id: str) -> int:
        for i, member in enumerate(self._members):
            if member.id == member_id:
                return i
        raise PermanentProviderError(f"{member_id} is not a member of group {self.group}")

    def close(self) -> None:
        pass




def create(config: FakeConfig, context: ProviderContext) -> FakeProvider:
    return FakeProvider(config, context)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(FakeConfig, create, FakeProvider)
