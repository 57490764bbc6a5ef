"""The Pareto front of a search's history: chosen on validation, scored on test.

A :class:`FrontSpec` names the selection objectives (e.g. ``valid_acc`` max,
``params`` min), the metrics the chosen front is reported with (``test_acc``,
``params``) and the hypervolume reference point (in report-metric space).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raynas.pareto import hypervolume, non_dominated


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
            raise ValueError("a front needs >= 2 objectives, with a report metric and a "
                             "reference value for each")

    @property
    def directions(self) -> list[str]:
        return [mode for _, mode in self.select]


def _evaluated(history: pa.Table, spec: FrontSpec) -> pa.Table:
    fresh = history.filter(pc.and_(pc.invert(history["cached"]),
                                   pc.equal(history["status"], "ok")))
    names = {m for m, _ in spec.select} | set(spec.report)
    missing = names - set(fresh.column_names)
    if missing:
        raise ValueError(f"the history has no {sorted(missing)} column(s) for the front")
    return fresh


def front_table(history: pa.Table, spec: FrontSpec) -> pa.Table:
    """The evaluated architectures on the front chosen by ``spec.select``."""
    fresh = _evaluated(history, spec)
    if fresh.num_rows == 0:
        return fresh
    points = np.column_stack([fresh[m].to_numpy() for m, _ in spec.select])
    return fresh.filter(pa.array(non_dominated(points, spec.directions)))


def front_hypervolume(history: pa.Table, spec: FrontSpec) -> float:
    """Hypervolume of the chosen front, scored on the report metrics."""
    front = front_table(history, spec)
    if front.num_rows == 0:
        return 0.0
    points = np.column_stack([front[m].to_numpy() for m in spec.report])
    return hypervolume(points, spec.directions, spec.reference)


def write_front_plot(history: pa.Table, spec: FrontSpec, path: Path,
                     true_front: np.ndarray | None = None) -> None:
    """Evaluated points and the chosen front (report metrics, first two objectives);
    the true front dashed when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_name, y_name = spec.report[1], spec.report[0]
    fresh = _evaluated(history, spec)
    front = front_table(history, spec)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(fresh[x_name].to_numpy(), fresh[y_name].to_numpy(), s=8, alpha=0.35,
               label="evaluated")
    if front.num_rows:
        order = np.argsort(front[x_name].to_numpy())
        ax.plot(front[x_name].to_numpy()[order], front[y_name].to_numpy()[order], "o-",
                color="C3", label="front (chosen on validation)")
    if true_front is not None:
        ax.plot(true_front[:, 1], true_front[:, 0], "k--", linewidth=1, label="true front")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
