"""Alertmanager's view of the alerts alertscaler believes firing: silenced or inhibited alerts are not acted on,
alerts Alertmanager no longer has are phantoms (their resolved notification was lost, e.g. while silenced).

``SilenceGate.ask`` asks Alertmanager (``GET /api/v2/alerts`` filtered by the policy's matchers, every state) —
always BEFORE the store transaction that decides (like a checked policy's live check, ``act.checking``). ``judge``
(pure, time passed in) splits a route's believed-firing alerts by fingerprint into ``live`` (act on them),
``suppressed`` (silenced / inhibited: decided ``silenced``) and ``phantoms`` (resolved, decision ``reconciled``),
or — Alertmanager could not be asked — fails open (act) or closed (``silence_unknown``), as the group's
``silences.when_unreachable`` says for the policy's direction.

Called by ``act.reevaluating`` (every step-policy route when ``alertmanager.url`` is set: the notification path
hands new firing alerts over as a ``CheckDue``, the timer re-asks while they stay silenced, so an alert still
firing when its silence ends acts at the next re-evaluation) and by ``act.healing`` (a group's heal alerts, asked
when its batch of heal signals is judged: ``judge_heal`` says which members' alerts are silenced or inhibited, or
fails closed or open as ``silences.when_unreachable.heal`` says). Built by ``service.build_engine``. Also here:
``clear_alert`` (an operator ends one believed-firing alert, recorded ``cleared``; called by ``act.engine``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from alertscaler.act.recording import About, Evidence, Recorded, record_skip
from alertscaler.alertmanager.client import AmAlert
from alertscaler.config import PolicyFile
from alertscaler.config.alertmanager_api import OnUnreachable, SilencesConfig
from alertscaler.model.decisions import Reason, Trigger
from alertscaler.model.errors import AlertmanagerError, NotFound
from alertscaler.model.healing import HealSilences
from alertscaler.model.policies import Direction
from alertscaler.store.base import ActiveAlert, StateStore

log = logging.getLogger(__name__)


class AlertsOf(Protocol):
    """``AlertmanagerClient.alerts``: the alerts Alertmanager holds that match ``filters``, in every state."""

    def __call__(self, filters: Sequence[str] = ()) -> list[AmAlert]: ...


@dataclass(frozen=True)
class View:
    """What Alertmanager said at ``asked_at`` (by fingerprint), or why it could not be asked (``error``)."""

    asked_at: datetime
    alerts: Mapping[str, AmAlert] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Judgement:
    """A route's believed-firing alerts as Alertmanager sees them (fingerprints). ``blocked``: fail-closed, why
    nothing may act; ``note``: said in the decision (fail-open)."""

    live: frozenset[str] = frozenset()
    suppressed: Mapping[str, str] = field(default_factory=dict)  # fingerprint -> "silenced by <id>" ...
    phantoms: frozenset[str] = frozenset()
    blocked: str | None = None
    note: str = ""
    asked_at: datetime | None = None

    @property
    def silenced(self) -> bool:
        """Every alert still believed firing is silenced or inhibited."""
        return not self.live and bool(self.suppressed)

    def why_silenced(self) -> str:
        reasons = sorted(set(self.suppressed.values()))
        return (f"{len(self.suppressed)} alert(s) silenced or inhibited in Alertmanager ({'; '.join(reasons)}): "
                "not acted on; acts again if still firing when the silence ends")


def judge(believed: Sequence[ActiveAlert], view: View, direction: Direction, setting: SilencesConfig) -> Judgement:
    """Split ``believed`` by what ``view`` says. An alert absent from the view is a phantom only if it was last
    confirmed before the question (one confirmed since is newer than the view); ``setting.respect`` false: silences
    are ignored (phantoms are still found)."""
    if view.error is not None:
        mode = setting.when_unreachable.of(direction)
        if mode is OnUnreachable.CLOSED:
            return Judgement(blocked=f"Alertmanager could not be asked whether the alerts are silenced ({view.error}); "
                                     f"{direction.value} fails closed (silences.when_unreachable.{direction.value}: "
                                     "closed): not acted on, asked again at the next re-evaluation")
        return Judgement(live=frozenset(a.fingerprint for a in believed),
                         note=f"Alertmanager could not be asked ({view.error}); {direction.value} fails open")
    live: set[str] = set()
    suppressed: dict[str, str] = {}
    phantoms: set[str] = set()
    for alert in believed:
        seen = view.alerts.get(alert.fingerprint)
        if seen is None:
            (phantoms if alert.last_seen_at <= view.asked_at else live).add(alert.fingerprint)
        elif seen.suppressed and setting.respect:
            suppressed[alert.fingerprint] = seen.why_suppressed
        else:
            live.add(alert.fingerprint)
    return Judgement(frozenset(live), suppressed, frozenset(phantoms), asked_at=view.asked_at)


def judge_heal(view: View, member_labels: Sequence[str], setting: SilencesConfig) -> HealSilences:
    """Alertmanager's view of a group's heal alerts (asked with the heal policy's matchers) → which members' alerts
    are silenced or inhibited. An alert names its member by the first of ``member_labels`` it carries (as
    ``act.heal_intake`` does); a member is suppressed only when EVERY alert naming it is. ``setting.respect``
    false: nothing is. Pure, for ``decide.healing.plan_heal``."""
    if not setting.respect:
        return HealSilences()
    if view.error is not None:
        if setting.when_unreachable.heal is OnUnreachable.CLOSED:
            return HealSilences(blocked=f"Alertmanager could not be asked whether its alert is silenced ({view.error});"
                                        " heal fails closed (silences.when_unreachable.heal: closed): nothing "
                                        "destroyed, a re-sent alert signals again")
        return HealSilences(note=f"Alertmanager could not be asked whether the alert is silenced ({view.error}); "
                                 "heal fails open")
    named: dict[str, list[AmAlert]] = {}
    for alert in view.alerts.values():
        key = next((alert.labels[label] for label in member_labels if alert.labels.get(label)), None)
        if key is not None:
            named.setdefault(key, []).append(alert)
    return HealSilences({key: "; ".join(sorted({a.why_suppressed for a in alerts}))
                         for key, alerts in named.items() if all(a.suppressed for a in alerts)})


@dataclass(frozen=True)
class SilenceGate:
    """Asks Alertmanager (``alerts_of``: the one client's ``alerts``) about one policy's alerts; ``interval``:
    how often a route in cooldown or at a bound is still reconciled (``alertmanager.reconcile_interval``)."""

    alerts_of: AlertsOf
    interval: float

    def ask(self, matchers: Sequence[str], now: datetime, where: str) -> View:
        """Never raises for Alertmanager's trouble: it is the view's ``error``. ``now``: before the question."""
        try:
            found = self.alerts_of(list(matchers))
        except AlertmanagerError as exc:
            log.warning("%s: cannot ask Alertmanager about silences: %s", where, exc)
            return View(now, error=str(exc))
        return View(now, {a.fingerprint: a for a in found})


def clear_alert(store: StateStore, policy: PolicyFile, group: str, fingerprint: str, now: datetime) -> list[Recorded]:
    """``alertscaler alerts clear GROUP FINGERPRINT``: end one believed-firing alert by hand, in each of the group's
    policies it is routed to, each recorded as a ``cleared`` decision. ``NotFound`` when the group has no such
    active alert. Called by ``act.engine`` (in a thread)."""
    if group not in policy.groups:
        raise NotFound(f"no group named {group!r}")
    recorded: list[Recorded] = []
    with store.transaction() as tx:
        for route in sorted({a.policy for a in store.active_alerts(group) if a.fingerprint == fingerprint}):
            gone = [a for a in tx.route_alerts(group, route, 1_000_000) if a.fingerprint == fingerprint]
            if gone and tx.remove_active_alert(group, route, fingerprint):
                recorded.append(record_skip(
                    tx, About(group, route, Trigger.MANUAL, policy.groups[group]), Reason.CLEARED,
                    "cleared by an operator: no longer believed firing (a new notification makes it fire again)",
                    now, Evidence.of(gone), numbered=True))
    if not recorded:
        raise NotFound(f"group {group!r} has no active alert with fingerprint {fingerprint!r}")
    return recorded
