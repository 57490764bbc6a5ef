"""NPG: temperature schedule, policy-gradient update, and recovering a known front."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from raynas.evaluators import FunctionEvaluator
from raynas.objectives.pareto import hypervolume, non_dominated
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


UPDATES = [
    dict(update="reinforce"),  # SGD on the logits: the classic REINFORCE step
    dict(update="ppo", optimizer="adam", lr=0.05),
    dict(update="reinforce", controller="lstm", optimizer="adam", lr=0.05),
    dict(update="ppo", controller="mlp", optimizer="adam", lr=0.05),
]


@pytest.mark.parametrize("options", UPDATES, ids=lambda o: "-".join(map(str, o.values())))
def test_update_moves_probability_to_the_better_arm(options):
    space = CustomSpace("arms", {"arm": ["bad", "good"]})
    policy = NPG(space, seed=1, objective=Objective("reward"), ranges={"reward": (0, 1)},
                 tau_max=1.0, tau_min=1.0, **options)
    assert policy.probabilities()[0].tolist() == [0.5, 0.5]  # every controller starts uniform
    for _ in range(200):
        arch = policy.ask(1)
        policy.tell(arch, [Result({"reward": float(arch[0][0])})])
    assert policy.probabilities()[0][1] > 0.95
    assert policy.most_likely() == (1,)


@pytest.mark.parametrize("controller", ["lstm", "mlp"])
def test_autoregressive_controller_learns_conditional_choices(controller):
    """Reward 1 when the two decisions agree. A factorised controller can only favour
    one corner; an autoregressive one learns ``second = first`` for both firsts."""
    import torch

    space = CustomSpace("pairs", {"first": [0, 1], "second": [0, 1]})
    # sampled at τ = 3 so that both firsts keep being tried; read at τ = 1
    policy = NPG(space, seed=1, objective=Objective("reward"), ranges={"reward": (0, 1)},
                 controller=controller, optimizer="adam", lr=0.05, tau_max=3.0, tau_min=3.0)
    for _ in range(300):
        arch = policy.ask(1)
        policy.tell(arch, [Result({"reward": float(arch[0][0] == arch[0][1])})])
    for first in (0, 1):
        given = torch.tensor([[first, 0]])
        assert policy.controller._probs(given, 1, 1.0)[first] > 0.9, first


@pytest.mark.parametrize("options", UPDATES[1:], ids=lambda o: "-".join(map(str, o.values())))
def test_state_round_trip_continues_identically(options):
    space = CustomSpace("grid", {f"e{i}": [0, 1, 2] for i in range(3)})
    def make():
        return NPG(space, seed=3, objectives={"a": "max", "b": "min"}, objective=Objective("a"),
                   **options)

    def run(policy, steps):
        for _ in range(steps):
            arch = policy.ask(1)
            policy.tell(arch, [Result({"a": float(sum(arch[0])), "b": float(arch[0][0])})])
        return policy.ask(5)

    first = make()
    run(first, 13)  # mid PPO batch: the buffer must survive the round trip
    import json

    second = make()
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert run(first, 20) == run(second, 20)


def test_front_refinement_proposes_unevaluated_neighbours_of_the_archive():
    space = CustomSpace("grid", {f"e{i}": [0, 1, 2] for i in range(3)})
    objectives = {"a": "max", "b": "min"}
    policy = NPG(space, seed=0, objectives=objectives, objective=Objective("a"), refine=1.0)
    told = {(0, 0, 0): (1.0, 0.0), (2, 2, 2): (6.0, 6.0), (1, 1, 1): (0.5, 5.0)}  # last dominated
    policy.tell(list(told), [Result({"a": a, "b": b}) for a, b in told.values()])
    front = {a for a in told if a != (1, 1, 1)}
    picks = policy.ask(8)
    assert len(set(picks)) == 8 and not set(picks) & set(told)
    for pick in picks:  # one decision away from a front member, never from the dominated one only
        assert any(sum(x != y for x, y in zip(pick, member)) == 1 for member in front), pick
    sampler = NPG(space, seed=0, objectives=objectives, objective=Objective("a"), refine=0.0)
    sampler.tell(list(told), [Result({"a": a, "b": b}) for a, b in told.values()])
    far = [p for p in sampler.ask(8) if all(sum(x != y for x, y in zip(p, m)) > 1 for m in front)]
    assert far  # the plain controller also samples away from the front
    with pytest.raises(ValueError, match="refine must be in"):
        NPG(space, objectives=objectives, objective=Objective("a"), refine=1.5)


def test_bad_controller_options_are_named():
    space = CustomSpace("arms", {"arm": [0, 1]})
    with pytest.raises(ValueError, match="controller"):
        NPG(space, controller="transformer")
    with pytest.raises(ValueError, match="update"):
        NPG(space, update="a2c")


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


def test_supernet_evaluator_pretrains_and_resumes_identically(tmp_path):
    from raynas.data import load_digits
    from raynas.evaluators.supernet import SupernetEvaluator
    from raynas.spaces import NB201Space
    from raynas.spaces.cost import LinearCostModel

    space, data = NB201Space(channels=4, cells_per_stage=1), load_digits(input_size=8)
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|"
                          "+|skip_connect~0|none~1|nor_conv_3x3~2|")
    def make(pretrain):
        return SupernetEvaluator(space, data, steps=1, pretrain_steps=pretrain, batch_size=128,
                                 seed=0)
    cold, warm = make(0), make(300)
    cold_acc = cold.evaluate([arch])[0].metrics["valid_acc"]
    metrics = warm.evaluate([arch])[0].metrics
    assert metrics["valid_acc"] > cold_acc + 20  # one-shot pre-training on random paths
    cost = LinearCostModel(space, 10, 8, 1)
    assert metrics["params"] == pytest.approx(cost.params([arch])[0])
    assert metrics["flops"] == pytest.approx(cost.flops([arch])[0])
    assert 0 <= metrics["test_acc"] <= 100
    warm.save(tmp_path / "supernet.pt")
    twin = make(300)
    twin.load(tmp_path / "supernet.pt")  # pre-training is not repeated: the state says done
    other = space.from_str("|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
                           "+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    assert twin.evaluate([other])[0].metrics == warm.evaluate([other])[0].metrics


def test_adf_floor_quantile_sharpens_the_reward_among_good_architectures():
    from raynas.objectives.rewards import ADCReward, ADFReward

    objectives = {"acc": "max", "size": "min"}
    seen = [{"acc": a, "size": 1.0} for a in (1.0, 80.0, 85.0, 90.0, 95.0)]
    plain, floored = ADFReward(objectives), ADFReward(objectives, floor_quantile=0.5)
    for metrics in seen:
        plain.reward(metrics)
        floored.reward(metrics)
    good, better = {"acc": 86.0, "size": 1.0}, {"acc": 94.0, "size": 1.0}
    # accuracy floor: the worst seen (1 %) vs the median (85 %)
    gap = lambda r: r.score(better) ** 2 - r.score(good) ** 2  # noqa: E731  (d_acc, d_size = 1)
    assert gap(plain) == pytest.approx((94 - 86) / (95 - 1))
    assert gap(floored) == pytest.approx((94 - 86) / (95 - 85))
    assert floored.score({"acc": 50.0, "size": 1.0}) == 0.0  # below the floor
    # score() is pure: rewards given afterwards are unchanged
    state = floored.state(), len(floored.seen)
    floored.score(better)
    assert (floored.state(), len(floored.seen)) == state
    adc = ADCReward(objectives)
    for metrics in seen:
        adc.reward(metrics)
    before = adc.front().copy()
    assert adc.score({"acc": 99.0, "size": 0.5}) > 1  # dominates the front, plus the bonus
    assert np.array_equal(adc.front(), before)
    with pytest.raises(ValueError, match="floor_quantile"):
        ADFReward(objectives, floor_quantile=1.0)
