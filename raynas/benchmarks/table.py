"""Benchmark tables: one row per architecture, metric columns ``<dataset>_<split>_<metric>``.

Any Parquet or CSV file of that shape loads, e.g. the NAS-Bench-201 table with
``cifar10_valid_acc``, ``cifar10_test_acc``, ``imagenet16_120_valid_acc``...
Other columns (``arch_index``) are kept out of the metrics. Loading validates the
table and raises :class:`~raynas.errors.TableError` naming the column or row at
fault. Nothing is ever unpickled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import TableError, unknown_name

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.spaces import SearchSpace

SPLITS = ("train", "valid", "test")
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

    # --------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | str = "nb201") -> BenchmarkTable:
        """Read a ``.parquet`` or ``.csv`` file and validate it against ``space``."""
        import pyarrow as pa

        from raynas.spaces import get_space

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
        columns = [c for c in map(parse_metric_column, data.column_names) if c is not None]
        if not columns:
            raise TableError(
                f"{self._where()}: no metric columns named '<dataset>_<split>_<metric>' "
                f"(split one of {SPLITS}); columns are {data.column_names}"
            )
        import pyarrow.types as pat

        for c in columns:
            dtype = data.schema.field(c.column).type
            if not (pat.is_integer(dtype) or pat.is_floating(dtype)):
                raise TableError(f"{self._where()}: metric column {c.column!r} is {dtype}, not numeric")
        return columns

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
        bad = np.flatnonzero(np.isnan(values))
        if bad.size:
            rows = ", ".join(map(str, bad[:5])) + (" ..." if bad.size > 5 else "")
            raise TableError(
                f"{self._where()}: column {column!r} has {bad.size} missing/NaN value(s), rows {rows}"
            )
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

    def column(self, dataset: str, key: str) -> np.ndarray:
        """Values of ``<dataset>_<key>`` for every row (read-only)."""
        name = f"{self.check_dataset(dataset)}_{key}"
        if name not in self._values:
            raise unknown_name(f"metric of {dataset!r}", key, self.metrics(dataset))
        return self._values[name]

    def row(self, arch: tuple[int, ...]) -> int | None:
        """Row index of ``arch``, or ``None`` if the table lacks it."""
        return self._row_of.get(arch)

    def best(self, dataset: str, key: str = "test_acc", mode: str = "max") -> float:
        """Best value of ``<dataset>_<key>``: the highest, or the lowest for ``mode="min"``."""
        values = self.column(dataset, key)
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        return float(values.max() if mode == "max" else values.min())
