"""Healing as values: heal policies, the signals that say a member is unhealthy, the heal history, and the
plan ``decide.healing`` makes of them. Used by ``config`` (the ``heal`` section of a group), ``decide``,
``store`` and ``act``.

A **signal** names a member by a key (its id, or its address as Prometheus sees it) and says where it came
from: a firing alert routed to the group's heal policy, or the provider's own status (a member it reports
as failed). Signals for one group are held for ``batch_window`` and judged together.

A **slot** is a member's place in the group across replacements: the replacement of member A takes A's
slot, so a slot healed again and again (a flapping member) is recognised even though each replacement has
a new id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum


class HealAction(str, Enum):
    REPLACE = "replace"        # a new member first, then the old one removed: capacity never drops
    REBOOT = "reboot"          # restart in place
    QUARANTINE = "quarantine"  # out of the group, kept running for inspection, size restored by a scale


class SignalSource(str, Enum):
    ALERT = "alert"            # a firing alert matched the group's heal policy
    STATUS = "status"          # the provider reports the member failed


@dataclass(frozen=True)
class HealSignal:
    """``member_key`` is a member id or address; ``reason`` says what is wrong, for the decision."""

    member_key: str
    source: SignalSource
    reason: str
    at: datetime


@dataclass(frozen=True)
class HealRecord:
    """One heal done (or started) on ``slot``: what the flap detection and the budget count."""

    slot: str
    member_id: str
    action: HealAction
    at: datetime


@dataclass(frozen=True)
class HealRules:
    """The knobs of a heal policy that the decision needs (the policy file's ``heal`` section)."""

    action: HealAction = HealAction.REPLACE
    grace: float = 120.0                 # seconds after a member's creation during which it is not judged
    batch_window: float = 20.0           # signals within it become one heal action (Tacker's timer_interval)
    budget: int = 1                      # members healed per batch_window per group
    flap_heals: int = 3                  # a slot healed this many times within flap_period ...
    flap_period: float = 3600.0          # ... is quarantined instead (or left alone), and the reason recorded
    freeze_share: float = 0.5            # more than this share of the members unhealthy at once: freeze ...
    freeze_min: int = 2                  # ... when at least this many are (one member of a pair is not a storm)
    can_quarantine: bool = False         # the provider has the quarantine ability

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.batch_window)


class HealOutcome(str, Enum):
    HEAL = "heal"                    # act: the policy's action
    QUARANTINE = "quarantine"        # act: the member flaps; taken out instead of healed again
    OVER_BUDGET = "over_budget"      # skipped: the group's heal budget for this window is spent
    FROZEN = "frozen"                # skipped: the monitoring path looks sick; nothing is destroyed
    FLAPPING = "flapping"            # skipped: flaps, and the provider cannot quarantine
    GRACE = "grace"                  # skipped: still warming up
    UNKNOWN_MEMBER = "unknown_member"  # skipped: no such member (already replaced, or not ours)
    SILENCED = "silenced"            # skipped: its alert is silenced or inhibited in Alertmanager
    SILENCE_UNKNOWN = "silence_unknown"  # skipped: Alertmanager could not be asked and heal fails closed

    @property
    def acts(self) -> bool:
        return self in (HealOutcome.HEAL, HealOutcome.QUARANTINE)


@dataclass(frozen=True)
class HealSilences:
    """What Alertmanager says about the alerts behind a batch's signals (``act.silencing.judge_heal``), for
    ``decide.healing``. ``suppressed``: member key -> why every alert naming it is silenced or inhibited;
    ``blocked``: Alertmanager could not be asked and heal fails closed (why); ``note``: it could not be asked and
    heal fails open (said in the heal's message). Only signals from alerts are subject to it, never the
    provider's own status."""

    suppressed: Mapping[str, str] = field(default_factory=dict)
    blocked: str | None = None
    note: str = ""


@dataclass(frozen=True)
class MemberJudgement:
    """What the plan does with one signalled member. ``member_id`` is None for an unknown key."""

    key: str
    member_id: str | None
    outcome: HealOutcome
    action: HealAction | None
    slot: str | None
    message: str
    sources: tuple[SignalSource, ...] = ()


@dataclass(frozen=True)
class HealPlan:
    """The judgement of one batch of signals for one group."""

    judgements: tuple[MemberJudgement, ...]
    frozen: bool = False
    message: str = ""
    history_used: tuple[HealRecord, ...] = field(default=(), repr=False)

    @property
    def acting(self) -> tuple[MemberJudgement, ...]:
        return tuple(j for j in self.judgements if j.outcome.acts)

    @property
    def skipped(self) -> tuple[MemberJudgement, ...]:
        return tuple(j for j in self.judgements if not j.outcome.acts)
