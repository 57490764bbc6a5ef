"""Train/valid/test tensors for real training, and batch augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataSplits:
    """A dataset split three ways, as tensors shaped ``(N, C, H, W)`` (images; a user's
    arrays may be ``(N, C, L)`` or ``(N, F)``) and labels ``(N,)``.

    Protocol: searches optimise ``valid`` accuracy and report ``test`` accuracy.

    Attributes:
        name: Dataset name (``digits``, ``cifar10``...).
        train_x, train_y, valid_x, valid_y, test_x, test_y: Normalised images and labels.
        num_classes: Number of classes.
        augment: Apply random-crop (padding 4) and horizontal-flip augmentation
            to training batches (CIFAR); off for digits.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    augment: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(C, H, W)`` images, ``(C, L)``, ``(F,)``, ..."""
        return tuple(int(d) for d in self.train_x.shape[1:])

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.train_x.shape[-1])

    def describe(self) -> dict[str, int | str | bool]:
        return {
            "dataset": self.name,
            "train": len(self.train_y),
            "valid": len(self.valid_y),
            "test": len(self.test_y),
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            "augment": self.augment,
        }


def augment_batch(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per image, on x's device."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    flip = flip.to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
