"""``raynas search`` configs: defaults, examples, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas import config as cfg

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_embedded_default_is_the_mnist1d_search():
    config = cfg.load(None)
    assert config.evaluator.kind == "training" and config.evaluator.dataset == "mnist1d"
    assert config.space.name == "custom"
    assert Path(config.space.options["file"]).parts[-2:] == ("mnist1d", "space.yaml")
    assert 16 <= config.budget <= 24


def test_the_mnist1d_example_is_the_default():
    example = Path(__file__).resolve().parents[1] / "examples" / "mnist1d" / "search.yaml"
    assert cfg.load(example) == cfg.load(None)


def test_no_space_section_follows_the_data():
    """Images search the NB201 cell at reduced width, tables their own space, anything
    else the default 1-D CNN space."""
    images = cfg.from_dict({"evaluator": {"dataset": "digits"}})
    assert images.space == cfg.SpaceConfig("nb201", {"channels": 8, "cells_per_stage": 1})
    table = cfg.from_dict({"evaluator": {"kind": "tabular", "dataset": "cifar10"}})
    assert table.space == cfg.SpaceConfig("nb201", {})
    arrays = cfg.from_dict({"evaluator": {"dataset": "npz", "path": "x.npz"}})
    assert arrays.space == cfg.load(None).space
    named = cfg.from_dict({"space": {"name": "nb201"}, "evaluator": {"dataset": "digits"}})
    assert named.space == cfg.SpaceConfig("nb201", {})


def test_the_digits_example_keeps_the_former_default():
    digits = cfg.load(EXAMPLES[[p.name for p in EXAMPLES].index("digits.yaml")])
    assert digits.space == cfg.SpaceConfig("nb201", {"channels": 8, "cells_per_stage": 1})
    assert (digits.evaluator.dataset, digits.evaluator.epochs, digits.evaluator.lr) == (
        "digits", 4, 0.05)


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
        ({"space": {"name": "nb201"}}, "evaluator.dataset: mnist1d holds 1-D sequences (1, 40), "
         "and the nb201 space builds cell networks for images"),
        ({"space": {"name": "darts"}, "evaluator": {"kind": "supernet"}},
         "pick an image dataset (digits, cifar10, cifar100, folder)"),
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


def test_a_key_given_twice_is_an_error_not_the_last_value(tmp_path):
    """YAML itself keeps the last of two equal keys: a silent wrong search."""
    config = tmp_path / "twice.yaml"
    config.write_text("evaluator:\n  search_metric: valid_f1\n  kind: training\n"
                      "  search_metric: valid_acc\n")
    with pytest.raises(cfg.ConfigError, match=r"'search_metric' is given twice \(lines 2 and 4\)"):
        cfg.load(config)
    from raynas.errors import ArgumentError
    from raynas.spaces.custom import CustomSpace

    space = tmp_path / "space.yaml"
    space.write_text("name: s\ndecisions:\n  a: [1, 2]\n  a: [3]\n")
    with pytest.raises(ArgumentError, match=r"'a' is given twice"):
        CustomSpace.from_yaml(space)
