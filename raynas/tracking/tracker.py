"""One MLflow tracker for every engine, fed by the search state's events.

:class:`MlflowTracker` is a :class:`~raynas.search.Callback`: the in-process
:class:`~raynas.search.Search` (any backend: in process, simulated workers, Ray tasks)
and a Tune search (:func:`raynas.tune.run_tune`, whose searcher records through the
same :class:`~raynas.search.state.SearchState`) call its hooks with the rows the state
records, as they are recorded. One parent run per search holds params (space, policy
and its hyperparameters, evaluator, budget, seed, raynas version), the git commit and
the results folder as tags, metrics by query (the incumbent's search and report
metrics, evaluations so far, each architecture's search metric as ``arch/<metric>``,
the front's hypervolume), and at the end the ``history.parquet`` and ``progress.png``
artifacts (and the front's files). Per-epoch metrics of training trials, which only Tune
sees, go to child runs logged by :class:`raynas.tune.trial.TrialRuns`.

A resumed search continues its parent run (its id is in the search's checkpoint, or,
for a Tune search, found by the results folder's tag) and sends what had not reached
MLflow.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas import __version__
from raynas.objectives.fronts import FrontSpec, front_hypervolume, write_front_files
from raynas.objectives.pareto import hypervolume
from raynas.search.callbacks import Callback
from raynas.tracking.client import DEFAULT_EXPERIMENT, OUT_DIR_TAG, MlflowLogger, _now_ms

if TYPE_CHECKING:
    from raynas.search.search import Search


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


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


BEST_ARCH_TAG = "raynas.best_arch"


def search_tags(search_metric: str) -> dict[str, str]:
    tags = {"raynas.search_metric": search_metric}
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def find_search_run(mlflow: MlflowLogger) -> str | None:
    """The parent run tagged with ``mlflow.out_dir`` (a resumed Tune search's), if any."""
    try:
        experiment = mlflow.client.get_experiment_by_name(mlflow.experiment)
        runs = mlflow.client.search_runs(
            [experiment.experiment_id], max_results=1,
            filter_string=f"tags.`{OUT_DIR_TAG}` = '{mlflow.out_dir}'",
        )
    except Exception:  # noqa: BLE001 - then a new parent run is started (or recorded)
        return None
    return runs[0].info.run_id if runs else None


class MlflowTracker(Callback):
    """Log a search to MLflow, whatever runs it (see the module doc).

    Every metric of every architecture goes to the ``history.parquet`` artifact; as
    MLflow metric series (``arch/<metric>``, step = query) go only ``arch_metrics``,
    by default the search metric, since each value costs a database row. Progress
    metrics (``best/<metric>`` when the incumbent changes, ``evaluations``) go in the
    same batches: one ``log_batch`` when ``flush_size`` values are pending or
    ``flush_seconds`` have passed (each call costs a database transaction).

    The parent run is created in a background thread (a new SQLite store takes seconds
    to create), so evaluations start meanwhile; its first use waits for it.

    Args:
        out_dir: Results folder (default store and fallback file live here).
        tracking_uri: MLflow tracking URI; default :func:`~raynas.tracking.default_uri`.
        experiment: Experiment name (created if missing).
        run_name: Name of the parent run; default ``<policy> on <space> (<results
            folder>)``, so that MLflow's run list says which search each run is.
        flush_seconds: Longest wait before pending metrics are sent.
        flush_size: Pending metric values that trigger a send.
        arch_metrics: Metrics logged per architecture; ``None``: the search metric.
        front: For multi-objective searches: log ``hypervolume`` (step: queries; after
            every query up to 20, then every ~5 % more) and the ``pareto.parquet`` /
            ``pareto.png`` artifacts at the end.
        true_front: ``(n, 2)`` points (report metrics) of the true front, drawn dashed;
            ``hypervolume_ratio`` (the front's share of the true front's) is logged too.
        child_runs: Also give every evaluated architecture a nested child run (its arch
            as a param, its metrics); off by default: each costs a few database
            transactions, which thousands of table lookups should not pay.
        end_with_search: End the parent run when the search ends; ``False`` leaves it
            open for :meth:`finish` (the CLI's driver adds the best network first). An
            interrupted search always marks it ``KILLED`` until a resume continues it.

    Example:
        >>> tracker = MlflowTracker("results/run1")                              # doctest: +SKIP
        >>> Search(space, policy, evaluator, budget, callbacks=[tracker]).run()  # doctest: +SKIP
    """

    def __init__(self, out_dir: str | Path, tracking_uri: str | None = None,
                 experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                 flush_seconds: float = 5.0, flush_size: int = 500,
                 arch_metrics: tuple[str, ...] | None = None,
                 front: FrontSpec | None = None, true_front=None,
                 child_runs: bool = False, end_with_search: bool = True) -> None:
        self.mlflow = MlflowLogger(out_dir, tracking_uri, experiment)
        self.child_runs, self.end_with_search = child_runs, end_with_search
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
        self._run_id: str | None = None
        self._opening: threading.Thread | None = None
        self._open_error: BaseException | None = None
        self._metrics: list[tuple[str, float, int, int]] = []
        self._best: float | None = None  # the last best/<search metric> logged
        # Queries this tracker has queued: what ``evaluations`` says, so that it never
        # claims one whose metrics it has not got (an interrupt between the search's
        # checkpoint and this callback); a resume sends everything after it.
        self._told = 0
        self._volume_at = 0  # the query of the last hypervolume logged

    # ------------------------------------------------------------- the run
    @property
    def run_id(self) -> str | None:
        """The parent run's id (waits for its creation)."""
        if self._opening is not None:
            self._opening.join()
            self._opening = None
            if self._open_error is not None:
                raise self._open_error
        return self._run_id

    def _open(self, params: dict[str, Any], tags: dict[str, str]) -> None:
        try:
            self._run_id = self.mlflow.start_run(params, tags, self.run_name)
        except BaseException as exc:  # noqa: BLE001 - re-raised where the run is first used
            self._open_error = exc

    def state_dict(self) -> dict[str, Any]:
        """Kept in the search's checkpoint: a resumed search continues the same run."""
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._run_id = state.get("run_id")

    # ------------------------------------------------------------ the hooks
    def on_search_start(self, search: Search) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        metric = search.evaluator.search_metric
        if self._run_id is None and getattr(search, "resumed", False):
            self._run_id = find_search_run(self.mlflow)
        if self._run_id is not None:  # resumed: the same parent run, and what it missed
            self._told = self.mlflow.reopen(self._run_id)  # what the run already has
            self._best = self.mlflow.last_value(self._run_id, f"best/{metric}")
            self.on_step(search, search.history.rows)
            return
        params = search_params(search.space, search.policy, search.evaluator,
                               dict(vars(search.budget)))
        tags = {**search_tags(metric), OUT_DIR_TAG: str(self.out_dir)}
        if self.run_name is None:
            self.run_name = f"{search.policy.name} on {search.space.name} ({self.out_dir.name})"
        self._opening = threading.Thread(target=self._open, args=(params, tags),
                                         name="raynas-mlflow-open", daemon=True)
        self._opening.start()

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        now, step = _now_ms(), search.queries
        keys = self.arch_metrics or (search.evaluator.search_metric,)
        for row in rows:
            if not row["cached"] and row["query"] > self._told:
                self._metrics += [(f"arch/{k}", float(row[k]), now, row["query"])
                                  for k in keys if isinstance(row.get(k), (int, float))]
                self._told = row["query"]
                if self.child_runs:
                    self._child_run(row, now)
        if self.front is not None and self._told >= self._volume_at + max(1, self._volume_at // 20):
            self._log_volume(search, now)
        if search.incumbent is not None and search.incumbent[1] != self._best:
            self._best = search.incumbent[1]
            best = search.incumbent_metrics()
            self._metrics += [(f"best/{k}", float(best[k]), now, step)
                              for k in (search.evaluator.search_metric,
                                        search.evaluator.report_metric) if k in best]
        if (len(self._metrics) >= self.flush_size
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self._flush(search)

    def _log_volume(self, search: Search, now: int) -> None:
        """The front's hypervolume (and its share of the true front's) at the last query
        told; logged after every query early on, then about every 5 % more queries."""
        volume = front_hypervolume(search.history.to_arrow(), self.front)
        self._metrics.append(("hypervolume", volume, now, self._told))
        if self._true_volume:
            self._metrics.append(("hypervolume_ratio", volume / self._true_volume, now,
                                  self._told))
        self._volume_at = self._told

    def _flush(self, search: Search) -> None:
        now = _now_ms()
        self._metrics.append(("evaluations", float(self._told), now, self._told))
        self.mlflow.log_metrics(self.run_id, self._metrics)
        self._metrics = []
        self._last_flush = time.monotonic()

    def _child_run(self, row: dict[str, Any], now: int) -> None:
        child = self.mlflow.start_run({"arch": row["arch"]}, {"raynas.query": str(row["query"])},
                                      f"query_{row['query']}", parent=self.run_id)
        metrics = [(k, float(v), now, 0) for k, v in row.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("step", "query")]
        self.mlflow.log_metrics(child, metrics)
        self.mlflow.end_run(child, "FINISHED" if row["status"] == "ok" else "FAILED")

    def on_search_end(self, search: Search) -> None:
        from raynas.report import write_progress_plot

        # Rows recorded while no hook could run (a Tune search restored from its folder)
        self.on_step(search, search.history.rows)
        if self.front is not None and self._volume_at != self._told:
            self._log_volume(search, _now_ms())
        self._flush(search)
        history = self.out_dir / "history.parquet"
        if search.out_dir != self.out_dir or not history.exists():
            search.history.save(history)
        if search.incumbent is not None:  # the best architecture, readable in the run list
            arch, value = search.incumbent
            self.mlflow.set_tags(self.run_id, {
                BEST_ARCH_TAG: arch, f"raynas.best_{search.evaluator.search_metric}": f"{value:g}"})
        artifacts = [history]
        if self.end_with_search or not search.completed:  # else finish() logs the report
            plot = self.out_dir / "progress.png"
            table = search.history.to_arrow()
            write_progress_plot(table, search.evaluator.search_metric,
                                search.evaluator.report_metric, plot, self.front,
                                search.policy.objective.mode)
            artifacts.append(plot)
            if self.front is not None:
                artifacts += write_front_files(table, self.front, self.out_dir, self.true_front)
        for path in artifacts:
            self.mlflow.log_artifact(self.run_id, path)
        if not search.completed:  # interrupted (or failed): KILLED until a resume continues
            self.mlflow.end_run(self.run_id, "KILLED")
        elif self.end_with_search:
            self.mlflow.end_run(self.run_id, "FINISHED")

    def finish(self, artifacts: list[Path], metrics: dict[str, float] | None = None,
               model_dir: Path | None = None, registered_name: str | None = None,
               model_description: str | None = None,
               model_tags: dict[str, str] | None = None) -> None:
        """After the search: log ``metrics`` (e.g. the retrained best network's) and the
        ``artifacts`` that exist, the best network's MLflow model (registered as
        ``registered_name``, its version described by ``model_description`` and
        ``model_tags``), and end the parent run."""
        run_id = self.run_id
        if metrics:
            now = _now_ms()
            self.mlflow.log_metrics(run_id, [(k, float(v), now, 0) for k, v in metrics.items()])
        for path in artifacts:
            if path is not None and Path(path).exists():
                self.mlflow.log_artifact(run_id, path)
        if model_dir is not None:
            self.mlflow.log_model(run_id, model_dir, registered_name, model_description,
                                  model_tags)
        self.mlflow.end_run(run_id, "FINISHED")
