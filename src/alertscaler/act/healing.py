"""Healing, the acting part: judge a group's heal signals when its batch window closes, and carry out a heal
action on the provider.

- ``HealJudge.run(now)`` (called by ``act.engine`` on the re-evaluation timer, in a thread): for every group
  whose oldest pending signal is ``batch_window`` old, reads the provider's members, asks whether the
  monitoring path is healthy and (``alertmanager.url`` set) whether the heal alerts are silenced or inhibited
  (``act.silencing.judge_heal``, outside the transaction), and hands everything to ``decide.healing.plan_heal``;
  records one decision per skipped member (frozen, over budget, grace, flapping, unknown member, silenced) and
  one acted decision with ONE heal action for the members to heal — queued on the group's serial queue, so
  healing and scaling never race. In a ``dry_run`` group that decision is a ``dry_run`` skip saying what it
  would have healed, and no action is made
  (``act.recording.record`` applies the rule, as to every verdict). Signals about a member alertscaler itself
  removed or is removing (``act.removals``) are not judged: one ``removed_member`` decision per member at most.
- ``signals_from_status`` turns members the provider reports FAILED into signals (``act.engine`` calls it
  after each status read).
- ``carry_out`` (called by ``act.executing`` in a worker thread) runs each target through the provider's
  ability (replace / reboot / quarantine, then a ``scale`` back to the size for a quarantine) and records
  the heal history, including which member replaced which (so flapping is recognised across replacements);
  a member a replace or quarantine took out of the group is recorded as removed (``act.removals``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from alertscaler.act.heal_intake import HEAL_POLICY
from alertscaler.act.ownership import Drives, drives_all
from alertscaler.act.recording import MAX_ALERTS_PER_DECISION, About, Evidence, Recorded, record, record_skip
from alertscaler.act.removals import StoreDepartures, claim_reports, removed_message, split_removed
from alertscaler.act.silencing import SilenceGate, judge_heal
from alertscaler.config import GroupConfig, HealConfig, PolicyFile
from alertscaler.decide.healing import plan_heal
from alertscaler.model.decisions import Action, HealTarget, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import PermanentProviderError, ProviderError
from alertscaler.model.groups import GroupStatus, MemberState
from alertscaler.model.healing import (
    HealAction,
    HealOutcome,
    HealPlan,
    HealRecord,
    HealSignal,
    HealSilences,
    MemberJudgement,
    SignalSource,
)
from alertscaler.prometheus.client import PrometheusClient
from alertscaler.providers import registry
from alertscaler.providers.base import Healer, Provider, Quarantiner, Rebooter, ScaleRequest
from alertscaler.store.base import PendingSignal, StateStore, Tx

log = logging.getLogger(__name__)

_REASONS = {
    HealOutcome.OVER_BUDGET: Reason.OVER_BUDGET, HealOutcome.FROZEN: Reason.FROZEN,
    HealOutcome.FLAPPING: Reason.FLAPPING, HealOutcome.GRACE: Reason.GRACE,
    HealOutcome.UNKNOWN_MEMBER: Reason.UNKNOWN_MEMBER, HealOutcome.SILENCED: Reason.SILENCED,
    HealOutcome.SILENCE_UNKNOWN: Reason.SILENCE_UNKNOWN,
}


READY_TIMEOUT_S = 2.0  # the heal freeze's readiness probe: a slow Prometheus counts as not ready


def prometheus_problem(client: PrometheusClient | None) -> str | None:
    """None when Prometheus answers ``/-/ready``; else why not (a heal freeze reason).

    ``client`` is the configured one (``PrometheusClient.from_config``: bearer token, TLS). None when the policy
    file sets no ``prometheus.url``: there is nobody to ask, so the freeze does not consider Prometheus (``check``
    warns about it) rather than freezing heals for good on a default URL."""
    return client.ready(timeout=READY_TIMEOUT_S) if client is not None else None


def signals_from_status(config: GroupConfig, status: GroupStatus, now: datetime) -> list[HealSignal]:
    if config.heal is None or not config.heal.provider_status:
        return []
    return [HealSignal(m.id, SignalSource.STATUS, f"provider reports {m.state.value}", now)
            for m in status.members if m.state is MemberState.FAILED]


class HealJudge:
    def __init__(self, policy: PolicyFile, store: StateStore, providers: dict[str, Provider],
                 monitoring: Callable[[], str | None], gate: SilenceGate | None = None) -> None:
        self.policy = policy
        self.store = store
        self.providers = providers
        self.monitoring = monitoring
        self.gate = gate  # Alertmanager's view of the heal alerts (act.silencing): None without alertmanager.url
        self.drives: Drives = drives_all  # several replicas: the engine sets its replica's (act.ownership)

    def run(self, now: datetime) -> list[Recorded]:
        out: list[Recorded] = []
        for group, first in self.store.pending_heal_groups():
            if group in self.policy.groups and not self.drives(group, now):
                continue
            config = self.policy.groups.get(group)
            heal = config.heal if config is not None else None
            if config is None or heal is None:
                with self.store.transaction() as tx:  # the policy file no longer heals this group
                    self._drop(tx, group, now, out)
                continue
            if now - first < timedelta(seconds=heal.batch_window):
                continue
            try:
                status = self.providers[group].status()
            except ProviderError as exc:
                log.warning("group %s: cannot read members to judge heal signals, will retry: %s", group, exc)
                continue
            except Exception:  # a provider bug: the other groups are still judged
                log.exception("group %s: the provider failed reading members to judge heal signals", group)
                continue
            problem = self.monitoring() if heal.freeze.prometheus else None
            silences = self._silences(group, config, heal, now)
            rules = heal.rules(can_quarantine="quarantine" in registry.heal_actions(config.provider))
            horizon = now - timedelta(seconds=max(rules.flap_period, rules.batch_window))
            with self.store.transaction() as tx:
                pending = tx.pending_heal_signals(group)
                if not pending:
                    continue
                # the size a heal keeps (a quarantine is followed by a scale back to it): the desired capacity
                size = tx.lock_group(group, config.initial_desired).desired
                # the group's config in About: ``record`` applies its dry_run to the heal as to any verdict
                about = About(group, HEAL_POLICY, Trigger.HEALTH, config)
                pending = self._drop_removed(tx, about, pending, status, size, now, out)
                if not pending:
                    continue
                plan = plan_heal([p.signal for p in pending], status.members, tx.heal_history_in(group, horizon),
                                 rules, now, replaced=tx.heal_slots(group), monitoring_problem=problem,
                                 silences=silences)
                first_id = self._record(tx, about, plan, size, now, out)
                tx.consume_heal_signals([p.id for p in pending], first_id)
        return out

    def _drop_removed(self, tx: Tx, about: About, pending: list[PendingSignal], status: GroupStatus, size: int,
                      now: datetime, out: list[Recorded]) -> list[PendingSignal]:
        """Signals about members alertscaler removed or is removing (``act.removals``) never heal: one
        ``removed_member`` decision per member not reported before, the rest consumed silently. Returns the
        others, to be judged."""
        assert about.group is not None
        removed = tx.removed_members_of(about.group, now)
        if not removed:
            return pending
        split = split_removed([(p.signal.member_key, p.signal.at) for p in pending], removed, status.members)
        if not split.removed:
            return pending
        by_id = {m.member_id: m for m in removed}
        fresh = set(claim_reports(tx, about.group, split, now))
        silent: list[int] = []
        for member_id, positions in split.removed.items():
            ids = [pending[i].id for i in positions]
            if member_id not in fresh:
                silent += ids
                continue
            verdict = Verdict(Outcome.SKIPPED, Reason.REMOVED_MEMBER, size, size, removed_message(by_id[member_id]))
            sources = [s.value for s in dict.fromkeys(pending[i].signal.source for i in positions)]
            evidence = Evidence([{"member": member_id, "outcome": Reason.REMOVED_MEMBER.value, "sources": sources}], 1)
            done = record(tx, about, verdict, now, evidence=evidence, numbered=True)
            assert done.decision_id is not None
            tx.consume_heal_signals(ids, done.decision_id)
            out.append(done)
        tx.drop_heal_signals(silent)
        return [pending[i] for i in split.kept]

    def _silences(self, group: str, config: GroupConfig, heal: HealConfig, now: datetime) -> HealSilences | None:
        """Alertmanager's view of the group's heal alerts (never raises; asked outside any transaction). None when
        nobody is asked: no ``alertmanager.url``, ``silences.respect`` false, or no heal ``matchers``."""
        if self.gate is None or not config.silences.respect or not heal.matchers:
            return None
        view = self.gate.ask(heal.matchers, now, f"group={group} policy={HEAL_POLICY}")
        return judge_heal(view, heal.member_labels, config.silences)

    def _record(self, tx: Tx, about: About, plan: HealPlan, size: int, now: datetime,
                out: list[Recorded]) -> int:
        ids: list[int | None] = []
        acting = plan.acting
        if acting:
            everything_quarantined = all(j.outcome is HealOutcome.QUARANTINE for j in acting)
            reason = Reason.QUARANTINED if everything_quarantined else Reason.HEALED
            targets = [HealTarget(j.member_id or j.key, (j.action or HealAction.REPLACE).value, j.slot or j.key)
                       for j in acting]
            verdict = Verdict(Outcome.ACTED, reason, size, size, "; ".join(j.message for j in acting))
            # numbered: in a dry-run group the heal is recorded as a ``dry_run`` skip, whose id is still needed
            out.append(record(tx, about, verdict, now, evidence=_members(acting), targets=targets, numbered=True))
            ids.append(out[-1].decision_id)
        for j in plan.skipped:
            verdict = Verdict(Outcome.SKIPPED, _REASONS[j.outcome], size, size, j.message)
            out.append(record(tx, about, verdict, now, evidence=_members([j]), numbered=not ids))
            ids.append(out[-1].decision_id)
        assert ids[0] is not None
        return ids[0]

    def _drop(self, tx: Tx, group: str, now: datetime, out: list[Recorded]) -> None:
        pending = tx.pending_heal_signals(group)
        done = record_skip(tx, About(group, HEAL_POLICY, Trigger.HEALTH), Reason.UNKNOWN_MEMBER,
                           "the group has no heal policy (any more): signals dropped", now, numbered=True)
        assert done.decision_id is not None
        tx.consume_heal_signals([p.id for p in pending], done.decision_id)
        out.append(done)


def _members(judgements: Sequence[MemberJudgement]) -> Evidence:
    members = [{"member": j.member_id or j.key, "outcome": j.outcome.value,
                "sources": [s.value for s in j.sources]} for j in judgements]
    return Evidence(members[:MAX_ALERTS_PER_DECISION], len(members))


def carry_out(provider: Provider, action: Action, store: StateStore, clock: Callable[[], datetime]) -> str:
    """Run a heal action's targets (blocking). A target already gone (healed before a restart, or removed)
    is skipped. Raises the provider's errors; history is recorded for every target done."""
    results = []
    departures = StoreDepartures(store, action.group, clock)
    for target in action.targets:
        before = {m.id: m for m in provider.status().members}
        if target.member_id not in before:
            results.append(f"{target.member_id}: no longer a member, nothing to do")
            continue
        heal_action = HealAction(target.action)
        result = _heal_one(provider, heal_action, target.member_id, action.group)
        replaced_by = None
        after = {m.id for m in provider.status().members}
        if heal_action is HealAction.REPLACE:
            new = after - set(before)
            replaced_by = next(iter(new)) if len(new) == 1 else None
        elif heal_action is HealAction.QUARANTINE:
            result += "; " + provider.scale(ScaleRequest(action.group, len(before) - 1, action.desired, action.id,
                                                         action.decision_id))
        if heal_action is not HealAction.REBOOT and target.member_id not in after:
            # out of the group on purpose: alerts still naming it never heal (a replacement that took the same
            # id, e.g. a StatefulSet's pod, is a member again and is not recorded)
            why = f"replaced by {replaced_by}" if replaced_by else f"healed: {heal_action.value}"
            departures.leaving([before[target.member_id]], why)
            departures.gone([target.member_id])
        store.add_heal_records(action.group, [(HealRecord(target.slot, target.member_id, heal_action, clock()),
                                               action.id, replaced_by)])
        results.append(result)
    return "; ".join(results) or "nothing to heal"



def _heal_one(provider: Provider, heal_action: HealAction, member_id: str, group: str) -> str:
    """One member through the provider's ability (the Protocols of ``providers.base``)."""
    if heal_action is HealAction.REPLACE and isinstance(provider, Healer):
        return str(provider.heal(member_id))
    if heal_action is HealAction.REBOOT and isinstance(provider, Rebooter):
        return str(provider.reboot(member_id))
    if heal_action is HealAction.QUARANTINE and isinstance(provider, Quarantiner):
        return str(provider.quarantine(member_id))
    raise PermanentProviderError(f"the provider of group {group} cannot {heal_action.value}")
