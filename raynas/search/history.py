"""The search history: one row per evaluation, as a pyarrow table persisted to Parquet.

Fronts, regret and incumbent curves are computed from this table, never from
ad-hoc lists. Columns:

* ``step`` — the loop iteration (one ``ask``/``tell`` round);
* ``query`` — 1-based count of real evaluations so far (cached repeats keep the
  count of the evaluation they repeat);
* ``arch`` — the canonical architecture string;
* ``cached`` — whether the dedup cache answered instead of the evaluator;
* ``status``, ``error``, ``cost`` — from the :class:`~raynas.types.Result` (``ok``,
  ``failed``, or ``stopped`` for an evaluation a scheduler ended early);
* ``elapsed`` — wall seconds since the search started (not deterministic);
* ``time`` — the search's clock when the row was recorded: with a simulated backend,
  simulated seconds (deterministic); otherwise the evaluations' costs so far;
* ``fidelity`` — the fidelity the evaluation reached (epochs), null when it ran in full
  or the evaluator has none;
* one float column per metric (``valid_acc``, ``test_acc``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raynas.errors import ArgumentError
from raynas.files import write_atomically
from raynas.types import Result

RESERVED = ("step", "query", "arch", "cached", "status", "error", "cost", "elapsed", "time",
            "fidelity")
NONDETERMINISTIC = ("elapsed",)
_TYPES = {"step": pa.int64(), "query": pa.int64(), "arch": pa.string(), "cached": pa.bool_(),
          "status": pa.string(), "error": pa.string(), "cost": pa.float64(),
          "elapsed": pa.float64(), "time": pa.float64(), "fidelity": pa.float64()}


class History:
    """Rows of evaluations, appended in order.

    Example:
        >>> h = History()
        >>> r = Result({"valid_acc": 1.0})
        >>> row = h.append(step=0, query=1, arch="|a=x|", result=r, cached=False, elapsed=0.0)
        >>> h.to_arrow().column("valid_acc").to_pylist()
        [1.0]
    """

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows: list[dict[str, Any]] = rows or []
        self._metric_names: dict[str, None] = {}
        for row in self.rows:
            self._metric_names.update(dict.fromkeys(k for k in row if k not in RESERVED))

    def __len__(self) -> int:
        return len(self.rows)

    def append(
        self, *, step: int, query: int, arch: str, result: Result, cached: bool, elapsed: float,
        time: float | None = None,
    ) -> dict[str, Any]:
        """Add a row; return it. ``time`` is the search's clock (default: ``elapsed``)."""
        clash = set(result.metrics) & set(RESERVED)
        if clash:
            raise ArgumentError(f"metric names {sorted(clash)} clash with history columns {RESERVED}")
        row = {
            "step": step,
            "query": query,
            "arch": arch,
            "cached": cached,
            "status": result.status.value,
            "error": result.error,
            "cost": float(result.cost),
            "elapsed": float(elapsed),
            "time": float(elapsed if time is None else time),
            "fidelity": None if result.fidelity is None else float(result.fidelity),
        }
        row.update(result.metrics)
        self._metric_names.update(dict.fromkeys(result.metrics))
        self.rows.append(row)
        return row

    @property
    def metric_names(self) -> list[str]:
        return list(self._metric_names)

    def to_arrow(self) -> pa.Table:
        """The history as a table with a stable schema."""
        columns = {name: pa.array([r.get(name) for r in self.rows], _TYPES[name])
                   for name in RESERVED}
        for name in self._metric_names:
            columns[name] = pa.array([r.get(name) for r in self.rows], pa.float64())
        return pa.table(columns)

    def save(self, path: str | Path) -> None:
        """Write Parquet atomically (a crash never leaves half a file)."""
        table = self.to_arrow()
        write_atomically(path, lambda tmp: pq.write_table(table, tmp))

    @classmethod
    def load(cls, path: str | Path, num_rows: int | None = None) -> History:
        """Read a saved history, keeping only its first ``num_rows`` rows if given."""
        table = pq.read_table(path)
        if num_rows is not None:
            table = table.slice(0, num_rows)
        rows = table.to_pylist()
        for row in rows:
            for key in [k for k, v in row.items() if v is None and k not in RESERVED]:
                del row[key]
        return cls(rows)


def metric_values(table: pa.Table, name: str) -> np.ndarray:
    """A metric column as floats, NaN where missing; all NaN when no row has the metric
    (a search whose every evaluation failed has no metric columns at all)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)


def incumbent_curve(
    table: pa.Table, search_metric: str = "valid_acc", report_metric: str = "test_acc",
    mode: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """Incumbent per real query: its search metric and its report metric.

    The incumbent is the best architecture so far by ``search_metric``; it
    changes only on a strict improvement. Cached repeats and failed evaluations
    never become incumbents. Entry ``i`` describes the incumbent after ``i + 1``
    queries; entries before the first successful query are NaN.
    """
    fresh = table.filter(pc.invert(table.column("cached")))
    n = fresh.num_rows
    if n == 0:
        return np.empty(0), np.empty(0)
    search, report = (metric_values(fresh, name) for name in (search_metric, report_metric))
    sign = 1.0 if mode == "max" else -1.0
    ok = np.asarray(fresh.column("status").to_pylist()) == "ok"
    score = np.where(ok & ~np.isnan(search), sign * search, -np.inf)
    prev_best = np.concatenate([[-np.inf], np.maximum.accumulate(score)[:-1]])
    is_new = score > prev_best
    index = np.maximum.accumulate(np.where(is_new, np.arange(n), -1))
    valid = index >= 0
    out_search = np.full(n, np.nan)
    out_report = np.full(n, np.nan)
    out_search[valid] = search[index[valid]]
    out_report[valid] = report[index[valid]]
    return out_search, out_report
