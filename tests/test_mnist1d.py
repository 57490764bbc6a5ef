"""The embedded default: MNIST-1D (generated locally) over the user-style 1-D CNN space of
``examples/mnist1d/`` (installed as ``raynas.mnist1d``)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from raynas import config as cfg
from raynas.data import load_dataset
from raynas.data.mnist1d import load_mnist1d
from raynas.spaces.custom import CustomSpace

RAYNAS = str(Path(sys.executable).parent / "raynas")


@pytest.fixture(scope="module")
def data():
    return load_mnist1d(seed=0)


@pytest.fixture(scope="module")
def space():
    return CustomSpace.from_yaml(cfg.default_space_file())


def test_mnist1d_splits_are_stratified_standardised_and_seeded(data):
    assert data.input_shape == (1, 40) and data.num_classes == 10
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (3200, 800, 1000)
    assert torch.bincount(data.valid_y, minlength=10).min() >= 70  # stratified: ~80 each
    assert abs(float(data.train_x.mean())) < 1e-4 and abs(float(data.train_x.std()) - 1) < 1e-3
    again, other = load_mnist1d(seed=0), load_mnist1d(seed=1)
    assert torch.equal(again.valid_x, data.valid_x)
    assert not torch.equal(other.valid_x, data.valid_x)
    # the package's own test split whatever the seed (standardised by each train split)
    assert torch.equal(other.test_y, data.test_y)
    assert torch.allclose(other.test_x, data.test_x, atol=0.02)
    assert load_dataset("mnist1d").input_shape == (1, 40)


def test_generating_it_leaves_numpys_global_generator_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    load_mnist1d()
    assert np.random.rand() == expected


def test_the_space_is_a_users_space_file_with_its_builder(space):
    text = Path(cfg.default_space_file()).read_text()
    assert "builder: raynas.mnist1d.cnn1d:build" in text
    assert space.name == "cnn1d" and space.size == 3 ** 6 * 2 * 3 * 2 * 2
    assert space.builder == "raynas.mnist1d.cnn1d:build"


def _arch(space, choices):
    return tuple(space.values[d.name].index(choices[d.name]) for d in space.decisions)


def test_every_choice_builds_a_network_of_the_right_output(space, data):
    x = data.train_x[:4]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    # and every pool x head x blocks: the corners that change the head's input length
    base = space.arch_dict(archs[0])
    for pool, head, blocks in itertools.product(["none", "max", "avg"], ["gap", "flatten"],
                                                [1, 2]):
        archs.append(_arch(space, {**base, "pool": pool, "head": head, "blocks": blocks}))
    for arch in archs:
        net = space.build(arch, 10, 1, input_shape=data.input_shape)
        assert net(x).shape == (4, 10)
    assert space.arch_dict(archs[-1])["pool"] == "avg"


def test_the_builder_refuses_images_with_one_clear_error(space):
    with pytest.raises(ValueError, match=r"sequences shaped \(channels, length\).*\(1, 16, 16\)"):
        space.build(space.sample(np.random.default_rng(0)), 10, 1, input_shape=(1, 16, 16))


@pytest.mark.slow
def test_the_default_search_runs_from_anywhere_with_a_tiny_budget(tmp_path, ray_env):
    """``raynas search`` with no config, from a folder with no examples/ in it: the space
    and its builder come from the installed package."""
    out = tmp_path / "run"
    proc = subprocess.run([RAYNAS, "search", "--budget", "2", "--quiet", "--out", str(out)],
                          cwd=tmp_path, env=ray_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "evaluated 2 architectures" in proc.stdout
    saved = cfg.load(out / "config.yaml")
    assert saved == cfg.override(cfg.load(None), budget=2)
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert 10 < metrics["valid_acc"] <= 100 and metrics["flops"] > 0
    assert "space `cnn1d (custom)`" in (out / "summary.md").read_text()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "best" / "model.onnx"))
    x = load_mnist1d().test_x[:3].numpy()
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (3, 10)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    assert client.get_registered_model("raynas-cnn1d-mnist1d").name == "raynas-cnn1d-mnist1d"
    version = client.get_model_version("raynas-cnn1d-mnist1d", "1")
    assert "a rea search over cnn1d on mnist1d" in version.description
