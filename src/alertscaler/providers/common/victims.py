"""Scale-in victim strategies: which members a scale-in removes, and in which order. One place for every
family (nomad-autoscaler's ``scaleutils/nodeselector`` does the same); each family picks its strategy and
its ranking, and keeps its own semantics:

- ``by_age`` (strategies ``oldest`` / ``newest``): by creation time only. Nova's ``scale_in: oldest|newest``.
- ``ranked`` (strategy ``unhealthy_first``): by a family's ``rank`` (0 = remove first), then by age
  (``oldest`` or ``newest`` first within a rank). Nova's ``scale_in: unhealthy_first`` ranks by member state
  (``state_rank``, oldest first); Linode ranks by state and NodeBalancer health (``linode.members.rank``) with
  its ``scale_in`` order; ``local`` ranks members an interrupted heal already replaced, then hung ones, newest
  first (``local.provider``).

A member's age, for cloud members, is ``member_age(name_label)``: creation time, then the name label with digit
runs read as numbers (clouds give whole seconds: ``<group>-<action>-<n>`` names then order by action), then the
id. Pure; called by ``linode.members``, ``openstack.nova.servers`` and ``local.provider``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common.parsing import EARLIEST, natural_key

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

T = TypeVar("T")
Order = Literal["oldest", "newest"]
MemberAge = tuple[datetime, tuple[tuple[int, int | str], ...], str]

#: ``state_rank``: failed first, then unknown or being removed, then still starting, then running.
STATE_RANK = {MemberState.FAILED: 0, MemberState.UNKNOWN: 1, MemberState.STOPPING: 1, MemberState.STARTING: 2,
              MemberState.RUNNING: 3}


def by_age(items: Iterable[T], count: int, *, age: Callable[[T], SupportsRichComparison], order: Order) -> list[T]:
    """The ``count`` oldest (or newest) of ``items``, in removal order."""
    if count <= 0:
        return []
    return sorted(items, key=age, reverse=order == "newest")[:count]


def ranked(items: Iterable[T], count: int, *, rank: Callable[[T], int], age: Callable[[T], SupportsRichComparison],
           order: Order) -> list[T]:
    """The ``count`` items to remove, in removal order: lowest ``rank`` first, the ``oldest`` (or ``newest``)
    first within a rank."""
    if count <= 0:
        return []
    by_age_order = sorted(items, key=age, reverse=order == "newest")
    return sorted(by_age_order, key=rank)[:count]  # sorted() is stable: age order kept within a rank


def member_age(name_label: str) -> Callable[[Member], MemberAge]:
    """A member's age key: creation time (unknown = earliest), then its ``name_label`` label read naturally,
    then its id."""
    def age(member: Member) -> MemberAge:
        return member.created_at or EARLIEST, natural_key(member.labels.get(name_label, "")), member.id

    return age


def state_rank(member: Member) -> int:
    """``STATE_RANK`` of the member's state."""
    return STATE_RANK[member.state]
