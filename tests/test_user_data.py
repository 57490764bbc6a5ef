"""A user's own data (issue 20, item 3): an image folder, an ``.npz`` file and a
``module:function``, each loaded into train/valid/test splits, and each malformed case
with its one clear error. The fixtures are built here."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from raynas.data import DatasetError, load_dataset
from raynas.errors import ArgumentError


def _write_images(root, classes=("cat", "dog", "eel"), per_class=10, size=12, mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (size, size + 3, 3) if mode == "RGB" else (size, size + 3)
            pixels = np.clip(rng.normal(40 + 80 * c, 20, shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_image_folder_splits_stratified_resized_and_standardised(tmp_path):
    _write_images(tmp_path / "imgs")
    data = load_dataset("folder", tmp_path / "imgs", input_size=8, seed=0)
    assert data.num_classes == 3 and data.input_shape == (3, 8, 8)
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (18, 6, 6)
    for y in (data.train_y, data.valid_y, data.test_y):  # stratified: every class in each
        assert set(y.tolist()) == {0, 1, 2}
    means = data.train_x.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-4)  # the train split's statistics
    # class order is the sorted folder names; brighter classes have higher labels here
    assert data.train_x[data.train_y == 2].mean() > data.train_x[data.train_y == 0].mean()
    again = load_dataset("folder", tmp_path / "imgs", input_size=8, seed=0)
    assert torch.equal(again.valid_x, data.valid_x)  # a fixed seed, the same split
    other = load_dataset("folder", tmp_path / "imgs", input_size=8, seed=1)
    assert not torch.equal(other.valid_x, data.valid_x)


def test_image_folder_with_train_and_test_and_grey_images(tmp_path):
    _write_images(tmp_path / "imgs" / "train", ("a", "b"), per_class=6, mode="L")
    _write_images(tmp_path / "imgs" / "test", ("a", "b"), per_class=3, mode="L")
    data = load_dataset("folder", tmp_path / "imgs", input_size=10)
    assert data.input_shape == (1, 10, 10)  # grey images give one channel
    assert len(data.test_y) == 6 and len(data.train_y) + len(data.valid_y) == 12


@pytest.mark.parametrize("case, message", [
    ("missing", "image folder not found"),
    ("one class", "at least two; found 1"),
    ("empty class", "class 'dog' has no images"),
    ("corrupt", "not a readable image"),
    ("tiny class", "cannot hold out a stratified"),
    ("test class unknown", "are not in"),
])
def test_image_folder_errors_name_the_problem(case, message, tmp_path):
    root = tmp_path / "imgs"
    if case == "one class":
        _write_images(root, ("cat",))
    elif case == "empty class":
        _write_images(root, ("cat",))
        (root / "dog").mkdir()
    elif case == "corrupt":
        _write_images(root, ("cat", "dog"))
        (root / "dog" / "broken.png").write_bytes(b"not an image")
    elif case == "tiny class":
        _write_images(root, ("cat", "dog"), per_class=1)
    elif case == "test class unknown":
        _write_images(root / "train", ("a", "b"), per_class=5)
        _write_images(root / "test", ("a", "c"), per_class=2)
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset("folder", root, input_size=8)
    assert str(root) in str(error.value)


def test_npz_features_and_given_splits(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(3.0, 2.0, (200, 5)), np.arange(200) % 4
    np.savez(tmp_path / "features.npz", x=x, y=y)
    data = load_dataset("npz", tmp_path / "features.npz", seed=0)
    assert data.input_shape == (5,) and data.num_classes == 4
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (120, 40, 40)
    assert torch.allclose(data.train_x.mean(0), torch.zeros(5), atol=1e-5)  # per feature
    assert torch.allclose(data.train_x.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    # sequences (N, C, L) with their own validation and test splits, kept as given
    seq = rng.normal(size=(30, 2, 16)).astype(np.float32)
    np.savez(tmp_path / "seq.npz", x=seq, y=np.arange(30) % 3, x_valid=seq[:6],
             y_valid=np.arange(6) % 3, x_test=seq[:9], y_test=np.arange(9) % 3)
    data = load_dataset("npz", tmp_path / "seq.npz")
    assert data.input_shape == (2, 16)
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (30, 6, 9)


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 2))}, r"missing array\(s\) \['y'\]"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(3, int)}, "4 examples and y 3 labels"),
    ({"x": np.zeros((4, 2)), "y": np.full(4, 0.5)}, "integer class labels"),
    ({"x": np.zeros((4, 2)), "y": np.array([0, 1, -1, 0])}, "negative labels"),
    ({"x": np.zeros(4), "y": np.zeros(4, int)}, "shape \\(N, ...\\)"),
    ({"x": np.full((4, 2), np.nan), "y": np.arange(4) % 2}, "NaN or infinite"),
    ({"x": np.zeros((8, 2)), "y": np.arange(8) % 2, "x_valid": np.zeros((2, 3)),
      "y_valid": np.arange(2)}, "examples of shape \\(3,\\)"),
    ({"x": np.zeros((8, 2)), "y": np.arange(8) % 2, "x_test": np.zeros((2, 2))},
     "come together"),
])
def test_npz_errors_name_the_problem(arrays, message, tmp_path):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset("npz", tmp_path / "bad.npz")
    assert "bad.npz" in str(error.value)


def test_npz_object_arrays_and_non_archives_are_refused(tmp_path):
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}] * 4, dtype=object),
             y=np.arange(4) % 2)
    with pytest.raises(DatasetError, match="object arrays, which are not loaded"):
        load_dataset("npz", tmp_path / "objects.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset("npz", tmp_path / "text.npz")
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("npz", tmp_path / "absent.npz")
    with pytest.raises(ArgumentError, match="needs an .npz file"):
        load_dataset("npz")


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    (tmp_path / "userdata.py").write_text(textwrap.dedent('''
        import torch
        from torch.utils.data import TensorDataset

        def make(seed=0):
            g = torch.Generator().manual_seed(seed)
            def split(n):
                return TensorDataset(torch.randn(n, 1, 6, 6, generator=g),
                                     torch.arange(n) % 3)
            return split(30), split(9), split(12)

        def as_dict():
            train, valid, test = make()
            return {"train": train, "valid": valid, "test": test, "num_classes": 5}

        def wrong_count():
            return make()[:2]

        def ragged():
            return [(torch.zeros(3), 0), (torch.zeros(4), 1)], make()[1], make()[2]

        not_callable = 3
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "userdata"
    sys.modules.pop("userdata", None)


def test_a_function_returning_datasets(user_module):
    data = load_dataset(f"{user_module}:make", seed=2)
    assert data.input_shape == (1, 6, 6) and data.num_classes == 3
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (30, 9, 12)
    assert torch.equal(load_dataset(f"{user_module}:make", seed=2).train_x, data.train_x)
    assert load_dataset(f"{user_module}:as_dict").num_classes == 5


@pytest.mark.parametrize("name, error, message", [
    ("userdata:wrong_count", DatasetError, "expected \\(train, valid, test\\)"),
    ("userdata:ragged", DatasetError, "different shapes"),
    ("userdata:absent", ArgumentError, "has no absent"),
    ("userdata:not_callable", ArgumentError, "not callable"),
    ("nosuchmodule:make", ArgumentError, "cannot import nosuchmodule"),
    ("mnist", ArgumentError, "unknown dataset"),
])
def test_function_dataset_errors(name, error, message, user_module):
    with pytest.raises(error, match=message):
        load_dataset(name)


def test_cell_networks_refuse_non_image_data(tmp_path):
    from raynas.evaluators import TrainingEvaluator
    from raynas.spaces import NB201Space

    np.savez(tmp_path / "f.npz", x=np.random.default_rng(0).normal(size=(40, 5)),
             y=np.arange(40) % 2)
    with pytest.raises(ArgumentError, match=r"images \(C, H, W\).*shape \(5,\)"):
        TrainingEvaluator(NB201Space(channels=4), load_dataset("npz", tmp_path / "f.npz"))


def test_an_image_folder_trains_in_a_real_search(tmp_path):
    """The folder's splits feed a real training search end to end (in process)."""
    from raynas.evaluators import TrainingEvaluator
    from raynas.policies import make_policy
    from raynas.search import Budget, Search
    from raynas.spaces import NB201Space

    _write_images(tmp_path / "imgs", per_class=12)
    data = load_dataset("folder", tmp_path / "imgs", input_size=8)
    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, data, epochs=2, batch_size=16, measure_latency=False)
    result = Search(space, make_policy("random", space, seed=0), evaluator,
                    Budget(max_queries=2)).run()
    assert result.queries == 2 and result.incumbent_metrics["valid_acc"] > 100 / 3


def test_the_image_folder_example_runs_and_a_bad_folder_stops_at_once(tmp_path, ray_env):
    """examples/image_folder.yaml, as written (its folder generated beside it, a budget of
    2): the CLI's training search on Tune trials; then a folder with a corrupt image stops
    before anything starts, with one error line."""
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "image_folder.yaml"
    config = tmp_path / "image_folder.yaml"
    shutil.copy(example, config)
    _write_images(tmp_path / "my_images", per_class=12)
    proc = _raynas(ray_env, "search", str(config), "--out", str(tmp_path / "run"), "--budget",
                   "2", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "evaluated 2 architectures" in proc.stdout
    (tmp_path / "my_images" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    proc = _raynas(ray_env, "search", str(config), "--out", str(tmp_path / "run2"), "--quiet")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "broken.jpg: not a readable image" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run2" / "config.yaml").exists()


def _raynas(env, *args):
    import subprocess
    from pathlib import Path

    return subprocess.run([str(Path(sys.executable).parent / "raynas"), *args],
                          capture_output=True, text=True, env=env, timeout=300)
