"""NPG: temperature schedule, policy-gradient update, and recovering a known front."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from raynas.evaluators import FunctionEvaluator
from raynas.pareto import hypervolume, non_dominated
from raynas.policies import NPG
from raynas.policies.npg import cosine_temperature
from raynas.search import Budget, Search
from raynas.spaces.custom import CustomSpace
from raynas.types import Objective, Result


def test_temperature_schedule_at_restarts_and_mid_period():
    assert cosine_temperature(0) == 5.0 and cosine_temperature(100) == 5.0  # restarts
    assert cosine_temperature(50) == pytest.approx(3.0)  # mid-period: halfway
    assert cosine_temperature(99) == pytest.approx(1 + 2 * (1 + math.cos(math.pi * 0.99)))
    # T_mult = 2: periods of 100, 200, 400 -> restarts at 100 and 300
    doubling = dict(period=100, t_mult=2.0)
    assert cosine_temperature(300, **doubling) == 5.0
    assert cosine_temperature(200, **doubling) == pytest.approx(3.0)  # mid of 100..300
    # an extra restart (the reward moved) starts a fresh period there
    assert cosine_temperature(30, restarts=[30]) == 5.0
    assert cosine_temperature(80, restarts=[30]) == pytest.approx(3.0)


def test_reinforce_moves_probability_to_the_better_arm():
    space = CustomSpace("arms", {"arm": ["bad", "good"]})
    policy = NPG(space, objective=Objective("reward"), ranges={"reward": (0, 1)}, lr=0.5,
                 tau_max=1.0, tau_min=1.0)
    assert policy.probabilities()[0].tolist() == [0.5, 0.5]
    for _ in range(200):
        arch = policy.ask(1)
        policy.tell(arch, [Result({"reward": float(arch[0][0])})])
    assert policy.probabilities()[0][1] > 0.95


def _synthetic():
    """6 edges x 4 choices: accuracy grows with each choice with diminishing returns,
    size grows linearly; the front is known by enumeration."""
    rng = np.random.default_rng(0)
    gain, cost = rng.uniform(1, 5, 6), rng.uniform(0.5, 2, 6)
    space = CustomSpace("synthetic", {f"e{i}": [0, 1, 2, 3] for i in range(6)})

    def metrics(arch):
        c = np.asarray(arch, dtype=float)
        return {"acc": float(np.sum(gain * np.log1p(c))), "size": float(np.sum(cost * c))}

    every = [metrics(a) for a in itertools.product(range(4), repeat=6)]
    points = np.array([[m["acc"], m["size"]] for m in every])
    reference = (0.0, float(points[:, 1].max()))
    true = hypervolume(points[non_dominated(points, ["max", "min"])], ["max", "min"], reference)
    return space, metrics, reference, true


@pytest.mark.parametrize("reward", ["adf", "adc"])
def test_npg_archive_recovers_a_known_front(reward):
    space, metrics, reference, true_volume = _synthetic()
    evaluator = FunctionEvaluator(metrics, "acc")
    policy = NPG(space, seed=0, objective=Objective("acc"), reward=reward,
                 objectives={"acc": "max", "size": "min"}, anneal=250, stages=10)
    Search(space, policy, evaluator, Budget(max_queries=300)).run()
    front = np.array([[m["acc"], m["size"]] for _, m in policy.front()])
    assert len(non_dominated(front, ["max", "min"])) == len(front)  # an archive of non-dominated
    ratio = hypervolume(front, ["max", "min"], reference) / true_volume
    assert ratio >= 0.9, ratio
