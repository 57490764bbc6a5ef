"""Benchmark tables: one row per architecture, metric columns ``<dataset>_<split>_<metric>``.

Any Parquet or CSV file of that shape loads, e.g. the NAS-Bench-201 table with
``cifar10_valid_acc``, ``cifar10_test_acc``, ``imagenet16_120_valid_acc``...
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
        self._columns = self._validate_columns(data)
        self.archs = self._parse_archs(data)
        self._row_of = {arch: row for row, arch in enumerate(self.archs)}
        self._values = {c.column: self._metric_values(data, c.column) for c in self._columns}
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

    def _validate_columns(self, data: pa.Table) -> list[MetricColumn]:
        if "arch_str" not in data.column_names:
            raise TableError(
                f"{self._where()}: missing the 'arch_str' column; columns are {data.column_names}"
            )
        columns = [c for c in map(parse_metric_column, data.column_names)
                   if c is not None and c.key not in DATASET_COSTS]
        if not columns:
            raise TableError(
                f"{self._where()}: no metric columns named '<dataset>_<split>_<metric>' "
                f"(split one of {SPLITS}); columns are {data.column_names}"
            )

        for c in columns:
            self._numeric(data, c.column)
        return columns

    def _numeric(self, data: pa.Table, column: str) -> None:
        import pyarrow.types as pat

        dtype = data.schema.field(column).type
        if not (pat.is_integer(dtype) or pat.is_floating(dtype)):
            raise TableError(f"{self._where()}: column {column!r} is {dtype}, not numeric")

    def _parse_archs(self, data: pa.Table) -> list[tuple[int, ...]]:
        strings = data.column("arch_str").to_pylist()
        archs, seen = [], {}
        for row, text in enumerate(strings):
            if text is None:
                raise TableError(f"{self._where()}: row {row}: 'arch_str' is empty")
            try:
                arch = self.space.from_str(text)
            except (ValueError, TypeError) as exc:
                raise TableError(
                    f"{self._where()}: row {row}: 'arch_str' {text!r} is not in the "
                    f"{self.space.name} space: {exc}"
                ) from None
            if arch in seen:
                raise TableError(
                    f"{self._where()}: rows {seen[arch]} and {row}: duplicate architecture {text!r}"
                )
            seen[arch] = row
            archs.append(arch)
        return archs

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
        return len(self.archs)

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

    def row(self, arch: tuple[int, ...]) -> int | None:
        """Row index of ``arch``, or ``None`` if the table lacks it."""
        return self._row_of.get(arch)

    def best(self, dataset: str, key: str = "test_acc", mode: str = "max") -> float:
        """Best value of ``<dataset>_<key>``: the highest, or the lowest for ``mode="min"``."""
        values = self.column(dataset, key)
        if mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {mode!r}")
        return float(values.max() if mode == "max" else values.min())
