"""Every measurement script in ``benchmarks/`` runs, with tiny budgets, as its usage line
says (``benchmarks/README.md`` has the real commands and figures). Each runs as a
subprocess from a scratch folder, so a script that assumes the repository's working
directory, or breaks at budgets below its report points, fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# script -> tiny arguments ({out} is a scratch folder). scaling_sim.py and
# hyper_schedule.py have their smoke tests beside their features (test_engine, test_hyper);
# gpu_check.py needs a GPU: without one, its test below checks that it says so at once.
TINY = {
    "nb201_baselines.py": ["--seeds", "2", "--budget", "10", "--policies", "random,rea",
                           "--out", "{out}"],
    "manas_nb201.py": ["--seeds", "2", "--budget", "10", "--out", "{out}"],
    "npg_pareto.py": ["--seeds", "2", "--budget", "20", "--policies", "npg,random",
                      "--out", "{out}"],
    "catch_transfer.py": ["--seeds", "2", "--budget", "10", "--meta-iterations", "2",
                          "--meta-queries", "5", "--out", "{out}", "--tasks", "both"],
    "catch_meta_speed.py": ["--iterations", "3", "--queries", "5"],
    "manas_memory.py": ["--channels", "4", "--layers", "3", "--batch", "4", "--steps", "1",
                        "--device", "cpu"],
    "tracking_overhead.py": ["--queries", "50", "--repeats", "1", "--trials", "2"],
    "tune_overhead.py": ["--trials", "2", "--lengths", "0.5", "--out", "{out}"],
    "setup_cost.py": ["--repeats", "1", "--budget", "10"],
    "default_task.py": ["--random", "4", "--noise-archs", "2", "--noise-seeds", "2",
                        "--search-seeds", "1", "--budget", "2", "--epochs", "1"],
    "table_scale.py": ["--sizes", "2000", "--seeds", "1", "--bench-size", "3000"],
    "scaling.py": ["--nodes", "1,2", "--seeds", "2", "--budget", "10", "--noop-tasks", "20",
                   "--trials", "2", "--epochs", "1", "--out", "{out}"],
}
SMOKED_ELSEWHERE = {"scaling_sim.py", "hyper_schedule.py", "gpu_check.py"}


def test_every_script_has_a_smoke_run():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    assert scripts == set(TINY) | SMOKED_ELSEWHERE


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_script_runs_with_tiny_budgets(script, table_path, ray_env, tmp_path):
    args = [a.format(out=tmp_path / "out") for a in TINY[script]]
    env = {**ray_env, "RAYNAS_NB201_TABLE": str(table_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert any(ch.isdigit() for ch in proc.stdout), "it printed no figures"


def test_gpu_check_without_a_gpu_says_so_at_once(ray_env, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: run benchmarks/gpu_check.py itself")
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py")], cwd=tmp_path,
                          env=ray_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("gpu_check: no GPU visible") and "nothing was run" in proc.stdout
