"""The search loop: budgets, dedup cache, history, checkpoint and resume."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import OnlyFirst

from raynas.errors import CheckpointError
from raynas.evaluators import FunctionEvaluator, TabularEvaluator
from raynas.policies import make_policy
from raynas.search import Budget, Callback, Search, incumbent_curve
from raynas.search.history import NONDETERMINISTIC
from raynas.search.state import STALL_ASKS
from raynas.spaces import CustomSpace
from raynas.types import Objective, Result


def _search(table, evaluator, policy="rea", seed=0, budget=60, **kw) -> Search:
    policy = make_policy(policy, table.space, seed=seed)
    return Search(table.space, policy, evaluator, Budget(max_queries=budget), **kw)


def _comparable(history: pa.Table) -> pa.Table:
    return history.drop_columns(list(NONDETERMINISTIC))


def test_budget_counts_real_queries_and_the_cache_answers_repeats(nb201_table, cifar10):
    result = _search(nb201_table, cifar10, policy="tpe", budget=40).run()
    history = result.history
    fresh = history.filter(pa.compute.invert(history["cached"]))
    assert result.queries == 40 == fresh.num_rows
    assert fresh["query"].to_pylist() == list(range(1, 41))
    assert len(set(fresh["arch"].to_pylist())) == 40
    cached = history.filter(history["cached"])
    assert cached.num_rows > 0  # TPE repeats itself on NB201
    for row in cached.to_pylist():  # a repeat points at the query it repeats
        original = fresh.filter(pa.compute.equal(fresh["query"], row["query"])).to_pylist()[0]
        assert (original["arch"], original["valid_acc"]) == (row["arch"], row["valid_acc"])


def test_incumbent_is_best_by_validation_and_reports_test(nb201_table, cifar10):
    result = _search(nb201_table, cifar10, budget=50).run()
    history = result.history.to_pandas()
    best = history.loc[history["valid_acc"].idxmax()]
    assert result.incumbent == best["arch"]
    assert result.incumbent_metrics["test_acc"] == best["test_acc"]


def test_same_seed_same_history(nb201_table, cifar10):
    a = _search(nb201_table, cifar10, seed=5, batch_size=3).run().history
    b = _search(nb201_table, cifar10, seed=5, batch_size=3).run().history
    assert _comparable(a).equals(_comparable(b))


class _Crash(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step(self, search, rows) -> None:
        if search.step == self.at_step:
            raise KeyboardInterrupt("simulated crash")


@pytest.mark.parametrize("policy", ["random", "rea", "ls", "tpe"])
def test_resume_after_interruption_gives_the_uninterrupted_history(
    policy, nb201_table, cifar10, tmp_path
):
    full = _search(nb201_table, cifar10, policy, seed=2, budget=80, batch_size=2).run()

    out = tmp_path / "run"
    crashing = _search(nb201_table, cifar10, policy, seed=2, budget=80, batch_size=2,
                       out_dir=out, checkpoint_every=7, callbacks=[_Crash(at_step=23)])
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    saved = pq.read_table(out / "history.parquet")
    assert saved.num_rows == len(crashing.history)  # every finished round is on disk

    resumed = _search(nb201_table, cifar10, policy, seed=2, budget=80, batch_size=2,
                      out_dir=out).run(resume=True)
    assert _comparable(resumed.history).equals(_comparable(full.history))
    assert resumed.incumbent == full.incumbent


def test_resume_with_a_larger_budget_extends_the_search(nb201_table, cifar10, tmp_path):
    _search(nb201_table, cifar10, budget=30, out_dir=tmp_path).run()
    extended = _search(nb201_table, cifar10, budget=50, out_dir=tmp_path).run(resume=True)
    straight = _search(nb201_table, cifar10, budget=50).run()
    assert extended.queries == 50
    assert _comparable(extended.history).equals(_comparable(straight.history))


def test_resume_refuses_another_search(nb201_table, cifar10, tmp_path):
    _search(nb201_table, cifar10, policy="rea", budget=10, out_dir=tmp_path).run()
    with pytest.raises(CheckpointError, match="policy is 'rea' there, 'ls' here"):
        _search(nb201_table, cifar10, policy="ls", budget=10, out_dir=tmp_path).run(resume=True)
    other_dataset = TabularEvaluator(nb201_table, "cifar100")
    with pytest.raises(CheckpointError, match="evaluator"):
        _search(nb201_table, other_dataset, budget=10, out_dir=tmp_path).run(resume=True)


def test_corrupt_checkpoint_is_reported(nb201_table, cifar10, tmp_path):
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        _search(nb201_table, cifar10, out_dir=tmp_path).run(resume=True)


def test_checkpoint_is_json_with_the_search_identity(nb201_table, cifar10, tmp_path):
    _search(nb201_table, cifar10, budget=12, out_dir=tmp_path).run()
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    assert state["policy"] == "rea" and state["queries"] == 12
    assert state["evaluator"]["dataset"] == "cifar10"


def test_seconds_budget_uses_evaluation_costs():
    space = CustomSpace("s", {"x": list(range(100))})
    evaluator = FunctionEvaluator(lambda a: {"v": float(a[0])}, "v")
    evaluator_cost = 2.5

    class Costly:
        search_metric = report_metric = "v"

        def evaluate(self, archs):
            return [Result(r.metrics, cost=evaluator_cost) for r in evaluator.evaluate(archs)]

        def describe(self):
            return {"evaluator": "costly"}

    policy = make_policy("random", space, seed=0, objective=Objective("v"))
    result = Search(space, policy, Costly(), Budget(max_seconds=10.0)).run()
    assert result.queries == 4
    assert result.history["cost"].to_pylist()[0] == evaluator_cost


def test_small_space_exhausts_instead_of_looping_forever():
    space = CustomSpace("tiny", {"x": ["a", "b", "c"]})
    policy = make_policy("random", space, seed=0, objective=Objective("v"))
    evaluator = FunctionEvaluator(lambda a: {"v": float(a[0])}, "v")
    result = Search(space, policy, evaluator, Budget(max_queries=10)).run()
    assert result.queries == 3 and result.stopped == "exhausted"


def test_a_policy_that_only_repeats_ends_as_stalled():
    space = CustomSpace("tiny", {"x": ["a", "b", "c"]})
    evaluator = FunctionEvaluator(lambda a: {"v": float(a[0])}, "v")
    result = Search(space, OnlyFirst(space, objective=Objective("v")), evaluator,
                    Budget(max_queries=10)).run()
    assert result.queries == 1 and result.stopped == "stalled"
    assert len(result.history) == 1 + STALL_ASKS  # every repeat answered from the cache


def test_failed_evaluations_are_recorded_and_never_incumbent():
    space = CustomSpace("f", {"x": list(range(6))})

    def flaky(arch):
        if arch[0] == 5:
            raise RuntimeError("out of memory")
        return {"v": float(arch[0])}

    policy = make_policy("ls", space, seed=0, num_init=6, objective=Objective("v"))
    result = Search(space, policy, FunctionEvaluator(flaky, "v"), Budget(max_queries=6)).run()
    history = result.history
    failed = history.filter(pa.compute.equal(history["status"], "failed"))
    assert set(failed["error"].to_pylist()) == {"RuntimeError: out of memory"}
    assert set(failed["arch"].to_pylist()) == {"|x=5|"}
    assert result.incumbent == "|x=4|"


def test_progress_bar_runs(nb201_table, cifar10, capsys):
    _search(nb201_table, cifar10, budget=20, progress=True).run()
    assert "20/20" in capsys.readouterr().err


def test_policy_and_evaluator_must_agree_on_the_metric(nb201_table, cifar10):
    policy = make_policy("random", nb201_table.space, objective=Objective("test_acc"))
    with pytest.raises(ValueError, match="optimises 'test_acc' but the evaluator's search metric"):
        Search(nb201_table.space, policy, cifar10, Budget(max_queries=5))


def test_minimisation_follows_the_policy_objective():
    space = CustomSpace("m", {"x": list(range(20))})
    evaluator = FunctionEvaluator(lambda a: {"err": abs(a[0] - 7) + 0.5}, "err")
    policy = make_policy("ls", space, seed=0, objective=Objective("err", "min"))
    result = Search(space, policy, evaluator, Budget(max_queries=20)).run()
    assert result.incumbent == "|x=7|" and result.incumbent_metrics["err"] == 0.5


@pytest.mark.parametrize("bad", [dict(), dict(max_queries=0), dict(max_seconds=-1.0)])
def test_bad_budgets(bad):
    with pytest.raises(ValueError):
        Budget(**bad)


# ------------------------------------------------------ incumbent maths
def _history(valid, test, cached=None, status=None) -> pa.Table:
    n = len(valid)
    return pa.table({
        "cached": cached or [False] * n,
        "status": status or ["ok"] * n,
        "valid_acc": valid,
        "test_acc": test,
    })


def test_incumbent_curve_hand_cases():
    valid, test = incumbent_curve(_history([1.0, 3.0, 2.0, 3.0, 5.0], [10, 30, 99, 31, 50]))
    assert valid.tolist() == [1, 3, 3, 3, 5]
    # a tie (3.0 again) keeps the earlier incumbent; a worse one (2.0) never reports its test
    assert test.tolist() == [10, 30, 30, 30, 50]


def test_incumbent_curve_skips_cached_and_failed_rows():
    table = _history([np.nan, 4.0, 4.0, 1.0], [0, 40, 40, 10], cached=[False, False, True, False],
                     status=["failed", "ok", "ok", "ok"])
    valid, test = incumbent_curve(table)
    assert np.isnan(valid[0]) and valid[1:].tolist() == [4.0, 4.0]
    assert test[1:].tolist() == [40.0, 40.0]


def test_incumbent_curve_minimisation():
    valid, test = incumbent_curve(_history([3.0, 1.0, 2.0], [1, 2, 3]), mode="min")
    assert valid.tolist() == [3.0, 1.0, 1.0] and test.tolist() == [1, 2, 2]
