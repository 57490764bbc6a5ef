"""What only Tune sees: each training trial's child run with its per-epoch metrics.

The search itself (params, the incumbent, evaluations, each architecture's final
metrics, the artifacts) is logged by the one :class:`~raynas.tracking.MlflowTracker`,
fed by the search state as trials finish. Here:

* :class:`TrialRuns` — a ``ray.tune.Callback`` run in the driver: one nested child run
  per trial (``mlflow.parentRunId`` = the tracker's parent run) with the arch as a
  param and per-epoch metrics; or, with ``trials_log``, only closing the runs that the
  trials log themselves and cannot close (a trial ASHA stopped);
* :class:`TrialTracking` / :class:`TrialRun` — what a trial needs to log its own child
  run from its worker process.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback as TuneCallback

from raynas.files import write_text
from raynas.tracking.client import TRIAL_TAG, MlflowLogger, _now_ms, find_trial_run

logger = logging.getLogger(__name__)

STATE_FILE = "mlflow-tune-state.json"
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
        return Path(self.out_dir) / STATE_FILE

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
            run_name=f"trial_{trial.trial_id}", parent=self.parent(),
        )
        self.save_state()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.trials_log or trial.trial_id in self.closed:
            return
        if trial.trial_id not in self.children:
            self.on_trial_start(iteration, trials, trial)
        now, step = _now_ms(), int(result.get("training_iteration", 0))
        metrics = [(k, float(v), now, step) for k, v in result.items()
                   if k in _TRIAL_METRICS and isinstance(v, (int, float))]
        self.mlflow.log_metrics(self.children[trial.trial_id], metrics)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FAILED")

    def _close(self, trial, status: str) -> None:
        if trial.trial_id in self.closed:
            return  # closed already (a restored search may see a trial finish again)
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
                                                        "trial"}, f"trial_{trial_id}", self.parent)
        return TrialRun(logger_, run_id)


@dataclass
class TrialRun:
    """A trial's child run, logged from the trial (see :class:`TrialTracking`)."""

    mlflow: MlflowLogger
    run_id: str

    def log(self, metrics: dict[str, float], step: int) -> None:
        now = _now_ms()
        self.mlflow.log_metrics(self.run_id, [(k, float(v), now, step) for k, v in metrics.items()
                                              if k in _TRIAL_METRICS])

    def close(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(self.run_id, status)


_TRIAL_METRICS = frozenset({
    "epoch", "train_loss", "valid_acc", "test_acc", "train_seconds", "compute_seconds",
    "params", "flops", "latency_ms",
})


