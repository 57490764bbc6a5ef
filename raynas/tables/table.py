"""Benchmark tables: one row per architecture, metric columns ``<dataset>_<split>_<metric>``.

Any Parquet or CSV file of that shape loads, e.g. the NAS-Bench-201 table with
``cifar10_valid_acc``, ``cifar10_test_acc``, ``imagenet16_120_valid_acc``...
*Noisy tables* hold several training runs per architecture: a metric column repeated with
a run suffix, ``<dataset>_<split>_<metric>@<run>`` (``cifar10_valid_acc@0``,
``cifar10_valid_acc@1``, ...; any run labels, at least two, the same for every metric
of a dataset that has runs). :meth:`BenchmarkTable.column` then gives the mean over the
runs and :meth:`BenchmarkTable.runs` every run; a
:class:`~raynas.evaluators.TabularEvaluator` draws one run per query (see there).
*Cost columns* are per-architecture costs, not metrics: per dataset
(``<dataset>_train_time``, ``<dataset>_latency``) or table-wide (``params``, ``flops``);
see :meth:`BenchmarkTable.costs`. Other columns (``arch_index``) are kept out. Loading
validates the table and raises :class:`~raynas.errors.TableError` naming the column or
row at fault (a missing, NaN or infinite value included). Tables are Parquet or CSV:
nothing is ever unpickled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import ArgumentError, TableError, unknown_name

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.spaces import SearchSpace

SPLITS = ("train", "valid", "test")
DATASET_COSTS = ("train_time", "latency")
"""Per-dataset cost columns: ``<dataset>_train_time`` (seconds of training), ``<dataset>_latency``."""
TABLE_COSTS = ("params", "flops")
"""Table-wide cost columns."""
_METRIC_COLUMN = re.compile(r"^(?P<dataset>.+?)_(?P<split>train|valid|test)_(?P<metric>\w+)$")
_RUN_COLUMN = re.compile(r"^(?P<base>.+)@(?P<run>[A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class MetricColumn:
    """A parsed metric column name, e.g. ``cifar10_valid_acc``."""

    column: str
    dataset: str
    split: str
    metric: str

    @property
    def key(self) -> str:
        """The metric's name inside a dataset's results: ``<split>_<metric>``."""
        return f"{self.split}_{self.metric}"


def parse_metric_column(name: str) -> MetricColumn | None:
    """Parse ``<dataset>_<split>_<metric>``; ``None`` for any other column."""
    match = _METRIC_COLUMN.match(name)
    if not match:
        return None
    return MetricColumn(name, match["dataset"], match["split"], match["metric"])


class BenchmarkTable:
    """A validated benchmark table, indexed for fast lookups by architecture.

    Attributes:
        path: Where the table was read from (``None`` when built in memory).
        space: The search space its ``arch_str`` column belongs to.
        archs: Architecture per row.
        datasets: Datasets found in the metric columns, in column order.

    Example:
        >>> table = BenchmarkTable.load("nb201_12epoch.parquet")          # doctest: +SKIP
        >>> table.datasets                                               # doctest: +SKIP
        ['cifar10', 'cifar100', 'imagenet16_120']
        >>> table.metrics("cifar10")                                     # doctest: +SKIP
        ['valid_acc', 'test_acc']
    """

    def __init__(self, data: pa.Table, space: SearchSpace, path: Path | None = None) -> None:
        self.path = path
        self.space = space
        self._run_columns = self._group_runs(data)
        self._columns = self._validate_columns(data)
        self._codes = self._parse_archs(data)
        self._index_rows(data)
        self._runs: dict[str, np.ndarray] = {}  # metric column -> (rows, runs)
        self._values = {}
        for c in self._columns:
            if c.column in self._run_columns:
                runs = np.stack([self._metric_values(data, name)
                                 for name in self._run_columns[c.column]], axis=1)
                self._runs[c.column] = runs
                self._values[c.column] = runs.mean(axis=1)
            else:
                self._values[c.column] = self._metric_values(data, c.column)
        self.datasets: list[str] = list(dict.fromkeys(c.dataset for c in self._columns))
        self._costs: dict[str, str] = {}  # "<dataset>_<cost>" or "<cost>" -> column
        for name in data.column_names:
            per_dataset = any(name == f"{d}_{c}" for d in self.datasets for c in DATASET_COSTS)
            if per_dataset or name in TABLE_COSTS:
                self._numeric(data, name)
                self._values[name] = self._metric_values(data, name)
                self._costs[name] = name

    # --------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path | None = None,
             space: SearchSpace | str = "nb201") -> BenchmarkTable:
        """Read a ``.parquet`` or ``.csv`` file and validate it against ``space``;
        ``path=None``: :func:`raynas.tables.default_table` (the NAS-Bench-201 table
        shipped with raynas, or ``$RAYNAS_NB201_TABLE``)."""
        import pyarrow as pa

        from raynas.spaces import get_space

        if path is None:
            from raynas.tables import default_table

            path = default_table()
        if isinstance(space, str):
            space = get_space(space)
        path = Path(path).expanduser()
        if not path.is_file():
            raise TableError(f"benchmark table not found: {path}")
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                data = pq.read_table(path)
            elif suffix == ".csv":
                import pyarrow.csv as pcsv

                data = pcsv.read_csv(path)
            else:
                raise TableError(f"{path}: unsupported table format {suffix!r}; use .parquet or .csv")
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"{path}: cannot read table: {exc}") from exc
        return cls(data, space, path)

    # ------------------------------------------------------------ validation
    def _where(self) -> str:
        return str(self.path) if self.path else "benchmark table"

    def _group_runs(self, data: pa.Table) -> dict[str, list[str]]:
        """``<metric column>@<run>`` columns by metric column, checked: >= 2 runs, no
        plain column beside them, the same runs for every metric of a dataset."""
        groups: dict[str, list[str]] = {}
        for name in data.column_names:
            match = _RUN_COLUMN.match(name)
            if match and parse_metric_column(match["base"]) is not None:
                groups.setdefault(match["base"], []).append(name)
        labels: dict[str, tuple[str, list[str]]] = {}
        for base, names in groups.items():
            if base in data.column_names:
                raise TableError(f"{self._where()}: column {base!r} and its runs "
                                 f"{names[:3]}...: give a metric either once or per run")
            if len(names) < 2:
                raise TableError(f"{self._where()}: {names[0]!r} is the only run of {base!r}; "
                                 "a noisy table has >= 2 runs per metric (or name it "
                                 f"{base!r})")
            runs = sorted(n.rpartition("@")[2] for n in names)
            dataset = parse_metric_column(base).dataset
            if dataset in labels and labels[dataset][1] != runs:
                other, other_runs = labels[dataset]
                raise TableError(f"{self._where()}: {base!r} has runs {runs}, {other!r} has "
                                 f"{other_runs}: every metric of {dataset!r} needs the same runs")
            labels.setdefault(dataset, (base, runs))
            groups[base] = [f"{base}@{r}" for r in runs]
        return groups

    def _validate_columns(self, data: pa.Table) -> list[MetricColumn]:
        if "arch_str" not in data.column_names:
            raise TableError(
                f"{self._where()}: missing the 'arch_str' column; columns are {data.column_names}"
            )
        names = [n for n in data.column_names if n not in
                 {r for runs in self._run_columns.values() for r in runs}]
        names += list(self._run_columns)
        columns = [c for c in map(parse_metric_column, names)
                   if c is not None and c.key not in DATASET_COSTS]
        if not columns:
            raise TableError(
                f"{self._where()}: no metric columns named '<dataset>_<split>_<metric>' "
                f"(split one of {SPLITS}); columns are {data.column_names}"
            )

        for c in columns:
            for name in self._run_columns.get(c.column, [c.column]):
                self._numeric(data, name)
        return columns

    def _numeric(self, data: pa.Table, column: str) -> None:
        import pyarrow.types as pat

        dtype = data.schema.field(column).type
        if not (pat.is_integer(dtype) or pat.is_floating(dtype)):
            raise TableError(f"{self._where()}: column {column!r} is {dtype}, not numeric")

    def _parse_archs(self, data: pa.Table) -> np.ndarray:
        from raynas.tables.parse import parse_arch_strings

        return parse_arch_strings(data.column("arch_str"), self.space, self._where())

    def _index_rows(self, data: pa.Table) -> None:
        """Key every row by its architecture's mixed-radix number; find duplicates; build
        the architecture -> row index (a dense array for spaces up to a few times the
        table's size, else the sorted keys)."""
        n, radix = len(self._codes), [1]
        for k in reversed(self.space.num_choices[1:]):
            radix.insert(0, radix[0] * k)
        self._radix = tuple(radix)
        self._keys = self._dense = None
        if self.space.size >= 2**62:  # keys would overflow int64: a dict of tuples
            self._tuple_rows: dict[tuple[int, ...], int] = {}
            for row, arch in enumerate(map(tuple, self._codes.tolist())):
                if arch in self._tuple_rows:
                    self._duplicate(data, self._tuple_rows[arch], row)
                self._tuple_rows[arch] = row
            return
        keys = self._codes @ np.asarray(radix, dtype=np.int64)
        self._keys = keys
        if self.space.size <= max(4 * n, 1 << 20):
            self._dense = np.full(self.space.size, -1, dtype=np.int64)
            self._dense[keys] = np.arange(n)
            if np.count_nonzero(self._dense >= 0) == n:
                return  # no duplicates: the sort below is only needed to name them
        order = np.argsort(keys, kind="stable")
        ranked = keys[order]
        repeats = np.flatnonzero(ranked[1:] == ranked[:-1])
        if repeats.size:  # the first row that repeats an earlier one, as a scan finds it
            second = order[repeats + 1]
            i = int(np.argmin(second))
            self._duplicate(data, int(order[repeats[i]]), int(second[i]))
        self._sorted, self._order = ranked, order

    def _duplicate(self, data: pa.Table, first: int, again: int) -> None:
        text = data.column("arch_str")[again].as_py()
        raise TableError(f"{self._where()}: rows {first} and {again}: duplicate architecture "
                         f"{text!r}")

    @property
    def archs(self) -> list[tuple[int, ...]]:
        """Architecture per row (built on first use, then kept)."""
        archs = self.__dict__.get("_archs")
        if archs is None:
            archs = self.__dict__["_archs"] = list(map(tuple, self._codes.tolist()))
        return archs

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_archs", None)  # rebuilt on demand; the arrays travel zero-copy
        return state

    def _metric_values(self, data: pa.Table, column: str) -> np.ndarray:
        values = data.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        for bad, what in ((np.flatnonzero(np.isnan(values)), "missing/NaN"),
                          (np.flatnonzero(np.isinf(values)), "infinite")):
            if bad.size:
                rows = ", ".join(map(str, bad[:5])) + (" ..." if bad.size > 5 else "")
                raise TableError(f"{self._where()}: column {column!r} has {bad.size} {what} "
                                 f"value(s), rows {rows}")
        return values

    # --------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._codes)

    def check_dataset(self, dataset: str) -> str:
        """Return ``dataset`` if the table has it, else raise with the closest name."""
        if dataset not in self.datasets:
            raise unknown_name(f"dataset in {self._where()}", dataset, self.datasets)
        return dataset

    def metrics(self, dataset: str) -> list[str]:
        """The ``<split>_<metric>`` names the table has for ``dataset``."""
        self.check_dataset(dataset)
        return [c.key for c in self._columns if c.dataset == dataset]

    def costs(self, dataset: str) -> list[str]:
        """The cost columns the table has for ``dataset``: per dataset (``train_time``,
        ``latency``) then table-wide (``params``, ``flops``), by their short names."""
        self.check_dataset(dataset)
        return [c for c in DATASET_COSTS if f"{dataset}_{c}" in self._costs] + [
            c for c in TABLE_COSTS if c in self._costs]

    def column(self, dataset: str, key: str) -> np.ndarray:
        """Values of the metric ``<dataset>_<key>`` or of the cost ``key`` for ``dataset``
        (``<dataset>_<key>``, else the table-wide ``key``), for every row (read-only)."""
        name = f"{self.check_dataset(dataset)}_{key}"
        if name in self._values:
            return self._values[name]
        if key in self._costs:
            return self._values[key]
        raise unknown_name(f"metric or cost of {dataset!r}", key,
                           self.metrics(dataset) + self.costs(dataset))

    def runs(self, dataset: str, key: str) -> np.ndarray | None:
        """Every run of the metric ``<dataset>_<key>``, ``(rows, runs)``, or ``None`` when
        the table holds one value per architecture for it."""
        self.column(dataset, key)  # raises with the known names
        return self._runs.get(f"{dataset}_{key}")

    def run_labels(self, dataset: str) -> list[str]:
        """The run labels of ``dataset``'s noisy metrics (empty: one value per metric)."""
        for column, names in self._run_columns.items():
            if parse_metric_column(column).dataset == dataset:
                return [n.rpartition("@")[2] for n in names]
        return []

    def row(self, arch: tuple[int, ...]) -> int | None:
        """Row index of ``arch``, or ``None`` if the table lacks it: a constant-time
        lookup whatever the table's size (an array index, or a binary search)."""
        if len(arch) != len(self._radix):
            return None
        if self._keys is None:
            return self._tuple_rows.get(tuple(arch))
        key = 0
        for a, r, k in zip(arch, self._radix, self.space.num_choices):
            if not 0 <= a < k:
                return None
            key += a * r
        if self._dense is not None:
            row = int(self._dense[key])
            return row if row >= 0 else None
        i = int(np.searchsorted(self._sorted, key))
        return int(self._order[i]) if i < len(self._sorted) and self._sorted[i] == key else None

    def best(self, dataset: str, key: str = "test_acc", mode: str = "max") -> float:
        """Best value of ``<dataset>_<key>``: the highest, or the lowest for ``mode="min"``."""
        values = self.column(dataset, key)
        if mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {mode!r}")
        return float(values.max() if mode == "max" else values.min())
