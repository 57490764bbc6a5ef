"""Variants of a benchmark table: tasks that agree or disagree with the table's own.

Transfer methods (CATCH) meta-train on some datasets of a table and adapt to another;
on a table whose datasets agree (NB201's Spearman 0.97 between CIFAR-10 and CIFAR-100)
they cannot show whether they would also survive a target that disagrees. These
variants build such targets from one table, with no other data:

* :func:`relabel_ops`: one dataset's metrics moved to other architectures by a fixed
  permutation of every decision's choices (the architecture that uses op ``j`` on an
  edge gets the results of the one that uses ``perm[j]``): the target's good cells are
  elsewhere, its landscape otherwise intact (same values, same neighbourhood
  structure);
* :func:`transform_metric`: a monotone map of one dataset's metric columns (other
  accuracy ranges, a squashed or stretched scale): the same ranking, other values.

Each returns a new Arrow table of the same schema (write it with ``pyarrow.parquet``
and search it like any table).

Example:
    >>> from raynas.tables.synthetic import synthetic_space, synthetic_table
    >>> space = synthetic_space(3, 3)
    >>> data = synthetic_table(space, 27, seed=0)
    >>> moved = relabel_ops(data, space, "syn", [2, 0, 1])
    >>> moved.num_rows, moved.column_names == data.column_names
    (27, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import ArgumentError, TableError

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.spaces import SearchSpace


def _metric_columns(data: pa.Table, dataset: str) -> list[str]:
    from raynas.tables.table import _RUN_COLUMN, parse_metric_column

    out = []
    for name in data.column_names:
        match = _RUN_COLUMN.match(name)
        parsed = parse_metric_column(match["base"] if match else name)
        if parsed is not None and parsed.dataset == dataset:
            out.append(name)
    if not out:
        raise TableError(f"no metric columns of dataset {dataset!r} in the table")
    return out


def relabel_ops(data: pa.Table, space: SearchSpace, dataset: str,
                permutation: Sequence[int] | Sequence[Sequence[int]]) -> pa.Table:
    """``data`` with ``dataset``'s metric columns (and its per-dataset costs) moved:
    architecture ``a`` gets the values of ``perm(a)``, each decision's choice ``j``
    replaced by ``permutation[j]`` (one permutation for every decision, or one per
    decision). Every ``perm(a)`` must be in the table (a complete table, as NB201's)."""
    import pyarrow as pa

    from raynas.tables.table import BenchmarkTable

    counts = space.num_choices
    perms = ([list(permutation)] * len(counts)
             if permutation and not isinstance(permutation[0], Sequence) else
             [list(p) for p in permutation])
    if len(perms) != len(counts) or any(sorted(p) != list(range(k))
                                        for p, k in zip(perms, counts)):
        raise ArgumentError(f"permutation: expected a permutation of each decision's "
                            f"choices {list(counts)}, got {permutation}")
    table = BenchmarkTable(data, space)  # parsed, validated and indexed once
    moved = np.stack([np.asarray(p, dtype=np.int64)[table._codes[:, i]]
                      for i, p in enumerate(perms)], axis=1)
    source = [table.row(arch) for arch in map(tuple, moved.tolist())]
    missing = [r for r, row in enumerate(source) if row is None]
    if missing:
        raise TableError(f"relabel_ops: the table lacks the relabelled architecture of "
                         f"{len(missing)} row(s) (first: row {missing[0]}); it needs every "
                         "architecture the permutation maps to")
    source = np.asarray(source, dtype=np.int64)
    columns = _metric_columns(data, dataset)
    columns += [c for c in (f"{dataset}_train_time", f"{dataset}_latency")
                if c in data.column_names]
    out = data
    for name in columns:
        values = data.column(name).to_numpy(zero_copy_only=False)[source]
        out = out.set_column(out.column_names.index(name), name,
                             pa.array(values, data.schema.field(name).type))
    return out


def transform_metric(data: pa.Table, dataset: str, fn: Callable[[np.ndarray], np.ndarray],
                     metrics: Sequence[str] | None = None) -> pa.Table:
    """``data`` with ``fn`` applied to ``dataset``'s metric columns (all, or those whose
    ``<split>_<metric>`` is in ``metrics``); ``fn`` must be increasing so rankings stay
    (checked on the values)."""
    import pyarrow as pa

    from raynas.tables.table import _RUN_COLUMN, parse_metric_column

    out = data
    for name in _metric_columns(data, dataset):
        match = _RUN_COLUMN.match(name)
        key = parse_metric_column(match["base"] if match else name).key
        if metrics is not None and key not in metrics:
            continue
        values = np.asarray(data.column(name).to_numpy(zero_copy_only=False), dtype=float)
        new = np.asarray(fn(values), dtype=float)
        order = np.argsort(values, kind="stable")
        if new.shape != values.shape or np.any(np.diff(new[order]) < -1e-12):
            raise ArgumentError(f"transform_metric: fn must map {name} increasingly "
                                "(a monotone transform keeps the ranking)")
        out = out.set_column(out.column_names.index(name), name, pa.array(new))
    return out
