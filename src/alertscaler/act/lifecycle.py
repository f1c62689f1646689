"""Start-up recovery: actions left RUNNING by a crashed process (kill -9) are resumed or reconciled, and a
group whose provider disagrees with its desired capacity gets a reconcile action — or, for a provider
that decides the size itself (``adopts_size``: Heat's scaling policies), its desired capacity follows.

Called by ``act.engine.Engine.start`` before the workers run.
"""

from __future__ import annotations

import logging
from datetime import datetime

from alertscaler.act.recording import About, Recorded, record
from alertscaler.config import PolicyFile
from alertscaler.model.decisions import ActionState, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import ProviderError
from alertscaler.providers.base import Provider
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)


def recover_interrupted(store: StateStore, providers: dict[str, Provider], now: datetime) -> list[str]:
    """Settle every action a previous process left RUNNING. Returns one line per action, for the log."""
    notes = []
    for action in store.running_actions():
        provider = providers.get(action.group)
        if provider is None:
            store.finish_action(action.id, ActionState.FAILED, now, error="group no longer configured")
            notes.append(f"action {action.id}: group {action.group} gone, failed")
            continue
        if provider.idempotent:
            store.release_action(action.id, now, "interrupted by a restart; resuming (provider converges)")
            notes.append(f"action {action.id}: resumed")
            continue
        current = _current(provider, action.group)
        if current == action.desired:
            store.finish_action(action.id, ActionState.SUCCEEDED, now,
                                result=f"reconciled after restart: provider reports {current}")
            notes.append(f"action {action.id}: reconciled as succeeded")
        else:
            store.finish_action(
                action.id, ActionState.FAILED, now,
                error=f"interrupted by a restart; provider reports current={current}, wanted {action.desired}; "
                      "not re-run because this provider's commands are not idempotent")
            notes.append(f"action {action.id}: interrupted, failed (not idempotent)")
    for note in notes:
        log.warning("recovery: %s", note)
    return notes


def reconcile_groups(policy: PolicyFile, store: StateStore, providers: dict[str, Provider],
                     now: datetime) -> list[int]:
    """``reconcile``, for callers that want only the new action ids."""
    return [r.action_id for r in reconcile(policy, store, providers, now) if r.action_id is not None]


def reconcile(policy: PolicyFile, store: StateStore, providers: dict[str, Provider],
              now: datetime) -> list[Recorded]:
    """Create the group rows, clamp desired into the configured bounds, and queue a reconcile action for a
    group whose provider reports a different size (and has nothing queued). Returns what was recorded."""
    out: list[Recorded] = []
    for name, group in policy.groups.items():
        provider = providers[name]
        current = _current(provider, name)
        about = About(name, None, Trigger.RECONCILE, group)
        with store.transaction() as tx:
            state = tx.lock_group(name, group.initial_desired)
            bounds = group.bounds_at(now)  # a schedule's open windows included
            desired = bounds.clamp(state.desired)
            if desired != state.desired:
                log.warning("group %s: desired %d outside bounds %d..%d, clamped to %d",
                            name, state.desired, bounds.min_size, bounds.max_size, desired)
            if current is None or (current == desired and desired == state.desired):
                continue
            if provider.adopts_size:  # the cloud decides steps (Heat policies): follow it
                if current != state.desired:
                    out.append(record(tx, about, Verdict(
                        Outcome.SKIPPED, Reason.RECONCILE, state.desired, current,
                        f"provider reports {current}; it decides the size, desired follows it"), now, state=state))
                continue
            if store.next_action(name) is not None:
                continue
            if group.dry_run:
                log.info("group %s (dry run): provider reports %s, desired %d; not converging",
                         name, current, desired)
                continue
            out.append(record(tx, about, Verdict(
                Outcome.ACTED, Reason.RECONCILE, current, desired,
                f"provider reports {current}, desired is {desired}: converge"), now, state=state))
    return out


def _current(provider: Provider, name: str) -> int | None:
    """The provider's size now; None when it cannot tell (any failure is logged: start goes on)."""
    try:
        return provider.status().current
    except ProviderError as exc:
        log.warning("group %s: cannot read provider status at start: %s", name, exc)
    except Exception:
        log.exception("group %s: the provider failed reading its status at start", name)
    return None
