"""Kubernetes' HPA replica calculator, as the simulator's HPA baselines need it: how many replicas one metric
asks for when some pods are still booting.

Written from the behaviour of ``pkg/controller/podautoscaler/replica_calculator.go`` (``GetResourceReplicas``
and ``calcPlainMetricReplicas``; Kubernetes, Apache-2.0), not from its code. A pod that is still booting is
*pending*, which the calculator puts with the ignored (unready) pods:

1. the usage ratio is computed over the READY pods only: ``ratio = average value of ready pods / target``;
2. no pod ignored, or ``ratio <= 1`` (a scale-down or no change): within ``tolerance`` of 1 the current
   replicas stay, else ``ceil(ratio x ready pods)`` — booting pods are left out of the count altogether;
3. ``ratio > 1`` with booting pods (a scale-up): they are counted at 0 %:
   ``new ratio = ratio x ready / (ready + booting)``; within tolerance of 1, or on the other side of 1 than
   ``ratio`` (the booting pods already cover the rise), the current replicas stay; else
   ``ceil(new ratio x (ready + booting))``, but never fewer than the current replicas;
4. no ready pod at all: HPA has no metrics ("did not receive metrics for any ready pods") and keeps the current
   replicas.

Pods without metrics that are not pending (``missingPods``: 100 % on a scale-down, 0 % on a scale-up) do not
occur in the simulator: a ready instance always reports. Stabilisation, rate limits and bounds come after,
in ``decide.tracking.settle`` (HPA's ``behavior``). Called by ``sim.controllers``.
"""

from __future__ import annotations

import math

__all__ = ["hpa_replicas"]


def hpa_replicas(current: int, ready: int, booting: int, value: float, target: float, tolerance: float) -> int:
    """The replicas one metric asks for: ``value`` is the average over the ``ready`` pods (CPU utilisation of
    the request, or a per-pod metric such as requests/s), ``booting`` pods are pending; ``current`` is the
    scale's replica count (ready + booting in the simulator)."""
    if target <= 0:
        raise ValueError("target must be > 0")
    if ready <= 0:
        return current
    ratio = value / target
    if booting <= 0 or ratio <= 1.0:
        if abs(ratio - 1.0) <= tolerance:
            return current
        return math.ceil(ratio * ready - 1e-9)
    counted = ready + booting
    new_ratio = ratio * ready / counted
    if abs(new_ratio - 1.0) <= tolerance or new_ratio < 1.0:
        return current
    return max(current, math.ceil(new_ratio * counted - 1e-9))
