"""Pure target tracking, the way Kubernetes' HPA decides (its algorithm; the policy file's defaults are in
``config.groups``).

No I/O, no clock (``now`` is passed in), no global config: a caller (the tracking loop, the simulator, the
backtest) gathers the metric values and the group's recent history and calls ``recommend``. In order:

1. per metric: ``ratio = value / target``; within ``tolerance`` of 1 → the current size, else
   ``ceil(current * ratio)`` (each direction may have its own tolerance: ``scale_up.tolerance`` above the
   target, ``scale_down.tolerance`` below it);
2. several metrics: the LARGEST recommendation wins (scale out if any metric asks, in only if all agree); a
   forecast's ask (``predicted``: the capacity ``decide.prediction`` says the load one start-up delay ahead
   needs) is one more such recommendation, so the larger of forecast and metrics wins and a scale-in needs
   both to agree;
3. a metric missing (no sample, Prometheus down) → the ``fallback``: hold the current size, or a fixed safe
   capacity — never a guess from the other metrics;
4. stabilisation: the recommendation is remembered; scaling in uses the HIGHEST recommendation of the last
   ``scale_down.stabilization`` seconds (HPA's default 300, the service's 180: no flapping on a dip), scaling
   out the LOWEST of ``scale_up.stabilization`` (default 0);
5. rate limits per direction, HPA's ``policies`` + ``select``: e.g. scale-up at most +100 % or +4 per 15 s
   (whichever allows more: ``select: max``), counted from the changes already made within the period;
6. the group's min/max.

The rules, history and verdict are values in ``model.tracking``; this module is the logic only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alertscaler.model.tracking import (
    Change,
    LimitKind,
    Recommendation,
    Select,
    TrackingReason,
    TrackingRules,
    TrackingVerdict,
)


def per_metric(current: int, value: float, target: float, tolerance: float, tolerance_down: float | None = None) -> int:
    """HPA's formula for one metric. A group of 0 instances with load grows to 1 (the formula gives 0).
    ``tolerance_down``: the tolerance below the target when it differs from the one above (``tolerance``)."""
    if target <= 0:
        raise ValueError("target must be > 0")
    ratio = value / target
    band = tolerance if ratio >= 1.0 or tolerance_down is None else tolerance_down
    if abs(ratio - 1.0) <= band:
        return current
    if current == 0:
        return 1 if value > 0 else 0
    return math.ceil(current * ratio - 1e-9)


def recommend(current: int, values: Sequence[float | None], rules: TrackingRules, now: datetime,
              history: Sequence[Recommendation] = (), changes: Sequence[Change] = (),
              predicted: int | None = None) -> TrackingVerdict:
    """The verdict for one evaluation. ``history``: earlier recommendations (the caller appends this one's
    ``raw`` afterwards); ``changes``: size changes made (for the rate limits); ``predicted``: the forecast's
    ask (None: no forecast), which wins when it is larger than every metric's (reason ``predicted`` when
    that scales the group out). A metric missing still means the fallback: the forecast does not replace it."""
    if len(values) != len(rules.targets):
        raise ValueError(f"{len(values)} metric value(s) for {len(rules.targets)} target(s)")
    if any(v is None or math.isnan(v) for v in values):
        missing = [i for i, v in enumerate(values) if v is None or math.isnan(v)]
        desired = current if rules.fallback is None else _clamp(rules.fallback, rules)
        how = "holding the size" if rules.fallback is None else f"fallback capacity {desired}"
        return TrackingVerdict(current, desired, current, TrackingReason.FALLBACK,
                               f"metric(s) {missing} missing: {how}")
    asks = tuple(per_metric(current, float(v), t, rules.tolerance_up, rules.tolerance_down)  # type: ignore[arg-type]
                 for v, t in zip(values, rules.targets, strict=True))
    raw = max(asks)
    if predicted is None or predicted <= raw:
        return settle(current, raw, rules, now, history, changes, asks)
    verdict = settle(current, predicted, rules, now, history, changes, asks, forecast=True)
    if verdict.desired > current and verdict.desired > _clamp(raw, rules):
        return replace(verdict, reason=TrackingReason.PREDICTED)
    return verdict


def settle(current: int, raw: int, rules: TrackingRules, now: datetime, history: Sequence[Recommendation] = (),
           changes: Sequence[Change] = (), asks: tuple[int | None, ...] = (),
           forecast: bool = False) -> TrackingVerdict:
    """Steps 4-6 for a raw recommendation found by other means than ``per_metric`` (the simulator's HPA
    baseline, whose replica calculator treats booting pods as Kubernetes does): stabilisation, rate limits,
    bounds. ``recommend`` ends here too (``forecast``: ``raw`` is the forecast's ask, larger than the metrics')."""
    if raw == current:
        return TrackingVerdict(current, current, raw, TrackingReason.NO_CHANGE,
                               "the forecast asks the current size" if forecast else
                               "every metric within tolerance of its target", asks)

    stabilized = _stabilize(raw, current, now, rules, history)
    limited = _rate_limit(stabilized, current, now, rules, changes)
    desired = _clamp(limited, rules)
    if desired == current:
        if limited != current:  # the bounds hold it
            reason = TrackingReason.AT_MAX if limited > current else TrackingReason.AT_MIN
        elif stabilized == current:
            reason = TrackingReason.STABILIZED
        else:
            reason = TrackingReason.RATE_LIMITED
        return TrackingVerdict(current, current, raw, reason,
                               _explain(current, raw, stabilized, limited, desired, forecast), asks)
    reason = TrackingReason.SCALED
    if desired != raw:
        reason = (TrackingReason.STABILIZED if stabilized != raw else
                  TrackingReason.RATE_LIMITED if limited != stabilized else
                  TrackingReason.AT_MAX if desired < raw else TrackingReason.AT_MIN)
    return TrackingVerdict(current, desired, raw, reason,
                           _explain(current, raw, stabilized, limited, desired, forecast), asks)


def _stabilize(raw: int, current: int, now: datetime, rules: TrackingRules, history: Sequence[Recommendation]) -> int:
    if raw < current:
        window = now - timedelta(seconds=rules.scale_down.stabilization)
        recent = [r.size for r in history if r.at > window]
        return min(current, max([raw, *recent])) if rules.scale_down.stabilization > 0 else raw
    window = now - timedelta(seconds=rules.scale_up.stabilization)
    recent = [r.size for r in history if r.at > window]
    return max(current, min([raw, *recent])) if rules.scale_up.stabilization > 0 else raw


def _rate_limit(wanted: int, current: int, now: datetime, rules: TrackingRules, changes: Sequence[Change]) -> int:
    up = wanted > current
    direction = rules.scale_up if up else rules.scale_down
    if direction.select is Select.DISABLED:
        return current
    if not direction.limits:
        return wanted
    allowed: list[int] = []
    for limit in direction.limits:
        since = now - timedelta(seconds=limit.period)
        moved = [c for c in changes if c.at > since and (c.to_size > c.from_size) == up and c.to_size != c.from_size]
        base = moved[0].from_size if moved else current  # the size at the start of the period
        done = sum(abs(c.to_size - c.from_size) for c in moved)
        step = math.ceil(base * limit.value / 100) if limit.kind is LimitKind.PERCENT else int(limit.value)
        if limit.kind is LimitKind.PERCENT and up and base == 0:
            step = max(step, 1)  # 100 % of nothing would never start a group
        allowed.append(max(0, step - done))
    room = max(allowed) if direction.select is Select.MAX else min(allowed)
    return min(wanted, current + room) if up else max(wanted, current - room)


def _clamp(size: int, rules: TrackingRules) -> int:
    return max(rules.min_size, min(rules.max_size, size))


def _explain(current: int, raw: int, stabilized: int, limited: int, desired: int, forecast: bool = False) -> str:
    parts = [f"{'the forecast asks' if forecast else 'metrics ask'} {raw} (from {current})"]
    if stabilized != raw:
        parts.append(f"stabilisation window holds {stabilized}")
    if limited != stabilized:
        parts.append(f"rate limit allows {limited}")
    if desired != limited:
        parts.append(f"bounds give {desired}")
    return "; ".join(parts) + f": {current} -> {desired}"
