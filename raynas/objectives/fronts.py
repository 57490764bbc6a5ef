"""Pareto fronts: a search's (chosen on validation, scored on test) and a table's true one.

A :class:`FrontSpec` names the selection objectives (e.g. ``valid_acc`` max,
``params`` min), the metrics the chosen front is reported with (``test_acc``,
``params``) and the hypervolume reference point (in report-metric space).
:func:`table_front` is the true front of a benchmark table: accuracy from the table,
size from the space's cost model (e.g. NB201 test accuracy vs parameters).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import ArgumentError
from raynas.objectives.pareto import hypervolume, non_dominated

if TYPE_CHECKING:
    from raynas.tables.table import BenchmarkTable


@dataclass(frozen=True)
class FrontSpec:
    """What the front of a multi-objective search is.

    Attributes:
        select: ``(metric, mode)`` per objective the front is chosen on.
        report: The metric each objective is reported with (same order).
        reference: Hypervolume reference point in report-metric space.

    Example:
        >>> spec = FrontSpec((("valid_acc", "max"), ("params", "min")),
        ...                  ("test_acc", "params"), (0.0, 1.5315))
        >>> spec.directions
        ['max', 'min']
    """

    select: tuple[tuple[str, str], ...]
    report: tuple[str, ...]
    reference: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.select) == len(self.report) == len(self.reference) >= 2:
            raise ArgumentError("a front needs >= 2 objectives, with a report metric and a "
                             "reference value for each")

    @property
    def directions(self) -> list[str]:
        return [mode for _, mode in self.select]


FRONT_FILE = "front.json"


def save_front(out_dir: Path, spec: FrontSpec, true_front: np.ndarray | None = None) -> Path:
    """Write ``front.json`` (the spec and the true front's points, if known) into ``out_dir``,
    so a results folder can be reported on without its config or table."""
    path = Path(out_dir) / FRONT_FILE
    path.write_text(json.dumps({
        "select": [list(o) for o in spec.select], "report": list(spec.report),
        "reference": list(spec.reference),
        "true_front": None if true_front is None else np.asarray(true_front).tolist(),
    }, indent=1))
    return path


def load_front(out_dir: Path) -> tuple[FrontSpec | None, np.ndarray | None]:
    """The spec and true front saved by :func:`save_front`; ``(None, None)`` if none was."""
    path = Path(out_dir) / FRONT_FILE
    if not path.is_file():
        return None, None
    data = json.loads(path.read_text())
    spec = FrontSpec(tuple((m, d) for m, d in data["select"]), tuple(data["report"]),
                     tuple(data["reference"]))
    true_front = None if data["true_front"] is None else np.asarray(data["true_front"])
    return spec, true_front


def _evaluated(history: pa.Table, spec: FrontSpec) -> pa.Table:
    fresh = history.filter(pc.and_(pc.invert(history["cached"]),
                                   pc.equal(history["status"], "ok")))
    names = {m for m, _ in spec.select} | set(spec.report)
    missing = names - set(fresh.column_names)
    if missing:
        raise ArgumentError(f"the history has no {sorted(missing)} column(s) for the front")
    return fresh


def front_table(history: pa.Table, spec: FrontSpec) -> pa.Table:
    """The evaluated architectures on the front chosen by ``spec.select``."""
    fresh = _evaluated(history, spec)
    if fresh.num_rows == 0:
        return fresh
    points = np.column_stack([fresh[m].to_numpy() for m, _ in spec.select])
    return fresh.filter(pa.array(non_dominated(points, spec.directions)))


def mark_isomorphic(front: pa.Table) -> pa.Table:
    """``front`` with, for NB201 cells, a ``cell_graph`` column (the cell's computation
    graph, :meth:`~raynas.spaces.NB201Space.graph_key`) and ``isomorphic`` (another
    member of the front has the same graph: the same network up to dead edges and the
    order of its nodes, trained separately). Other spaces' fronts are returned as they
    are."""
    from raynas.errors import ArgumentError
    from raynas.spaces import NB201Space

    if front.num_rows == 0 or "arch" not in front.column_names:
        return front
    space = NB201Space()
    try:
        keys = [space.graph_key(space.from_str(a)) for a in front["arch"].to_pylist()]
    except (ArgumentError, TypeError, ValueError):
        return front
    from collections import Counter

    counts = Counter(keys)
    return (front.append_column("cell_graph", pa.array(keys, pa.string()))
            .append_column("isomorphic", pa.array([counts[k] > 1 for k in keys], pa.bool_())))


def front_hypervolume(history: pa.Table, spec: FrontSpec) -> float:
    """Hypervolume of the chosen front, scored on the report metrics."""
    front = front_table(history, spec)
    if front.num_rows == 0:
        return 0.0
    points = np.column_stack([front[m].to_numpy() for m in spec.report])
    return hypervolume(points, spec.directions, spec.reference)


def hypervolume_curve(history: pa.Table, spec: FrontSpec) -> np.ndarray:
    """The chosen front's hypervolume after each real query (cached repeats excluded; a
    failed evaluation leaves it unchanged), updated incrementally in one pass."""
    _evaluated(history, spec)  # checks the columns
    fresh = history.filter(pc.invert(history["cached"]))
    ok = np.asarray(fresh["status"].to_pylist()) == "ok"

    def column(name: str) -> np.ndarray:
        return np.asarray(fresh[name].to_numpy(zero_copy_only=False), dtype=float)

    signs = np.array([1.0 if d == "max" else -1.0 for d in spec.directions])
    values = np.column_stack([column(m) for m, _ in spec.select]) * signs  # all maximised
    report = np.column_stack([column(m) for m in spec.report])
    members = np.zeros(0, dtype=int)
    volume, curve = 0.0, np.zeros(fresh.num_rows)
    for i, point in enumerate(values):
        if not ok[i] or np.isnan(point).any():
            curve[i] = volume
            continue
        kept = values[members]
        if not np.any(np.all(kept >= point, axis=1) & np.any(kept > point, axis=1)):
            beaten = np.all(point >= kept, axis=1) & np.any(point > kept, axis=1)
            members = np.append(members[~beaten], i)
            volume = hypervolume(report[members], spec.directions, spec.reference)
        curve[i] = volume
    return curve


def write_front_files(history: pa.Table, spec: FrontSpec, out_dir: Path,
                      true_front: np.ndarray | None = None) -> list[Path]:
    """Write ``pareto.parquet`` (the chosen front) and ``pareto.png`` into ``out_dir``."""
    import pyarrow.parquet as pq

    table, plot = Path(out_dir) / "pareto.parquet", Path(out_dir) / "pareto.png"
    pq.write_table(mark_isomorphic(front_table(history, spec)), table)
    write_front_plot(history, spec, plot, true_front)
    return [table, plot]


def write_front_plot(history: pa.Table, spec: FrontSpec, path: Path,
                     true_front: np.ndarray | None = None) -> None:
    """Evaluated points and the chosen front (report metrics, first two objectives);
    the true front dashed when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.report.plots import label, staircase

    x_name, y_name = spec.report[1], spec.report[0]
    x_mode = spec.select[1][1]
    fresh = _evaluated(history, spec)
    front = mark_isomorphic(front_table(history, spec))
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    ax.scatter(fresh[x_name].to_numpy(), fresh[y_name].to_numpy(), s=8, alpha=0.35,
               label=f"evaluated ({fresh.num_rows})")
    if front.num_rows:
        staircase(ax, front[x_name].to_numpy(), front[y_name].to_numpy(), x_mode, color="C3",
                  marker="o", markersize=4, label=f"front, chosen on validation "
                                                  f"({front.num_rows})")
        if "isomorphic" in front.column_names:
            twins = np.asarray(front["isomorphic"].to_pylist(), dtype=bool)
            if twins.any():
                ax.scatter(front[x_name].to_numpy()[twins], front[y_name].to_numpy()[twins],
                           s=60, facecolors="none", edgecolors="k",
                           label="same cell graph as another front member")
    if true_front is not None:
        staircase(ax, true_front[:, 1], true_front[:, 0], x_mode, color="k", linestyle="--",
                  linewidth=1, label="true front of the table")
    ax.set_xlabel(label(x_name))
    ax.set_ylabel(label(y_name))
    ax.set_title(f"Pareto front: {label(y_name)} vs {label(x_name)}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------ a table's true front
# Classes and input size of NB201's datasets: the networks whose params/FLOPs a table's
# fronts are computed with.
NB201_SHAPES = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16_120": (120, 16)}
COST_METRICS = ("params", "flops")

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


def table_costs(table: BenchmarkTable, dataset: str, cost: str, num_classes: int = 10,
                input_size: int = 32) -> np.ndarray:
    """Every row's ``cost``: the table's own cost column when it has one (``params``,
    ``latency``, ...) (the shared NB201 table's ``params`` are NATS-Bench's count for the
    CIFAR-10 network, whatever the dataset), else
    :class:`~raynas.spaces.cost.LinearCostModel` of the table's space at
    ``num_classes`` and ``input_size``. On the shared table the two agree on 15,475 of
    15,625 cells; the other 150 differ by one 3x3 or 1x1 convolution's parameters."""
    if cost in table.costs(dataset):
        return np.asarray(table.column(dataset, cost), dtype=float)
    if cost not in COST_METRICS:
        raise ArgumentError(f"cost must be one of {table.costs(dataset) or COST_METRICS} "
                            f"(the table's cost columns, or params/flops), got {cost!r}")
    from raynas.spaces.cost import LinearCostModel

    model = LinearCostModel(table.space, num_classes=num_classes, input_size=input_size)
    return getattr(model, cost)(table.archs)


def table_front(
    table: BenchmarkTable,
    dataset: str,
    metric: str = "test_acc",
    cost: str = "params",
    num_classes: int = 10,
    input_size: int = 32,
) -> TableFront:
    """The true (``metric``, ``cost``) front of every architecture of ``table``.

    Costs are :func:`table_costs`: the table's own cost column when it has one, else
    the cost model's params/FLOPs at ``num_classes`` and ``input_size``. The reference
    point is (0, the largest cost in the table), as in shared/benchmarks/README.md.
    """
    costs = table_costs(table, dataset, cost, num_classes, input_size)
    values = table.column(dataset, metric)
    points = np.column_stack([values, costs])
    reference = (0.0, float(costs.max()))
    mask = non_dominated(points, ["max", "min"])
    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(costs[rows], kind="stable")]
    volume = hypervolume(points[rows], ["max", "min"], reference)
    return TableFront(rows, points[rows], reference, volume)
