"""Shared fixtures. The NB201 table comes from $RAYNAS_NB201_TABLE (set by .ci/run),
falling back to ../shared/benchmarks/ beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = REPO.parent / "shared" / "benchmarks" / "nb201_12epoch.parquet"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def table_path() -> Path:
    path = Path(os.environ.get("RAYNAS_NB201_TABLE", DEFAULT_TABLE))
    if not path.is_file():
        pytest.fail(f"NB201 table not found at {path}; set RAYNAS_NB201_TABLE")
    return path


@pytest.fixture(scope="session")
def nb201_table(table_path):
    from raynas.benchmarks import BenchmarkTable

    return BenchmarkTable.load(table_path)


@pytest.fixture(scope="session")
def cifar10(nb201_table):
    from raynas.evaluators import TabularEvaluator

    return TabularEvaluator(nb201_table, "cifar10")
