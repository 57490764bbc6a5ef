"""The best network of a training search, as files other tools can load.

A training search writes, next to ``best/arch.txt``:

* ``best/model.onnx`` — the trained network in ONNX (dynamic batch size, input
  ``images``, output ``logits``): runs in onnxruntime, TensorRT, OpenVINO, ...;
* ``best/weights.pt`` — its ``state_dict`` (tensors only, ``torch.load(...,
  weights_only=True)`` loads it), which :func:`load_network` puts back into
  ``space.build(arch)`` for further training or fine-tuning in torch;
* ``best/mlflow-model/`` (with MLflow tracking) — an MLflow model of the torch
  flavour (``torch.export``'s pt2 format, no pickle) with its input/output signature,
  which the tracker logs and registers (:func:`save_mlflow_model`).
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from raynas.spaces import SearchSpace

ONNX_FILE = "model.onnx"
MLFLOW_MODEL_DIR = "mlflow-model"
WEIGHTS_FILE = "weights.pt"
INPUT_NAME, OUTPUT_NAME = "images", "logits"


def trained_state(results, arch: str) -> dict[str, Any] | None:
    """The training state in the last checkpoint of the Tune trial that trained ``arch``
    (``None`` when no trial of it left a checkpoint)."""
    import torch

    from raynas.tune.trial import STATE_FILE

    for result in results:
        if (result.config or {}).get("arch") == arch and result.checkpoint is not None:
            with result.checkpoint.as_directory() as folder:
                return torch.load(os.path.join(folder, STATE_FILE), weights_only=True)
    return None


def build_trained(space: SearchSpace, arch: str, weights: dict[str, Any], num_classes: int,
                  in_channels: int, input_shape: tuple[int, ...] | None = None
                  ) -> torch.nn.Module:
    """``space.build(arch)`` with the trained ``weights``, in eval mode."""
    model = space.build(space.from_str(arch), num_classes, in_channels, input_shape=input_shape)
    model.load_state_dict(weights)
    return model.eval()


def export_network(model: torch.nn.Module, example: torch.Tensor, folder: str | Path) -> Path:
    """Write ``model`` to ``folder/model.onnx`` (batch size dynamic, traced on ``example``)
    and its weights to ``folder/weights.pt``; return the ONNX file."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)
    path = folder / ONNX_FILE
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    # Otherwise: a line per optimisation pass, torchvision notes, deprecation warnings.
    with _quiet("onnxscript", "onnx_ir", "torch.onnx"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
        )
    return path


@contextmanager
def _quiet(*names: str):
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def save_mlflow_model(model: torch.nn.Module, example: torch.Tensor, folder: str | Path) -> Path:
    """Save ``model`` as an MLflow model in ``folder/mlflow-model`` (torch flavour, pt2
    format) with the signature of ``example`` -> logits; return that folder.

    It loads with ``mlflow.pytorch.load_model`` or ``mlflow.pyfunc.load_model`` (numpy
    batches of any size in, logits out).
    """
    import shutil

    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    path = Path(folder) / MLFLOW_MODEL_DIR
    shutil.rmtree(path, ignore_errors=True)  # a resumed search saves it again
    with torch.no_grad():
        logits = model(example)
    signature = infer_signature(example.numpy(), logits.numpy())
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pytorch.save_model(
            model, str(path), serialization_format="pt2", input_example=example.numpy(),
            signature=signature, pip_requirements=requirements,  # no slow inference
        )
    return path


def load_network(space: SearchSpace, folder: str | Path, num_classes: int,
                 in_channels: int, input_shape: tuple[int, ...] | None = None
                 ) -> torch.nn.Module:
    """The trained torch network of a ``best/`` folder (``arch.txt`` + ``weights.pt``);
    a user's space needs the ``input_shape`` of one example.

    Example::

        model = load_network(NB201Space(channels=8, cells_per_stage=1), "raynas-out/best", 10, 1)
    """
    import torch

    folder = Path(folder)
    arch = (folder / "arch.txt").read_text().strip()
    weights = torch.load(folder / WEIGHTS_FILE, weights_only=True)
    return build_trained(space, arch, weights, num_classes, in_channels, input_shape)
