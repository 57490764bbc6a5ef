"""Tabular benchmarks: load any table of the shared schema and look architectures up in it."""

import os
from pathlib import Path

from raynas.tables.table import BenchmarkTable, MetricColumn, parse_metric_column

NB201_TABLE = Path(__file__).resolve().parent / "data" / "nb201_12epoch.parquet"
"""The NAS-Bench-201 12-epoch table shipped with raynas (provenance and licence:
``raynas/tables/data/README.md``)."""
TABLE_ENV = "RAYNAS_NB201_TABLE"
"""The environment variable naming another table of the shared schema."""


def default_table() -> Path:
    """The benchmark table used when none is named: ``$RAYNAS_NB201_TABLE`` when set,
    else the NAS-Bench-201 table shipped with raynas (:data:`NB201_TABLE`)."""
    named = os.environ.get(TABLE_ENV)
    return Path(named).expanduser() if named else NB201_TABLE


__all__ = ["NB201_TABLE", "TABLE_ENV", "BenchmarkTable", "MetricColumn", "default_table",
           "parse_metric_column"]
