"""What a user sees: ``--help``, ``--print-config`` and overrides, the console of a
search (a line per architecture, a progress bar), and the NB201 table shipped with
raynas."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RAYNAS = str(Path(sys.executable).parent / "raynas")


def _raynas(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           **(env or {})}
    return subprocess.run([RAYNAS, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_help_lists_the_registered_names_and_the_defaults():
    from raynas.cli import TRAINING_DATASETS
    from raynas.data import DATASETS
    from raynas.policies import POLICIES
    from raynas.spaces import SPACES

    assert TRAINING_DATASETS == DATASETS  # the help lists them without importing torch
    top = _raynas("--help").stdout
    for name in [*POLICIES, *SPACES, *DATASETS, "search", "bench", "report", "meta-train"]:
        assert name in top, name
    bench = " ".join(_raynas("bench", "--help").stdout.split())
    assert "(default: 20)" in bench and "(default: random,rea,ls)" in bench  # --seeds, --policies
    assert "NB201 table shipped with raynas" in bench
    assert all(name in bench for name in POLICIES)
    search = " ".join(_raynas("search", "--help").stdout.split())
    for option in ("--print-config", "--budget", "--seed", "--policy", "--verbose", "--quiet"):
        assert option in search


def test_print_config_shows_the_effective_config_with_overrides(table_path):
    example = REPO / "examples" / "nb201_tabular.yaml"
    proc = _raynas("search", str(example), "--print-config", "--budget", "7", "--seed", "3",
                   "--policy", "rea")
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    assert config["budget"] == 7 and config["seed"] == 3
    assert config["policy"] == {"name": "rea", "options": {}}  # tpe's options not carried
    # no path in the example: the table under test ($RAYNAS_NB201_TABLE) or the shipped one
    assert Path(config["evaluator"]["path"]) == table_path.resolve()
    assert config["resources"]["report_seconds"] == 5.0  # every default is written
    default = yaml.safe_load(_raynas("search", "--print-config").stdout)
    assert default["evaluator"]["kind"] == "training" and default["budget"] == 20


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "raa"], "policy.name: unknown policy 'raa'"),
    (["--budget", "0"], "budget: must be >= 1"),
    (["--resume", "somewhere", "--budget", "3"], "give no config, --out, --budget"),
    (["--verbose", "--quiet"], "not allowed with argument"),
])
def test_bad_overrides_give_one_clear_line(args, message, tmp_path):
    proc = _raynas("search", *args, "--print-config")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_table_search_prints_a_line_per_new_best_and_a_progress_bar(tmp_path):
    example = REPO / "examples" / "nb201_tabular.yaml"
    out = tmp_path / "run"
    proc = _raynas("search", str(example), "--policy", "random", "--budget", "60", "--out",
                   str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert lines and all(line.endswith("<- new best") for line in lines)
    values = [float(re.search(r"valid_acc (\S+)", line).group(1)) for line in lines]
    assert values == sorted(values) and len(set(values)) == len(values)  # each one better
    assert re.match(r"\[ ?\d+/60\]  \|", lines[0])
    assert "60/60" in proc.stderr and "arch/s" in proc.stderr  # tqdm's bar (with its rate)
    assert "evaluated 60 architectures" in proc.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{out.resolve()}/mlflow.db" in proc.stdout
    # MLflow 3's UI opens experiments in its GenAI view unless the link asks for runs
    assert re.search(r"http://127\.0\.0\.1:5000/#/experiments/\d+\?workflowType=machine_learning",
                     proc.stdout)
    quiet = _raynas("search", str(example), "--policy", "random", "--budget", "60", "--out",
                    str(tmp_path / "quiet"), "--quiet")
    assert not [line for line in quiet.stdout.splitlines() if line.startswith("[")]
    assert "60/60" in quiet.stderr


def test_console_lines_say_what_happened_to_each_architecture():
    from raynas.search.callbacks import ProgressBar

    bar = ProgressBar(lines="all", bar=False)
    bar._by_queries, bar._total = True, 20
    ok = {"query": 3, "arch": "|a~0|", "status": "ok", "valid_acc": 91.5, "test_acc": 90.25,
          "params": 0.0732, "cost": 12.34}
    assert bar.format_row(ok, "valid_acc", ("|a~0|", 91.5), True) == (
        "[ 3/20]  |a~0|  valid_acc 91.5  test_acc 90.25  params 0.0732M  12.3 s  <- new best")
    stopped = {**ok, "status": "stopped", "fidelity": 1.0, "valid_acc": 40.0}
    line = bar.format_row(stopped, "valid_acc", ("|b~0|", 91.5), False)
    assert "stopped at epoch 1" in line and line.endswith("(best valid_acc 91.5)")
    failed = {"query": 4, "arch": "|c~0|", "status": "failed", "error": "CUDA out of memory\n...",
              "cost": 0.0}
    assert "FAILED: CUDA out of memory" in bar.format_row(failed, "valid_acc", None, False)
    silent = {**failed, "error": ""}
    assert "FAILED: no error message" in bar.format_row(silent, "valid_acc", None, False)
    with pytest.raises(ValueError, match="lines"):
        ProgressBar(lines="some")


# ------------------------------------------------------- the table shipped with raynas
def test_the_shipped_table_is_the_default_without_the_variable(monkeypatch):
    from raynas import config as cfg
    from raynas.tables import NB201_TABLE, TABLE_ENV, BenchmarkTable, default_table

    monkeypatch.delenv(TABLE_ENV, raising=False)
    assert default_table() == NB201_TABLE and NB201_TABLE.is_file()
    table = BenchmarkTable.load()
    assert len(table) == 15625 and "train_time" in table.costs("cifar10")
    assert (NB201_TABLE.parent / "README.md").read_text().count("MIT") >= 1
    config = cfg.from_dict({"evaluator": {"kind": "tabular", "dataset": "cifar10"}})
    assert config.evaluator.path == str(NB201_TABLE)
    monkeypatch.setenv(TABLE_ENV, "/elsewhere/other.parquet")
    assert default_table() == Path("/elsewhere/other.parquet")


@pytest.mark.slow
def test_the_wheel_ships_the_table_and_its_provenance(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("raynas-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "raynas/tables/data/nb201_12epoch.parquet" in names
    assert "raynas/tables/data/README.md" in names
