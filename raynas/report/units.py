"""Numbers in a metric's own units: a precision that fits its scale, and its unit's name.

A regret of 0.0001 on a loss table must not print as ``0.00``, nor a floor of zero as
``-0.00``. :class:`Scale` takes the scale of a metric's values (e.g. the spread of a
table's report metric, its best minus its median) and formats values with as many
decimals as a thousandth of that scale needs, in fixed notation from 1e-3 to 1e5 and
in scientific notation (three significant digits) outside; accuracies in percent keep
two decimals, in percentage points.

Example:
    >>> s = Scale.of([0.00012, 0.00031, 0.00055], "valid_loss")
    >>> s.format(0.000123456), s.format(-0.0), s.unit
    ('1.23e-04', '0', 'valid_loss units')
    >>> Scale.of([0.5, 0.9, 2.0], "test_loss").format(0.0123456)
    '0.012'
    >>> p = Scale.of([61.2, 70.3, 73.5], "test_acc")
    >>> p.format(1.234567), p.format(-0.0), p.unit
    ('1.23', '0.00', 'percentage points')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def is_percent_accuracy(metric: str, values: Iterable[float]) -> bool:
    """Whether ``metric`` is an accuracy in percent (``*acc`` with values up to 100,
    some above 1)."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    return metric.endswith("acc") and len(v) > 0 and 1.0 < float(v.max()) <= 100.0


@dataclass(frozen=True)
class Scale:
    """How to print values of one metric.

    Attributes:
        scale: The size of differences that matter (positive): e.g. a table's best
            minus its median.
        percent: An accuracy in percent: two decimals, in percentage points.
        unit: ``percentage points`` for accuracies in percent, else ``<metric> units``.
    """

    scale: float
    percent: bool
    unit: str

    @classmethod
    def of(cls, values: Iterable[float], metric: str, best: float | None = None) -> Scale:
        """The scale of ``values`` (of ``metric``): how far ``best`` (default: their
        extreme) lies from their median; their magnitude if that is zero."""
        v = np.asarray(list(values), dtype=float)
        v = v[np.isfinite(v)]
        if best is not None and len(v):
            spread = abs(float(best) - float(np.median(v)))
        else:
            spread = float(np.max(np.abs(v - np.median(v)))) if len(v) else 0.0
        if spread <= 0:
            spread = float(np.max(np.abs(v))) if len(v) and np.max(np.abs(v)) > 0 else 1.0
        percent = is_percent_accuracy(metric, v)
        return cls(spread, percent, "percentage points" if percent else f"{metric} units")

    @property
    def decimals(self) -> int | None:
        """Decimals of fixed notation (a thousandth of the scale), or ``None`` for
        scientific notation (scales below 1e-3 or from 1e5)."""
        if self.percent:
            return 2
        if not 1e-3 <= self.scale < 1e5:
            return None
        return max(0, math.ceil(-math.log10(self.scale / 1000)))

    def format(self, value: float | None) -> str:
        """``value`` at this scale's precision; zero (of either sign) prints as ``0``
        (``0.00`` for percentage points), a missing value as ``—``."""
        if value is None or np.isnan(value):
            return "—"
        if not np.isfinite(value):
            return str(value)
        if self.decimals is None:
            rounded = float(f"{value:.2e}") + 0.0
            return "0" if rounded == 0 else f"{rounded:.2e}"
        rounded = round(float(value), self.decimals) + 0.0  # -0.0 -> 0.0
        if rounded == 0 and not self.percent:
            return "0"
        return f"{rounded:.{self.decimals}f}"

    def mean_std(self, values: np.ndarray) -> str:
        """``mean ± std`` of the non-missing ``values`` (``—`` if none)."""
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        if not len(values):
            return "—"
        return f"{self.format(values.mean())} ± {self.format(values.std())}"
