"""MANAS and MANAS-LS: update rules, and the Ray actor backend against the in-process one."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from raynas.evaluators import FunctionEvaluator, TabularEvaluator
from raynas.policies import MANAS, MANASLS
from raynas.policies.manas import EdgeAgents, zipf
from raynas.search import Budget, Callback, Search
from raynas.spaces.custom import CustomSpace
from raynas.types import Objective, Result

TWO_EDGES = CustomSpace("two", {"e0": ["a", "b"], "e1": ["a", "b", "c"]})


def test_exp3_update_by_hand():
    agents = EdgeAgents([2], seeds=[0], rule="exp3", eta=1.0, gamma=0.1)
    assert agents.probabilities()[0].tolist() == [0.5, 0.5]
    agents.update_exp3([[1]], [0.5])  # importance weight 1 / 0.5: B = [0, 1]
    assert agents.scores[0].tolist() == [0.0, 1.0]
    softmax = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    np.testing.assert_allclose(agents.probabilities()[0], 0.9 * softmax + 0.05)
    agents.update_exp3([[0], [0]], [1.0, 0.0])  # one batch: both with the same probabilities
    p0 = 0.9 * softmax[0] + 0.05
    assert agents.scores[0][0] == pytest.approx(1.0 / p0)


def test_zipf_sampling_by_rank():
    h3 = 1 + 1 / 2 + 1 / 3
    np.testing.assert_allclose(zipf(np.array([0.2, -1.0, 3.0])), [1 / (2 * h3), 1 / (3 * h3), 1 / h3])
    assert zipf(np.zeros(4)).tolist() == sorted(zipf(np.zeros(4)).tolist(), reverse=True)  # ties


def test_least_squares_recovers_additive_contributions():
    truth = [np.array([0.0, 2.0]), np.array([1.0, 0.0, 3.0])]
    policy = MANASLS(TWO_EDGES, seed=0, objective=Objective("score"))
    archs = [(a, b) for a in range(2) for b in range(3)]
    policy.tell(archs, [Result({"score": truth[0][a] + truth[1][b]}) for a, b in archs])
    fitted = policy.contributions()
    for est, true in zip(fitted, truth):  # up to a constant per edge
        np.testing.assert_allclose(est - est.mean(), true - true.mean(), atol=1e-3)
    probs = policy.probabilities()
    np.testing.assert_allclose(probs[0], zipf(truth[0]))  # "b" ranks first on edge 0
    np.testing.assert_allclose(probs[1], zipf(truth[1]))


def test_manas_moves_probability_to_the_better_op():
    evaluator = FunctionEvaluator(lambda arch: {"score": float(arch[0] == 1) + 0.1 * arch[1]},
                                  "score")
    policy = MANAS(TWO_EDGES, seed=0, objective=Objective("score"), eta=0.5)
    Search(TWO_EDGES, policy, evaluator, Budget(max_queries=6)).run()
    for _ in range(100):  # the cache answers repeats; keep telling the policy
        arch = policy.ask(1)
        policy.tell(arch, evaluator.evaluate(arch))
    assert policy.probabilities()[0][1] > 0.9


# ------------------------------------------------------------------ actors
class _KillAgentActor(Callback):
    """SIGKILLs one agent-group actor's process after ``step`` search steps."""

    def __init__(self, step: int) -> None:
        self.step, self.killed = step, None

    def on_step(self, search, rows):
        if search.step == self.step:
            self.killed = search.policy.agents.pids()[1]
            os.kill(self.killed, signal.SIGKILL)


def _archs(policy, table, queries=60, callbacks=()):
    evaluator = TabularEvaluator(table, "cifar10")
    result = Search(table.space, policy, evaluator, Budget(max_queries=queries),
                    callbacks=list(callbacks)).run()
    return result.history["arch"].to_pylist(), policy


@pytest.mark.parametrize("cls", [MANAS, MANASLS], ids=["manas", "manas-ls"])
def test_actor_backend_equals_the_vectorised_backend(cls, ray_local, nb201_table):
    local, _ = _archs(cls(nb201_table.space, seed=3), nb201_table)
    actors, policy = _archs(cls(nb201_table.space, seed=3, backend="actors", edges_per_actor=2),
                            nb201_table)
    assert len(policy.agents.actors) == 3  # 6 edges in blocks of 2
    assert actors == local
    local_state = cls(nb201_table.space, seed=3)
    _archs(local_state, nb201_table)
    np.testing.assert_allclose(np.concatenate(policy.probabilities()),
                               np.concatenate(local_state.probabilities()))


def test_a_killed_agent_actor_resumes_with_its_state(ray_local, nb201_table):
    local, _ = _archs(MANAS(nb201_table.space, seed=5), nb201_table)
    kill = _KillAgentActor(step=25)
    policy = MANAS(nb201_table.space, seed=5, backend="actors", edges_per_actor=2)
    before = policy.agents.pids()
    actors, policy = _archs(policy, nb201_table, callbacks=[kill])
    assert kill.killed == before[1]
    after = policy.agents.pids()
    assert after[1] != before[1] and after[0] == before[0]  # only the dead one restarted
    assert actors == local  # nothing of its state was lost


# ---------------------------------------------------------------- supernet
def test_a_sampled_path_touches_only_its_ops_gradients():
    import torch

    from raynas.evaluators.supernet import Supernet
    from raynas.spaces import DARTSSpace, NB201Space

    for space in (NB201Space(channels=4, cells_per_stage=1), DARTSSpace(channels=4, layers=3)):
        net = Supernet(space, num_classes=10, in_channels=1)
        arch = space.sample(np.random.default_rng(0))
        net.set_arch(arch)
        net(torch.randn(4, 1, 8, 8)).sum().backward()
        for op in net.choice_ops:
            for k, candidate in enumerate(op.candidates):
                grads = [p.grad for p in candidate.parameters()]
                if k != arch[op.decision]:
                    assert all(g is None for g in grads), (space.name, op.decision, k)
                else:  # the chosen op was in the graph
                    assert all(g is not None for g in grads)
        assert net.alphas.grad is None  # sampled mode never trains the mixture


def test_mixed_supernet_runs_every_op_and_trains_its_alphas():
    import torch

    from raynas.evaluators.supernet import Supernet
    from raynas.spaces import NB201Space

    net = Supernet(NB201Space(channels=4, cells_per_stage=1), 10, 1, mode="mixed")
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    assert net.alphas.grad is not None and net.alphas.grad.abs().sum() > 0
    for op in net.choice_ops:
        assert all(p.grad is not None for c in op.candidates for p in c.parameters())
    assert len(net.derived()) == 6


def test_manas_on_a_supernet_learns_on_digits():
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.evaluators.supernet import SupernetEvaluator
    from raynas.search import Budget, Search, SearchResult
    from raynas.spaces import NB201Space

    space = NB201Space(channels=4, cells_per_stage=1)
    data = load_digits(input_size=8)
    evaluator = SupernetEvaluator(space, data, steps=5, batch_size=128, seed=0)
    policy = MANAS(space, seed=0)
    result = Search(space, policy, evaluator, Budget(max_queries=12)).run()
    assert isinstance(result, SearchResult)  # the same result type as every search
    assert evaluator.evaluations == result.queries == 12  # every query trains its path
    rewards = [r["valid_acc"] for r in result.history.to_pylist() if not r["cached"]]
    assert np.mean(rewards[-4:]) > np.mean(rewards[:2]) + 20  # the shared weights learn
    derived = policy.most_likely()
    space.validate(derived)
    (retrained,) = TrainingEvaluator(space, data, epochs=4).evaluate([derived])
    assert retrained.metrics["test_acc"] > 40  # retrained from scratch; chance is 10 %


def test_mixed_op_darts_baseline_derives_an_architecture_on_digits():
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.evaluators.supernet import run_mixed_search
    from raynas.spaces import NB201Space

    space = NB201Space(channels=4, cells_per_stage=1)
    data = load_digits(input_size=8)
    out = run_mixed_search(space, data, steps=15, batch_size=128,
                           retrain=TrainingEvaluator(space, data, epochs=4))
    assert np.mean(out["valid_acc"][-3:]) > np.mean(out["valid_acc"][:2]) + 20
    space.from_str(out["derived"])
    assert out["retrained"]["test_acc"] > 40


def test_actor_backend_state_round_trip_and_supernet_search(ray_local, nb201_table):
    from raynas.data import load_digits
    from raynas.evaluators.supernet import SupernetEvaluator
    from raynas.search import Budget, Search
    from raynas.spaces import NB201Space

    policy = MANAS(nb201_table.space, seed=1, backend="actors", edges_per_actor=4)
    _archs(policy, nb201_table, queries=20)
    state = policy.state_dict()
    twin = MANAS(nb201_table.space, seed=99, backend="actors", edges_per_actor=4)
    twin.load_state_dict(state)
    assert twin.ask(5) == policy.ask(5)  # the agents' generators and scores came back

    space = NB201Space(channels=4, cells_per_stage=1)
    policy = MANAS(space, seed=0, backend="actors")
    result = Search(space, policy, SupernetEvaluator(space, load_digits(input_size=8), steps=2),
                    Budget(max_queries=4)).run()
    assert result.queries == 4 and space.validate(policy.most_likely())
