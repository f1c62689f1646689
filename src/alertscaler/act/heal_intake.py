"""Heal signals from alerts: a firing alert that matches a group's heal policy names a member (by the first
of the policy's ``member_labels`` it carries: ``alertscaler_member`` from the generated scrape config, or
``instance``); the signal is stored, to be judged with the others when the group's batch window closes.

Called by ``act.processing`` inside the transaction that decides on a notification. A re-sent firing alert
(an Alertmanager repeat) signals again: it says the member is still down. A resolved heal alert does nothing.

An alert naming a member alertscaler itself removed or is removing (``act.removals``: a scale-in's victim, a
member a heal replaced) is no signal: the first one about that member is recorded as ONE ``removed_member``
decision, every later one (repeats, resolved) is dropped without a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.act.removals import claim_reports, removed_message, split_removed
from alertscaler.config import HealConfig, PolicyFile
from alertscaler.model.alerts import Alert
from alertscaler.model.decisions import Reason
from alertscaler.model.healing import HealSignal, SignalSource
from alertscaler.model.matchers import MatcherSet
from alertscaler.store.base import Tx

log = logging.getLogger(__name__)

HEAL_POLICY = "heal"  # the ``policy`` of heal decisions


@dataclass(frozen=True)
class HealRoute:
    group: str
    matchers: MatcherSet
    config: HealConfig

    def member_key(self, alert: Alert) -> str | None:
        for label in self.config.member_labels:
            value = alert.labels.get(label)
            if value:
                return value
        return None


@dataclass
class Skip:
    """A decision for ``act.processing`` to record (it owns the decision format)."""

    group: str
    reason: Reason
    alerts: list[Alert]
    message: str


@dataclass
class _GroupBatch:
    signals: list[HealSignal] = field(default_factory=list)
    signalled: list[Alert] = field(default_factory=list)
    nameless: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    resolved_keys: list[str | None] = field(default_factory=list)
    removed_skips: list[Skip] = field(default_factory=list)

    def drop_removed(self, tx: Tx, group: str, now: datetime) -> None:
        """Take the alerts naming a member alertscaler removed out of the batch: one ``removed_member`` skip per
        member not reported before, nothing for the others (``act.removals``)."""
        removed = tx.removed_members_of(group, now)
        if not removed:
            return
        named = [(a, s.member_key) for a, s in zip(self.signalled, self.signals, strict=True)]
        named += [(a, k) for a, k in zip(self.resolved, self.resolved_keys, strict=True) if k is not None]
        split = split_removed([(key, alert.starts_at) for alert, key in named], removed)
        if not split.removed:
            return
        dropped = {id(named[i][0]) for positions in split.removed.values() for i in positions}
        kept = [(a, s) for a, s in zip(self.signalled, self.signals, strict=True) if id(a) not in dropped]
        self.signalled, self.signals = [a for a, _ in kept], [s for _, s in kept]
        self.resolved = [a for a in self.resolved if id(a) not in dropped]
        by_id = {m.member_id: m for m in removed}
        fresh = claim_reports(tx, group, split, now)
        for member_id in fresh:
            alerts = [named[i][0] for i in split.removed[member_id]]
            self.removed_skips.append(Skip(group, Reason.REMOVED_MEMBER, alerts, removed_message(by_id[member_id])))
        silent = sum(len(p) for m, p in split.removed.items() if m not in fresh)
        if silent:
            log.debug("group=%s: %d heal alert(s) about removed members already reported dropped", group, silent)


class HealIntake:
    def __init__(self, policy: PolicyFile) -> None:
        self.routes = [HealRoute(name, MatcherSet.parse(g.heal.matchers), g.heal)
                       for name, g in policy.groups.items() if g.heal is not None and g.heal.matchers]

    def take(self, tx: Tx, alerts: Sequence[Alert], notification_id: int, now: datetime) -> tuple[set[int], list[Skip]]:
        """Store the signals ``alerts`` carry. Returns the positions of the alerts a heal policy matched (they
        are routed, not ``no_group``) and the decisions to record."""
        if not self.routes:
            return set(), []
        matched: set[int] = set()
        batches: dict[str, _GroupBatch] = {}
        for i, alert in enumerate(alerts):
            for r in self.routes:
                if not r.matchers.matches(alert.labels):
                    continue
                matched.add(i)
                batch = batches.setdefault(r.group, _GroupBatch())
                key = r.member_key(alert)
                if not alert.firing:
                    batch.resolved.append(alert)
                    batch.resolved_keys.append(key)
                    continue
                if key is None:
                    batch.nameless.append(alert)
                    continue
                batch.signals.append(HealSignal(key, SignalSource.ALERT, f"alert {alert.name} firing", now))
                batch.signalled.append(alert)
        skips: list[Skip] = []
        for group, batch in batches.items():
            config = next(r.config for r in self.routes if r.group == group)
            if batch.signals or batch.resolved:
                batch.drop_removed(tx, group, now)
                skips += batch.removed_skips
            if batch.signals:
                tx.add_heal_signals(group, batch.signals, notification_id)
                members = ", ".join(dict.fromkeys(s.member_key for s in batch.signals))
                skips.append(Skip(group, Reason.BATCHED, batch.signalled,
                                  f"heal signal for {members}: judged when the {config.batch_window:g}s batch "
                                  "window closes"))
            if batch.nameless:
                labels = ", ".join(config.member_labels)
                skips.append(Skip(group, Reason.UNKNOWN_MEMBER, batch.nameless,
                                  f"the alert names no member: it has none of the labels {labels}"))
            if batch.resolved:
                skips.append(Skip(group, Reason.RESOLVED, batch.resolved,
                                  "heal alert resolved: nothing to do (a resolved alert never heals)"))
        return matched, skips
