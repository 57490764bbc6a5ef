"""CATCH: the context posterior, reward normalisation, evaluator filtering, the PPO
loss, and meta-train -> save -> load -> adapt on a synthetic multi-task problem."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from raynas.evaluators import FunctionEvaluator
from raynas.policies.catch import CATCH, meta_train, normalize_rewards, read_checkpoint
from raynas.policies.catch.encoder import ContextEncoder, kl_to_prior, product_of_gaussians
from raynas.policies.controllers import ppo_clip_loss
from raynas.search import Budget, Search
from raynas.spaces.custom import CustomSpace
from raynas.types import Objective, Result


def test_product_of_gaussians_on_hand_computed_cases():
    encoder = ContextEncoder(arch_dim=4, latent=3)
    mu, var = encoder.posterior(torch.zeros(0, 4), torch.zeros(0))
    assert mu.tolist() == [0, 0, 0] and var.tolist() == [1, 1, 1]  # empty context: the prior
    assert kl_to_prior(mu, var).item() == 0.0
    # prior N(0, 1) x N(2, 1): precision 2 -> variance 1/2, mean 2 * 1/2
    mu, var = product_of_gaussians(torch.tensor([[2.0]]), torch.tensor([[1.0]]))
    assert (mu.item(), var.item()) == (1.0, 0.5)
    # x N(4, 1) too: precision 3, mean (2 + 4) / 3
    mu, var = product_of_gaussians(torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0], [1.0]]))
    assert mu.item() == pytest.approx(2.0) and var.item() == pytest.approx(1 / 3)
    # a factor with variance 0.25 weighs 4x: prior + N(1, 0.25) -> var 1/5, mean 4/5
    mu, var = product_of_gaussians(torch.tensor([[1.0]]), torch.tensor([[0.25]]))
    assert mu.item() == pytest.approx(0.8) and var.item() == pytest.approx(0.2)
    # more data, smaller variance; the order of the context does not matter
    archs = torch.eye(4)
    rewards = torch.tensor([0.1, -0.5, 0.9, 0.3])
    variances = [encoder.posterior(archs[:n], rewards[:n])[1].sum().item() for n in range(5)]
    assert all(a > b for a, b in zip(variances, variances[1:]))
    flipped = encoder.posterior(archs.flip(0), rewards.flip(0))
    assert torch.allclose(flipped[0], encoder.posterior(archs, rewards)[0], atol=1e-6)
    assert kl_to_prior(torch.tensor([1.0]), torch.tensor([1.0])).item() == pytest.approx(0.5)


def test_reward_normalisation_per_task():
    assert normalize_rewards([10.0, 30.0, 20.0]).tolist() == [-1.0, 1.0, 0.0]
    assert normalize_rewards([5.0, 5.0, 9.0]).tolist() == [-0.5, -0.5, 1.0]  # ties share
    z = normalize_rewards([1.0, 2.0, 3.0], "zscore")
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    # tasks on different scales get the same rewards
    assert normalize_rewards([91.0, 93.5, 92.0]).tolist() == normalize_rewards(
        [40.0, 47.0, 44.0]).tolist()
    assert normalize_rewards([3.0]).tolist() == [0.0]
    with pytest.raises(ValueError, match="normalize"):
        normalize_rewards([1.0, 2.0], "minmax")


def test_ppo_clip_loss_math():
    adv = torch.tensor([1.0])
    assert ppo_clip_loss(torch.log(torch.tensor([1.1])), torch.zeros(1), adv).item() == \
        pytest.approx(-1.1)  # inside the clip range: the plain ratio
    assert ppo_clip_loss(torch.log(torch.tensor([1.5])), torch.zeros(1), adv).item() == \
        pytest.approx(-1.2)  # above 1 + ε with A > 0: clipped
    assert ppo_clip_loss(torch.log(torch.tensor([0.5])), torch.zeros(1), -adv).item() == \
        pytest.approx(0.8)  # below 1 − ε with A < 0: clipped (min picks −0.8)
    assert ppo_clip_loss(torch.log(torch.tensor([0.5])), torch.zeros(1), adv).item() == \
        pytest.approx(-0.5)  # the pessimistic side is never clipped
    new = torch.log(torch.tensor([1.5])).requires_grad_()
    ppo_clip_loss(new, torch.zeros(1), adv).backward()
    assert new.grad.item() == 0.0  # clipped: no gradient pushes the ratio further


def _grid_space():
    return CustomSpace("grid", {f"d{i}": [0, 1, 2, 3] for i in range(5)})


def test_evaluator_picks_the_top_candidates_with_epsilon_random_picks():
    space = _grid_space()
    policy = CATCH(space, seed=0, epsilon=0.0)
    # an evaluator that scores an architecture by its number of 3s
    last = policy.agent.evaluator[-1]
    torch.nn.init.zeros_(last.bias)
    with torch.no_grad():
        policy.agent.evaluator = torch.nn.Linear(policy.agent.arch_dim + policy.agent.latent, 1)
        policy.agent.evaluator.weight.zero_()
        policy.agent.evaluator.bias.zero_()
        policy.agent.evaluator.weight[0, 3::4] = 1.0
    candidates = [(0, 0, 0, 0, 0), (3, 3, 3, 0, 0), (3, 0, 0, 0, 0), (3, 3, 3, 3, 3), (1, 2, 3, 3, 0)]
    z = torch.zeros(policy.agent.latent)
    assert policy.select(candidates, z, 2) == [(3, 3, 3, 3, 3), (3, 3, 3, 0, 0)]
    picks = policy.propose(3)
    assert len(set(picks)) == len(picks) >= 3  # distinct candidates
    greedy = CATCH(space, seed=0, epsilon=1.0, epsilon_queries=10)
    assert greedy.epsilon() == 1.0
    greedy.told = 5
    assert greedy.epsilon() == 0.5  # linear decay over epsilon_queries results
    greedy.told = 10
    assert greedy.epsilon() == 0.0
    unfiltered = CATCH(space, seed=0, use_evaluator=False, epsilon=0.0)
    assert unfiltered.select(candidates, z, 2) == candidates[:2]  # the controller's order


def test_a_converged_controller_is_topped_up_with_the_incumbents_neighbours():
    """A controller that always draws the same, evaluated, architecture leaves the
    candidate pool empty; ``fill="neighbors"`` tops it up with the unevaluated
    one-decision neighbours of the best results, best first, for the evaluator to rank."""
    space = _grid_space()
    best, other = (0, 0, 0, 0, 0), (1, 1, 1, 1, 1)
    policies = {fill: CATCH(space, seed=0, fill=fill) for fill in ("neighbors", "random")}
    for policy in policies.values():
        with torch.no_grad():  # converged: choice 0 everywhere, with certainty
            for head in policy.agent.controller.heads:
                head.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
        assert set(policy.agent.controller.sample_many(policy.rng, 1.0, 20)) == {best}
        policy.tell([best, other], [Result({"valid_acc": 90.0}), Result({"valid_acc": 50.0})])
    candidates = policies["neighbors"].propose(2)
    neighbours = space.neighbors(best)
    assert candidates[:len(neighbours)] == neighbours  # the incumbent's first
    assert set(candidates[len(neighbours):]) <= set(space.neighbors(other))
    assert not {best, other} & set(candidates)
    assert len(policies["random"].propose(2)) == 2  # random ones, only as many as asked
    with pytest.raises(ValueError, match="fill must be one of"):
        CATCH(space, fill="mutations")


def test_mlp_sampler_draws_what_the_generic_sampler_draws_bit_for_bit():
    """MLPController.sample_many grows its one-hots decision by decision (the fix of
    meta-training's slowdown); its draws equal the generic per-decision rebuild's, from
    the same generator, for a trained-looking controller with a context z."""
    from raynas.policies.controllers import Controller, MLPController

    torch.manual_seed(3)
    controller = MLPController([5, 5, 5, 5, 5, 5], context_dim=4)
    with torch.no_grad():
        for head in controller.heads:
            head.weight.normal_()
            head.bias.normal_()
    controller.context = torch.randn(4)
    fast = controller.sample_many(np.random.default_rng(7), 1.0, 300)
    generic = Controller.sample_many(controller, np.random.default_rng(7), 1.0, 300)
    assert fast == generic and len(set(fast)) > 10
    assert all(type(c) is int for arch in fast for c in arch)


def test_a_converged_controller_proposes_distinct_unevaluated_not_running_archs():
    """Once the controller always draws evaluated architectures, propose still returns
    ``candidates`` distinct architectures, none evaluated, none being evaluated."""
    space = _grid_space()
    policy = CATCH(space, seed=0, candidates=12)
    with torch.no_grad():
        for head in policy.agent.controller.heads:
            head.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    best = (0, 0, 0, 0, 0)
    running = space.neighbors(best)[:3]
    policy.tell([best], [Result({"valid_acc": 90.0})])
    policy.in_flight = frozenset(running)
    candidates = policy.propose(4)
    assert len(candidates) == 12 == len(set(candidates))
    assert not set(candidates) & ({best} | set(running))


# Tasks share structure, as NB201's datasets do: the optimum's first four choices are
# common, the last differs; the target task's lies between the meta-training tasks'.
OPTIMA = {"a": (3, 1, 0, 2, 0), "b": (3, 1, 0, 2, 2), "c": (3, 1, 0, 2, 1)}


class GridTask:
    """A picklable task: score = 10 − L1 distance to the task's optimum (plus an offset,
    so tasks differ in scale as datasets do)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> FunctionEvaluator:
        optimum, offset = np.array(OPTIMA[self.name]), 10.0 * (ord(self.name) - ord("a"))

        def score(arch):
            return {"score": offset + 20.0 - float(np.abs(np.array(arch) - optimum).sum())}

        return FunctionEvaluator(score, "score", name=self.name)


def _queries_to_optimum(policy, task: str, budget: int) -> int:
    space = policy.space
    result = Search(space, policy, GridTask(task)(), Budget(max_queries=budget)).run()
    archs = [space.from_str(a) for a in result.history["arch"].to_pylist()]
    hits = [i for i, a in enumerate(archs) if a == OPTIMA[task]]
    return hits[0] + 1 if hits else budget + 1


def test_meta_train_save_load_adapt_beats_search_from_scratch(tmp_path):
    space = _grid_space()
    path = tmp_path / "catch.json"
    meta_train(space, {"a": GridTask("a"), "b": GridTask("b")}, iterations=12, queries=30,
               steps=10, seed=0, out=path, progress=False)
    saved = read_checkpoint(path)
    assert saved["info"]["tasks"] == ["a", "b"] and saved["num_choices"] == [4] * 5
    budget = 80
    adapted = [_queries_to_optimum(CATCH(space, seed=s, checkpoint=str(path),
                                         objective=Objective("score")), "c", budget)
               for s in range(4)]
    scratch = [_queries_to_optimum(CATCH(space, seed=s, objective=Objective("score")), "c",
                                   budget) for s in range(4)]
    assert np.mean(adapted) < 0.5 * np.mean(scratch), (adapted, scratch)
    assert max(adapted) < budget  # every adapted search found it


def test_checkpoint_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a CATCH checkpoint"):
        CATCH(_grid_space(), checkpoint=str(bad))
    other = tmp_path / "other.json"
    meta_train(CustomSpace("small", {"x": [0, 1]}), {"t": lambda: FunctionEvaluator(
        lambda a: {"s": float(a[0])}, "s")}, iterations=1, queries=2, steps=1, out=other,
        progress=False)
    with pytest.raises(ValueError, match="meta-trained for decisions"):
        CATCH(_grid_space(), checkpoint=str(other))


def test_meta_training_on_ray_workers_matches_in_process():
    """Rollouts run as Ray tasks (one per meta-training task) give the same agent."""
    import ray

    space = _grid_space()
    tasks = {"a": GridTask("a"), "b": GridTask("b")}
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        on_ray = meta_train(space, tasks, iterations=2, queries=8, steps=2, seed=1,
                            progress=False)
    finally:
        ray.shutdown()
    local = meta_train(space, tasks, iterations=2, queries=8, steps=2, seed=1, progress=False)
    for a, b in zip(on_ray.agent.parameters(), local.agent.parameters()):
        assert torch.equal(a, b)


def test_all_architectures_exhausted_still_answers():
    space = CustomSpace("tiny", {"x": [0, 1], "y": [0, 1]})
    policy = CATCH(space, seed=0, objective=Objective("s"))
    evaluator = FunctionEvaluator(lambda a: {"s": float(sum(a))}, "s")
    for _ in range(3):
        archs = policy.ask(2)
        policy.tell(archs, evaluator.evaluate(archs))
    assert len(policy.seen) == 4 and math.isfinite(policy.context[-1][1])
    assert set(itertools.chain(policy.ask(2))) <= set(itertools.product([0, 1], repeat=2))
