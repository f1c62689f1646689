"""Pure heal decisions: a batch of signals + the group's members + its heal history → a ``HealPlan``.

No I/O, no clock (``now`` is passed in), no global config: ``act.healing`` gathers the inputs and records the
outcome. In order, for each signalled member (several signals for one member count once):

0. signalled only by alerts that Alertmanager says are silenced or inhibited → ``silenced``; Alertmanager could
   not be asked and heal fails closed → ``silence_unknown`` (``silences``, from ``act.silencing.judge_heal``; a
   member the provider's own status reports failed is not subject to silences). Neither counts towards a storm;
1. a key that names no current member → ``unknown_member`` (already replaced, or not this group's);
2. a member younger than ``grace`` → ``grace`` (still warming up);
3. the monitoring path looks sick — the caller says Prometheus is unreachable, or more than ``freeze_share``
   of the members (and at least ``freeze_min``) are unhealthy at once → every member ``frozen``: nothing is
   destroyed when the signals themselves are suspect;
4. a slot healed ``flap_heals`` times within ``flap_period`` → ``quarantine`` when the provider can, else
   ``flapping`` (left alone, reason recorded);
5. at most ``budget`` heals per ``batch_window`` per group (counting the heals already done in the last
   window) → the rest ``over_budget``; earliest signal first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from alertscaler.model.groups import Member
from alertscaler.model.healing import (
    HealAction,
    HealOutcome,
    HealPlan,
    HealRecord,
    HealRules,
    HealSignal,
    HealSilences,
    MemberJudgement,
    SignalSource,
)


def slot_of(member_id: str, replaced: Mapping[str, str]) -> str:
    """The slot of ``member_id``: the slot of the member it replaced (``replaced``: new id → slot)."""
    return replaced.get(member_id, member_id)


def find_member(key: str, members: Sequence[Member]) -> Member | None:
    """The member a signal names: by id first, then by address (``host:port`` as Prometheus scrapes it)."""
    for member in members:
        if member.id == key:
            return member
    for member in members:
        if member.address is not None and member.address == key:
            return member
    return None


def plan_heal(
    signals: Sequence[HealSignal],
    members: Sequence[Member],
    history: Sequence[HealRecord],
    rules: HealRules,
    now: datetime,
    *,
    replaced: Mapping[str, str] | None = None,
    monitoring_problem: str | None = None,
    silences: HealSilences | None = None,
) -> HealPlan:
    """Judge one batch. ``replaced`` maps replacement ids to their slots; ``monitoring_problem`` is set by the
    caller when the monitoring path is down (e.g. "Prometheus unreachable: ..."); ``silences``: Alertmanager's
    view of the alerts behind the signals (None: not asked)."""
    replaced = replaced or {}
    by_key: dict[str, list[HealSignal]] = {}
    for signal in sorted(signals, key=lambda s: (s.at, s.member_key)):
        by_key.setdefault(signal.member_key, []).append(signal)

    judged: list[MemberJudgement] = []
    candidates: list[tuple[str, Member, tuple[SignalSource, ...], str]] = []
    seen_members: set[str] = set()
    for key, batch in by_key.items():
        sources = tuple(dict.fromkeys(s.source for s in batch))
        why = "; ".join(dict.fromkeys(s.reason for s in batch))
        member = find_member(key, members)
        if silences is not None and SignalSource.STATUS not in sources:  # only alerts say so: Alertmanager's view
            muted = _muted(key, member, sources, why, silences, replaced)
            if muted is not None:
                judged.append(muted)
                continue
            if silences.note:
                why = f"{why}; {silences.note}"
        if member is None:
            judged.append(MemberJudgement(key, None, HealOutcome.UNKNOWN_MEMBER, None, None,
                                          f"{key}: no such member now ({why})", sources))
            continue
        if member.id in seen_members:  # the same member named by id and by address
            continue
        seen_members.add(member.id)
        if member.created_at is not None and now - member.created_at < timedelta(seconds=rules.grace):
            age = (now - member.created_at).total_seconds()
            judged.append(MemberJudgement(key, member.id, HealOutcome.GRACE, None, slot_of(member.id, replaced),
                                          f"{member.id}: {age:.0f}s old, within the {rules.grace:.0f}s grace "
                                          f"period ({why})", sources))
            continue
        candidates.append((key, member, sources, why))

    frozen_by = monitoring_problem or _storm(len(candidates), len(members), rules)
    if frozen_by:
        for key, member, sources, why in candidates:
            judged.append(MemberJudgement(key, member.id, HealOutcome.FROZEN, None, slot_of(member.id, replaced),
                                          f"{member.id}: frozen, {frozen_by}; nothing destroyed ({why})",
                                          sources))
        return HealPlan(tuple(judged), frozen=True, message=frozen_by, history_used=tuple(history))

    flap_since = now - timedelta(seconds=rules.flap_period)
    window_since = now - rules.window
    spent = sum(1 for h in history if h.at > window_since and h.action is not HealAction.QUARANTINE)
    for key, member, sources, why in candidates:
        slot = slot_of(member.id, replaced)
        heals = sum(1 for h in history if h.slot == slot and h.at > flap_since)
        if heals >= rules.flap_heals:
            flapped = (f"{member.id}: slot {slot} healed {heals} times in the last "
                       f"{rules.flap_period:.0f}s ({why})")
            if rules.can_quarantine:
                judged.append(MemberJudgement(key, member.id, HealOutcome.QUARANTINE, HealAction.QUARANTINE, slot,
                                              f"{flapped}: quarantined, kept for inspection", sources))
            else:
                judged.append(MemberJudgement(key, member.id, HealOutcome.FLAPPING, None, slot,
                                              f"{flapped}: the provider cannot quarantine; left alone", sources))
            continue
        if spent >= rules.budget:
            judged.append(MemberJudgement(key, member.id, HealOutcome.OVER_BUDGET, None, slot,
                                          f"{member.id}: heal budget spent ({rules.budget} per "
                                          f"{rules.batch_window:.0f}s) ({why})", sources))
            continue
        spent += 1
        judged.append(MemberJudgement(key, member.id, HealOutcome.HEAL, rules.action, slot,
                                      f"{member.id}: {rules.action.value} ({why})", sources))
    acting = sum(1 for j in judged if j.outcome.acts)
    message = f"{acting} of {len(by_key)} signalled member(s) acted on"
    return HealPlan(tuple(judged), message=message, history_used=tuple(history))


def _muted(key: str, member: Member | None, sources: tuple[SignalSource, ...], why: str, silences: HealSilences,
           replaced: Mapping[str, str]) -> MemberJudgement | None:
    """A member signalled by alerts only, whose alerts Alertmanager silences (or could not say): not healed."""
    member_id = member.id if member is not None else None
    slot = slot_of(member_id, replaced) if member_id is not None else None
    if silences.blocked is not None:
        return MemberJudgement(key, member_id, HealOutcome.SILENCE_UNKNOWN, None, slot,
                               f"{key}: not healed, {silences.blocked} ({why})", sources)
    suppressed = silences.suppressed.get(key)
    if suppressed is not None:
        return MemberJudgement(key, member_id, HealOutcome.SILENCED, None, slot,
                               f"{key}: its alert is {suppressed} in Alertmanager: not healed; heals if Alertmanager "
                               f"sends it again, still firing, once the silence ends ({why})", sources)
    return None


def _storm(unhealthy: int, size: int, rules: HealRules) -> str | None:
    if size and unhealthy >= rules.freeze_min and unhealthy / size > rules.freeze_share:
        return (f"{unhealthy} of {size} members unhealthy at once (over {rules.freeze_share:.0%}): the "
                "monitoring path itself may be sick")
    return None
