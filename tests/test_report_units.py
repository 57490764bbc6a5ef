"""Reports in the metric's own units: losses of 1e-4 print as numbers, not ``0.00``."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.report.units import Scale, is_percent_accuracy
from raynas.tables.synthetic import synthetic_space, synthetic_table


@pytest.mark.parametrize(("values", "metric", "value", "text", "unit"), [
    ([61.2, 70.3, 73.5], "test_acc", 1.234567, "1.23", "percentage points"),
    ([61.2, 70.3, 73.5], "test_acc", -0.0, "0.00", "percentage points"),
    ([0.00012, 0.00031, 0.00055], "test_loss", 0.0000123456, "1.23e-05", "test_loss units"),
    ([0.00012, 0.00031, 0.00055], "test_loss", -0.0, "0", "test_loss units"),
    ([0.5, 0.9, 2.0], "test_loss", 0.0123456, "0.012", "test_loss units"),
    ([1200.0, 3400.0, 9000.0], "train_time", 12.345, "12", "train_time units"),
    ([0.61, 0.70, 0.735], "test_acc", 0.01234, "0.01234", "test_acc units"),  # a fraction
])
def test_a_value_prints_at_its_metrics_scale(values, metric, value, text, unit):
    scale = Scale.of(values, metric)
    assert scale.format(value) == text and scale.unit == unit


def test_percent_accuracy_is_told_from_fractions_and_losses():
    assert is_percent_accuracy("valid_acc", [10.0, 91.5])
    assert not is_percent_accuracy("valid_acc", [0.1, 0.915])
    assert not is_percent_accuracy("valid_loss", [10.0, 91.5])
    assert Scale.of([1, 2, 3], "x").mean_std(np.array([np.nan])) == "—"


def test_a_loss_table_in_min_mode_reports_regrets_that_are_not_zero(ray_local, tmp_path):
    """A third-party table of losses around 1e-4 (the issue's case), searched in min mode:
    summary.md shows the regrets with their own precision, the floor without a sign,
    and the normalised regret beside them."""
    from raynas.bench import BenchConfig, run_bench

    space = synthetic_space(5, 4)
    source = synthetic_table(space, 1024, seed=5)  # the whole space
    loss = {k: pa.array(1e-4 * (100.0 - source[k].to_numpy()) / 80.0)
            for k in ("syn_valid_acc", "syn_test_acc")}
    table = pa.table({"arch_str": source["arch_str"], "syn_valid_loss": loss["syn_valid_acc"],
                      "syn_test_loss": loss["syn_test_acc"]})
    path = tmp_path / "losses.parquet"
    pq.write_table(table, path)
    space_file = tmp_path / "space.yaml"
    import yaml

    space_file.write_text(yaml.safe_dump({"name": "synthetic", "decisions": {
        d.name: list(d.choices) for d in space.decisions}}))
    from raynas.spaces.custom import CustomSpace

    config = BenchConfig(benchmark=path, datasets=("syn",), policies=("random", "ls"), seeds=3,
                         budget=30, out=tmp_path / "bench", space=str(space_file),
                         search_metric="valid_loss", report_metric="test_loss", mode="min")
    assert CustomSpace.from_yaml(space_file).size == space.size
    curves = run_bench(config, progress=False).to_pandas()
    assert (curves["regret"] > 0).any()
    summary = (tmp_path / "bench" / "summary.md").read_text()
    assert "0.00 ± 0.00" not in summary and "-0.0" not in summary and "± -" not in summary
    assert "regret floor (best by valid_loss): 0." in summary  # zero, no sign
    assert "Regret in test_loss units" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| random |")]
    assert len(rows) == 2  # the regret table, then the normalised one
    cells = rows[0].split("|")[2:-1]
    assert all(re.fullmatch(r" (\d\.\d\de-0\d|0) ± (\d\.\d\de-0\d|0) ", c) for c in cells), cells
    assert any("e-0" in c for c in cells)
    assert "Normalised regret, (best − incumbent) / (best − median)" in summary
