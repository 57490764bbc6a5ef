"""Tabular benchmarks: load any table of the shared schema and look architectures up in it."""

from raynas.tables.table import BenchmarkTable, MetricColumn, parse_metric_column

__all__ = ["BenchmarkTable", "MetricColumn", "parse_metric_column"]
