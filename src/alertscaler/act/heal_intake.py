"""Heal signals from alerts: a firing alert that matches a group's heal policy names a member (by the first
of the policy's ``member_labels`` it carries: ``alertscaler_member`` from the generated scrape config, or
``instance``); the signal is stored, to be judged with the others when the group's batch window closes.

Called by ``act.processing`` inside the transaction that decides on a notification. A re-sent firing alert
(an Alertmanager repeat) signals again: it says the member is still down. A resolved heal alert does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.config import HealConfig, PolicyFile
from alertscaler.model.alerts import Alert
from alertscaler.model.decisions import Reason
from alertscaler.model.healing import HealSignal, SignalSource
from alertscaler.model.matchers import MatcherSet
from alertscaler.store.base import Tx

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
                if not alert.firing:
                    batch.resolved.append(alert)
                    continue
                key = r.member_key(alert)
                if key is None:
                    batch.nameless.append(alert)
                    continue
                batch.signals.append(HealSignal(key, SignalSource.ALERT, f"alert {alert.name} firing", now))
                batch.signalled.append(alert)
        skips: list[Skip] = []
        for group, batch in batches.items():
            config = next(r.config for r in self.routes if r.group == group)
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
