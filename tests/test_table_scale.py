"""Tables at scale: the vectorised load gives what a one-by-one parse gives, names the
same rows in its errors, and looks architectures up in constant time; on generated
tables of 10k and 100k rows and on the shipped NB201 table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import TableError
from raynas.spaces import NB201Space
from raynas.tables import BenchmarkTable
from raynas.tables.parse import _one_by_one, parse_arch_strings
from raynas.tables.synthetic import arch_strings, sample_codes, synthetic_space, synthetic_table

SPACE = synthetic_space(9, [6, 6, 6, 5, 5, 4, 4, 4, 3])  # 1,036,800 architectures


@pytest.fixture(scope="module", params=[10_000, 100_000])
def big(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / f"syn{request.param}.parquet"
    pq.write_table(synthetic_table(SPACE, request.param, seed=3), path)
    return path, request.param


def test_a_generated_table_loads_and_looks_up_every_row(big):
    path, rows = big
    table = BenchmarkTable.load(path, SPACE)
    assert len(table) == rows and table.datasets == ["syn"]
    assert table.metrics("syn") == ["valid_acc", "test_acc"]
    assert table.costs("syn") == ["train_time", "params"]
    strings = pq.read_table(path, columns=["arch_str"]).column("arch_str").to_pylist()
    picks = np.random.default_rng(0).integers(0, rows, 500)
    for row in picks:
        arch = SPACE.from_str(strings[row])
        assert table.archs[row] == arch and table.row(arch) == row
    absent = next(a for a in map(tuple, sample_codes(SPACE, 2000, seed=99).tolist())
                  if a not in set(table.archs))
    assert table.row(absent) is None
    assert table.row((0,) * 8) is None and table.row((9,) * 9) is None


def test_the_vectorised_parse_equals_the_one_by_one_parse():
    codes = sample_codes(SPACE, 3000, seed=1)
    column = arch_strings(SPACE, codes)
    assert np.array_equal(parse_arch_strings(column, SPACE), codes)
    assert np.array_equal(_one_by_one(SPACE, column.to_pylist(), "t"), codes)
    nb201 = NB201Space()
    shipped = BenchmarkTable.load(None)
    texts = [nb201.to_str(a) for a in shipped.archs]
    assert np.array_equal(parse_arch_strings(pa.array(texts), nb201),
                          np.asarray(shipped.archs))
    padded = pa.array(["  " + t + " " for t in texts[:50]])  # from_str strips whitespace
    assert np.array_equal(parse_arch_strings(padded, nb201), np.asarray(shipped.archs[:50]))


def _corrupt(path, tmp_path, row, value, column="arch_str"):
    data = pq.read_table(path)
    values = data.column(column).to_pylist()
    values[row] = value(values) if callable(value) else value
    index = data.column_names.index(column)
    out = tmp_path / "bad.parquet"
    pq.write_table(data.set_column(index, column, pa.array(values, data.schema.field(column).type)),
                   out)
    return out


@pytest.mark.parametrize(("row", "value", "column", "message"), [
    (73_001, "|d0=c0|d1=c9|d2=c0|d3=c0|d4=c0|d5=c0|d6=c0|d7=c0|d8=c0|", "arch_str",
     r"row 73001: 'arch_str' .* is not in the synthetic space: .*'c9'"),
    (99_999, "|d0=c0|d1=c0|", "arch_str", r"row 99999: .* has 2 decisions, expected 9"),
    (5, None, "arch_str", r"row 5: 'arch_str' is empty"),
    (90_000, lambda values: values[5], "arch_str", r"rows 5 and 90000: duplicate architecture"),
    (64_000, float("nan"), "syn_valid_acc", r"'syn_valid_acc' has 1 missing/NaN value\(s\), "
     r"rows 64000"),
])
def test_errors_name_the_row_in_a_100k_table(tmp_path_factory, tmp_path, row, value, column,
                                             message):
    path = tmp_path_factory.mktemp("t") / "syn.parquet"
    pq.write_table(synthetic_table(SPACE, 100_000, seed=4), path)
    with pytest.raises(TableError, match=message):
        BenchmarkTable.load(_corrupt(path, tmp_path, row, value, column), SPACE)


def test_a_constrained_space_checks_every_row():
    from raynas.spaces.custom import CustomSpace

    space = CustomSpace("c", {"a": [1, 2, 3], "b": [1, 2]},
                        constraint=lambda arch: arch["a"] != 3 or arch["b"] != 2)
    ok = pa.array(["|a=1|b=1|", "|a=3|b=1|", "|a=2|b=2|"])
    assert parse_arch_strings(ok, space).tolist() == [[0, 0], [2, 0], [1, 1]]
    with pytest.raises(TableError, match=r"row 1: .* violates the space's constraints"):
        parse_arch_strings(pa.array(["|a=1|b=1|", "|a=3|b=2|"]), space)


def test_a_pickled_table_travels_without_its_tuple_list():
    import pickle

    table = BenchmarkTable.load(None)
    assert len(table.archs) == len(table)  # built once ...
    copy = pickle.loads(pickle.dumps(table))
    assert "_archs" not in copy.__dict__  # ... and not shipped to Ray workers
    assert copy.row(table.archs[7]) == 7 and copy.archs == table.archs


# ------------------------------------------------------------------ noisy tables
def _noisy(tmp_path, runs=3):
    space = synthetic_space(5, 4)
    path = tmp_path / "noisy.parquet"
    pq.write_table(synthetic_table(space, 1024, seed=2, runs=runs, noise=2.0), path)
    return BenchmarkTable.load(path, space)


def test_a_noisy_table_holds_every_run_and_means_them(tmp_path):
    table = _noisy(tmp_path)
    runs = table.runs("syn", "valid_acc")
    assert runs.shape == (1024, 3) and table.run_labels("syn") == ["0", "1", "2"]
    assert np.allclose(table.column("syn", "valid_acc"), runs.mean(axis=1))
    assert table.metrics("syn") == ["valid_acc", "test_acc"]
    assert table.best("syn", "test_acc") == table.runs("syn", "test_acc").mean(axis=1).max()
    assert table.runs("syn", "train_time") is None  # a cost: one value


def test_draws_follow_the_seed_and_the_report_metric_is_the_mean(tmp_path):
    from raynas.evaluators import TabularEvaluator

    table = _noisy(tmp_path)
    archs = table.archs[:200]

    def draws(seed, order=archs):
        results = TabularEvaluator(table, "syn", seed=seed).evaluate(order)
        return {a: (r.metrics["run"], r.metrics["valid_acc"], r.metrics["test_acc"])
                for a, r in zip(order, results)}

    first, again, other = draws(0), draws(0, archs[::-1]), draws(1)
    assert first == again  # the same seed, the same draws, in any order
    assert sum(first[a][0] != other[a][0] for a in archs) > 100  # seeds differ
    assert {first[a][0] for a in archs} == {0.0, 1.0, 2.0}
    valid, test = table.runs("syn", "valid_acc"), table.column("syn", "test_acc")
    for a in archs:
        run, v, t = first[a]
        assert v == valid[table.row(a), int(run)]  # the search sees one run...
        assert t == test[table.row(a)]  # ... the report is the mean over runs


def test_a_noisy_search_reports_the_mean_and_its_regret(tmp_path):
    from raynas.evaluators import TabularEvaluator
    from raynas.policies import make_policy
    from raynas.search import Budget, Search

    table = _noisy(tmp_path)
    evaluator = TabularEvaluator(table, "syn", seed=3)
    result = Search(table.space, make_policy("random", table.space, seed=3), evaluator,
                    Budget(max_queries=40)).run()
    rows = result.history.to_pylist()
    best = max(rows, key=lambda r: r["valid_acc"])  # the incumbent, chosen on one draw
    assert best["test_acc"] == table.column("syn", "test_acc")[table.row(
        table.space.from_str(best["arch"]))]
    assert evaluator.optimum() == table.best("syn", "test_acc")  # regret's zero: the mean


@pytest.mark.parametrize(("columns", "message"), [
    ({"syn_valid_acc@0": [1.0, 2.0]}, r"'syn_valid_acc@0' is the only run of 'syn_valid_acc'"),
    ({"syn_valid_acc": [1.0, 2.0], "syn_valid_acc@0": [1.0, 2.0], "syn_valid_acc@1": [1.0, 2.0]},
     r"column 'syn_valid_acc' and its runs"),
    ({"syn_valid_acc@0": [1.0, 2.0], "syn_valid_acc@1": [1.0, 2.0],
      "syn_test_acc@0": [1.0, 2.0], "syn_test_acc@2": [1.0, 2.0]},
     r"every metric of 'syn' needs the same runs"),
    ({"syn_valid_acc@0": [1.0, float("nan")], "syn_valid_acc@1": [1.0, 2.0]},
     r"'syn_valid_acc@0' has 1 missing/NaN value\(s\), rows 1"),
])
def test_a_bad_noisy_table_gets_one_clear_error(tmp_path, columns, message):
    space = synthetic_space(2, 2)
    data = pa.table({"arch_str": ["|d0=c0|d1=c0|", "|d0=c1|d1=c0|"], **columns})
    with pytest.raises(TableError, match=message):
        BenchmarkTable(data, space)


def test_bench_executions_give_the_same_curves_and_say_where_they_ran(ray_local, tmp_path):
    import json

    from raynas.bench import BenchConfig, run_bench

    table = tmp_path / "t.parquet"
    pq.write_table(synthetic_table(SPACE, 5000, seed=6), table)
    import yaml

    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({"name": SPACE.name, "decisions": {
        d.name: list(d.choices) for d in SPACE.decisions}}))
    curves = {}
    for execution in ("local", "ray", "auto"):
        config = BenchConfig(benchmark=table, datasets=("syn",), policies=("random", "rea"),
                             seeds=3, budget=30, out=tmp_path / execution,
                             space=str(space_file), execution=execution)
        curves[execution] = run_bench(config, progress=False).to_pandas()
        timings = json.loads((tmp_path / execution / "timings.json").read_text())
        assert timings["evaluations"] == 2 * 3 * 30 and timings["computed"] == 180
        ran = "local" if execution == "auto" else execution  # 180 lookups: not worth Ray
        assert timings["execution"] == ran
        assert ("ray_start" in timings["seconds"]) == (ran == "ray")
    assert curves["local"].equals(curves["ray"]) and curves["local"].equals(curves["auto"])


def test_meta_training_tasks_share_one_table_in_the_object_store(ray_local, table_path):
    import ray

    from raynas.policies.catch import table_tasks

    tasks = table_tasks(table_path, ["cifar10", "cifar100"])
    refs = {task.ref for task in tasks.values()}
    assert len(refs) == 1 and None not in refs  # one copy, put once

    @ray.remote
    def lookups(task):
        evaluator = task()
        return len(evaluator.table), evaluator.evaluate([evaluator.table.archs[3]])[0].metrics

    n, metrics = ray.get(lookups.remote(tasks["cifar100"]))
    local = tasks["cifar100"]().evaluate([tasks["cifar100"]().table.archs[3]])[0].metrics
    assert n == len(tasks["cifar100"]().table) and metrics == local


def test_a_cost_column_is_a_bench_objective_and_a_missing_one_is_named(ray_local, table_path,
                                                                      tmp_path):
    from raynas.bench import BenchConfig, run_bench
    from raynas.objectives.fronts import table_front

    data = pq.read_table(table_path)
    if "cifar10_latency" not in data.column_names:  # a table of the schema without one
        rng = np.random.default_rng(0)
        data = data.append_column("cifar10_latency", pa.array(rng.uniform(0.005, 0.02,
                                                                          data.num_rows)))
    table_path = tmp_path / "with_latency.parquet"
    pq.write_table(data, table_path)

    def bench(cost, **kw):
        return BenchConfig(benchmark=table_path, datasets=("cifar10",),
                           policies=("random", "nsga2"), seeds=2, budget=40,
                           out=tmp_path / cost, objectives=(("valid_acc", "max"), (cost, "min")),
                           execution="local", **kw)

    curves = run_bench(bench("latency"), progress=False).to_pandas()
    last = curves[curves["query"] == 40]["hv_ratio"]
    assert ((last > 0) & (last <= 1)).all()
    table = BenchmarkTable.load(table_path)
    true = table_front(table, "cifar10", "test_acc", "latency")
    assert np.allclose(true.points[:, 1], table.column("cifar10", "latency")[true.rows])
    assert "latency (min)" in (tmp_path / "latency" / "summary.md").read_text()
    with pytest.raises(TableError, match=r"no cost column 'energy' for cifar10 to use as an "
                                         r"objective \(its cost columns: .*latency"):
        run_bench(bench("energy"), progress=False)
