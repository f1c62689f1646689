"""Synthetic load traces for judging a policy on shapes that real traces have little of: steps, spikes, ramps,
a sawtooth, fine-grained noise, a flat load. Deterministic (noise from a seeded generator): the same name gives
the same trace. Values are a share of the peak (at most 1.0): scale with ``Trace.scaled_to_peak``.

Called by ``bench/decision_quality.py`` (the bank of traces) and tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from alertscaler.sim.traces import Trace, TraceError

__all__ = ["SHAPES", "synthetic"]

_STEP = 10.0  # seconds per sample
_LEVELS = (0.2, 0.6, 0.3, 1.0, 0.5, 0.1, 0.8, 0.4)


def _steps(t: float) -> float:
    """A new level every 2 hours."""
    return _LEVELS[int(t // 7200) % len(_LEVELS)]


def _spikes(t: float) -> float:
    """0.3, and a 5-minute spike to 1.0 every 3 hours (at the hour's 20th minute)."""
    return 1.0 if 1200 <= t % 10800 < 1500 else 0.3


def _ramps(t: float) -> float:
    """From 0.1 up to 1.0 over 2 hours, down again over 2 hours."""
    phase = (t % 14400) / 7200.0
    return 0.1 + 0.9 * (phase if phase <= 1 else 2 - phase)


def _sawtooth(t: float) -> float:
    """From 0.2 up to 1.0 over 30 minutes, then back to 0.2 at once."""
    return 0.2 + 0.8 * ((t % 1800) / 1800.0)


def _flat(t: float) -> float:
    return 0.6


SHAPES: dict[str, Callable[[float], float]] = {
    "steps": _steps, "spikes": _spikes, "ramps": _ramps, "sawtooth": _sawtooth, "flat": _flat,
}
_NOISY = "noise"


def synthetic(name: str, hours: float = 48.0, seed: int = 14) -> Trace:
    """The synthetic trace ``name`` (``steps``, ``spikes``, ``ramps``, ``sawtooth``, ``flat``, ``noise``),
    ``hours`` long, one sample per 10 s. ``noise``: a slow random walk around 0.5 plus white noise of
    0.1 at each sample (seeded), within 0..1."""
    samples = int(hours * 3600 / _STEP)
    if samples < 2:
        raise TraceError(f"a synthetic trace needs at least 2 samples of {_STEP:g} s, got {hours:g} h")
    if name == _NOISY:
        rng = random.Random(seed)
        level, values = 0.5, []
        for _ in range(samples):
            level = min(0.8, max(0.2, level + rng.gauss(0.0, 0.01)))
            values.append(min(1.0, max(0.0, level + rng.gauss(0.0, 0.1))))
        peak = max(values)
        shape = tuple(v / peak for v in values)
    elif name in SHAPES:
        fn = SHAPES[name]
        shape = tuple(fn(i * _STEP) for i in range(samples))
    else:
        raise TraceError(f"unknown synthetic trace {name!r}: {', '.join([*SHAPES, _NOISY])}")
    if not all(math.isfinite(v) and v >= 0 for v in shape):
        raise TraceError(f"synthetic {name}: bad values")
    return Trace(shape, tuple(i * _STEP for i in range(samples)), samples * _STEP, None, f"synthetic-{name}")
