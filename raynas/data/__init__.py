"""Datasets for real training: the embedded digits default and local CIFAR folders.

Example:
    >>> from raynas.data import load_dataset
    >>> load_dataset("digits", input_size=8).num_classes
    10
"""

from __future__ import annotations

from pathlib import Path

from raynas.data.cifar import DatasetError, load_cifar
from raynas.data.digits import load_digits
from raynas.data.splits import DataSplits, augment_batch
from raynas.errors import ArgumentError

DATASETS = ("digits", "cifar10", "cifar100")


def load_dataset(
    name: str,
    path: str | Path | None = None,
    input_size: int = 16,
    seed: int = 0,
    valid_size: int = 5000,
) -> DataSplits:
    """``digits`` (embedded; ``input_size`` and ``seed`` apply) or ``cifar10``/``cifar100``
    from the local folder ``path`` (``valid_size`` training images held out)."""
    if name == "digits":
        return load_digits(input_size=input_size, seed=seed)
    if name in ("cifar10", "cifar100"):
        if path is None:
            raise ArgumentError(f"{name} needs a local folder: pass path=... (nothing is downloaded)")
        return load_cifar(path, name, valid_size=valid_size)
    from raynas.errors import unknown_name

    raise unknown_name("dataset", name, DATASETS)


__all__ = ["DATASETS", "DataSplits", "DatasetError", "augment_batch", "load_cifar",
           "load_dataset", "load_digits"]
