"""Datasets for real training: the embedded default MNIST-1D (generated locally),
scikit-learn's digits, local CIFAR folders, and a
user's own data (an image folder, an ``.npz`` file, or a ``module:function``; see
:mod:`raynas.data.files`).

Example:
    >>> from raynas.data import load_dataset
    >>> load_dataset("digits", input_size=8).num_classes
    10
    >>> load_dataset("mnist1d").input_shape
    (1, 40)
"""

from __future__ import annotations

from pathlib import Path

from raynas.data.cifar import DatasetError, load_cifar
from raynas.data.digits import load_digits
from raynas.data.files import (
    is_entrypoint,
    load_arrays,
    load_function_dataset,
    load_image_folder,
)
from raynas.data.mnist1d import load_mnist1d
from raynas.data.splits import DataSplits, augment_batch
from raynas.errors import ArgumentError

DATASETS = ("mnist1d", "digits", "cifar10", "cifar100", "folder", "npz")  # or module:function


def load_dataset(
    name: str,
    path: str | Path | None = None,
    input_size: int = 16,
    seed: int = 0,
    valid_size: int = 5000,
) -> DataSplits:
    """``mnist1d`` (embedded, sequences of length 40; ``seed`` splits off validation),
    ``digits`` (embedded; ``input_size`` and ``seed`` apply), ``cifar10``/``cifar100``
    from the local folder ``path`` (``valid_size`` training images held out), ``folder``
    (an image folder at ``path``, resized to ``input_size``), ``npz`` (arrays in the file
    ``path``), or ``module:function`` (a user's function returning the splits)."""
    if name == "mnist1d":
        return load_mnist1d(seed=seed)
    if name == "digits":
        return load_digits(input_size=input_size, seed=seed)
    if name in ("cifar10", "cifar100", "folder", "npz") and path is None:
        what = {"folder": "an image folder", "npz": "an .npz file"}.get(name, "a local folder")
        raise ArgumentError(f"dataset {name} needs {what}: pass path=... (nothing is "
                            "downloaded)")
    if name in ("cifar10", "cifar100"):
        return load_cifar(path, name, valid_size=valid_size)
    if name == "folder":
        return load_image_folder(path, input_size=input_size, seed=seed)
    if name == "npz":
        return load_arrays(path, seed=seed)
    if is_entrypoint(name):
        return load_function_dataset(name, seed=seed, input_size=input_size)
    from raynas.errors import unknown_name

    raise unknown_name("dataset (or a module:function)", name, DATASETS)


__all__ = ["DATASETS", "DataSplits", "DatasetError", "augment_batch", "load_arrays",
           "load_cifar", "load_dataset", "load_digits", "load_function_dataset", "load_mnist1d",
           "load_image_folder"]
