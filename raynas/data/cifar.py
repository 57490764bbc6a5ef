"""CIFAR-10/100 from a local folder in the standard "python version" format.

Expected layout (as the official archives unpack):

* CIFAR-10: ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``;
* CIFAR-100: ``train`` and ``test``.

Each file is a pickled dict with ``data`` (N x 3072 uint8, channel-major) and
``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). The files are read with a
restricted unpickler that only admits plain containers and numpy arrays, so a
folder of other pickles cannot run code. Nothing is downloaded.

Protocol (as NAS-Bench-201): the last ``valid_size`` images of the training
files form the validation split; the test files are the test split.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from raynas.data.splits import DataSplits
from raynas.errors import ArgumentError, DatasetError

LAYOUTS = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
    "cifar100": (["train"], ["test"], "fine_labels", 100),
}
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt file
        raise DatasetError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a dict with 'data' and '{label_key}'")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if "data" not in batch or label_key not in batch:
        raise DatasetError(
            f"{path}: missing key(s) {sorted({'data', label_key} - set(batch))}; "
            f"keys are {sorted(batch)}"
        )
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DatasetError(
            f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} "
            f"and {labels.shape}"
        )
    return data, labels


def load_cifar(
    root: str | Path, name: str = "cifar10", valid_size: int = 5000, augment: bool = True
) -> DataSplits:
    """Load CIFAR-10 or CIFAR-100 from ``root`` as normalised :class:`DataSplits`.

    Args:
        root: Folder with the python-version batch files.
        name: ``cifar10`` or ``cifar100``.
        valid_size: Training images held out as the validation split.
        augment: Random crop and flip on training batches.

    Raises:
        DatasetError: The folder or a file is missing, or a file is not a CIFAR batch.
    """
    if name not in LAYOUTS:
        from raynas.errors import unknown_name

        raise unknown_name("CIFAR dataset", name, LAYOUTS)
    train_files, test_files, label_key, num_classes = LAYOUTS[name]
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"{name} folder not found: {root} (expected the python-version files "
            f"{', '.join(train_files + test_files)})"
        )
    missing = [f for f in train_files + test_files if not (root / f).is_file()]
    if missing:
        raise DatasetError(f"{root}: missing {name} file(s) {', '.join(missing)}")

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_read_batch(root / f, label_key) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    train_x, train_y = read(train_files)
    test_x, test_y = read(test_files)
    if not 0 < valid_size < len(train_y):
        raise ArgumentError(f"valid_size must be in (0, {len(train_y)}), got {valid_size}")
    bad = (train_y.min() < 0) | (train_y.max() >= num_classes)
    if bad or test_y.min() < 0 or test_y.max() >= num_classes:
        raise DatasetError(f"{root}: labels outside [0, {num_classes}) for {name}")
    mean = torch.tensor(MEAN[name]).view(1, 3, 1, 1)
    std = torch.tensor(STD[name]).view(1, 3, 1, 1)

    def images(data: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(data).view(-1, 3, 32, 32).float() / 255.0
        return ((x - mean) / std).contiguous()

    cut = len(train_y) - valid_size
    return DataSplits(
        name=name,
        train_x=images(train_x[:cut]), train_y=torch.from_numpy(train_y[:cut]),
        valid_x=images(train_x[cut:]), valid_y=torch.from_numpy(train_y[cut:]),
        test_x=images(test_x), test_y=torch.from_numpy(test_y),
        num_classes=num_classes, augment=augment,
    )
