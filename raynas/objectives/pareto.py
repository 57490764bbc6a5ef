"""Multi-objective maths: Pareto dominance, non-dominated sorting and hypervolume.

Objectives have directions (``"max"`` for accuracy, ``"min"`` for params, FLOPs,
latency). Internally every objective is turned into one to *minimise* by negating
the maximised ones, so "a dominates b" means ``a <= b`` everywhere and ``a < b``
somewhere.

Hypervolume is exact: a sweep in 2-D, and slicing over the last objective
(HSO) in higher dimensions, which is fast enough for fronts of hundreds of
points in up to 4 objectives.

Example:
    >>> points = [[90.0, 1.5], [85.0, 0.5], [80.0, 1.0]]   # (accuracy, params)
    >>> non_dominated([[90.0, 1.5], [85.0, 0.5], [80.0, 1.0]], ["max", "min"]).tolist()
    [True, True, False]
    >>> hypervolume(points, ["max", "min"], reference=[0.0, 2.0])
    130.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from raynas.errors import ArgumentError

MAX_EXACT_DIMENSIONS = 4


def _as_minimisation(points, directions: Sequence[str]) -> np.ndarray:
    values = np.asarray(points, dtype=float)
    if values.ndim != 2:
        raise ArgumentError(f"points must be a 2-D array (n_points, n_objectives), got {values.shape}")
    if values.shape[1] != len(directions):
        raise ArgumentError(
            f"{values.shape[1]} objectives per point but {len(directions)} directions given"
        )
    bad = [d for d in directions if d not in ("max", "min")]
    if bad:
        raise ArgumentError(f"directions must be 'max' or 'min', got {bad}")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return values * signs


def dominates(a, b, directions: Sequence[str]) -> bool:
    """Whether point ``a`` Pareto-dominates point ``b``."""
    a_min, b_min = _as_minimisation([a, b], directions)
    return bool(np.all(a_min <= b_min) and np.any(a_min < b_min))


def non_dominated(points, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the points no other point dominates (duplicates all stay)."""
    values = _as_minimisation(points, directions)
    n = len(values)
    mask = np.ones(n, dtype=bool)
    order = np.lexsort(values.T[::-1])  # sorted by the first objective, then the next...
    front: list[int] = []
    for i in order:
        v = values[i]
        kept = values[front] if front else np.empty((0, values.shape[1]))
        if len(kept) and np.any(np.all(kept <= v, axis=1) & np.any(kept < v, axis=1)):
            mask[i] = False
        else:
            front.append(i)
    return mask


def non_dominated_sort(points, directions: Sequence[str]) -> list[np.ndarray]:
    """Fronts of indices: front 0 is non-dominated, front 1 is non-dominated once
    front 0 is removed, and so on."""
    values = np.asarray(points, dtype=float)
    remaining = np.arange(len(values))
    fronts = []
    while len(remaining):
        mask = non_dominated(values[remaining], directions)
        fronts.append(remaining[mask])
        remaining = remaining[~mask]
    return fronts


def _hv_min(values: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of minimisation points strictly better than ``reference`` in every objective."""
    if len(values) == 0:
        return 0.0
    dims = values.shape[1]
    if dims == 1:
        return float(reference[0] - values[:, 0].min())
    if dims == 2:
        order = np.argsort(values[:, 0], kind="stable")
        volume, best_y = 0.0, reference[1]
        for x, y in values[order]:
            if y < best_y:
                volume += (reference[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    # slice along the last objective: between consecutive values, the dominated
    # region is the (d-1)-dimensional hypervolume of the points below the slice
    order = np.argsort(values[:, -1], kind="stable")
    sorted_values = values[order]
    volume = 0.0
    for i in range(len(sorted_values)):
        upper = sorted_values[i + 1, -1] if i + 1 < len(sorted_values) else reference[-1]
        depth = upper - sorted_values[i, -1]
        if depth <= 0:
            continue
        below = sorted_values[: i + 1, :-1]
        below = below[non_dominated(below, ["min"] * (dims - 1))]
        volume += depth * _hv_min(below, reference[:-1])
    return float(volume)


def hypervolume(points, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    Args:
        points: ``(n_points, n_objectives)`` values.
        directions: ``"max"`` or ``"min"`` per objective.
        reference: The worst corner, e.g. ``(0 % accuracy, the largest params)``.
            Points not strictly better than it in every objective add nothing.
    """
    values = _as_minimisation(points, directions) if len(points) else np.empty((0, len(directions)))
    ref = _as_minimisation([reference], directions)[0]
    if len(directions) > MAX_EXACT_DIMENSIONS:
        raise ArgumentError(
            f"exact hypervolume supports up to {MAX_EXACT_DIMENSIONS} objectives, "
            f"got {len(directions)}"
        )
    values = values[np.all(values < ref, axis=1)]
    if len(values) == 0:
        return 0.0
    values = values[non_dominated(values, ["min"] * values.shape[1])]
    return _hv_min(values, ref)
