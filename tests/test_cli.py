"""End-to-end smoke tests of the ``raynas`` command (real Ray, real table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.bench.runner import CURVE_COLUMNS

RAYNAS = str(Path(sys.executable).parent / "raynas")


def _raynas(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([RAYNAS, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"raynas {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, table_path):
    out = tmp_path_factory.mktemp("bench")
    args = ("bench", "--benchmark", str(table_path), "--datasets", "cifar10,imagenet16_120",
            "--policies", "random,rea,ls,tpe", "--seeds", "2", "--budget", "30",
            "--out", str(out), "--num-cpus", "2")
    proc = _raynas(*args)
    return out, args, proc


def test_bench_writes_curves_summary_and_plot(bench_run):
    out, _, proc = bench_run
    curves = pq.read_table(out / "curves.parquet")
    assert tuple(curves.column_names) == CURVE_COLUMNS
    # 4 policies x 2 datasets x 2 seeds x 30 queries
    assert curves.num_rows == 4 * 2 * 2 * 30
    df = curves.to_pandas()
    assert (df["regret"] >= 0).all()
    # regret never grows: the incumbent only improves on validation... and reports its test
    for _, run in df.groupby(["policy", "dataset", "seed"]):
        assert run["valid_acc"].is_monotonic_increasing
    summary = (out / "summary.md").read_text()
    assert "| policy | @25 | @30 |" in summary and "| tpe |" in summary
    assert "search on `valid_acc`, report `test_acc`" in summary
    assert (out / "regret.png").stat().st_size > 10_000
    assert "wrote" in proc.stdout


def test_bench_is_deterministic_and_resumes(bench_run, tmp_path):
    out, args, _ = bench_run
    first = pq.read_table(out / "curves.parquet")
    # delete some finished searches: a rerun recomputes only those, identically
    removed = sorted((out / "runs").glob("ls__*.parquet"))
    kept = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("rea__*.parquet")}
    for path in removed:
        path.unlink()
    proc = _raynas(*args)
    assert "resuming: 12 of 16 searches already on disk" in proc.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert pq.read_table(out / "curves.parquet").equals(first)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--policies", "rae"), "unknown policy 'rae'; did you mean 'rea'?"),
        (("--datasets", "cifar11"), "did you mean 'cifar10'"),
        (("--benchmark", "/nonexistent/table.parquet"), "benchmark table not found"),
        (("--policy-kwargs", "{bad json"), "--policy-kwargs is not valid JSON"),
        (("--policy-kwargs", '{"rea": {"tournament": 3}}'), "policy 'rea': bad hyperparameters"),
    ],
)
def test_bench_user_mistakes_give_one_clear_line(args, message, table_path, tmp_path):
    base = ["bench", "--benchmark", str(table_path), "--seeds", "1", "--budget", "5",
            "--out", str(tmp_path)]
    proc = _raynas(*base, *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_search_command_resumes(table_path, tmp_path):
    common = ("search", "--benchmark", str(table_path), "--dataset", "cifar100", "--policy", "ls",
              "--seed", "4", "--out", str(tmp_path), "--no-progress")
    _raynas(*common, "--budget", "20")
    resumed = _raynas(*common, "--budget", "40", "--resume")
    straight = _raynas(*common[:-3], "--out", str(tmp_path / "straight"), "--no-progress",
                       "--budget", "40")
    assert "after 40 queries" in resumed.stdout
    assert resumed.stdout.splitlines()[:2] == straight.stdout.splitlines()[:2]
    assert pq.read_table(tmp_path / "history.parquet").num_rows >= 40


def test_bench_on_an_error_table_minimises(bench_run, table_path, tmp_path):
    """Another table of the schema: errors (100 - accuracy) searched with --mode min give
    the same regret curves as the accuracy table searched with --mode max."""
    import pyarrow as pa
    import pyarrow.compute as pc

    source = pq.read_table(table_path)
    errors = pa.table({
        "arch_str": source["arch_str"],
        "cifar10_valid_err": pc.subtract(100.0, source["cifar10_valid_acc"]),
        "cifar10_test_err": pc.subtract(100.0, source["cifar10_test_acc"]),
    })
    pq.write_table(errors, tmp_path / "errors.parquet")
    out = tmp_path / "bench"
    _raynas("bench", "--benchmark", str(tmp_path / "errors.parquet"), "--datasets", "cifar10",
            "--policies", "random,rea,ls,tpe", "--seeds", "2", "--budget", "30",
            "--search-metric", "valid_err", "--report-metric", "test_err", "--mode", "min",
            "--out", str(out), "--num-cpus", "2")
    minimised = pq.read_table(out / "curves.parquet").to_pandas()
    maximised = pq.read_table(bench_run[0] / "curves.parquet").to_pandas()
    maximised = maximised[maximised["dataset"] == "cifar10"].reset_index(drop=True)
    assert (minimised["regret"] - maximised["regret"]).abs().max() < 1e-9
    assert "mode `min`" in (out / "summary.md").read_text()
