"""Recovery: actions left RUNNING by a dead replica (kill -9; lease expired) or handed back by one that stopped
are settled, resumed or reconciled — never a live replica's — and at start a
group whose provider disagrees with its desired capacity gets a reconcile action — or, for a provider
that decides the size itself (``adopts_size``: Heat's scaling policies), its desired capacity follows.

Called by ``act.engine.Engine.start`` before the workers run, and by its heartbeat loop (actions of dead
replicas, groups this replica has just taken over).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from alertscaler.act.ownership import Ownership
from alertscaler.act.recording import About, Recorded, record
from alertscaler.config import PolicyFile
from alertscaler.model.decisions import Action, ActionState, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import ProviderError
from alertscaler.providers.base import Provider, Settled, Settler
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)


def recover_interrupted(store: StateStore, providers: dict[str, Provider], now: datetime,
                        ownership: Ownership | None = None) -> list[str]:
    """Settle every RUNNING action whose lease has expired (its replica died, or stopped and handed it back;
    or it was never leased) — never one a live replica holds. With ``ownership``, only actions of groups this
    replica drives (or that are no longer configured), each taken over atomically first: of two replicas
    recovering, one gets it. A provider that can settle (``Settler``: finds what the dead process left
    running, waits for it or stops it, verifies) is asked FIRST; else an idempotent provider's action is
    resumed and another's reconciled against the provider's status. Returns one line per action, for the log."""
    notes = []
    owner = ownership.replica if ownership is not None else None
    for action in store.expired_actions(now):
        provider = providers.get(action.group)
        if ownership is not None:
            if provider is not None and not ownership.drives(action.group, now):
                continue  # the replica that drives the group recovers it
            taken = store.take_over_action(action.id, now, ownership.lease(now))
            if taken is None:
                continue  # a peer took it over first, or its owner renewed the lease meanwhile
            action = taken
        notes.append(_settle(store, provider, action, now, owner))
    for note in notes:
        log.warning("recovery: %s", note)
    return notes


def _settle(store: StateStore, provider: Provider | None, action: Action, now: datetime, owner: str | None) -> str:
    if provider is None:
        store.finish_action(action.id, ActionState.FAILED, now, error="group no longer configured", owner=owner)
        return f"action {action.id}: group {action.group} gone, failed"
    if isinstance(provider, Settler):
        try:
            settled = provider.settle(action.id, action.from_capacity, action.desired)
        except Exception as exc:  # cannot tell: the outcome stays in doubt, never guessed
            log.exception("action %s: settling it failed", action.id)
            settled = Settled("unknown", f"settling failed: {type(exc).__name__}: {exc}")
        if settled.state == "succeeded":
            store.finish_action(action.id, ActionState.SUCCEEDED, now, owner=owner,
                                result=f"settled after an interruption: {settled.message}")
        elif settled.state == "failed":
            with store.transaction() as tx:  # verified: the group is still at from_capacity
                tx.lock_group(action.group, action.from_capacity)
                tx.rebase_next_action(action.group, action.desired, action.from_capacity)
            store.finish_action(action.id, ActionState.FAILED, now, owner=owner,
                                error=f"settled after an interruption: {settled.message}")
        elif settled.state == "not_started":
            store.release_action(action.id, now, f"interrupted before it started; runs now: {settled.message}",
                                 owner=owner)
        else:
            store.finish_action(action.id, ActionState.FAILED, now, owner=owner,
                                error=f"outcome unknown: {settled.message}")
        return f"action {action.id}: settled by the provider: {settled.state}"
    if provider.idempotent:
        store.release_action(action.id, now, "interrupted by a restart; resuming (provider converges)", owner=owner)
        return f"action {action.id}: resumed"
    current = _current(provider, action.group)
    if current == action.desired:
        store.finish_action(action.id, ActionState.SUCCEEDED, now, owner=owner,
                            result=f"reconciled after restart: provider reports {current}")
        return f"action {action.id}: reconciled as succeeded"
    store.finish_action(
        action.id, ActionState.FAILED, now, owner=owner,
        error=f"interrupted by a restart; provider reports current={current}, wanted {action.desired}; "
              "not re-run because this provider's commands are not idempotent")
    return f"action {action.id}: interrupted, failed (not idempotent)"


def reconcile_groups(policy: PolicyFile, store: StateStore, providers: dict[str, Provider],
                     now: datetime) -> list[int]:
    """``reconcile``, for callers that want only the new action ids."""
    return [r.action_id for r in reconcile(policy, store, providers, now) if r.action_id is not None]


def reconcile(policy: PolicyFile, store: StateStore, providers: dict[str, Provider],
              now: datetime, only: Collection[str] | None = None) -> list[Recorded]:
    """Create the group rows, clamp desired into the configured bounds, and queue a reconcile action for a
    group whose provider reports a different size (and has nothing queued). ``only``: just these groups (the
    ones this replica drives). Returns what was recorded."""
    out: list[Recorded] = []
    for name, group in policy.groups.items():
        if only is not None and name not in only:
            continue
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
