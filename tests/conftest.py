"""Shared fixtures. The NB201 table comes from $RAYNAS_NB201_TABLE (set by .ci/run),
falling back to ../shared/benchmarks/ beside the repository."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = REPO.parent / "shared" / "benchmarks" / "nb201_12epoch.parquet"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="module")
def ray_local():
    """A local 2-CPU Ray instance for one test module, without the dashboard."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             configure_logging=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


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


def write_cifar_batch(path: Path, n: int, rng, label_key: str = "labels", classes: int = 10):
    """Write a tiny CIFAR python-version batch file (random images)."""
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key.encode(): rng.integers(0, classes, n).tolist(),
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar10(folder: Path, train_per_batch: int = 8, test: int = 8, seed: int = 0) -> Path:
    """A tiny CIFAR-10 folder: data_batch_1..5 and test_batch."""
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", train_per_batch, rng)
    write_cifar_batch(folder / "test_batch", test, rng)
    return folder
