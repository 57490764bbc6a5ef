"""MLflow tracking of a search, as a :class:`~raynas.search.Callback`.

One parent run per search holds:

* params: space, policy and its hyperparameters, evaluator, budget, seed, raynas version;
* tags: the git commit of the working directory, when there is one;
* metrics by step (= evaluations so far): the incumbent's search and report
  metrics and the number of evaluations, plus each architecture's metrics
  (``arch/<metric>``), all sent in batches (``log_batch``) rather than one
  call per value;
* artifacts at the end: ``history.parquet`` and ``progress.png``.

The tracking URI defaults to ``sqlite:///<abs out_dir>/mlflow.db`` (artifacts in
``<out_dir>/mlartifacts``); any URI works, e.g. ``http://127.0.0.1:5000``. If
MLflow fails (a server down, a full disk), the search goes on: the tracker warns
once and appends what it could not send to ``<out_dir>/mlflow-pending.jsonl``,
which :func:`replay_pending` sends later. Credentials in URIs are never printed.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas import __version__
from raynas.errors import require
from raynas.search.callbacks import Callback

if TYPE_CHECKING:
    from raynas.search.search import Search

logger = logging.getLogger(__name__)

PENDING_FILE = "mlflow-pending.jsonl"
DEFAULT_EXPERIMENT = "raynas"
_BATCH = 900  # MLflow accepts up to 1000 metrics per log_batch


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
    return out.stdout.strip() or None if out.returncode == 0 else None


class MlflowTracker(Callback):
    """Log a search to MLflow.

    Args:
        out_dir: The search's results folder (default store and fallback file live here).
        tracking_uri: MLflow tracking URI; default :func:`default_uri`.
        experiment: Experiment name (created if missing).
        run_name: Name of the parent run.
        flush_every: Steps between metric batches.

    Example:
        >>> tracker = MlflowTracker("results/run1")                       # doctest: +SKIP
        >>> Search(space, policy, evaluator, budget, callbacks=[tracker]).run()  # doctest: +SKIP
    """

    def __init__(
        self,
        out_dir: str | Path,
        tracking_uri: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        run_name: str | None = None,
        flush_every: int = 50,
    ) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.tracking_uri = tracking_uri or default_uri(self.out_dir)
        self.experiment = experiment
        self.run_name = run_name
        self.flush_every = max(1, flush_every)
        self.run_id: str | None = None
        self._client = None
        self._metrics: list[tuple[str, float, int, int]] = []
        self._failed = False

    # ------------------------------------------------------------ plumbing
    def _call(self, what: str, fn, *args, record: dict[str, Any] | None = None, **kwargs):
        """Run one MLflow call; on failure warn once and keep ``record`` for replay."""
        if not self._failed:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any tracking failure must not stop a search
                self._failed = True
                logger.warning(
                    "MLflow tracking at %s failed (%s: %s); the search goes on and pending "
                    "records go to %s", redact(self.tracking_uri), type(exc).__name__,
                    redact(str(exc))[:200], self.out_dir / PENDING_FILE,
                )
        if record is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / PENDING_FILE, "a") as f:
                f.write(json.dumps({"run_id": self.run_id, "what": what, **record}) + "\n")
        return None

    def _start(self, params: dict[str, str], tags: dict[str, str]) -> None:
        mlflow = require("mlflow", "dev")
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is None:
            location = None
            if self.tracking_uri.startswith("sqlite:"):
                location = (self.out_dir / "mlartifacts").as_uri()
            experiment_id = self._client.create_experiment(self.experiment, location)
        else:
            experiment_id = experiment.experiment_id
        run = self._client.create_run(experiment_id, tags=tags, run_name=self.run_name)
        self.run_id = run.info.run_id
        self._client.log_batch(self.run_id, params=[
            mlflow.entities.Param(k, v[:6000]) for k, v in params.items()
        ])

    def _flush(self) -> None:
        if not self._metrics:
            return
        metrics, self._metrics = self._metrics, []
        if self._client is None:
            self._call("metrics", lambda: None, record={"metrics": metrics})
            return
        from mlflow.entities import Metric

        for i in range(0, len(metrics), _BATCH):
            chunk = metrics[i : i + _BATCH]
            self._call(
                "metrics", self._client.log_batch, self.run_id,
                metrics=[Metric(k, v, ts, step) for k, v, ts, step in chunk],
                record={"metrics": chunk},
            )

    # --------------------------------------------------------------- hooks
    def on_search_start(self, search: Search) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        params = {
            "space": json.dumps(search.space.describe()),
            "policy": search.policy.name,
            **{f"policy.{k}": str(v) for k, v in search.policy.hyperparameters().items()},
            "seed": str(search.policy.seed),
            "evaluator": json.dumps(search.evaluator.describe()),
            "budget": json.dumps({k: v for k, v in vars(search.budget).items()}),
            "raynas_version": __version__,
        }
        tags = {"raynas.search_metric": search.evaluator.search_metric}
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        self._call("start", self._start, params, tags, record={"params": params, "tags": tags})

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        now = int(time.time() * 1000)
        step = search.queries
        for row in rows:
            if row["cached"]:
                continue
            for key in search.history.metric_names:
                value = row.get(key)
                if isinstance(value, (int, float)):
                    self._metrics.append((f"arch/{key}", float(value), now, row["query"]))
        if search.incumbent is not None:
            arch = search.space.from_str(search.incumbent[0])
            best = search._cache[arch][0].metrics
            for key in (search.evaluator.search_metric, search.evaluator.report_metric):
                if key in best:
                    self._metrics.append((f"best/{key}", float(best[key]), now, step))
        self._metrics.append(("evaluations", float(step), now, step))
        if search.step % self.flush_every == 0:
            self._flush()

    def on_search_end(self, search: Search) -> None:
        self._flush()
        history = self.out_dir / "history.parquet"
        if not history.exists() or search.out_dir != self.out_dir:
            search.history.save(history)
        plot = self.out_dir / "progress.png"
        write_progress_plot(search.history.to_arrow(), search.evaluator.search_metric,
                            search.evaluator.report_metric, plot)
        for path in (history, plot):
            self._call("artifact", self._log_artifact, str(path),
                       record={"artifact": str(path)})
        self._call("end", self._end, record={"end": "FINISHED"})

    def _log_artifact(self, path: str) -> None:
        if self._client is None:
            raise RuntimeError("no MLflow run")
        self._client.log_artifact(self.run_id, path)

    def _end(self) -> None:
        if self._client is None:
            raise RuntimeError("no MLflow run")
        self._client.set_terminated(self.run_id, "FINISHED")


def write_progress_plot(history, search_metric: str, report_metric: str, path: Path) -> None:
    """Incumbent's search and report metrics vs evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.search.history import incumbent_curve

    search, report = incumbent_curve(history, search_metric, report_metric)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = range(1, len(search) + 1)
    ax.plot(x, search, label=f"incumbent {search_metric}")
    ax.plot(x, report, label=f"incumbent {report_metric}", linestyle="--")
    ax.set_xlabel("evaluations")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replay_pending(out_dir: str | Path, tracking_uri: str | None = None) -> int:
    """Send the records of ``<out_dir>/mlflow-pending.jsonl`` to MLflow; return how many.

    Metrics go to the run they belonged to, or to a new run of the ``raynas``
    experiment when the run was never created. The file is removed once all
    records are sent.
    """
    mlflow = require("mlflow", "dev")
    from mlflow.entities import Metric, Param

    out_dir = Path(out_dir).resolve()
    path = out_dir / PENDING_FILE
    if not path.exists():
        return 0
    client = mlflow.MlflowClient(tracking_uri=tracking_uri or default_uri(out_dir))
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    run_ids: dict[str | None, str] = {}

    def run_for(original: str | None) -> str:
        if original not in run_ids:
            if original is not None:
                run_ids[original] = original
            else:
                experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
                experiment_id = (experiment.experiment_id if experiment else
                                 client.create_experiment(DEFAULT_EXPERIMENT))
                run_ids[original] = client.create_run(experiment_id).info.run_id
        return run_ids[original]

    for record in records:
        run_id = run_for(record["run_id"])
        if "params" in record:
            client.log_batch(run_id, params=[Param(k, v) for k, v in record["params"].items()],
                             tags=[mlflow.entities.RunTag(k, v) for k, v in record["tags"].items()])
        elif "metrics" in record:
            chunk = record["metrics"]
            for i in range(0, len(chunk), _BATCH):
                client.log_batch(run_id, metrics=[Metric(k, v, ts, s)
                                                  for k, v, ts, s in chunk[i : i + _BATCH]])
        elif "artifact" in record:
            client.log_artifact(run_id, record["artifact"])
        elif "end" in record:
            client.set_terminated(run_id, record["end"])
    path.unlink()
    return len(records)
