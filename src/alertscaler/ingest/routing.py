"""Labels → (group, policy) routes, by Alertmanager-syntax matchers. Pure; called by ``act.processing``.

An alert may match several routes (e.g. two groups scaled by the same alert); each gets its own decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import Direction


@dataclass(frozen=True)
class Route:
    group: str
    direction: Direction
    matchers: MatcherSet

    @property
    def policy(self) -> str:
        return self.direction.value


def route(labels: Mapping[str, str], routes: Iterable[Route]) -> list[Route]:
    """All routes whose matchers all match ``labels``, in configuration order."""
    return [r for r in routes if r.matchers.matches(labels)]
