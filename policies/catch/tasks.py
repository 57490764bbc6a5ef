"""Meta-training tasks from a benchmark table: one per dataset (same space, different
rewards, as CATCH defines tasks)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=4)
def _load(path: str, space: str):
    from raynas.tables import BenchmarkTable

    return BenchmarkTable.load(path, space)


@functools.lru_cache(maxsize=4)
def _shared(ref):
    import ray

    return ray.get(ref)


@dataclass(frozen=True)
class TableTask:
    """A picklable evaluator factory: lookups of ``dataset`` in the table at ``path``,
    searching ``search_metric`` and reporting ``report_metric``. With ``ref`` (the
    validated table in Ray's object store) workers share that one copy, once per
    process, without reading or validating the file again; else the file is loaded
    once per process."""

    path: str
    dataset: str
    space: str = "nb201"
    search_metric: str = "valid_acc"
    report_metric: str = "test_acc"
    ref: Any = field(default=None, compare=False, repr=False)

    def __call__(self):
        from raynas.evaluators import TabularEvaluator

        table = _shared(self.ref) if self.ref is not None else _load(self.path, self.space)
        return TabularEvaluator(table, self.dataset, self.search_metric, self.report_metric)


def table_tasks(path: str | Path, datasets, **kwargs) -> dict[str, TableTask]:
    """``{dataset: TableTask}`` for each of ``datasets`` (checked against the table); when
    Ray is up, the table goes into its object store once and every task shares it."""
    table = _load(str(Path(path).resolve()), kwargs.get("space", "nb201"))
    ref = None
    try:
        import ray

        if ray.is_initialized():
            ref = ray.put(table)
    except ImportError:  # pragma: no cover - ray is a dependency
        pass
    return {d: TableTask(str(Path(path).resolve()), table.check_dataset(d), ref=ref, **kwargs)
            for d in datasets}
