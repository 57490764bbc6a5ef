"""A user's own data: an image folder, arrays in an ``.npz`` file, or a function.

Each loader returns :class:`~raynas.data.splits.DataSplits` (train/valid/test tensors,
loaded in memory) and raises one :class:`~raynas.errors.DatasetError` naming the file
and what was expected when the data is missing, empty or malformed. Nothing in a data
folder runs: images are decoded by Pillow, arrays are read with ``allow_pickle=False``.

* **Image folder** (``dataset: folder``, ``path: DIR``): one sub-folder per class
  (``DIR/<class>/*.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.webp``), classes
  in sorted name order. With ``DIR/train/<class>/`` and ``DIR/test/<class>/`` those are
  the train and test splits; otherwise a test split is held out. The validation split
  is held out of train, stratified by class, with a fixed seed. Images are resized to
  ``input_size`` x ``input_size`` (bilinear); a folder of grey images gives one
  channel, any colour image makes all three. Channels are standardised with the train
  split's mean and standard deviation.
* **Arrays** (``dataset: npz``, ``path: FILE.npz``): ``x`` and ``y``, and optionally
  ``x_valid``/``y_valid`` and ``x_test``/``y_test``; a split that is missing is held
  out of ``x``/``y`` (stratified, fixed seed). ``x`` keeps its shape: ``(N, C, H, W)``
  images, ``(N, C, L)`` sequences or ``(N, F)`` features. Labels are integer classes
  ``0..K-1``. Features (``(N, F)``) are standardised per feature, other shapes per
  channel (axis 1), with the train split's statistics.
* **A function** (``dataset: mypkg.data:make``): called with ``seed=`` and
  ``input_size=`` where it takes them, it returns ``(train, valid, test)`` torch
  ``Dataset`` s (or a dict with those keys and an optional ``num_classes``) whose items
  are ``(x, label)``. They are stacked into tensors as given (no standardisation).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raynas.data.splits import DataSplits
from raynas.errors import ArgumentError, DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# ------------------------------------------------------------------ shared helpers
def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str, where: str):
    """Hold ``fraction`` of (x, y) out, stratified by class: (kept_x, kept_y, out_x, out_y)."""
    from sklearn.model_selection import train_test_split

    try:
        kept_x, out_x, kept_y, out_y = train_test_split(
            x, y, test_size=fraction, stratify=y, random_state=seed)
    except ValueError as exc:
        counts = np.bincount(y)
        raise DatasetError(
            f"{where}: cannot hold out a stratified {what} split of {fraction:.0%} from "
            f"{len(y)} examples (smallest class: {counts[counts > 0].min()} examples; need "
            f"at least 2 per class and a split with room for every class): {exc}") from None
    return kept_x, kept_y, out_x, out_y


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1
            and valid_fraction + test_fraction < 1):
        raise ArgumentError(
            f"valid_fraction and test_fraction must be in (0, 1) with a sum below 1, got "
            f"{valid_fraction} and {test_fraction}")


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Standardise with the train split's statistics: per feature for ``(N, F)``,
    per channel (axis 1) otherwise."""
    axes = (0,) if train.ndim == 2 else tuple(a for a in range(train.ndim) if a != 1)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _splits(name: str, parts: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int,
            augment: bool = False) -> DataSplits:
    (tx, ty), (vx, vy), (sx, sy) = parts
    t = torch.from_numpy
    return DataSplits(name=name, train_x=t(np.ascontiguousarray(tx)), train_y=t(ty),
                      valid_x=t(np.ascontiguousarray(vx)), valid_y=t(vy),
                      test_x=t(np.ascontiguousarray(sx)), test_y=t(sy),
                      num_classes=num_classes, augment=augment)


# -------------------------------------------------------------------- image folder
def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_images(root: Path, classes: list[str], input_size: int
                 ) -> tuple[list[np.ndarray], np.ndarray, bool]:
    from PIL import Image, UnidentifiedImageError

    images, labels, colour = [], [], False
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing class folder (the other split has "
                               f"class {name!r})")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"{folder}: class {name!r} has no images (expected "
                               f"{', '.join(IMAGE_SUFFIXES)} files)")
        for path in files:
            try:
                with Image.open(path) as image:
                    image.load()
                    colour = colour or image.mode not in ("L", "1", "I", "I;16", "F", "LA")
                    images.append(image.convert("RGB").resize(
                        (input_size, input_size), Image.Resampling.BILINEAR))
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DatasetError(f"{path}: not a readable image ({exc})") from None
            labels.append(label)
    return images, np.asarray(labels, dtype=np.int64), colour


def _to_array(images: list, colour: bool) -> np.ndarray:
    arrays = [np.asarray(im.convert("RGB") if colour else im.convert("L"), dtype=np.float32)
              for im in images]
    x = np.stack(arrays) / 255.0
    return x.transpose(0, 3, 1, 2) if colour else x[:, None]


def load_image_folder(path: str | Path, input_size: int = 32, valid_fraction: float = 0.2,
                      test_fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """Images in ``path/<class>/`` (or ``path/train/<class>/`` and ``path/test/<class>/``)
    as :class:`DataSplits` of shape ``(N, C, input_size, input_size)``; see the module
    docstring for the layout and the splits.

    Example:
        >>> data = load_image_folder("my_images", input_size=32)     # doctest: +SKIP
        >>> data.num_classes, data.train_x.shape[1:]                   # doctest: +SKIP
        (3, torch.Size([3, 32, 32]))
    """
    root = Path(path).expanduser()
    _check_fractions(valid_fraction, test_fraction)
    if input_size < 1:
        raise ArgumentError(f"input_size must be >= 1, got {input_size}")
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found (expected one sub-folder of "
                           "images per class)")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split else root
    classes = [p.name for p in _class_folders(train_root)]
    if len(classes) < 2:
        raise DatasetError(f"{train_root}: expected one sub-folder per class, at least two; "
                           f"found {len(classes)} ({', '.join(classes) or 'none'})")
    images, y, colour = _read_images(train_root, classes, input_size)
    if split:
        extra = sorted(set(p.name for p in _class_folders(root / "test")) - set(classes))
        if extra:
            raise DatasetError(f"{root / 'test'}: classes {extra} are not in "
                               f"{train_root}")
        test_images, test_y, test_colour = _read_images(root / "test", classes, input_size)
        colour = colour or test_colour
        x, test_x = _to_array(images, colour), _to_array(test_images, colour)
    else:
        x, y, test_x, test_y = _split(_to_array(images, colour), y, test_fraction, seed,
                                      "test", str(root))
        valid_fraction = valid_fraction / (1 - test_fraction)
    train_x, train_y, valid_x, valid_y = _split(x, y, valid_fraction, seed, "validation",
                                                str(root))
    train_x, valid_x, test_x = _standardise(train_x, valid_x, test_x)
    return _splits(root.name, [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)],
                   len(classes))


# ------------------------------------------------------------------------ .npz arrays
def _labels(y: np.ndarray, key: str, where: str) -> np.ndarray:
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or (
            np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0))):
        raise DatasetError(f"{where}: {key!r} must be a 1-D array of integer class labels, "
                           f"got shape {y.shape} and dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{where}: {key!r} has negative labels; classes are 0..K-1")
    return y.astype(np.int64)


def load_arrays(path: str | Path, valid_fraction: float = 0.2, test_fraction: float = 0.2,
                seed: int = 0) -> DataSplits:
    """Arrays of an ``.npz`` file (``x``, ``y`` and optional ``x_valid``/``y_valid``,
    ``x_test``/``y_test``) as :class:`DataSplits`; see the module docstring.

    Example:
        >>> data = load_arrays("features.npz")                         # doctest: +SKIP
        >>> data.train_x.shape[1:]                                     # doctest: +SKIP
        torch.Size([20])
    """
    file = Path(path).expanduser()
    _check_fractions(valid_fraction, test_fraction)
    if not file.is_file():
        raise DatasetError(f"{file}: .npz file not found (expected arrays x and y)")
    import zipfile

    if not zipfile.is_zipfile(file):  # np.load would read any other file as a pickle
        raise DatasetError(f"{file}: not a readable .npz archive (not a zip file; save "
                           "it with numpy.savez)")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:
        raise DatasetError(f"{file}: holds object arrays, which are not loaded (nothing "
                           f"in a data file may run); save numeric arrays ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{file}: not a readable .npz archive ({exc})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DatasetError(f"{file}: missing array(s) {missing}; expected x and y (and "
                           f"optionally x_valid/y_valid, x_test/y_test); found "
                           f"{sorted(arrays) or 'none'}")
    parts = {}
    for split in ("", "_valid", "_test"):
        xk, yk = f"x{split}", f"y{split}"
        if (xk in arrays) != (yk in arrays):
            raise DatasetError(f"{file}: {xk} and {yk} come together; found only "
                               f"{xk if xk in arrays else yk}")
        if xk not in arrays:
            continue
        x, y = arrays[xk], _labels(arrays[yk], yk, str(file))
        if not np.issubdtype(x.dtype, np.number) or x.ndim < 2:
            raise DatasetError(f"{file}: {xk!r} must be a numeric array of shape (N, ...) "
                               f"with N examples, got shape {x.shape} and dtype {x.dtype}")
        if len(x) != len(y) or len(x) == 0:
            raise DatasetError(f"{file}: {xk} has {len(x)} examples and {yk} {len(y)} "
                               "labels; they must match and not be empty")
        if parts and x.shape[1:] != parts["x"][0].shape[1:]:
            raise DatasetError(f"{file}: {xk} has examples of shape {x.shape[1:]}, x of "
                               f"{parts['x'][0].shape[1:]}")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"{file}: {xk} holds NaN or infinite values")
        parts["x" + split] = (x.astype(np.float32), y)
    x, y = parts["x"]
    if "x_test" in parts:
        test_x, test_y = parts["x_test"]
    else:
        x, y, test_x, test_y = _split(x, y, test_fraction, seed, "test", str(file))
        valid_fraction = valid_fraction / (1 - test_fraction)
    if "x_valid" in parts:
        valid_x, valid_y = parts["x_valid"]
        train_x, train_y = x, y
    else:
        train_x, train_y, valid_x, valid_y = _split(x, y, valid_fraction, seed, "validation",
                                                    str(file))
    num_classes = int(max(train_y.max(), valid_y.max(), test_y.max())) + 1
    if len(np.unique(train_y)) < 2:
        raise DatasetError(f"{file}: the train split has one class; need at least two")
    train_x, valid_x, test_x = _standardise(train_x, valid_x, test_x)
    return _splits(file.stem, [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)],
                   num_classes)


# ------------------------------------------------------------------ a user function
def is_entrypoint(name: str) -> bool:
    """Whether ``name`` reads as ``module:function`` (``mypkg.data:make``)."""
    module, _, function = name.partition(":")
    return bool(module and function) and all(
        part.isidentifier() for part in (*module.split("."), *function.split(".")))


def load_entrypoint(name: str, what: str) -> Any:
    """Import ``module:function`` (``what`` names it in errors, e.g. "dataset")."""
    import importlib

    if not is_entrypoint(name):
        raise ArgumentError(f"{what} {name!r}: expected module:function, e.g. mypkg.data:make")
    module_name, _, attr = name.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArgumentError(f"{what} {name!r}: cannot import {module_name} ({exc}); is it "
                            "installed or on PYTHONPATH?") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ArgumentError(f"{what} {name!r}: {module_name} has no {attr}")
        target = getattr(target, part)
    if not callable(target):
        raise ArgumentError(f"{what} {name!r}: {attr} is not callable")
    return target


def _stack(dataset: Any, split: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        n = len(dataset)
    except TypeError:
        raise DatasetError(f"{where}: the {split} split is not a sized Dataset "
                           f"(got {type(dataset).__name__})") from None
    if n == 0:
        raise DatasetError(f"{where}: the {split} split is empty")
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DatasetError(f"{where}: item {i} of the {split} split is not an "
                               f"(x, label) pair (got {type(item).__name__})")
        xs.append(torch.as_tensor(item[0], dtype=torch.float32).numpy())
        ys.append(int(item[1]))
    shapes = {x.shape for x in xs}
    if len(shapes) != 1:
        raise DatasetError(f"{where}: the {split} split's examples have different shapes "
                           f"{sorted(shapes)[:3]}")
    return np.stack(xs), _labels(np.asarray(ys), f"{split} labels", where)


def load_function_dataset(name: str, seed: int = 0, input_size: int | None = None
                          ) -> DataSplits:
    """The splits a user's ``module:function`` returns; see the module docstring."""
    make = load_entrypoint(name, "dataset")
    params = inspect.signature(make).parameters
    kwargs = {k: v for k, v in (("seed", seed), ("input_size", input_size))
              if k in params and v is not None}
    returned = make(**kwargs)
    num_classes = None
    if isinstance(returned, dict):
        missing = [k for k in ("train", "valid", "test") if k not in returned]
        if missing:
            raise DatasetError(f"dataset {name}: the returned dict lacks {missing}")
        num_classes = returned.get("num_classes")
        returned = (returned["train"], returned["valid"], returned["test"])
    if not isinstance(returned, (tuple, list)) or len(returned) != 3:
        raise DatasetError(f"dataset {name}: expected (train, valid, test) Datasets or a "
                           f"dict with those keys, got {type(returned).__name__}")
    parts = [_stack(d, s, f"dataset {name}") for d, s in zip(returned, ("train", "valid",
                                                                         "test"))]
    if len({p[0].shape[1:] for p in parts}) != 1:
        raise DatasetError(f"dataset {name}: the splits' examples differ in shape")
    seen = int(max(p[1].max() for p in parts)) + 1
    if num_classes is not None and int(num_classes) < seen:
        raise DatasetError(f"dataset {name}: num_classes={num_classes} but labels go up "
                           f"to {seen - 1}")
    return _splits(name.rpartition(":")[2], parts, int(num_classes or seen))
