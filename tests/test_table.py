"""Benchmark tables: the shared NB201 table's facts, other tables of the schema, and
one test per kind of bad input."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from raynas.errors import TableError
from raynas.evaluators import TabularEvaluator
from raynas.report.bench import regret_floor
from raynas.tables import BenchmarkTable, parse_metric_column


def test_shared_table_facts(nb201_table):
    """The figures stated in shared/benchmarks/README.md, recomputed."""
    assert len(nb201_table) == 15625
    assert nb201_table.datasets == ["cifar10", "cifar100", "imagenet16_120"]
    assert nb201_table.metrics("cifar10") == ["valid_acc", "test_acc"]
    # cost columns are not metrics: per dataset (train_time, latency) and table-wide (params)
    assert nb201_table.costs("cifar10") == ["train_time", "latency", "params"]
    assert nb201_table.column("cifar100", "train_time")[0] == pytest.approx(173.306)
    assert nb201_table.column("cifar100", "params")[0] == pytest.approx(0.129306)
    for dataset, best, floor in [
        ("cifar10", 89.16, 0.13), ("cifar100", 61.18, 0.14), ("imagenet16_120", 38.27, 0.00)
    ]:
        assert nb201_table.best(dataset) == pytest.approx(best, abs=0.005)
        assert regret_floor(nb201_table, dataset, "valid_acc", "test_acc") == pytest.approx(
            floor, abs=0.005
        )


def test_metric_column_names_parse_from_the_split():
    col = parse_metric_column("imagenet16_120_valid_acc")
    assert (col.dataset, col.split, col.metric, col.key) == (
        "imagenet16_120", "valid", "acc", "valid_acc"
    )
    assert parse_metric_column("cifar10_train_time_s").metric == "time_s"
    assert parse_metric_column("arch_index") is None


def test_tabular_evaluator_returns_every_metric_of_the_dataset(nb201_table):
    evaluator = TabularEvaluator(nb201_table, "cifar100")
    arch = nb201_table.archs[123]
    (result,) = evaluator.evaluate([arch])
    assert result.ok
    assert result.metrics["valid_acc"] == nb201_table.column("cifar100", "valid_acc")[123]
    assert result.metrics["test_acc"] == nb201_table.column("cifar100", "test_acc")[123]
    assert evaluator.optimum() == pytest.approx(61.18, abs=0.005)


def test_tabular_evaluator_protocol_names(cifar10):
    assert (cifar10.search_metric, cifar10.report_metric) == ("valid_acc", "test_acc")


def test_unknown_dataset_suggests_the_closest(nb201_table):
    with pytest.raises(ValueError, match="did you mean 'cifar100'"):
        TabularEvaluator(nb201_table, "cifar1000")


# ----------------------------------------------------- other tables of the schema
def _small_table(nb201_table, n=30, **columns) -> pa.Table:
    strings = [nb201_table.space.to_str(a) for a in nb201_table.archs[:n]]
    rng = np.random.default_rng(0)
    data = {"arch_str": strings}
    for name in columns or {"svhn_valid_err": None, "svhn_test_err": None}:
        data[name] = rng.uniform(0, 10, n)
    return pa.table(data)


def test_any_table_of_the_schema_loads(tmp_path, nb201_table):
    data = _small_table(nb201_table, svhn_valid_err=1, svhn_test_err=1, svhn_train_time=1)
    path = tmp_path / "other.parquet"
    pq.write_table(data, path)
    table = BenchmarkTable.load(path)
    assert table.datasets == ["svhn"]
    evaluator = TabularEvaluator(table, "svhn", "valid_err", "test_err", cost_metric="train_time")
    (result,) = evaluator.evaluate([table.archs[0]])
    assert result.cost == pytest.approx(data["svhn_train_time"][0].as_py())
    # an architecture the table lacks is a failed result, not a crash
    missing = next(a for a in nb201_table.archs if table.row(a) is None)
    (failed,) = evaluator.evaluate([missing])
    assert not failed.ok and "not in the table" in failed.error


def test_csv_tables_load(tmp_path, nb201_table):
    path = tmp_path / "t.csv"
    pcsv.write_csv(_small_table(nb201_table), path)
    assert len(BenchmarkTable.load(path)) == 30


# ------------------------------------------------------------- bad input
def _write(tmp_path, data: pa.Table):
    path = tmp_path / "bad.parquet"
    pq.write_table(data, path)
    return path


def test_missing_arch_str_column(tmp_path, nb201_table):
    data = _small_table(nb201_table).rename_columns(["arch", "svhn_valid_err", "svhn_test_err"])
    with pytest.raises(TableError, match="missing the 'arch_str' column"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_no_metric_columns(tmp_path, nb201_table):
    data = _small_table(nb201_table).rename_columns(["arch_str", "score", "other"])
    with pytest.raises(TableError, match="no metric columns"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_non_numeric_metric_column(tmp_path, nb201_table):
    data = _small_table(nb201_table)
    data = data.set_column(1, "svhn_valid_err", pa.array(["x"] * 30))
    with pytest.raises(TableError, match="'svhn_valid_err' is string, not numeric"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_duplicate_architectures(tmp_path, nb201_table):
    data = _small_table(nb201_table)
    strings = data["arch_str"].to_pylist()
    strings[7] = strings[2]
    data = data.set_column(0, "arch_str", pa.array(strings))
    with pytest.raises(TableError, match=r"rows 2 and 7: duplicate architecture"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_architecture_not_in_the_space(tmp_path, nb201_table):
    data = _small_table(nb201_table)
    strings = data["arch_str"].to_pylist()
    strings[4] = strings[4].replace("~0|", "~9|", 1)
    data = data.set_column(0, "arch_str", pa.array(strings))
    with pytest.raises(TableError, match=r"row 4: 'arch_str' .* is not in the nb201 space"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_nan_metrics(tmp_path, nb201_table):
    data = _small_table(nb201_table)
    values = data["svhn_test_err"].to_pylist()
    values[3] = math.nan
    values[11] = None
    data = data.set_column(2, "svhn_test_err", pa.array(values, pa.float64()))
    with pytest.raises(TableError, match=r"'svhn_test_err' has 2 missing/NaN value\(s\), rows 3, 11"):
        BenchmarkTable.load(_write(tmp_path, data))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(TableError, match="not found"):
        BenchmarkTable.load(tmp_path / "nope.parquet")
    (tmp_path / "t.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(TableError, match="unsupported table format '.pkl'"):
        BenchmarkTable.load(tmp_path / "t.pkl")


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(TableError, match="cannot read table"):
        BenchmarkTable.load(path)
