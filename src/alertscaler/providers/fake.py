"""The ``fake`` provider: an in-memory group, for trying a policy file without touching anything and for
tests of the layers above providers. Members are made up; nothing runs.

``fail_next`` lets a test make the next calls fail temporarily or permanently.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["fake"]
    initial: int = Field(default=0, ge=0)


class FakeProvider:
    idempotent = True

    def __init__(self, config: FakeConfig, context: ProviderContext) -> None:
        self.group = context.group
        self._lock = threading.Lock()
        self._members: list[Member] = []
        self._serial = 0
        self.calls: list[ScaleRequest] = []
        self.failures: list[Exception] = []  # raised, in order, by the next scale() calls
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
            self._resize(request.desired)
            return f"{before} -> {len(self._members)}"

    def _resize(self, desired: int) -> None:
        while len(self._members) < desired:
            self._serial += 1
            self._members.append(Member(f"{self.group}-{self._serial}", f"127.0.0.1:{9000 + self._serial}",
                                        MemberState.RUNNING, datetime.now(UTC)))
        del self._members[desired:]

    def close(self) -> None:
        pass


CONFIG_MODEL = FakeConfig


def create(config: FakeConfig, context: ProviderContext) -> FakeProvider:
    return FakeProvider(config, context)
