"""Conformance of every registered policy, plus algorithm-specific behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raynas.evaluators import FunctionEvaluator
from raynas.policies import POLICIES, LocalSearch, RegularizedEvolution, make_policy
from raynas.search import Budget, Search
from raynas.spaces import CustomSpace, NB201Space
from raynas.types import Objective, Result


@pytest.fixture(params=sorted(POLICIES))
def policy_name(request) -> str:
    return request.param


def _drive(policy, evaluator, rounds: int, n: int = 2) -> list[tuple]:
    asked = []
    for _ in range(rounds):
        archs = policy.ask(n)
        asked += archs
        policy.tell(archs, evaluator.evaluate(archs))
    return asked


def test_ask_returns_n_valid_architectures(policy_name, nb201_table, cifar10):
    policy = make_policy(policy_name, nb201_table.space, seed=0)
    for n in (1, 3, 5):
        archs = policy.ask(n)
        assert len(archs) == n
        assert all(nb201_table.space.validate(a) == a for a in archs)
        policy.tell(archs, cifar10.evaluate(archs))


def test_same_seed_same_sequence(policy_name, nb201_table, cifar10):
    runs = [
        _drive(make_policy(policy_name, nb201_table.space, seed=7), cifar10, rounds=30)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = _drive(make_policy(policy_name, nb201_table.space, seed=8), cifar10, rounds=30)
    assert other != runs[0]


def test_state_dict_round_trip_resumes_identically(policy_name, nb201_table, cifar10):
    space = nb201_table.space
    original = make_policy(policy_name, space, seed=3)
    _drive(original, cifar10, rounds=15)
    state = json.loads(json.dumps(original.state_dict()))  # checkpoints are JSON
    restored = make_policy(policy_name, space, seed=3)
    restored.load_state_dict(state)
    assert _drive(restored, cifar10, rounds=15) == _drive(original, cifar10, rounds=15)


def test_tell_checks_lengths(policy_name, nb201_table):
    policy = make_policy(policy_name, nb201_table.space, seed=0)
    archs = policy.ask(2)
    with pytest.raises(ValueError, match="2 architectures but 1 results"):
        policy.tell(archs, [Result({"valid_acc": 1.0})])


def test_ask_rejects_bad_n(policy_name, nb201_table):
    with pytest.raises(ValueError, match="positive int"):
        make_policy(policy_name, nb201_table.space).ask(0)


def test_policies_survive_failed_results(policy_name, nb201_table):
    policy = make_policy(policy_name, nb201_table.space, seed=0)
    for _ in range(15):
        archs = policy.ask(1)
        policy.tell(archs, [Result.failed("boom")])


def test_policies_run_without_ray():
    code = (
        "import sys; from raynas.policies import make_policy; from raynas.spaces import NB201Space;"
        "[make_policy(n, NB201Space()).ask(2) for n in ('random', 'rea', 'ls')];"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_policy_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'rea'"):
        make_policy("raa", NB201Space())
    with pytest.raises(TypeError, match="bad hyperparameters"):
        make_policy("rea", NB201Space(), tournament=3)


# ----------------------------------------------------------- algorithms
ONE_MAX = CustomSpace("onemax", {f"bit{i}": [0, 1] for i in range(8)})


def _ones(arch):
    return {"score": float(sum(arch))}


def test_regularized_evolution_ages_out_the_oldest():
    rea = RegularizedEvolution(ONE_MAX, seed=0, population_size=3, sample_size=2)
    archs = rea.ask(3)
    rea.tell(archs, [Result({"valid_acc": 100.0}), Result({"valid_acc": 1.0}),
                     Result({"valid_acc": 2.0})])
    child = rea.ask(1)
    rea.tell(child, [Result({"valid_acc": 0.0})])
    # the best member (the oldest) died of age, whatever its accuracy
    assert [a for a, _ in rea.population] == [archs[1], archs[2], child[0]]


def test_regularized_evolution_children_are_mutations_of_the_population():
    rea = RegularizedEvolution(ONE_MAX, seed=0, population_size=4, sample_size=2)
    parents = rea.ask(4)
    rea.tell(parents, [Result({"valid_acc": float(sum(a))}) for a in parents])
    for child in rea.ask(10):
        assert min(sum(x != y for x, y in zip(p, child)) for p in parents) == 1


def test_regularized_evolution_large_tournaments_pick_the_best():
    # tournaments are drawn with replacement (Real et al.); with S = 60 from P = 4
    # the best member is missed with probability (3/4)^60 < 1e-7
    rea = RegularizedEvolution(ONE_MAX, seed=0, population_size=4, sample_size=60)
    parents = rea.ask(4)
    rea.tell(parents, [Result({"valid_acc": float(sum(a))}) for a in parents])
    best = max(parents, key=sum)
    assert all(sum(x != y for x, y in zip(best, c)) == 1 for c in rea.ask(10))


@pytest.mark.parametrize("first_improvement", [True, False])
def test_local_search_climbs_to_the_optimum_of_a_unimodal_function(first_improvement):
    ls = LocalSearch(ONE_MAX, seed=0, objective=Objective("score"),
                     first_improvement=first_improvement)
    evaluator = FunctionEvaluator(_ones, "score")
    result = Search(ONE_MAX, ls, evaluator, Budget(max_queries=60)).run()
    assert result.incumbent_metrics["score"] == 8.0


def test_local_search_restarts_at_a_local_optimum():
    space = CustomSpace("two_peaks", {"x": list(range(5))})
    # peaks at x=0 (local, value 5) and x=4 (global, value 9); valley in between
    values = {0: 5.0, 1: 1.0, 2: 0.0, 3: 1.0, 4: 9.0}
    ls = LocalSearch(space, seed=1, objective=Objective("v"))
    history = []
    for _ in range(12):
        archs = ls.ask(1)
        history += archs
        ls.tell(archs, [Result({"v": values[archs[0][0]]})])
    assert (4,) in history  # it escaped x=0 (if it started there) through restarts


def test_tpe_minimises_when_asked(nb201_table):
    tpe = make_policy("tpe", nb201_table.space, seed=0, objective=Objective("params", "min"))
    state = tpe.state_dict()
    assert state["events"] == []
    archs = tpe.ask(2)
    tpe.tell(archs, [Result({"params": 1.0}), Result({"params": 2.0})])
    assert [d.name for d in tpe._study.directions] == ["MINIMIZE"]
    assert [t.value for t in tpe._study.trials] == [1.0, 2.0]


@pytest.mark.parametrize("name", ["nsga2", "motpe"])
def test_multi_objective_optuna_peers_tell_every_objective(name, nb201_table):
    from raynas.envs import make_nb201

    evaluator = make_nb201(nb201_table).evaluator  # valid_acc, test_acc, params, flops
    policy = make_policy(name, nb201_table.space, seed=0,
                         objectives={"valid_acc": "max", "params": "min"})
    _drive(policy, evaluator, rounds=12, n=2)
    assert [d.name for d in policy._study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = policy._study.trials
    assert len(trials) == 24 and all(len(t.values) == 2 for t in trials)
    with pytest.raises(ValueError, match="needs >= 2 objectives"):
        make_policy(name, nb201_table.space, objectives={"valid_acc": "max"})
