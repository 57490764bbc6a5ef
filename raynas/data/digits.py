"""The embedded default dataset: scikit-learn's handwritten digits (no download).

1,797 grey 8x8 images of 10 digits, shipped inside scikit-learn. They are split
stratified into train/valid/test with a fixed seed, scaled to [0, 1],
standardised with the train split's statistics, and resized to the network's
input size.
"""

from __future__ import annotations

import numpy as np
import torch

from raynas.data.splits import DataSplits
from raynas.errors import ArgumentError


def load_digits(
    input_size: int = 16, valid_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> DataSplits:
    """Digits as :class:`DataSplits` of shape ``(N, 1, input_size, input_size)``.

    Args:
        input_size: Side of the images given to the network (8 keeps the original).
        valid_fraction: Share of the data in the validation split.
        test_fraction: Share of the data in the test split.
        seed: Seed of the stratified split (the same seed, the same split).

    Example:
        >>> data = load_digits(input_size=16)
        >>> data.train_x.shape[1:], data.num_classes
        (torch.Size([1, 16, 16]), 10)
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if input_size < 8:
        raise ArgumentError(f"input_size must be >= 8 (digits are 8x8), got {input_size}")
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ArgumentError(
            f"valid_fraction and test_fraction must be in (0, 1) with a sum below 1, got "
            f"{valid_fraction} and {test_fraction}"
        )
    digits = sk_load_digits()
    x = digits.images.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    rest_x, test_x, rest_y, test_y = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    train_x, valid_x, train_y, valid_y = train_test_split(
        rest_x, rest_y, test_size=valid_fraction / (1 - test_fraction), stratify=rest_y,
        random_state=seed,
    )
    mean, std = float(train_x.mean()), float(train_x.std())

    def tensor(images: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy((images - mean) / std).unsqueeze(1)
        if input_size != 8:
            t = torch.nn.functional.interpolate(
                t, size=(input_size, input_size), mode="bilinear", align_corners=False
            )
        return t.contiguous()

    return DataSplits(
        name="digits",
        train_x=tensor(train_x), train_y=torch.from_numpy(train_y),
        valid_x=tensor(valid_x), valid_y=torch.from_numpy(valid_y),
        test_x=tensor(test_x), test_y=torch.from_numpy(test_y),
        num_classes=10,
    )
