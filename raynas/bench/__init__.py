"""Benchmark mode: many seeded searches on a table, in parallel on Ray, with regret reports."""

from raynas.bench.runner import BenchConfig, run_bench, search_seed

__all__ = ["BenchConfig", "run_bench", "search_seed"]
