"""The true Pareto front of a benchmark table: accuracy from the table, size from the
space's cost model (e.g. NB201 test accuracy vs parameters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import ArgumentError
from raynas.pareto import hypervolume, non_dominated

# Classes and input size of NB201's datasets: the networks whose params/FLOPs a table's
# fronts are computed with.
NB201_SHAPES = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16_120": (120, 16)}
COST_METRICS = ("params", "flops")

if TYPE_CHECKING:
    from raynas.tables.table import BenchmarkTable


@dataclass(frozen=True)
class TableFront:
    """A table's true front for (``metric`` max, ``cost`` min).

    Attributes:
        rows: Table rows on the front, ordered by cost.
        points: ``(n, 2)`` array of (metric, cost) for those rows.
        reference: Hypervolume reference point: (0, the space's largest cost).
        hypervolume: Hypervolume of the true front w.r.t. ``reference``.
    """

    rows: np.ndarray
    points: np.ndarray
    reference: tuple[float, float]
    hypervolume: float


def table_front(
    table: BenchmarkTable,
    dataset: str,
    metric: str = "test_acc",
    cost: str = "params",
    num_classes: int = 10,
    input_size: int = 32,
) -> TableFront:
    """The true (``metric``, ``cost``) front of every architecture of ``table``.

    Costs come from :class:`~raynas.spaces.cost.LinearCostModel` of the table's
    space at ``num_classes`` and ``input_size``. The reference point is (0, the
    largest cost in the table), as in shared/benchmarks/README.md.
    """
    from raynas.spaces.cost import LinearCostModel

    if cost not in ("params", "flops"):
        raise ArgumentError(f"cost must be 'params' or 'flops', got {cost!r}")
    model = LinearCostModel(table.space, num_classes=num_classes, input_size=input_size)
    costs = getattr(model, cost)(table.archs)
    values = table.column(dataset, metric)
    points = np.column_stack([values, costs])
    reference = (0.0, float(costs.max()))
    mask = non_dominated(points, ["max", "min"])
    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(costs[rows], kind="stable")]
    volume = hypervolume(points[rows], ["max", "min"], reference)
    return TableFront(rows, points[rows], reference, volume)
