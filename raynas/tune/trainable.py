"""The function trainable: one Tune trial trains one architecture, epoch by epoch."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import TYPE_CHECKING, Any

from raynas.errors import ArgumentError

if TYPE_CHECKING:
    from raynas.evaluators import TrainingEvaluator
    from raynas.tracking.tune import TrialTracking

STATE_FILE = "state.pt"
SCHEDULED_KEY = "hyper_scheduled"
"""A trial config flag: a hyper-scheduler owns its hyperparameters."""


def train_architecture(
    config: dict[str, Any], evaluator: TrainingEvaluator, checkpoint_every: int = 1,
    tracking: TrialTracking | None = None,
) -> None:
    """Train ``config["arch"]`` with ``evaluator``; report every epoch and checkpoint
    every ``checkpoint_every`` epochs and after the last one.

    Use through :func:`make_trainable`. A retried or restored trial resumes from
    its last checkpoint (``tune.get_checkpoint()``). ``lr``, ``lr_scale``,
    ``weight_decay`` and ``batch_size`` in ``config`` override the evaluator's (``lr``
    starts the cosine schedule, ``lr_scale`` multiplies it); in a trial marked
    ``hyper_scheduled`` a hyper-scheduler owns them: it pauses the trial, changes them
    and resumes it from its checkpoint, and the learning rate stays where it set it
    (or, if it schedules ``lr_scale``, follows the cosine schedule times the scale).
    CPU training uses as many threads as the trial has CPUs; a trial with a GPU trains
    on CUDA. With
    ``tracking``, the trial logs its own MLflow child run (per-epoch metrics).
    """
    import ray
    import torch
    from ray import tune

    from raynas.evaluators.training import HYPERPARAMETERS

    # One "Checkpoint successfully created" line per epoch drowns the trial table.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    arch = evaluator.space.from_str(config["arch"])
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(os.path.join(folder, STATE_FILE), weights_only=True)
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    evaluator.num_threads = max(1, int(cpus))
    # Which Ray node trained each epoch (in result.json): a retried trial may move.
    node = {"node_id": ray.get_runtime_context().get_node_id()}

    run = None
    if tracking is not None:
        run = tracking.open(tune.get_context().get_trial_id(), config["arch"])

    def on_epoch(metrics: dict[str, float], get_state) -> None:
        epoch = int(metrics["epoch"])
        if run is not None:
            run.log(metrics, epoch)
        if epoch % checkpoint_every and epoch != evaluator.epochs:
            tune.report({**metrics, **node})
            return
        with tempfile.TemporaryDirectory() as folder:
            torch.save(get_state(), os.path.join(folder, STATE_FILE))
            tune.report({**metrics, **node}, checkpoint=tune.Checkpoint.from_directory(folder))

    try:
        hyper = {k: config[k] for k in HYPERPARAMETERS if k in config}
        evaluator.fit(arch, on_epoch=on_epoch, state=state, hyper=hyper,
                      scheduled=bool(config.get(SCHEDULED_KEY)))
    except Exception:
        if run is not None:
            run.close("FAILED")
        raise
    if run is not None:
        run.close()


def make_trainable(
    evaluator: TrainingEvaluator, cpus: float = 1, gpus: float = 0, checkpoint_every: int = 1,
    tracking: TrialTracking | None = None, custom_resources: dict[str, float] | None = None,
):
    """The Tune trainable for ``evaluator``: resources per trial, data in the object store.

    Args:
        evaluator: Trains architectures (its data goes to the object store once).
        cpus: CPUs per trial.
        gpus: GPUs per trial; fractions share a GPU (0.25: four trials per GPU).
        checkpoint_every: Epochs between checkpoints (the last epoch always gets one);
            a crashed trial loses at most this many epochs.
        tracking: Each trial logs its own MLflow child run (see
            :class:`~raynas.tracking.tune.TrialTracking`).
        custom_resources: Custom Ray resources per trial (``{"gpu_node": 1}``).
    """
    from ray import tune

    if cpus <= 0 or gpus < 0:
        raise ArgumentError(f"need cpus > 0 and gpus >= 0 per trial, got {cpus} and {gpus}")
    if checkpoint_every < 1:
        raise ArgumentError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    trainable = tune.with_parameters(
        train_architecture, evaluator=evaluator, checkpoint_every=checkpoint_every,
        tracking=tracking,
    )
    resources = {"cpu": cpus, "gpu": gpus}
    if custom_resources:
        resources["custom_resources"] = dict(custom_resources)
    return tune.with_resources(trainable, resources)
