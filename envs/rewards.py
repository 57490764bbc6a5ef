"""Reward functions: an evaluated architecture's metrics -> one scalar.

A reward function is any callable ``reward(metrics: dict[str, float]) -> float``.
The default, :class:`NormalizedObjective`, maps the search metric into [0, 1],
higher is better: by the table's range when the evaluator is a table (exact and
stationary), else by the range seen so far (a running range).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from raynas.errors import ArgumentError

RewardFn = Callable[[dict[str, float]], float]


class Range:
    """A metric's [low, high] range, fixed or growing with what is seen (``fixed=False``).

    Example:
        >>> r = Range(0.0, 100.0)
        >>> r.normalize(75.0, "max"), r.normalize(75.0, "min")
        (0.75, 0.25)
    """

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.fixed = low is not None and high is not None
        if self.fixed and not high > low:
            raise ArgumentError(f"a range needs high > low, got [{low}, {high}]")
        self.low, self.high = low, high

    @classmethod
    def of(cls, values) -> Range:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        return cls(float(values.min()), float(values.max()))

    def observe(self, value: float) -> None:
        if self.fixed or not math.isfinite(value):
            return
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    def normalize(self, value: float, mode: str = "max") -> float:
        """``value`` in [0, 1], 1 the best end of the range for ``mode``; 0.5 while the
        running range is still a single point."""
        if self.low is None or self.high is None or self.high == self.low:
            return 0.5
        unit = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return unit if mode == "max" else 1.0 - unit

    def state(self) -> dict[str, float | None]:
        return {"low": self.low, "high": self.high}


class NormalizedObjective:
    """``metric`` normalised into [0, 1] (1 = best), by a fixed or a running :class:`Range`.

    A failed evaluation (the metric missing or not finite) gets ``failure`` (0 by default).

    Args:
        metric: The metric, e.g. ``valid_acc``.
        mode: ``max`` or ``min``.
        low, high: The fixed range (e.g. a table's); omit both for a running range.
        failure: The reward of a failed evaluation.
    """

    def __init__(self, metric: str, mode: str = "max", low: float | None = None,
                 high: float | None = None, failure: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.mode, self.failure = metric, mode, failure
        self.range = Range(low, high)

    def __call__(self, metrics: dict[str, float]) -> float:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return self.failure
        self.range.observe(value)
        return self.range.normalize(value, self.mode)

    def __repr__(self) -> str:
        return f"NormalizedObjective({self.metric!r}, {self.mode!r}, range={self.range.state()})"
