"""MNIST-1D (Greydanus, 2020): the embedded default dataset, generated locally.

The ``mnist1d`` package draws 5,000 sequences of length 40 from ten 1-D digit templates
(padded, scaled, translated, sheared, with correlated and i.i.d. noise) with
``make_dataset``; nothing is downloaded. The paper reports about 32 % test accuracy for
logistic regression, 68 % for an MLP and 94 % for a small CNN: unlike digits, where
every network lands at 95-99 %, the architecture matters.

The package's own split (4,000 train, 1,000 test, its seed 42) is kept, so test
accuracies compare with the paper's; a stratified validation split is held out of the
training sequences with ``seed``. Sequences are standardised with the train split's
statistics and shaped ``(N, 1, 40)``: one channel, 40 steps.
"""

from __future__ import annotations

import numpy as np
import torch

from raynas.data.splits import DataSplits
from raynas.errors import ArgumentError, RaynasError


def load_mnist1d(valid_fraction: float = 0.2, seed: int = 0,
                 num_samples: int = 5000) -> DataSplits:
    """MNIST-1D as :class:`DataSplits` of shape ``(N, 1, 40)``.

    Args:
        valid_fraction: Share of the 4,000 training sequences held out for validation.
        seed: Seed of the stratified validation split (the data themselves are the
            package's, seed 42, whatever this seed).
        num_samples: Sequences generated (train and test; 80 % train), 5,000 as in the
            paper.

    Example:
        >>> data = load_mnist1d()
        >>> data.train_x.shape[1:], len(data.valid_y), len(data.test_y), data.num_classes
        (torch.Size([1, 40]), 800, 1000, 10)
    """
    from sklearn.model_selection import train_test_split

    if not 0 < valid_fraction < 1:
        raise ArgumentError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if num_samples < 100:
        raise ArgumentError(f"num_samples must be >= 100, got {num_samples}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:  # pragma: no cover - a dependency of raynas
        raise RaynasError("the mnist1d dataset needs the mnist1d package: "
                          "pip install mnist1d") from None
    args = get_dataset_args()
    args.num_samples = num_samples
    state = np.random.get_state()  # make_dataset seeds NumPy's global generator
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.asarray(raw["x"], dtype=np.float32)
    y = np.asarray(raw["y"], dtype=np.int64)
    train_x, valid_x, train_y, valid_y = train_test_split(
        x, y, test_size=valid_fraction, stratify=y, random_state=seed)
    mean, std = float(train_x.mean()), float(train_x.std())

    def tensor(seqs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((seqs - mean) / std).unsqueeze(1).contiguous()

    return DataSplits(
        name="mnist1d",
        train_x=tensor(train_x), train_y=torch.from_numpy(train_y),
        valid_x=tensor(valid_x), valid_y=torch.from_numpy(valid_y),
        test_x=tensor(np.asarray(raw["x_test"], dtype=np.float32)),
        test_y=torch.from_numpy(np.asarray(raw["y_test"], dtype=np.int64)),
        num_classes=10,
    )
