"""One Tune trial: the trainable that trains one architecture, and its MLflow child run.

* :func:`make_trainable` / :func:`train_architecture` — the function trainable: one
  trial trains one architecture epoch by epoch, reporting to Tune by time (and at
  ASHA's rungs, checkpoints and the last epoch) and checkpointing, resuming from its
  last checkpoint when retried or restored;
* :class:`TrialRuns` — a ``ray.tune.Callback`` run in the driver: one nested child run
  per trial (``mlflow.parentRunId`` = the search tracker's parent run) with the arch as
  a param and per-epoch metrics; or, with ``trials_log``, only closing the runs that
  the trials log themselves and cannot close (a trial ASHA stopped);
* :class:`TrialTracking` / :class:`TrialRun` — what a trial needs to log its own child
  run from its worker process.

The search itself (params, the incumbent, evaluations, each architecture's final
metrics, the artifacts) is logged by the one :class:`~raynas.tracking.MlflowTracker`,
fed by the search state as trials finish; this module holds only what Tune sees.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback as TuneCallback

from raynas.errors import ArgumentError
from raynas.files import write_text
from raynas.tracking.client import TRIAL_TAG, MlflowLogger, _now_ms, find_trial_run

if TYPE_CHECKING:
    from raynas.evaluators import TrainingEvaluator

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"
CHECKPOINT_SECONDS = 60.0  # a trial's default checkpoint interval (see ResourcesConfig)
REPORT_SECONDS = 5.0  # a trial's default report interval (see ResourcesConfig)
EPOCH_LOG = "epoch_log"
"""A report's key: the metrics of the epochs since the previous report, as JSON text (a
list of per-epoch dicts, oldest first; text, so that Tune's TensorBoard and CSV
loggers pass it over); the report's own metrics are its last epoch's. Read it with
:func:`unreported_epochs`."""
SCHEDULED_KEY = "hyper_scheduled"
"""A trial config flag: a hyper-scheduler owns its hyperparameters."""


def train_architecture(
    config: dict[str, Any], evaluator: TrainingEvaluator, checkpoint_every: int | None = 1,
    tracking: TrialTracking | None = None, checkpoint_seconds: float = CHECKPOINT_SECONDS,
    report_seconds: float = 0.0, report_epochs: frozenset[int] = frozenset(),
) -> None:
    """Train ``config["arch"]`` with ``evaluator``; checkpoint every ``checkpoint_every``
    epochs (``None``: the first epoch ending ``checkpoint_seconds`` after the last
    checkpoint), and after the last one.

    Reports to Tune: every epoch with ``report_seconds=0``; otherwise the first epoch
    ending ``report_seconds`` after the previous report, and always the epochs in
    ``report_epochs`` (a scheduler's rungs), every checkpoint and the last epoch. Each
    report is its epoch's metrics plus, under :data:`EPOCH_LOG`, those of the epochs
    not reported since the last one (so MLflow still gets every epoch). Each
    ``tune.report`` is a round trip to the driver (about 6 ms): reporting by time
    keeps a trial of many short epochs from paying it every epoch.

    Use through :func:`make_trainable`. A retried or restored trial resumes from
    its last checkpoint (``tune.get_checkpoint()``). ``lr``, ``lr_scale``,
    ``weight_decay`` and ``batch_size`` in ``config`` override the evaluator's (``lr``
    starts the cosine schedule, ``lr_scale`` multiplies it); in a trial marked
    ``hyper_scheduled`` a hyper-scheduler owns them: it pauses the trial, changes them
    and resumes it from its checkpoint (so such a trial checkpoints every epoch), and
    the learning rate stays where it set it (or, if it schedules ``lr_scale``, follows
    the cosine schedule times the scale). CPU training uses as many threads as the trial
    has CPUs; a trial with a GPU trains on CUDA. With ``tracking``, the trial logs its
    own MLflow child run (per-epoch metrics).
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
    scheduled = bool(config.get(SCHEDULED_KEY))
    every = 1 if scheduled else checkpoint_every
    if scheduled:  # the hyper-scheduler decides on every epoch
        report_seconds = 0.0
    last_checkpoint = last_report = time.monotonic()
    unreported: list[dict[str, float]] = []

    run = None
    if tracking is not None:
        run = tracking.open(tune.get_context().get_trial_id(), config["arch"])

    def on_epoch(metrics: dict[str, float], get_state) -> None:
        nonlocal last_checkpoint, last_report, unreported
        epoch = int(metrics["epoch"])
        if run is not None:
            run.log(metrics, epoch)
        now = time.monotonic()
        due = (epoch == evaluator.epochs or (epoch % every == 0 if every else
               now - last_checkpoint >= checkpoint_seconds))
        if not (due or epoch in report_epochs or now - last_report >= report_seconds):
            unreported.append(dict(metrics))
            return
        report = {**metrics, **node}
        if unreported:
            report[EPOCH_LOG] = json.dumps(unreported)
        unreported = []
        if not due:
            tune.report(report)
        else:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(get_state(), os.path.join(folder, STATE_FILE))
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
            last_checkpoint = time.monotonic()
        last_report = time.monotonic()

    try:
        hyper = {k: config[k] for k in HYPERPARAMETERS if k in config}
        evaluator.fit(arch, on_epoch=on_epoch, state=state, hyper=hyper, scheduled=scheduled)
    except Exception:
        if run is not None:
            run.close("FAILED")
        raise
    if run is not None:
        run.close()


def make_trainable(
    evaluator: TrainingEvaluator, cpus: float = 1, gpus: float = 0,
    checkpoint_every: int | None = 1, tracking: TrialTracking | None = None,
    custom_resources: dict[str, float] | None = None, *,
    checkpoint_seconds: float = CHECKPOINT_SECONDS, report_seconds: float = 0.0,
    report_epochs: frozenset[int] | set[int] = frozenset(),
):
    """The Tune trainable for ``evaluator``: resources per trial, data in the object store.

    Args:
        evaluator: Trains architectures (its data goes to the object store once).
        cpus: CPUs per trial.
        gpus: GPUs per trial; fractions share a GPU (0.25: four trials per GPU).
        checkpoint_every: Epochs between checkpoints (the last epoch always gets one);
            a crashed trial loses at most this many epochs. ``None``: by time, the first
            epoch ending ``checkpoint_seconds`` after the last checkpoint.
        tracking: Each trial logs its own MLflow child run (see
            :class:`TrialTracking`).
        custom_resources: Custom Ray resources per trial (``{"gpu_node": 1}``).
        checkpoint_seconds: See ``checkpoint_every``.
        report_seconds: Seconds between a trial's reports to Tune (0: every epoch);
            see :func:`train_architecture`.
        report_epochs: Epochs always reported (a scheduler's rungs).
    """
    from ray import tune

    if cpus <= 0 or gpus < 0:
        raise ArgumentError(f"need cpus > 0 and gpus >= 0 per trial, got {cpus} and {gpus}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ArgumentError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if not checkpoint_seconds > 0:
        raise ArgumentError(f"checkpoint_seconds must be > 0, got {checkpoint_seconds}")
    if not report_seconds >= 0:
        raise ArgumentError(f"report_seconds must be >= 0, got {report_seconds}")
    trainable = tune.with_parameters(
        train_architecture, evaluator=evaluator, checkpoint_every=checkpoint_every,
        tracking=tracking, checkpoint_seconds=checkpoint_seconds,
        report_seconds=float(report_seconds), report_epochs=frozenset(report_epochs),
    )
    resources = {"cpu": cpus, "gpu": gpus}
    if custom_resources:
        resources["custom_resources"] = dict(custom_resources)
    return tune.with_resources(trainable, resources)


# ------------------------------------------------------ MLflow child runs of trials
RUNS_STATE_FILE = "mlflow-tune-state.json"
# The driver's tracker of each results folder. Tune pickles its callbacks with the
# experiment and, on Tuner.restore, drives its unpickled copy: that copy finds the
# search's parent run here (it is never pickled).
_TRACKERS: dict[str, Any] = {}


class TrialRuns(TuneCallback):
    """One MLflow child run per Tune trial, under a tracker's parent run.

    Args:
        tracker: The search's :class:`~raynas.tracking.MlflowTracker`.
        trials_log: The trials log their own child runs from their workers
            (:class:`TrialTracking`); the callback only closes the runs of trials a
            scheduler stopped (a stopped trial cannot close its own run).
    """

    def __init__(self, tracker, trials_log: bool = False) -> None:
        self.mlflow = tracker.mlflow  # one client: one warning, one pending file
        self.out_dir = str(tracker.out_dir)
        self.trials_log = trials_log
        self.children: dict[str, str] = {}
        self.closed: list[str] = []  # trial ids whose runs are closed
        self.buffers: dict[str, EpochMetrics] = {}  # per-epoch metrics not sent yet
        _TRACKERS[self.out_dir] = tracker

    def parent(self) -> str | None:
        """The search's parent run: the driver's tracker's, else the one tagged with the
        results folder (Tune restored the search outside raynas)."""
        tracker = _TRACKERS.get(self.out_dir)
        if tracker is not None:
            return tracker.run_id
        from raynas.tracking.tracker import find_search_run

        return find_search_run(self.mlflow)

    def setup(self, **info) -> None:
        state = self._state_file()
        if state.is_file():  # a restored search: keep its MLflow runs
            try:
                saved = json.loads(state.read_text())
                self.children, self.closed = dict(saved["children"]), list(saved["closed"])
            except (ValueError, KeyError, TypeError):
                logger.warning("%s is unreadable; MLflow runs of finished trials may repeat",
                               state)

    def _state_file(self) -> Path:
        return Path(self.out_dir) / RUNS_STATE_FILE

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks
        return {**self.__dict__, "buffers": {}}

    def get_state(self) -> None:
        """Nothing goes into Tune's experiment (Tune would pickle it): the state lives in
        ``<out_dir>/mlflow-tune-state.json`` (see :meth:`save_state`)."""
        return None

    def save_state(self) -> None:
        """Write what a restored search needs to keep its child runs (JSON, atomically)."""
        write_text(self._state_file(), json.dumps({"children": self.children,
                                                   "closed": self.closed}))

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if trial.trial_id in self.closed or self.trials_log or trial.trial_id in self.children:
            return
        self.children[trial.trial_id] = self.mlflow.start_run(
            {"arch": trial.config.get("arch", "")}, {TRIAL_TAG: trial.trial_id},
            run_name=trial_run_name(trial.config.get("arch", ""), trial.trial_id),
            parent=self.parent(),
        )
        self.save_state()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.trials_log or trial.trial_id in self.closed:
            return
        if trial.trial_id not in self.children:
            self.on_trial_start(iteration, trials, trial)
        run_id = self.children[trial.trial_id]
        buffer = self.buffers.setdefault(trial.trial_id, EpochMetrics(self.mlflow, run_id))
        for metrics in [*unreported_epochs(result), result]:
            buffer.add(metrics, int(metrics.get("epoch", result.get("training_iteration", 0))))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FAILED")

    def _close(self, trial, status: str) -> None:
        if trial.trial_id in self.closed:
            return  # closed already (a restored search may see a trial finish again)
        buffer = self.buffers.pop(trial.trial_id, None)
        if buffer is not None:
            buffer.flush()
        run_id = self.children.pop(trial.trial_id, None)
        if self.trials_log:
            run_id = find_trial_run(self.mlflow, self.parent(), trial.trial_id)
            if run_id is not None and self.mlflow.client.get_run(run_id).info.status != "RUNNING":
                run_id = None
        if run_id is not None:
            self.mlflow.end_run(run_id, status)
        self.closed.append(trial.trial_id)
        self.save_state()


@dataclass(frozen=True)
class TrialTracking:
    """What a Tune trial needs to log its own child run from its worker process.

    The driver creates the experiment and the parent run first and passes absolute
    URIs, so no two trials race to create them (Ray issue #45456). A trial that
    cannot reach MLflow keeps its records in ``<pending_dir>/trial_<id>/mlflow-pending.jsonl``,
    which ``raynas report --sync`` replays with the driver's.

    Attributes:
        tracking_uri: Absolute MLflow tracking URI.
        experiment: Experiment name (already created).
        parent: The search's parent run id.
        pending_dir: Tune's experiment folder (``<out>/tune``).
    """

    tracking_uri: str
    experiment: str
    parent: str
    pending_dir: str

    def open(self, trial_id: str, arch: str) -> TrialRun:
        """The trial's child run: the one a previous attempt of this trial created
        (a retried or restored trial), or a new one."""
        logger_ = MlflowLogger(Path(self.pending_dir) / f"trial_{trial_id}", self.tracking_uri,
                               self.experiment)
        run_id = find_trial_run(logger_, self.parent, trial_id)
        if run_id is None:
            run_id = logger_.start_run({"arch": arch}, {TRIAL_TAG: trial_id, "raynas.logged_from":
                                                        "trial"}, trial_run_name(arch, trial_id),
                                       self.parent)
        return TrialRun(logger_, run_id)


class TrialRun:
    """A trial's child run, logged from the trial (see :class:`TrialTracking`)."""

    def __init__(self, mlflow: MlflowLogger, run_id: str) -> None:
        self.mlflow, self.run_id = mlflow, run_id
        self.metrics = EpochMetrics(mlflow, run_id)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.add(metrics, step)

    def close(self, status: str = "FINISHED") -> None:
        self.metrics.flush()
        self.mlflow.end_run(self.run_id, status)


class EpochMetrics:
    """A child run's per-epoch metrics, sent in batches: at most every
    :data:`FLUSH_SECONDS` and when the trial ends (one MLflow request per batch, not one
    per epoch: Tune waits for the driver's callbacks before a trial's next epoch). The
    architecture's constants (:data:`CONSTANTS`: params, FLOPs, latency) go once, as
    params, not as a flat chart per epoch."""

    def __init__(self, mlflow: MlflowLogger, run_id: str) -> None:
        self.mlflow, self.run_id = mlflow, run_id
        self.pending: list[tuple[str, float, int, int]] = []
        self.sent = time.monotonic()
        self.constants_sent = False

    def add(self, metrics: dict[str, Any], step: int) -> None:
        now = _now_ms()
        self.pending += [(k, float(v), now, step) for k, v in metrics.items()
                         if k in _TRIAL_METRICS and isinstance(v, (int, float))]
        if not self.constants_sent:
            constants = {k: metrics[k] for k in CONSTANTS if k in metrics}
            if constants:
                self.mlflow.log_params(self.run_id, constants)
                self.constants_sent = True
        if time.monotonic() - self.sent >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.mlflow.log_metrics(self.run_id, self.pending)
            self.pending = []
        self.sent = time.monotonic()


def unreported_epochs(result: dict[str, Any]) -> list[dict[str, float]]:
    """The per-epoch metrics a report carries of the epochs before it (:data:`EPOCH_LOG`)."""
    text = result.get(EPOCH_LOG)
    return json.loads(text) if text else []


def trial_run_name(arch: str, trial_id: str) -> str:
    """A child run's name: its architecture, then the trial (MLflow's run list shows
    the name; the trial id is also the run's ``raynas.trial`` tag)."""
    return f"{arch} ({trial_id})" if arch else f"trial_{trial_id}"


FLUSH_SECONDS = 30.0  # a driver-side flush blocks Tune's loop for one MLflow transaction
CONSTANTS = ("params", "flops", "latency_ms")  # the same at every epoch: params, once
_TRIAL_METRICS = frozenset({
    "epoch", "train_loss", "valid_acc", "test_acc", "train_seconds", "compute_seconds",
})

