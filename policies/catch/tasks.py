"""Meta-training tasks from a benchmark table: one per dataset (same space, different
rewards, as CATCH defines tasks)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path


@functools.lru_cache(maxsize=4)
def _load(path: str, space: str):
    from raynas.tables import BenchmarkTable

    return BenchmarkTable.load(path, space)


@dataclass(frozen=True)
class TableTask:
    """A picklable evaluator factory: lookups of ``dataset`` in the table at ``path``
    (loaded once per process), searching ``search_metric`` and reporting ``report_metric``."""

    path: str
    dataset: str
    space: str = "nb201"
    search_metric: str = "valid_acc"
    report_metric: str = "test_acc"

    def __call__(self):
        from raynas.evaluators import TabularEvaluator

        return TabularEvaluator(_load(self.path, self.space), self.dataset, self.search_metric,
                                self.report_metric)


def table_tasks(path: str | Path, datasets, **kwargs) -> dict[str, TableTask]:
    """``{dataset: TableTask}`` for each of ``datasets`` (checked against the table)."""
    table = _load(str(Path(path).resolve()), kwargs.get("space", "nb201"))
    return {d: TableTask(str(Path(path).resolve()), table.check_dataset(d), **kwargs)
            for d in datasets}
