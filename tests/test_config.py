"""``raynas search`` configs: defaults, examples, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas import config as cfg

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_embedded_default_is_the_digits_search():
    config = cfg.load(None)
    assert config.evaluator.kind == "training" and config.evaluator.dataset == "digits"
    assert config.space.name == "nb201" and config.space.options == {
        "channels": 8, "cells_per_stage": 1
    }
    assert 16 <= config.budget <= 24


def test_the_digits_example_is_the_default():
    assert cfg.load(EXAMPLES[[p.name for p in EXAMPLES].index("digits.yaml")]) == cfg.load(None)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path):
    cfg.load(path)


def test_dump_and_load_round_trip(tmp_path):
    config = cfg.from_dict({"policy": {"name": "ls", "num_init": 3}, "budget": 7})
    cfg.dump(config, tmp_path / "c.yaml")
    assert cfg.load(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"evaluater": {}}, "evaluater: unknown key; did you mean 'evaluator'?"),
        ({"evaluator": {"epcohs": 3}}, "evaluator.epcohs: unknown key; did you mean 'epochs'?"),
        ({"budget": "20x"}, "budget: expected int, got str '20x'"),
        ({"evaluator": {"lr": "fast"}}, "evaluator.lr: expected float, got str 'fast'"),
        ({"resources": {"asha": "yes"}}, "resources.asha: expected bool, got str 'yes'"),
        ({"policy": {"name": "raa"}}, "policy.name: unknown policy 'raa'; did you mean 'rea'?"),
        ({"space": {"name": "nb210"}}, "space.name: unknown space 'nb210'; did you mean 'nb201'?"),
        ({"policy": {"name": "rea", "popsize": 3}},
         "policy.popsize: unknown key; did you mean 'population_size'?"),
        ({"space": {"name": "nb201", "chanels": 4}},
         "space.chanels: unknown key; did you mean 'channels'?"),
        ({"evaluator": {"kind": "proxy"}},
         "evaluator.kind: expected one of training, function, tabular, supernet, got 'proxy'"),
        ({"evaluator": {"kind": "supernet", "steps": 0}}, "evaluator.steps: must be >= 1"),
        ({"evaluator": {"kind": "supernet", "pretrain_steps": -1}},
         "evaluator.pretrain_steps: must be >= 0"),
        ({"budget": 0}, "budget: must be >= 1"),
        ({"resources": []}, "resources: expected a mapping"),
        ({"front": {"objectives": ["valid_acc"]}}, "front.objectives: expected dict"),
        ({"front": {"objectives": {"valid_acc": "max"}}}, "a front needs >= 2 objectives"),
        ({"front": {"objectives": {"valid_acc": "max", "params": "low"}}},
         "front.objectives.params: expected 'max' or 'min', got 'low'"),
        ({"front": {"objectives": {"params": "min", "valid_acc": "max"}}},
         "the first objective is the one the policy optimises"),
        ({"front": {"objectives": {"valid_acc": "max", "params": "min"}, "reference": [0]}},
         "front.reference: expected 2 values (one per objective), got 1"),
        ({"front": {"reference": [0.0, 1.0]}}, "front.objectives: needed when"),
        ({"tracking": {"log_from": "workers"}},
         "tracking.log_from: expected 'driver' or 'trials', got 'workers'"),
        ({"tracking": {"log_from": "trials", "child_runs": False}},
         "tracking.log_from: trials log their own child runs"),
        ({"evaluator": {"mode": "up"}}, "evaluator.mode: expected 'max' or 'min', got 'up'"),
        ({"evaluator": {"search_metric": "valid_accuracy"}},
         "evaluator.search_metric: training evaluations report valid_acc, test_acc, train_loss"),
        ({"evaluator": {"kind": "supernet", "report_metric": "latency_ms"}},
         "evaluator.report_metric: supernet evaluations report valid_acc, valid_loss"),
        ({"evaluator": {"search_metric": "test_acc"}}, "is measured on test data"),
        ({"evaluator": {"search_metric": "params", "mode": "min"},
          "front": {"objectives": {"valid_acc": "max", "params": "min"}}},
         "the search metric params (min, evaluator.search_metric and evaluator.mode); got "
         "valid_acc (max)"),
    ],
)
def test_config_errors_name_the_key(data, message):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(data)
    assert message in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(cfg.ConfigError, match="config file not found"):
        cfg.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("budget: [1, 2\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(tmp_path / "bad.yaml")
