"""MLflow tracking of searches: in-process searches and real-training Tune searches.

* :class:`MlflowTracker` — a :class:`~raynas.search.Callback` for ``Search``: one
  parent run with params (space, policy and its hyperparameters, evaluator,
  budget, seed, raynas version), the git commit as a tag, metrics by step (the
  incumbent's search/report metrics, evaluations so far, and each architecture's
  metrics as ``arch/<metric>``, batched with ``log_batch``), and the
  ``history.parquet`` and ``progress.png`` artifacts.
* :class:`MlflowTuneCallback` — a ``ray.tune.Callback`` for real-training searches,
  run in the driver: the same parent run, plus one nested child run per trial
  (``mlflow.parentRunId``) with the arch string as a param and per-epoch metrics,
  logged by the callback or, with :class:`TrialTracking`, by the trials themselves.

The tracking URI defaults to ``sqlite:///<abs out_dir>/mlflow.db`` (artifacts in
``<out_dir>/mlartifacts``); any URI works, e.g. ``http://127.0.0.1:5000``. If MLflow
fails (a server down, a full disk), the search goes on: the tracker warns once and
appends what it could not send to ``<out_dir>/mlflow-pending.jsonl`` (each record with
its experiment); :func:`replay_pending` (``raynas report --sync``) sends it later, and
can be retried safely. A tracking server is probed once with a
:data:`PROBE_SECONDS` timeout before the first call: one that does not answer costs
seconds, and the search goes on with the pending file at once. For a server that
answered, raynas lowers MLflow's HTTP retries and timeout
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2``, ``MLFLOW_HTTP_REQUEST_TIMEOUT=20``) unless they
are set. A resumed table search continues its parent run (the id is in the search's
checkpoint) and sends what had not reached MLflow. Credentials in URIs are never
printed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback as TuneCallback

from raynas import __version__
from raynas.errors import TrackingError, WriteError, require
from raynas.files import write_atomically, write_text
from raynas.front_report import FrontSpec, front_hypervolume, hypervolume_curve, write_front_files
from raynas.pareto import hypervolume
from raynas.search.callbacks import Callback

if TYPE_CHECKING:
    from raynas.search.search import Search

logger = logging.getLogger(__name__)

PENDING_FILE = "mlflow-pending.jsonl"
TUNE_STATE_FILE = "mlflow-tune-state.json"
DEFAULT_EXPERIMENT = "raynas"
PARENT_TAG = "mlflow.parentRunId"
OUT_DIR_TAG = "raynas.out_dir"
_LOCAL = "local-"  # id prefix of runs not created in MLflow (yet)
_BATCH = 900  # MLflow accepts up to 1000 metrics per log_batch
PROBE_SECONDS = 3.0  # how long the first request to a tracking server may take


def redact(uri: str) -> str:
    """``uri`` with any ``user:password@`` removed, for messages."""
    return re.sub(r"//[^/@]+@", "//***@", uri)


def default_uri(out_dir: str | Path) -> str:
    """The default tracking store: SQLite inside ``out_dir``, as an absolute URI."""
    return f"sqlite:///{(Path(out_dir).resolve() / 'mlflow.db').as_posix()}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowLogger:
    """A tree of MLflow runs in one experiment, with a warn-once local fallback.

    Every method returns normally whatever MLflow does; what could not be sent is
    appended to ``<out_dir>/mlflow-pending.jsonl``.
    """

    def __init__(self, out_dir: str | Path, tracking_uri: str | None = None,
                 experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.tracking_uri = tracking_uri or default_uri(self.out_dir)
        self.experiment = experiment
        self.failed = False
        self._client = None
        self._experiment_id: str | None = None
        self._probed: bool | None = None  # whether the server answered the first request
        self._probe_error = ""

    def _pending(self, record: dict[str, Any]) -> None:
        path = self.out_dir / PENDING_FILE
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps({**record, "experiment": self.experiment}) + "\n")
        except OSError as exc:
            raise WriteError(path, exc) from exc

    def _try(self, record: dict[str, Any], fn, *args, **kwargs):
        """Run ``fn`` unless tracking already failed or ``record`` is about a run that
        exists only locally; otherwise (or if ``fn`` fails) keep ``record`` for replay."""
        local_run = "start" not in record and str(record.get("run_id", "")).startswith(_LOCAL)
        if not self.failed and not local_run:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - tracking must never stop a search
                self.failed = True
                logger.warning(
                    "MLflow tracking at %s failed (%s: %s); the search goes on and pending "
                    "records go to %s", redact(self.tracking_uri), type(exc).__name__,
                    redact(str(exc))[:200], self.out_dir / PENDING_FILE,
                )
        self._pending(record)
        return None

    def _probe(self) -> None:
        """One quick request to a tracking server before anything else: an unreachable
        server is found in seconds, not after minutes of MLflow's retries with back-off."""
        if self._probed is None:
            import requests

            try:
                requests.get(f"{self.tracking_uri.rstrip('/')}/health", timeout=PROBE_SECONDS)
                self._probed = True
            except requests.RequestException as exc:
                self._probed = False
                self._probe_error = f"{type(exc).__name__}: {redact(str(exc))[:200]}"
        if not self._probed:
            raise ConnectionError(f"the tracking server does not answer ({self._probe_error})")

    def _connect(self) -> None:
        mlflow = require("mlflow", "dev")
        if self.tracking_uri.startswith(("http://", "https://")):
            self._probe()
            # A server that dies mid-search should cost seconds per call, not minutes.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            self._experiment_id = experiment.experiment_id
            return
        location = None
        if self.tracking_uri.startswith("sqlite:"):
            location = (self.out_dir / "mlartifacts").as_uri()
        self._experiment_id = self._client.create_experiment(self.experiment, location)

    @property
    def client(self):
        """The MLflow client, connected (and the experiment created) on first use."""
        if self._client is None:
            self._connect()
        return self._client

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks: drop the connection
        return {**self.__dict__, "_client": None, "_probed": None}

    def _create(self, params, tags, run_name):
        from mlflow.entities import Param

        run = self.client.create_run(self._experiment_id, tags=tags, run_name=run_name)
        if params:
            self.client.log_batch(run.info.run_id, params=[
                Param(k, str(v)[:6000]) for k, v in params.items()
            ])
        return run.info.run_id

    def start_run(self, params: dict[str, Any], tags: dict[str, str],
                  run_name: str | None = None, parent: str | None = None) -> str:
        """Create a run (nested under ``parent`` if given); return its id."""
        tags = {**tags, **({PARENT_TAG: parent} if parent else {})}
        local = f"{_LOCAL}{uuid.uuid4().hex}"
        record = {"run_id": local, "start": {"params": params, "tags": tags, "name": run_name}}
        if parent is not None and parent.startswith(_LOCAL):
            self._pending(record)  # the parent is pending: so is its child
            return local
        run_id = self._try(record, self._create, params, tags, run_name)
        return run_id or local

    def log_metrics(self, run_id: str, metrics: list[tuple[str, float, int, int]]) -> None:
        """``(key, value, timestamp_ms, step)`` tuples, sent in batches."""
        from mlflow.entities import Metric

        for i in range(0, len(metrics), _BATCH):
            chunk = metrics[i : i + _BATCH]
            self._try({"run_id": run_id, "metrics": chunk}, lambda c=chunk: self.client.log_batch(
                run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in c]))

    def log_artifact(self, run_id: str, path: str | Path) -> None:
        self._try({"run_id": run_id, "artifact": str(path)},
                  lambda: self.client.log_artifact(run_id, str(path)))

    def log_model(self, run_id: str, model_dir: str | Path, registered_name: str | None) -> None:
        """Attach a saved MLflow model folder to the run as ``model/`` and, if
        ``registered_name`` is given, register it as that model's next version."""
        self._try({"run_id": run_id, "model": str(model_dir), "register": registered_name},
                  self._log_model, run_id, model_dir, registered_name)

    def _log_model(self, run_id: str, model_dir: str | Path, registered_name: str | None) -> None:
        from mlflow.exceptions import MlflowException

        self.client.log_artifacts(run_id, str(model_dir), "model")
        if not registered_name:
            return
        try:
            self.client.create_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        versions = self.client.search_model_versions(f"name = '{registered_name}'")
        if any(v.run_id == run_id for v in versions):
            return  # registered already (a replay after a partial one)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        self.client.create_model_version(registered_name, source, run_id=run_id)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._try({"run_id": run_id, "end": status},
                  lambda: self.client.set_terminated(run_id, status))

    def reopen(self, run_id: str) -> int:
        """Mark a run of an interrupted search RUNNING again; return the last
        ``evaluations`` step it recorded (what a resumed search need not send again)."""
        self._try({"run_id": run_id, "reopen": True},
                  lambda: self.client.update_run(run_id, status="RUNNING"))
        if self.failed or run_id.startswith(_LOCAL):
            return 0
        try:
            steps = [m.step for m in self.client.get_metric_history(run_id, "evaluations")]
        except Exception:  # noqa: BLE001 - then everything is sent again (MLflow dedupes)
            return 0
        return max(steps, default=0)

    def last_value(self, run_id: str, key: str) -> float | None:
        """The value of ``key`` at the run's last step (``None``: none, or unreachable)."""
        if self.failed or run_id.startswith(_LOCAL):
            return None
        try:
            history = self.client.get_metric_history(run_id, key)
        except Exception:  # noqa: BLE001 - then the value is logged again
            return None
        return max(history, key=lambda m: (m.step, m.timestamp)).value if history else None


def search_params(space, policy, evaluator, budget: dict[str, Any]) -> dict[str, Any]:
    """The parent run's params."""
    return {
        "space": json.dumps(space.describe()),
        "policy": policy.name,
        **{f"policy.{k}": v for k, v in policy.hyperparameters().items()},
        "seed": policy.seed,
        "evaluator": json.dumps(evaluator.describe()),
        "budget": json.dumps(budget),
        "raynas_version": __version__,
    }


def search_tags(search_metric: str) -> dict[str, str]:
    tags = {"raynas.search_metric": search_metric}
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


class MlflowTracker(Callback):
    """Log an in-process :class:`~raynas.search.Search` to MLflow (see the module doc).

    Every metric of every architecture goes to the ``history.parquet`` artifact; as
    MLflow metric series (``arch/<metric>``, step = query) go only ``arch_metrics``,
    by default the search metric, since each value costs a database row. Progress
    metrics (``best/<metric>`` when the incumbent changes, ``evaluations`` once per
    batch) go in the same batches: one ``log_batch`` when ``flush_size`` values are
    pending or ``flush_seconds`` have passed (each call costs a database transaction).

    Args:
        out_dir: Results folder (default store and fallback file live here).
        tracking_uri: MLflow tracking URI; default :func:`default_uri`.
        experiment: Experiment name (created if missing).
        run_name: Name of the parent run.
        flush_seconds: Longest wait before pending metrics are sent.
        flush_size: Pending metric values that trigger a send.
        arch_metrics: Metrics logged per architecture; ``None``: the search metric.
        front: For multi-objective searches: log ``hypervolume`` with every batch and
            the ``pareto.parquet`` / ``pareto.png`` artifacts at the end.
        true_front: ``(n, 2)`` points (report metrics) of the true front, drawn dashed;
            ``hypervolume_ratio`` (the front's share of the true front's) is logged too.
        child_runs: Also give every evaluated architecture a nested child run (its arch
            as a param, its metrics); off by default: each costs a few database
            transactions, which thousands of table lookups should not pay.

    Example:
        >>> tracker = MlflowTracker("results/run1")                              # doctest: +SKIP
        >>> Search(space, policy, evaluator, budget, callbacks=[tracker]).run()  # doctest: +SKIP
    """

    def __init__(self, out_dir: str | Path, tracking_uri: str | None = None,
                 experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                 flush_seconds: float = 5.0, flush_size: int = 500,
                 arch_metrics: tuple[str, ...] | None = None,
                 front: FrontSpec | None = None, true_front=None,
                 child_runs: bool = False) -> None:
        self.mlflow = MlflowLogger(out_dir, tracking_uri, experiment)
        self.child_runs = child_runs
        self.out_dir = self.mlflow.out_dir
        self.tracking_uri = self.mlflow.tracking_uri
        self.run_name = run_name
        self.flush_seconds, self.flush_size = flush_seconds, flush_size
        self.arch_metrics = arch_metrics
        self.front, self.true_front = front, true_front
        self._true_volume = None
        if front is not None and true_front is not None:
            self._true_volume = hypervolume(true_front, front.directions, front.reference)
        self._last_flush = time.monotonic()
        self.run_id: str | None = None
        self._metrics: list[tuple[str, float, int, int]] = []
        self._best: float | None = None  # the last best/<search metric> logged
        self._sent = 0  # queries the run already had when the search resumed
        # Queries this tracker has queued: what ``evaluations`` says, so that it never
        # claims one whose metrics it has not got (an interrupt between the search's
        # checkpoint and this callback); a resume sends everything after it.
        self._told = 0

    def _flush(self, search: Search) -> None:
        now = _now_ms()
        self._metrics.append(("evaluations", float(self._told), now, self._told))
        if self.front is not None:
            volume = front_hypervolume(search.history.to_arrow(), self.front)
            self._metrics.append(("hypervolume", volume, now, search.queries))
            if self._true_volume:
                self._metrics.append(("hypervolume_ratio", volume / self._true_volume, now,
                                      search.queries))
        self.mlflow.log_metrics(self.run_id, self._metrics)
        self._metrics = []
        self._last_flush = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        """Kept in the search's checkpoint: a resumed search continues the same run."""
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    def on_search_start(self, search: Search) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.run_id is not None:  # resumed: the same parent run, and what it missed
            self._sent = self._told = self.mlflow.reopen(self.run_id)
            self._best = self.mlflow.last_value(self.run_id,
                                                f"best/{search.evaluator.search_metric}")
            self.on_step(search, search.history.rows)
            return
        params = search_params(search.space, search.policy, search.evaluator,
                               dict(vars(search.budget)))
        self.run_id = self.mlflow.start_run(params, search_tags(search.evaluator.search_metric),
                                            self.run_name)

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        now, step = _now_ms(), search.queries
        keys = self.arch_metrics or (search.evaluator.search_metric,)
        for row in rows:
            if not row["cached"] and row["query"] > self._sent:
                self._metrics += [(f"arch/{k}", float(row[k]), now, row["query"])
                                  for k in keys if isinstance(row.get(k), (int, float))]
                self._told = max(self._told, row["query"])
                if self.child_runs:
                    self._child_run(row, now)
        if search.incumbent is not None and search.incumbent[1] != self._best:
            self._best = search.incumbent[1]
            best = search.incumbent_metrics()
            self._metrics += [(f"best/{k}", float(best[k]), now, step)
                              for k in (search.evaluator.search_metric,
                                        search.evaluator.report_metric) if k in best]
        if (len(self._metrics) >= self.flush_size
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self._flush(search)

    def _child_run(self, row: dict[str, Any], now: int) -> None:
        child = self.mlflow.start_run({"arch": row["arch"]}, {"raynas.query": str(row["query"])},
                                      f"query_{row['query']}", parent=self.run_id)
        metrics = [(k, float(v), now, 0) for k, v in row.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("step", "query")]
        self.mlflow.log_metrics(child, metrics)
        self.mlflow.end_run(child, "FINISHED" if row["status"] == "ok" else "FAILED")

    def on_search_end(self, search: Search) -> None:
        self._flush(search)
        history = self.out_dir / "history.parquet"
        if search.out_dir != self.out_dir or not history.exists():
            search.history.save(history)
        plot = self.out_dir / "progress.png"
        table = search.history.to_arrow()
        write_progress_plot(table, search.evaluator.search_metric,
                            search.evaluator.report_metric, plot, self.front)
        artifacts = [history, plot]
        if self.front is not None:
            artifacts += write_front_files(table, self.front, self.out_dir, self.true_front)
        for path in artifacts:
            self.mlflow.log_artifact(self.run_id, path)
        # interrupted (or failed): KILLED until a resume continues this run
        self.mlflow.end_run(self.run_id, "FINISHED" if search.completed else "KILLED")


class MlflowTuneCallback(TuneCallback):
    """Log a real-training Tune search live from the driver: a parent run for the
    search, a nested child run per trial with its arch and per-epoch metrics.

    Args:
        mlflow: The run logger.
        params: The parent run's params (see :func:`search_params`).
        tags: The parent run's tags.
        run_name: Name of the parent run.
        front: For multi-objective searches: log the front's ``hypervolume`` after
            every finished trial.
        child_runs: A child run per trial, with per-epoch metrics; without, each
            trial's final metrics go to the parent run as ``arch/<metric>`` (step: the
            trial's rank of completion).
        trials_log: The trials log their own child runs from their workers
            (:class:`TrialTracking`); the callback then keeps only the parent run.
    """

    def __init__(self, mlflow: MlflowLogger, params: dict[str, Any], tags: dict[str, str],
                 run_name: str | None = None, front: FrontSpec | None = None,
                 child_runs: bool = True, trials_log: bool = False) -> None:
        self.mlflow = mlflow
        self.params, self.tags, self.run_name = params, tags, run_name
        self.front = front
        self.child_runs, self.trials_log = child_runs, trials_log
        self.parent: str | None = None
        self.children: dict[str, str] = {}
        self.best: float | None = None
        self.finished = 0
        self.closed: list[str] = []  # trial ids counted as finished
        self.points: list[dict[str, float]] = []  # finished trials' front metrics
        self._opening: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; a thread does not pickle.
        if self._opening is not None:
            self.ensure_parent()
        return {**self.__dict__, "_opening": None}

    def open_in_background(self) -> None:
        """Open the store and the parent run in a background thread (a new SQLite
        store takes seconds to create), so trials start meanwhile; the first use
        of the parent run waits for it."""
        if self.parent is None and self._opening is None:
            self._opening = threading.Thread(target=self._open_parent, name="raynas-mlflow-open",
                                             daemon=True)
            self._opening.start()

    def ensure_parent(self) -> str:
        """The search's parent run: the one tagged with this results folder, or a new one."""
        if self._opening is not None:
            self._opening.join()
            self._opening = None
        if self.parent is None:
            self._open_parent()
        return self.parent

    def _open_parent(self) -> None:
        if self.parent is None:
            folder = str(self.mlflow.out_dir)
            try:
                experiment = self.mlflow.client.get_experiment_by_name(self.mlflow.experiment)
                runs = self.mlflow.client.search_runs(
                    [experiment.experiment_id],
                    filter_string=f"tags.`{OUT_DIR_TAG}` = '{folder}'", max_results=1,
                )
            except Exception:  # noqa: BLE001 - start_run below records the failure
                runs = []
            if runs:
                self.parent = runs[0].info.run_id
            else:
                tags = {**self.tags, OUT_DIR_TAG: folder}
                self.parent = self.mlflow.start_run(self.params, tags, self.run_name)

    def setup(self, **info) -> None:
        state = self._state_file()
        if state.is_file():  # a restored search: keep its MLflow runs
            try:
                self.set_state(json.loads(state.read_text()))
            except (ValueError, KeyError, TypeError):
                logger.warning("%s is unreadable; MLflow runs of finished trials may repeat",
                               state)
        self.open_in_background()

    def _state_file(self) -> Path:
        return self.mlflow.out_dir / TUNE_STATE_FILE

    def get_state(self) -> None:
        """Nothing goes into Tune's experiment (Tune would pickle it): the state lives in
        ``<out_dir>/mlflow-tune-state.json`` (see :meth:`save_state`)."""
        return None

    def save_state(self) -> None:
        """Write what a restored search needs to keep its MLflow runs (JSON, atomically)."""
        state = {"parent": self.parent, "children": self.children, "best": self.best,
                 "finished": self.finished, "points": self.points, "closed": self.closed}
        write_text(self._state_file(), json.dumps(state))

    def set_state(self, state: dict[str, Any]) -> None:
        self.parent, self.children = state["parent"], dict(state["children"])
        self.best, self.finished = state["best"], state["finished"]
        self.points, self.closed = list(state["points"]), list(state["closed"])

    @property
    def _driver_children(self) -> bool:
        return self.child_runs and not self.trials_log

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if trial.trial_id in self.closed:
            return
        if self._driver_children and trial.trial_id not in self.children:
            self.children[trial.trial_id] = self.mlflow.start_run(
                {"arch": trial.config.get("arch", "")}, {"raynas.trial_id": trial.trial_id},
                run_name=f"trial_{trial.trial_id}", parent=self.ensure_parent(),
            )
            self.save_state()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not self._driver_children or trial.trial_id in self.closed:
            return
        run_id = self.children.get(trial.trial_id)
        if run_id is None:
            self.on_trial_start(iteration, trials, trial)
            run_id = self.children[trial.trial_id]
        now, step = _now_ms(), int(result.get("training_iteration", 0))
        metrics = [(k, float(v), now, step) for k, v in result.items()
                   if k in _TRIAL_METRICS and isinstance(v, (int, float))]
        self.mlflow.log_metrics(run_id, metrics)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._close(trial, "FAILED")

    def _close(self, trial, status: str) -> None:
        if trial.trial_id in self.closed:
            return  # counted already (a restored search may see a trial finish again)
        run_id = self.children.pop(trial.trial_id, None)
        if self._driver_children:
            if run_id is None:
                return  # closed already
            self.mlflow.end_run(run_id, status)
        elif self.trials_log:  # a trial stopped early (ASHA) cannot close its own run
            run_id = find_trial_run(self.mlflow, self.ensure_parent(), trial.trial_id)
            if run_id is not None and self.mlflow.client.get_run(run_id).info.status == "RUNNING":
                self.mlflow.end_run(run_id, status)
        self.closed.append(trial.trial_id)
        self.finished += 1
        last = trial.last_result or {}
        if not self.child_runs:
            self.mlflow.log_metrics(self.ensure_parent(), [
                (f"arch/{k}", float(v), _now_ms(), self.finished) for k, v in last.items()
                if k in _TRIAL_METRICS and k != "epoch" and isinstance(v, (int, float))
            ])
        valid = last.get("valid_acc")
        if valid is not None and (self.best is None or valid > self.best):
            self.best = float(valid)
        metrics = [("evaluations", float(self.finished), _now_ms(), self.finished)]
        if self.best is not None:
            metrics.append(("best/valid_acc", self.best, _now_ms(), self.finished))
        if self.front is not None:
            metrics.append(("hypervolume", self._hypervolume(status, trial.last_result or {}),
                            _now_ms(), self.finished))
        self.mlflow.log_metrics(self.ensure_parent(), metrics)
        self.save_state()

    def _hypervolume(self, status: str, result: dict[str, Any]) -> float:
        import pyarrow as pa

        names = {m for m, _ in self.front.select} | set(self.front.report)
        if status == "FINISHED" and all(isinstance(result.get(n), (int, float)) for n in names):
            self.points.append({n: float(result[n]) for n in names})
        if not self.points:
            return 0.0
        table = pa.Table.from_pylist(self.points).append_column(
            "cached", pa.array([False] * len(self.points))
        ).append_column("status", pa.array(["ok"] * len(self.points)))
        return front_hypervolume(table, self.front)

    def finish(self, artifacts: list[Path], model_dir: Path | None = None,
               registered_name: str | None = None) -> None:
        """Attach the search's artifacts (and the best network's MLflow model, registered
        as ``registered_name``) to the parent run and close it. Called by the driver,
        which may hold a fresh instance after a resume: the run is found by tag."""
        parent = self.ensure_parent()
        for path in artifacts:
            if Path(path).exists():
                self.mlflow.log_artifact(parent, path)
        if model_dir is not None:
            self.mlflow.log_model(parent, model_dir, registered_name)
        self.mlflow.end_run(parent)


TRIAL_TAG = "raynas.trial_id"


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


def find_trial_run(mlflow: MlflowLogger, parent: str, trial_id: str) -> str | None:
    """The id of the child run of ``trial_id`` under ``parent``, if MLflow has one."""
    if parent.startswith(_LOCAL):
        return None
    try:
        experiment = mlflow.client.get_experiment_by_name(mlflow.experiment)
        runs = mlflow.client.search_runs(
            [experiment.experiment_id], max_results=1,
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent}'",
        )
    except Exception:  # noqa: BLE001 - then the trial starts a new run (or records it)
        return None
    return runs[0].info.run_id if runs else None


_TRIAL_METRICS = frozenset({
    "epoch", "train_loss", "valid_acc", "test_acc", "train_seconds", "compute_seconds",
    "params", "flops", "latency_ms",
})


def write_progress_plot(history, search_metric: str, report_metric: str, path: Path,
                        front: FrontSpec | None = None) -> None:
    """The incumbent's search and report metrics vs evaluations; with a ``front``, its
    hypervolume vs evaluations in a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.search.history import incumbent_curve

    search, report = incumbent_curve(history, search_metric, report_metric)
    panels = 2 if front is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0, 0]
    x = range(1, len(search) + 1)
    ax.plot(x, search, label=f"incumbent {search_metric}")
    ax.plot(x, report, label=f"incumbent {report_metric}", linestyle="--")
    ax.set_xlabel("evaluations")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if front is not None:
        curve = hypervolume_curve(history, front)
        ax = axes[0, 1]
        ax.plot(range(1, len(curve) + 1), curve, color="C2")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume (" + ", ".join(front.report) + ")")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def replay_pending(out_dir: str | Path, tracking_uri: str | None = None) -> int:
    """Send the records of ``<out_dir>/mlflow-pending.jsonl`` (and of the trials' own
    ``<out_dir>/tune/trial_*/mlflow-pending.jsonl``) to MLflow; return how many.

    Each record goes to the experiment it was made for. Records of runs that exist go to
    them; runs that were never created are created now (children under their replayed
    parent). Replay is idempotent: its progress is kept in ``mlflow-replay.json``, so a
    replay that fails midway (the server goes down again) continues where it stopped
    when it is retried, and a run it created is found again by its ``raynas.local_id``
    tag rather than created twice; a model version is registered once. The pending files
    are removed once every record is sent.
    """
    out_dir = Path(out_dir).resolve()
    paths = [p for p in [out_dir / PENDING_FILE, *sorted(out_dir.glob(f"tune/trial_*/{PENDING_FILE}"))]
             if p.exists()]
    if not paths:
        return 0
    records = [json.loads(line) for path in paths
               for line in path.read_text().splitlines() if line.strip()]
    progress_path = out_dir / REPLAY_FILE
    progress = {"done": 0, "prefix": "", "runs": {}}
    if progress_path.is_file():
        saved = json.loads(progress_path.read_text())
        if saved.get("prefix") == _digest(records[: saved.get("done", 0)]):
            progress = saved  # the same records as the replay that stopped: go on from there
    uri = tracking_uri or default_uri(out_dir)
    sinks: dict[str, MlflowLogger] = {}
    already = progress["done"]
    for i in range(already, len(records)):
        record = records[i]
        name = record.get("experiment", DEFAULT_EXPERIMENT)
        if name not in sinks:
            sinks[name] = MlflowLogger(out_dir / ".replay", uri, name)
            sinks[name].out_dir = out_dir  # a failure here must not write a second pending file
        try:
            _replay_record(sinks[name], record, progress["runs"])
        except Exception as exc:  # noqa: BLE001 - the server, a moved file: stop, keep the rest
            raise TrackingError(
                f"the sync stopped at record {i + 1} of {len(records)} ({type(exc).__name__}: "
                f"{redact(str(exc))[:200]}); {len(records) - i} record(s) stay pending; retry "
                f"with: raynas report {out_dir} --sync (records already sent are not sent "
                "twice)") from exc
        progress["done"] = i + 1
        progress["prefix"] = _digest(records[: i + 1])
        write_text(progress_path, json.dumps(progress))
    for path in paths:
        path.unlink()
    progress_path.unlink(missing_ok=True)
    return len(records) - already


REPLAY_FILE = "mlflow-replay.json"
LOCAL_ID_TAG = "raynas.local_id"


def _digest(records: list[dict[str, Any]]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def _replay_record(sink: MlflowLogger, record: dict[str, Any], mapping: dict[str, str]) -> None:
    """Send one pending record; ``mapping`` takes local run ids to the real ones."""
    from mlflow.entities import Metric

    run_id = mapping.get(record["run_id"], record["run_id"])
    client = sink.client
    if "start" in record:
        start = record["start"]
        tags = {**start["tags"], LOCAL_ID_TAG: record["run_id"]}
        if PARENT_TAG in tags:
            tags[PARENT_TAG] = mapping.get(tags[PARENT_TAG], tags[PARENT_TAG])
        found = client.search_runs([sink._experiment_id], max_results=1,
                                   filter_string=f"tags.`{LOCAL_ID_TAG}` = '{record['run_id']}'")
        mapping[record["run_id"]] = (found[0].info.run_id if found
                                     else sink._create(start["params"], tags, start["name"]))
    elif "metrics" in record:
        client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in record["metrics"]])
    elif "artifact" in record:
        client.log_artifact(run_id, record["artifact"])
    elif "model" in record:
        sink._log_model(run_id, record["model"], record["register"])
    elif "reopen" in record:
        client.update_run(run_id, status="RUNNING")
    elif "end" in record:
        client.set_terminated(run_id, record["end"])
