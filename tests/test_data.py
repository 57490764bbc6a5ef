"""Datasets: the embedded digits and CIFAR folders (tiny fixtures generated here)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from conftest import write_cifar10, write_cifar_batch

from raynas.data import DatasetError, augment_batch, load_cifar, load_dataset, load_digits


def test_digits_splits_are_stratified_disjoint_and_seeded():
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert len(a.train_y) + len(a.valid_y) + len(a.test_y) == 1797
    for labels in (a.train_y, a.valid_y, a.test_y):  # every class in every split, in proportion
        counts = torch.bincount(labels, minlength=10).float()
        assert counts.min() / counts.max() > 0.8
    flat = lambda x: {tuple(r) for r in x.flatten(1).numpy().round(5)}  # noqa: E731
    assert not flat(a.train_x) & flat(a.test_x)
    assert not torch.equal(load_digits(seed=1).test_y, a.test_y)


def test_digits_resized_to_the_input_size():
    data = load_digits(input_size=32)
    assert data.train_x.shape[1:] == (1, 32, 32)
    assert abs(float(data.train_x.mean())) < 0.05


def test_digits_bad_arguments():
    with pytest.raises(ValueError, match="input_size"):
        load_digits(input_size=4)
    with pytest.raises(ValueError, match="valid_fraction"):
        load_digits(valid_fraction=0.6, test_fraction=0.5)


@pytest.fixture
def cifar10_dir(tmp_path):
    return write_cifar10(tmp_path, train_per_batch=12, test=10)


def test_cifar10_fixture_loads(cifar10_dir):
    data = load_cifar(cifar10_dir, "cifar10", valid_size=20)
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (40, 20, 10)
    assert data.train_x.shape[1:] == (3, 32, 32) and data.num_classes == 10 and data.augment


def test_cifar100_fixture_loads(tmp_path):
    rng = np.random.default_rng(1)
    write_cifar_batch(tmp_path / "train", 30, rng, "fine_labels", 100)
    write_cifar_batch(tmp_path / "test", 10, rng, "fine_labels", 100)
    data = load_dataset("cifar100", path=tmp_path, valid_size=10)
    assert data.num_classes == 100 and len(data.test_y) == 10


def test_cifar_missing_folder_and_files(tmp_path, cifar10_dir):
    with pytest.raises(DatasetError, match="cifar10 folder not found.*data_batch_1"):
        load_cifar(tmp_path / "nope")
    os.remove(cifar10_dir / "data_batch_3")
    with pytest.raises(DatasetError, match="missing cifar10 file.*data_batch_3"):
        load_cifar(cifar10_dir)


def test_cifar_corrupt_file(cifar10_dir):
    (cifar10_dir / "test_batch").write_bytes(b"\x00garbage")
    with pytest.raises(DatasetError, match="test_batch: not a CIFAR python batch"):
        load_cifar(cifar10_dir, valid_size=20)


def test_cifar_wrong_shape(cifar10_dir):
    batch = {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}
    (cifar10_dir / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match=r"expected data of shape \(N, 3072\)"):
        load_cifar(cifar10_dir, valid_size=20)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_refuses_pickles_that_run_code(cifar10_dir):
    (cifar10_dir / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil()}))
    with pytest.raises(DatasetError, match="refusing to load"):
        load_cifar(cifar10_dir, valid_size=20)


def test_cifar_needs_a_path():
    with pytest.raises(ValueError, match="needs a local folder"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="did you mean 'digits'"):
        load_dataset("digit")


def test_augmentation_keeps_shape_and_is_seeded():
    x = torch.randn(6, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
