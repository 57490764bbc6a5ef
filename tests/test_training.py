"""Real torch training of architectures on the embedded digits (and a CIFAR fixture)."""

from __future__ import annotations

import pytest
from conftest import write_cifar10

from raynas.data import load_cifar, load_digits
from raynas.evaluators import TrainingEvaluator
from raynas.policies import make_policy
from raynas.search import Budget, Search
from raynas.spaces import NB201Space

CONV = (3, 2, 3, 3, 2, 3)
EMPTY = (0, 0, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def digits():
    return load_digits(input_size=16)


@pytest.fixture(scope="module")
def small_space():
    return NB201Space(channels=8, cells_per_stage=1)


def test_training_beats_chance_by_a_wide_margin(digits, small_space):
    evaluator = TrainingEvaluator(small_space, digits, epochs=3, num_threads=2)
    good, empty = evaluator.evaluate([CONV, EMPTY])
    assert good.metrics["valid_acc"] > 85.0 and good.metrics["test_acc"] > 85.0  # chance: 10 %
    assert empty.metrics["valid_acc"] < 20.0  # an all-'none' cell cannot learn
    assert good.metrics["params"] > empty.metrics["params"] > 0
    assert good.metrics["flops"] > 0 and good.cost == pytest.approx(
        good.metrics["train_seconds"]
    )


def test_training_is_deterministic_and_resumes_from_a_state(digits, small_space):
    evaluator = TrainingEvaluator(small_space, digits, epochs=3)
    epochs, states = [], {}

    def on_epoch(metrics, get_state):
        epochs.append(metrics)
        states[int(metrics["epoch"])] = get_state()

    full = evaluator.fit(CONV, on_epoch=on_epoch)
    assert [m["epoch"] for m in epochs] == [1.0, 2.0, 3.0]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    again = evaluator.fit(CONV)
    assert again.metrics["valid_acc"] == full.metrics["valid_acc"]
    resumed = evaluator.fit(CONV, state=states[1])  # as a retried trial does
    for key in ("train_loss", "valid_acc", "test_acc"):
        assert resumed.metrics[key] == pytest.approx(full.metrics[key], abs=1e-6)


def test_latency_is_measured_when_asked(digits, small_space):
    (result,) = TrainingEvaluator(small_space, digits, epochs=1, measure_latency=True).evaluate(
        [CONV]
    )
    assert result.metrics["latency_ms"] > 0


def test_cifar_fixture_trains_with_augmentation(tmp_path):
    data = load_cifar(write_cifar10(tmp_path), valid_size=8)
    evaluator = TrainingEvaluator(NB201Space(channels=4, cells_per_stage=1), data, epochs=1,
                                  batch_size=16)
    (result,) = evaluator.evaluate([CONV])
    assert result.ok and 0.0 <= result.metrics["valid_acc"] <= 100.0


def test_a_real_training_search_runs_in_process(digits, small_space):
    evaluator = TrainingEvaluator(small_space, digits, epochs=1)
    policy = make_policy("random", small_space, seed=0)
    result = Search(small_space, policy, evaluator, Budget(max_queries=3)).run()
    assert result.queries == 3 and result.incumbent_metrics["valid_acc"] > 10.0


def test_bad_training_arguments(digits, small_space):
    with pytest.raises(ValueError, match="epochs >= 1"):
        TrainingEvaluator(small_space, digits, epochs=0)
    with pytest.raises(ValueError, match="device"):
        TrainingEvaluator(small_space, digits, device="tpu")
