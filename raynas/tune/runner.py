"""Run a real-training search as Ray Tune trials, resumable, with the raynas history."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from raynas.search.history import History
from raynas.search.search import HISTORY_FILE
from raynas.tune.searcher import ARCH_KEY, PolicySearcher, to_result

if TYPE_CHECKING:
    from ray.tune import ResultGrid

    from raynas.evaluators import TrainingEvaluator
    from raynas.search.policy import Policy
    from raynas.tracking.mlflow import TrialTracking

logger = logging.getLogger(__name__)

EXPERIMENT = "tune"


@dataclass(frozen=True)
class TuneRun:
    """What :func:`run_tune` returns: the raynas history and Tune's own results."""

    history: History
    results: ResultGrid


@dataclass(frozen=True)
class TuneSettings:
    """How Tune runs the trials.

    Attributes:
        num_trials: Architectures to train (Tune trials).
        cpus_per_trial: CPUs reserved per trial (and torch threads).
        gpus_per_trial: GPUs per trial; fractions share one GPU (0.25: four trials).
        max_concurrent_trials: Trials running at once.
        asha: Stop bad trials early with ASHA on the search metric.
        grace_period: ASHA's minimum epochs before stopping a trial.
        max_failures: Retries of a failed trial, each from its last checkpoint.
        checkpoint_every: Epochs between a trial's checkpoints (and after its last).
        keep_checkpoints: Checkpoints kept per trial (``None``: all).
        hyper_controller: A saved hyper-controller (JSON) that adjusts each trial's
            hyperparameters every ``hyper_interval`` epochs (:class:`HyperScheduler`).
        hyper_interval: Epochs between its decisions.
        custom_resources: Custom Ray resources per trial (``{"gpu_node": 1}``): trials
            run only on nodes that declare them.
        storage_path: Where Tune keeps the experiment (``<storage_path>/<out folder
            name>/tune``); ``None``: the results folder. A multi-node cluster needs
            storage every node sees: a shared file system or a cloud URI (``s3://...``).
        autoscaling: The cluster launches nodes on demand: GPUs or custom resources it
            does not have yet are waited for instead of failing the search.
    """

    num_trials: int = 20
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    max_concurrent_trials: int = 2
    asha: bool = False
    grace_period: int = 1
    max_failures: int = 2
    checkpoint_every: int = 1
    keep_checkpoints: int | None = 2
    hyper_controller: str | None = None
    hyper_interval: int = 1
    custom_resources: dict[str, float] = field(default_factory=dict)
    storage_path: str | None = None
    autoscaling: bool = False

    def __post_init__(self) -> None:
        if self.num_trials < 1 or self.max_concurrent_trials < 1:
            raise ValueError("num_trials and max_concurrent_trials must be >= 1")
        if self.max_failures < -1:
            raise ValueError(f"max_failures must be >= -1 (-1: retry forever), got {self.max_failures}")


def _check_resources(settings: TuneSettings) -> None:
    """A GPU or custom-resource request the cluster cannot meet would leave trials
    pending forever; on an autoscaling cluster, nodes that have them may start later."""
    import ray

    wanted = dict(settings.custom_resources)
    if settings.gpus_per_trial > 0:
        wanted["GPU"] = settings.gpus_per_trial
    if not wanted:
        return
    if not ray.is_initialized():
        ray.init()
    have = ray.cluster_resources()
    for name, amount in wanted.items():
        available = have.get(name, 0)
        if available >= amount:
            continue
        if name == "GPU":
            problem = (f"gpus_per_trial={amount:g} but the Ray cluster has {available:g} GPU(s); "
                       "set gpus_per_trial to 0 to train on CPUs")
        else:
            problem = (f"custom_resources needs {name}={amount:g} per trial but the Ray cluster "
                       f"has {available:g}; start nodes with --resources '{{\"{name}\": N}}'")
        if not settings.autoscaling:
            raise ValueError(problem + " (or set resources.autoscaling: true when the cluster "
                             "launches such nodes on demand)")
        logger.warning("%s; waiting for the autoscaler to launch nodes that have it", problem)


def _hyper_scheduler(settings: TuneSettings, evaluator: TrainingEvaluator, out_dir: Path):
    """The HyperScheduler of ``settings.hyper_controller``, checked against what the
    trainable can change and report."""
    from raynas.evaluators.training import HYPERPARAMETERS
    from raynas.policies.hyper_controller import HyperController
    from raynas.tune.hyper_scheduler import HyperScheduler

    path = settings.hyper_controller
    controller = HyperController.load(path)
    unknown = [p.name for p in controller.params if p.name not in HYPERPARAMETERS]
    if unknown:
        raise ValueError(f"{path}: schedules {unknown}, but training trials can only change "
                         f"{list(HYPERPARAMETERS)}")
    reported = {"valid_acc", "test_acc", "train_loss", "lr"}
    missing = sorted(set(controller.metrics) - reported)
    if missing:
        raise ValueError(f"{path}: observes {missing}, which training trials do not report "
                         f"(they report {sorted(reported)})")
    return HyperScheduler(controller, evaluator.epochs, settings.hyper_interval,
                          log_path=out_dir / "hyper_decisions.jsonl")


def tune_storage(out_dir: Path, settings: TuneSettings) -> str:
    """The ``storage_path`` Tune gets for a search in ``out_dir``: the folder itself, or
    ``<settings.storage_path>/<out_dir name>`` (a path or a cloud URI)."""
    if settings.storage_path is None:
        return str(out_dir)
    return f"{settings.storage_path.rstrip('/')}/{out_dir.name}"


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def run_tune(
    policy: Policy,
    evaluator: TrainingEvaluator,
    settings: TuneSettings,
    out_dir: str | Path,
    *,
    verbose: int = 1,
    callbacks: list | None = None,
    trial_tracking: TrialTracking | None = None,
) -> TuneRun:
    """Train ``settings.num_trials`` architectures proposed by ``policy`` as Tune trials.

    Tune's experiment lives in ``<out_dir>/tune``, or under ``settings.storage_path``
    (``result.json``, ``progress.csv``,
    TensorBoard events, checkpoints); ``<out_dir>/history.parquet`` gets one row per
    finished trial. If ``<out_dir>/tune`` holds an unfinished experiment, it is
    restored: the policy's state comes back and unfinished trials resume from
    their checkpoints. ``callbacks`` are extra ``ray.tune.Callback`` s; with
    ``trial_tracking`` every trial logs its own MLflow child run.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from raynas.tune.trainable import make_trainable

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = tune_storage(out_dir, settings)
    experiment = f"{storage}/{EXPERIMENT}"
    trainable = make_trainable(
        evaluator, settings.cpus_per_trial, settings.gpus_per_trial, settings.checkpoint_every,
        trial_tracking, settings.custom_resources,
    )
    objective = policy.objective
    if objective.metric != evaluator.search_metric:
        raise ValueError(
            f"the policy optimises {objective.metric!r} but the evaluator's search metric is "
            f"{evaluator.search_metric!r}"
        )
    _check_resources(settings)
    # Checkpointing every epoch of short trials trips Tune's snapshot-frequency warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if tune.Tuner.can_restore(experiment):
        logger.info("restoring the Tune experiment in %s", experiment)
        tuner = tune.Tuner.restore(
            experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        scheduler = None
        if settings.hyper_controller is not None:
            scheduler = _hyper_scheduler(settings, evaluator, out_dir)
        elif settings.asha:
            scheduler = ASHAScheduler(
                time_attr="training_iteration", max_t=evaluator.epochs,
                grace_period=min(settings.grace_period, evaluator.epochs),
            )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=objective.metric, mode=objective.mode,
                search_alg=PolicySearcher(policy, max_trials=settings.num_trials),
                scheduler=scheduler, num_samples=settings.num_trials,
                max_concurrent_trials=settings.max_concurrent_trials,
                reuse_actors=True, trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=storage, verbose=verbose,
                callbacks=callbacks,
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=settings.keep_checkpoints),
            ),
        )
    results = tuner.fit()
    history = history_from_results(results, evaluator.space)
    history.save(out_dir / HISTORY_FILE)
    return TuneRun(history, results)


def history_from_results(results: ResultGrid, space) -> History:
    """One history row per trial, in order of completion, from Tune's results. Tune
    stamps results to the second; trials finishing within the same second go in
    trial order, so a restored experiment gives the same history."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        config = result.config or {}
        if ARCH_KEY not in config:
            continue
        outcome = to_result(metrics, error=result.error is not None)
        end = float(metrics.get("timestamp", 0.0))
        rows.append((end, str(metrics.get("trial_id", "")), config[ARCH_KEY], outcome,
                     float(metrics.get("time_total_s", 0.0))))
    rows.sort(key=lambda row: row[:2])
    history = History()
    for query, (_, _, arch, outcome, elapsed) in enumerate(rows, start=1):
        space.from_str(arch)  # a foreign experiment folder fails here, loudly
        history.append(step=query - 1, query=query, arch=arch, result=outcome, cached=False,
                       elapsed=elapsed)
    return history
