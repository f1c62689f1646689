"""Fire-drill alerts in a notification: decided apart from the real ones, and never acted on.

``alertscaler drill`` (``cli.drilling``) sends an alert labelled ``alertscaler_drill="<id>"``
(``model.drills.DRILL_LABEL``) through the real Alertmanager, which may group it with real firing alerts of the
same alertname into one notification. ``act.processing`` splits the drill alerts out first (``split``) and hands
them here (``decide``); the real alerts are decided as usual.

A drill alert is routed like any alert (the same matchers), and for each (group, policy) it reaches one decision is
recorded, reason ``drill``, outcome ``skipped``: for a new firing drill alert, from/to and the message say what the
policy would have done now ("would have scale 2 -> 3", or why it would not act: cooldown, at max, dry run, paused,
held…); a re-sent or resolved one, that nothing is done. NOTHING else is touched: no desired change, no cooldown
stamp, no active-alert row (so the re-evaluation timer never steps it), no heal signal, no hold or pause effect,
no action. ``act.recording.record`` also refuses to act on a verdict whose evidence is a drill (belt and braces).

So the label cannot be abused: whoever can send webhooks can at most record ``drill`` skips. A checked policy's
live check and Alertmanager's silence check are not run for a drill (no query: the fixed step is reported).

Called by ``act.processing`` inside the transaction that records the notification; decisions recorded through
``act.recording`` (the one place).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.act.heal_intake import HEAL_POLICY, HealRoute
from alertscaler.act.recording import About, Evidence, Recorded, effective, gate_of, record, record_skip
from alertscaler.config import PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.ingest.routing import Route, route
from alertscaler.model.alerts import Alert
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.drills import drill_id, is_drill
from alertscaler.model.policies import Direction
from alertscaler.store.base import StoredNotification, Tx

SHOWN_IDS = 3  # drill ids named in one decision's message


def split(alerts: Sequence[Alert]) -> tuple[tuple[Alert, ...], tuple[Alert, ...]]:
    """``alerts`` → (the real ones, the drill ones), each in their order."""
    return tuple(a for a in alerts if not is_drill(a.labels)), tuple(a for a in alerts if is_drill(a.labels))


def named(alerts: Iterable[Alert]) -> str:
    """``fire drill 1a2b`` / ``fire drills 1a2b, 3c4d`` / ``… (+2 more)``: the drill ids of ``alerts``."""
    ids = list(dict.fromkeys(drill_id(a.labels) or "" for a in alerts))
    shown = ", ".join(ids[:SHOWN_IDS]) + (f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else "")
    return f"fire drill{'s' if len(ids) > 1 else ''} {shown}"


def would(seen: Verdict) -> str:
    """What the policy would have done (``seen``: its verdict with the dry run and operators' gate applied)."""
    if seen.acted:
        return f"would have {seen.message}"
    return f"would not have acted ({seen.reason.value}): {seen.message}"


@dataclass
class _Bucket:
    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    duplicates: list[Alert] = field(default_factory=list)


def decide(tx: Tx, policy: PolicyFile, routes: Sequence[Route], heal_routes: Sequence[HealRoute],
           alerts: Sequence[Alert], is_new: Callable[[Alert], bool], stored: StoredNotification, now: datetime,
           gated: bool = False) -> list[Recorded]:
    """One ``drill`` decision per (group, policy) the drill ``alerts`` reach (and one for those no group takes).
    ``is_new``: first time received (not an Alertmanager re-send); ``gated``: Alertmanager's silences would be
    asked for a real alert (said in the message)."""
    buckets: dict[Route, _Bucket] = defaultdict(_Bucket)
    healed: dict[str, list[Alert]] = defaultdict(list)
    unrouted: list[Alert] = []
    for alert in alerts:
        matched = route(alert.labels, routes)
        heals = [h.group for h in heal_routes if h.matchers.matches(alert.labels)]
        if not matched and not heals:
            unrouted.append(alert)
        for r in matched:
            bucket = buckets[r]
            (bucket.duplicates if not is_new(alert) else bucket.firing if alert.firing else bucket.resolved
             ).append(alert)
        for group in dict.fromkeys(heals):
            healed[group].append(alert)
    out: list[Recorded] = []

    def skip(about: About, chosen: list[Alert], message: str) -> None:
        out.append(record_skip(tx, about, Reason.DRILL, f"{named(chosen)}: {message}", now,
                               Evidence.of(chosen, stored)))

    if unrouted:
        skip(About(None, None, Trigger.NOTIFICATION), unrouted, "no group policy matches the drill's labels")
    for r, bucket in buckets.items():
        config = policy.groups[r.group]
        about = About(r.group, r.policy, Trigger.NOTIFICATION, config)
        if bucket.duplicates:
            skip(about, bucket.duplicates, "re-sent by Alertmanager; a drill never acts")
        if bucket.resolved:
            skip(about, bucket.resolved, "resolved: the drill ended; nothing to do")
        if bucket.firing:
            out.append(_firing(tx, about, r.direction, bucket.firing, stored, now, gated))
    for group, chosen in healed.items():
        skip(About(group, HEAL_POLICY, Trigger.NOTIFICATION, policy.groups[group]), chosen,
             "a heal policy matches; a drill stores no heal signal")
    return out


def _firing(tx: Tx, about: About, direction: Direction, alerts: list[Alert], stored: StoredNotification,
            now: datetime, gated: bool) -> Recorded:
    """What the policy would have done with these new firing alerts now: recorded, nothing else."""
    assert about.group is not None and about.config is not None
    config = about.config
    step = config.scale_out if direction is Direction.SCALE_OUT else config.scale_in
    assert step is not None
    state = tx.lock_group(about.group, config.initial_desired)
    verdict = evaluate_step(state, step, direction, config.bounds_at(now), now)
    seen = effective(verdict, config, gate_of(tx.pauses(), about, state, now))
    notes = []
    if step.checked:
        notes.append("the live check is not run in a drill: fixed step")
    if gated:
        notes.append("Alertmanager's silences are not asked in a drill")
    note = f" ({'; '.join(notes)})" if notes else ""
    message = f"{named(alerts)}: {would(seen)}{note}; nothing was changed"
    drilled = Verdict(Outcome.SKIPPED, Reason.DRILL, seen.from_capacity, seen.to_capacity, message)
    return record(tx, about, drilled, now, evidence=Evidence.of(alerts, stored))
