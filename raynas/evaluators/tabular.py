"""Table lookups: the evaluator of benchmark mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.tables.table import BenchmarkTable
from raynas.types import Arch, Result

if TYPE_CHECKING:
    from raynas.spaces.cost import LinearCostModel


_MASK = (1 << 64) - 1


def _draw(seed: int, row: int, n: int) -> int:
    """A uniform draw in ``[0, n)`` from (seed, row): splitmix64 of the pair."""
    z = (seed * 0x9E3779B97F4A7C15 + row * 0xBF58476D1CE4E5B9 + 0x632BE59BD9B4E019) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) % n


class TabularEvaluator:
    """Answer evaluations from a :class:`~raynas.tables.BenchmarkTable` in microseconds.

    The protocol is the benchmark's: search on ``valid_acc``, report ``test_acc``
    of the incumbent (the best architecture so far by validation accuracy).
    Each result carries every metric the table has for the dataset, named
    ``<split>_<metric>`` (``valid_acc``, ``test_acc``, ...), and its cost columns
    (``train_time``, ``latency``, ``params``; see :meth:`BenchmarkTable.costs`).

    Args:
        table: The benchmark table.
        dataset: Which of the table's datasets to evaluate on.
        search_metric: Metric the search optimises (default ``valid_acc``).
        report_metric: Metric reported for the incumbent (default ``test_acc``).
        cost_metric: Optional cost column (``train_time``) or metric holding simulated
            training seconds, used as each result's cost.
        cost_model: Optional :class:`~raynas.spaces.cost.LinearCostModel`; each
            result then holds the network's ``params`` and ``flops``, so
            multi-objective searches (accuracy vs size) run on the table. A cost the
            table has a column for comes from the table (as it records it); the model
            supplies only the ones it lacks.
        seed: On a noisy table (several runs per architecture, see
            :mod:`raynas.tables.table`), each query draws one run, uniformly, by a hash
            of ``seed`` (the search's seed) and the architecture's row, as the
            NAS-Bench-201 API draws a training seed per query: the same seed gives the
            same draws in any order of queries, and a resumed search the draws of an
            uninterrupted one. Every
            metric with runs then takes that run's value, except the report metric,
            which is the mean over runs (what regret is measured on; when the search
            and report metrics are one column, the search's draw); ``run`` records the
            drawn run's index.

    Example:
        >>> evaluator = TabularEvaluator(table, "cifar10")               # doctest: +SKIP
        >>> evaluator.evaluate([table.archs[0]])[0].metrics["valid_acc"]  # doctest: +SKIP
        63.364
    """

    def __init__(
        self,
        table: BenchmarkTable,
        dataset: str,
        search_metric: str = "valid_acc",
        report_metric: str = "test_acc",
        cost_metric: str | None = None,
        cost_model: LinearCostModel | None = None,
        seed: int = 0,
    ) -> None:
        self.table = table
        self.dataset = table.check_dataset(dataset)
        keys = table.metrics(dataset)
        for metric in (search_metric, report_metric, cost_metric):
            if metric is not None:
                table.column(dataset, metric)  # raises with the known names
        self.search_metric = search_metric
        self.report_metric = report_metric
        self.cost_metric = cost_metric
        self._keys = [*keys, *table.costs(dataset)]
        self._columns = [table.column(dataset, key) for key in self._keys]
        self._cost = table.column(dataset, cost_metric) if cost_metric else None
        if cost_model is not None:
            for name in ("params", "flops"):
                if name not in self._keys:
                    self._keys.append(name)
                    self._columns.append(getattr(cost_model, name)(table.archs))
        # noisy tables: (key, runs) of the metrics drawn per query
        runs = [table.runs(dataset, key) for key in keys]
        self._drawn = [(i, r) for i, (key, r) in enumerate(zip(keys, runs)) if r is not None
                       and (key != report_metric or key == search_metric)]
        self.num_runs = self._drawn[0][1].shape[1] if self._drawn else 1
        self.seed = int(seed)

    @property
    def space(self):
        """The table's search space."""
        return self.table.space

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        """Look ``archs`` up; an architecture missing from the table gives a failed result."""
        results = []
        for arch in archs:
            row = self.table.row(arch)
            if row is None:
                text = self.table.space.to_str(arch)
                results.append(Result.failed(f"{text} is not in the table"))
                continue
            metrics = {key: float(col[row]) for key, col in zip(self._keys, self._columns)}
            if self._drawn:
                run = _draw(self.seed, row, self.num_runs)
                for i, runs in self._drawn:
                    metrics[self._keys[i]] = float(runs[row, run])
                metrics["run"] = float(run)
            cost = float(self._cost[row]) if self._cost is not None else 0.0
            results.append(Result(metrics, cost=cost))
        return results

    def values(self, metric: str) -> np.ndarray:
        """Every architecture's ``metric`` (e.g. to normalise rewards by the table's range)."""
        if metric not in self._keys:
            raise KeyError(f"{metric!r} is not a metric of this evaluator; known: {self._keys}")
        return np.asarray(self._columns[self._keys.index(metric)], dtype=float)

    def optimum(self, mode: str = "max") -> float:
        """Best report metric in the table (highest, or lowest for ``mode="min"``):
        the zero of the regret."""
        return self.table.best(self.dataset, self.report_metric, mode)

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": "tabular",
            "table": str(self.table.path),
            "dataset": self.dataset,
            "search_metric": self.search_metric,
            "report_metric": self.report_metric,
        }
