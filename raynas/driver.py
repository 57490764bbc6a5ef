"""Run a :class:`~raynas.config.SearchConfig`: the engine behind ``raynas search``.

* ``evaluator.kind: training`` — every architecture is a Ray Tune trial that trains a
  network; the best one is exported to ONNX (see :mod:`raynas.export`).
* ``evaluator.kind: tabular`` — lookups in a benchmark table, in process.
* ``evaluator.kind: supernet`` — paths of a pre-trained weight-sharing supernet,
  fine-tuned per architecture, in process (NPG-NAS's evaluator); the supernet is
  saved to ``supernet.pt`` after every round, so ``--resume`` continues with it. The
  best path is retrained from scratch and exported like a training search's.

Outputs in ``out_dir``: ``config.yaml`` (what ``--resume`` reads), ``history.parquet``,
``best/arch.txt`` and ``best/metrics.json``, ``summary.md`` and ``progress.png``, plus
``tune/`` (Tune's experiment) and ``best/model.onnx`` and ``best/weights.pt`` for
training searches, and ``front.json``, ``pareto.parquet`` and ``pareto.png`` for
multi-objective searches (a ``front`` in the config).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from raynas import config as cfg
from raynas.errors import CheckpointError, SearchInterrupted, StartupError
from raynas.files import write_text
from raynas.objectives.fronts import COST_METRICS, NB201_SHAPES, save_front
from raynas.report import write_report
from raynas.search.callbacks import Callback, ProgressBar
from raynas.search.search import HISTORY_FILE, SearchResult

if TYPE_CHECKING:
    from raynas.tracking import MlflowTracker

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class SearchSummary:
    """The outcome of :func:`run_search`.

    Attributes:
        failure: Why no architecture is best (every evaluation failed), else ``None``.
    """

    out_dir: Path
    best_arch: str | None
    best_metrics: dict[str, float]
    evaluations: int
    model_file: Path | None
    failure: str | None = None
    browse: list[str] = field(default_factory=list)
    """Commands that open the results: MLflow's UI, TensorBoard on Tune's experiment."""


def build_space(config: cfg.SearchConfig):
    """The search space a config names, with its options."""
    from raynas.spaces import SPACES

    return SPACES[config.space.name](**config.space.options)


def run_search(
    config: cfg.SearchConfig | None, out_dir: str | Path, resume: bool = False, verbose: int = 1,
    *, address: str | None = None, trust_folder: bool = False,
) -> SearchSummary:
    """Run ``config`` into ``out_dir``; with ``resume``, continue the search found there
    (its saved ``config.yaml`` wins).

    ``config.yaml`` is written only once the search has started (everything built, the
    Ray cluster up), so a search that fails to start leaves nothing a corrected rerun
    trips over. ``address`` picks the Ray cluster of training trials
    (:func:`raynas.cluster.connect`); ``trust_folder`` resumes a training search whose
    Tune files are not signed by this machine (:mod:`raynas.tune.trust`).

    Raises:
        SearchInterrupted: Ctrl+C / SIGINT; the state is saved, ``resume=True`` continues.
        StartupError: The output folder cannot be written, or Ray cannot start.
    """
    out_dir = Path(out_dir).resolve()
    saved = out_dir / CONFIG_FILE
    if resume:
        if not saved.is_file():
            raise CheckpointError(f"nothing to resume: {saved} does not exist")
        config = cfg.load(saved)
    elif saved.is_file():
        raise CheckpointError(
            f"{out_dir} already holds a search; resume it with --resume {out_dir} or choose "
            "another --out"
        )
    config = config or cfg.from_dict({})
    prepare_folder(out_dir)

    def started() -> None:
        if not resume:
            cfg.dump(config, saved)

    build = {"tabular": _build_tabular, "supernet": _build_supernet,
             "training": _build_training, "function": _build_training}[config.evaluator.kind]
    try:
        job = build(config, out_dir, resume, verbose=verbose, address=address,
                    trust_folder=trust_folder)
        return _finish(config, out_dir, job, job.run(started))
    except KeyboardInterrupt:
        history = out_dir / HISTORY_FILE
        kept = "what finished is saved" if history.is_file() else "nothing had finished yet"
        raise SearchInterrupted(f"{kept} in {out_dir}; continue with: raynas search --resume "
                                f"{out_dir}", out_dir) from None
    except SearchInterrupted as exc:
        raise SearchInterrupted(f"{exc}; continue with: raynas search --resume {out_dir}",
                                out_dir, exc.done) from None


def prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir`` and check it can be written, before anything is started."""
    probe = out_dir / f".raynas-write-test-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write the results folder {out_dir}: "
                           f"{exc.strerror or exc}") from None


def build_policy(config: cfg.SearchConfig, space):
    """The policy a config names, seeded by the config's seed. A multi-objective policy
    (one with ``objectives``: npg, nsga2, motpe) gets the config's front objectives
    unless its options name others."""
    from raynas.policies import make_policy, takes_objectives
    from raynas.types import Objective

    options = dict(config.policy.options)
    if config.front.objectives and takes_objectives(config.policy.name) and (
            "objectives" not in options):
        options["objectives"] = dict(config.front.objectives)
    ev = config.evaluator
    return make_policy(config.policy.name, space, seed=config.seed,
                       objective=Objective(ev.search_metric, ev.mode), **options)




def build_front(config: cfg.SearchConfig, space, num_classes: int, input_size: int,
                in_channels: int = 3, table=None):
    """The :class:`~raynas.objectives.fronts.FrontSpec` of a config's ``front`` section (``None``
    when the search has one objective) and, for a benchmark ``table`` and a 2-objective
    (accuracy, params/FLOPs) front, the table's true front as ``(n, 2)`` points."""
    from raynas.objectives.fronts import FrontSpec
    from raynas.spaces.cost import LinearCostModel

    front = config.front
    if not front.objectives:
        return None, None
    select = tuple(front.objectives.items())
    report = tuple(front.report or [
        "test_" + m.removeprefix("valid_") if m.startswith("valid_") else m for m, _ in select
    ])
    reference = list(front.reference or [])
    if not reference:
        model = None
        for metric, mode in select:
            if mode == "max":
                reference.append(0.0)
            elif table is not None and metric in table.costs(config.evaluator.dataset):
                reference.append(float(table.column(config.evaluator.dataset, metric).max()))
            elif metric in COST_METRICS:
                model = model or LinearCostModel(space, num_classes, input_size, in_channels)
                reference.append(model.largest(metric))
            else:
                raise cfg.ConfigError(
                    f"front.reference: no default for {metric} ({mode}); give the reference "
                    "point, one value per objective"
                )
    spec = FrontSpec(select, report, tuple(reference))
    true_front = None
    if table is not None and len(select) == 2 and select[1][1] == "min" and (
            select[1][0] in COST_METRICS
            or select[1][0] in table.costs(config.evaluator.dataset)):
        from raynas.objectives.fronts import table_front

        true_front = table_front(table, config.evaluator.dataset, metric=report[0],
                                 cost=select[1][0], num_classes=num_classes,
                                 input_size=input_size).points
    return spec, true_front


def _table_shape(config: cfg.SearchConfig) -> tuple[int, int]:
    """Classes and input size of a table's dataset, for params/FLOPs objectives."""
    dataset = config.evaluator.dataset
    if dataset not in NB201_SHAPES:
        raise cfg.ConfigError(
            f"front.objectives: params/FLOPs of {dataset!r} networks are unknown to raynas "
            f"(known: {', '.join(NB201_SHAPES)}); use the table's own metrics as objectives"
        )
    return NB201_SHAPES[dataset]


def _write_best(out_dir: Path, arch: str | None, metrics: dict[str, float]) -> None:
    best = out_dir / "best"
    best.mkdir(exist_ok=True)
    write_text(best / "arch.txt", f"{arch}\n")
    write_text(best / "metrics.json", json.dumps(metrics, indent=1))


@dataclass
class _Job:
    """What a config builds (:func:`_build_tabular`, :func:`_build_supernet`,
    :func:`_build_training`): how to run the search and what :func:`_finish` needs."""

    run: Callable[[Callable[[], None]], SearchResult]  # given ``started``
    tracker: MlflowTracker | None = None
    # the best architecture's extra metrics and exported network (or None, None)
    export: Callable[[SearchResult], tuple[dict[str, float], Path | None]] | None = None
    register_model: bool = False  # the export saved an MLflow model to register


def _tracker(config: cfg.SearchConfig, out_dir: Path, front=None, true_front=None,
             child_runs: bool = False):
    """The search's one MLflow tracker (``None`` when tracking is off); the parent run
    stays open for :func:`_finish`."""
    if not config.tracking.mlflow:
        return None
    from raynas.tracking import MlflowTracker

    return MlflowTracker(out_dir, config.tracking.uri, config.tracking.experiment,
                         front=front, true_front=true_front, child_runs=child_runs,
                         end_with_search=False)


def console(verbose: int, tune_table: bool = False) -> ProgressBar:
    """The console of a search at a verbosity: 0, the progress bar alone; 1, the bar and
    a line per finished architecture (per new best on a table); 2, also Tune's own trial
    table (``tune_table``), which then replaces the bar."""
    return ProgressBar(lines="none" if verbose <= 0 else "auto",
                       bar=not (tune_table and verbose >= 2))


def _search(config: cfg.SearchConfig, space, evaluator, out_dir: Path, resume: bool,
            callbacks: list, backend=None, verbose: int = 1):
    """``run(started)`` of an in-process search (any backend)."""
    from raynas.search import Search

    limits = config.limits
    search = Search(
        space, build_policy(config, space), evaluator, search_budget(config),
        backend=backend, synchronous=limits.synchronous if backend is not None else None,
        out_dir=out_dir, callbacks=[*(c for c in callbacks if c is not None), console(verbose)],
    )

    def run(started: Callable[[], None]) -> SearchResult:
        started()
        return search.run(resume=resume)

    return run


def _build_tabular(config: cfg.SearchConfig, out_dir: Path, resume: bool, *, verbose: int = 1,
                   **_: object) -> _Job:
    from raynas.evaluators import TabularEvaluator
    from raynas.search import Simulated
    from raynas.tables import BenchmarkTable

    ev = config.evaluator
    table = BenchmarkTable.load(ev.path, build_space(config))
    spec = true_front = cost_model = None
    if config.front.objectives:
        own = table.costs(ev.dataset)  # a cost the table has is the table's, not modelled
        needs_cost = any(m in COST_METRICS and m not in own for m in config.front.objectives)
        num_classes, input_size = _table_shape(config) if needs_cost else (0, 0)
        spec, true_front = build_front(config, table.space, num_classes, input_size, table=table)
        save_front(out_dir, spec, true_front)
        if needs_cost:
            from raynas.spaces.cost import LinearCostModel

            cost_model = LinearCostModel(table.space, num_classes, input_size)
    limits = config.limits
    clock = ev.cost_metric or ("train_time" if limits.workers > 1 else None)
    if clock is not None and clock not in table.costs(ev.dataset):
        raise cfg.ConfigError(
            f"evaluator.cost_metric: {table.path} has no cost column {clock!r} for "
            f"{ev.dataset} (its cost columns: {', '.join(table.costs(ev.dataset)) or 'none'})")
    evaluator = TabularEvaluator(table, ev.dataset, search_metric=ev.search_metric,
                                 report_metric=ev.report_metric, cost_metric=clock,
                                 cost_model=cost_model, seed=config.seed)
    tracker = _tracker(config, out_dir, spec, true_front, bool(config.tracking.child_runs))
    backend = Simulated(limits.workers) if clock is not None else None
    return _Job(_search(config, table.space, evaluator, out_dir, resume, [tracker], backend,
                        verbose), tracker)


SUPERNET_FILE = "supernet.pt"


class _SaveSupernet(Callback):
    """Search callback: write the supernet's state after every round (for ``--resume``)."""

    def __init__(self, evaluator, path: Path) -> None:
        self.evaluator, self.path = evaluator, path

    def on_step(self, search, rows) -> None:
        self.evaluator.save(self.path)


def _build_supernet(config: cfg.SearchConfig, out_dir: Path, resume: bool, *, verbose: int = 1,
                    **_: object) -> _Job:
    from raynas.data import load_dataset
    from raynas.evaluators.supernet import SupernetEvaluator

    ev = config.evaluator
    space = build_space(config)
    data = load_dataset(ev.dataset, ev.path, input_size=ev.input_size, seed=config.seed)
    evaluator = SupernetEvaluator(space, data, steps=ev.steps, pretrain_steps=ev.pretrain_steps,
                                  lr=ev.lr, weight_decay=ev.weight_decay,
                                  batch_size=ev.batch_size, seed=config.seed,
                                  search_metric=ev.search_metric,
                                  report_metric=ev.report_metric)
    weights = out_dir / SUPERNET_FILE
    if resume and weights.is_file():
        evaluator.load(weights)
    spec, _ = build_front(config, space, data.num_classes, data.input_size, data.in_channels)
    if spec is not None:
        save_front(out_dir, spec)
    tracker = _tracker(config, out_dir, spec, child_runs=bool(config.tracking.child_runs))

    def export(result: SearchResult) -> tuple[dict[str, float], Path | None]:
        if not ev.retrain:
            return {}, None
        retrained, model_file = _retrain(config, space, data, result.incumbent, out_dir / "best")
        return {f"retrained_{k}": v for k, v in retrained.items()}, model_file

    callbacks = [_SaveSupernet(evaluator, weights), tracker]
    return _Job(_search(config, space, evaluator, out_dir, resume, callbacks, verbose=verbose),
                tracker, export)


def _build_training(config: cfg.SearchConfig, out_dir: Path, resume: bool, *,
                    verbose: int = 1, address: str | None = None, trust_folder: bool = False,
                    ) -> _Job:
    from raynas.cluster import connect
    from raynas.tune import run_tune

    connect(address)
    space = build_space(config)
    evaluator = build_evaluator(config, space)
    data = evaluator.data  # None for a user's function: it owns its data
    shape = (data.num_classes, data.input_size, data.in_channels) if data else (0, 0, 0)
    front, _ = build_front(config, space, *shape)
    if front is not None:
        save_front(out_dir, front)
    tracker = _tracker(config, out_dir, front)
    tune_callbacks, trial_tracking = [], None
    tracking = config.tracking
    if tracker is not None and tracking.child_runs is not False:
        from raynas.tune.runner import EXPERIMENT
        from raynas.tune.trial import TrialRuns, TrialTracking

        trials_log = tracking.log_from == "trials"
        tune_callbacks.append(TrialRuns(tracker, trials_log=trials_log))
        if trials_log:
            def trial_tracking() -> TrialTracking:
                return TrialTracking(tracker.tracking_uri, tracker.mlflow.experiment,
                                     tracker.run_id, str(out_dir / EXPERIMENT))
    register = tracker is not None and tracking.register_model and data is not None

    def run(started: Callable[[], None]) -> SearchResult:
        shown = [*([tracker] if tracker else []), console(verbose, tune_table=True)]
        return run_tune(build_policy(config, space), evaluator, build_tune_settings(config),
                        out_dir, verbose=1 if verbose >= 2 else 0, callbacks=shown,
                        tune_callbacks=tune_callbacks, trial_tracking=trial_tracking,
                        resume=resume, trust_folder=trust_folder, on_start=started)

    def export(result: SearchResult) -> tuple[dict[str, float], Path | None]:
        return {}, export_best(result, evaluator, result.incumbent, out_dir / "best",
                               mlflow_model=register)

    return _Job(run, tracker, export if data is not None else None, register_model=register)


def _finish(config: cfg.SearchConfig, out_dir: Path, job: _Job,
            result: SearchResult) -> SearchSummary:
    """The one end of every search: the best architecture's files (and its exported
    network), the report, and the tracker's parent run completed with both."""
    best, metrics, model_file = result.incumbent, dict(result.incumbent_metrics), None
    extra: dict[str, float] = {}
    if best is not None and job.export is not None:
        extra, model_file = job.export(result)
        metrics.update(extra)
    _write_best(out_dir, best, metrics)
    reports = write_report(out_dir)
    if job.tracker is not None:
        from raynas.export import MLFLOW_MODEL_DIR

        best_dir = out_dir / "best"
        name = config.tracking.model_name or default_model_name(config)
        model_dir = best_dir / MLFLOW_MODEL_DIR if job.register_model and model_file else None
        description, tags = _model_version(config, out_dir, best, metrics)
        job.tracker.finish(
            [*reports, best_dir / "arch.txt", best_dir / "metrics.json", model_file],
            metrics=extra, model_dir=model_dir, registered_name=name,
            model_description=description, model_tags=tags)
    return SearchSummary(out_dir, best, metrics, result.queries, model_file,
                         failure_reason(result.history, out_dir),
                         browse_commands(config, out_dir,
                                         job.tracker.mlflow.experiment_id if job.tracker else None))


ML_VIEW = "?workflowType=machine_learning"
"""MLflow 3's UI opens experiments in its GenAI view (a traces page) unless the URL asks
for the machine-learning one (the "Model training" switch, which it then remembers)."""


def browse_commands(config: cfg.SearchConfig, out_dir: Path,
                    experiment_id: str | None = None) -> list[str]:
    """How to look at a search's results: MLflow's UI on its store, at the experiment's
    runs (:data:`ML_VIEW`), and, for a training search, TensorBoard on Tune's experiment
    (where Tune wrote it, not Ray's temporary folder that Tune's own hint names)."""
    from raynas.tracking import default_uri, redact

    commands = []
    if config.tracking.mlflow:
        uri = config.tracking.uri or default_uri(out_dir)
        page = f"/#/experiments/{experiment_id}{ML_VIEW}" if experiment_id else f"/{ML_VIEW}"
        if uri.startswith("sqlite:"):
            commands.append(f"mlflow ui --backend-store-uri {uri}   # then open "
                            f"http://127.0.0.1:5000{page}")
        elif uri.startswith(("http://", "https://")):
            commands.append(f"MLflow: {redact(uri).rstrip('/')}{page}")
        else:
            commands.append(f"MLflow: {redact(uri)} (experiment {config.tracking.experiment})")
    if config.evaluator.kind in ("training", "function"):
        from raynas.tune.runner import EXPERIMENT, tune_storage

        storage = tune_storage(out_dir, build_tune_settings(config))
        commands.append(f"tensorboard --logdir {storage}/{EXPERIMENT}")
    return commands


def _model_version(config: cfg.SearchConfig, out_dir: Path, best: str | None,
                   metrics: dict[str, float]) -> tuple[str | None, dict[str, str]]:
    """The registered model version's description and tags: which search found it."""
    ev = config.evaluator
    value = metrics.get(ev.search_metric)
    description = (f"The best architecture of a {config.policy.name} search over "
                   f"{cfg.space_label(config)} on {ev.dataset}: {best} ({ev.search_metric} "
                   f"{value:g})" if value is not None else None)
    tags = {"raynas.search": str(out_dir), "raynas.arch": str(best),
            "raynas.search_metric": ev.search_metric, "raynas.dataset": ev.dataset,
            **{f"raynas.{k}": f"{v:g}" for k, v in metrics.items() if isinstance(v, (int, float))}}
    return description, tags


def search_budget(config: cfg.SearchConfig):
    """The :class:`~raynas.search.Budget` of a config's ``budget``."""
    from raynas.search import Budget

    limits = config.limits
    return Budget(max_queries=limits.queries, max_seconds=limits.seconds)


_TRACEBACK = re.compile(r"its traceback is in (trial_\w+)/error\.txt")


def failure_reason(history, out_dir: Path | None = None) -> str | None:
    """Why a search has no best architecture (``None`` if it has one): how many
    evaluations failed, and the first error; for a Tune trial, the exception that ended
    it, read from the ``error.txt`` Tune wrote into ``out_dir/tune`` (plain text, never
    executed)."""
    rows = [r for r in history.to_pylist() if not r["cached"]]
    if any(r["status"] == "ok" for r in rows):
        return None
    if not rows:
        return "no architecture was evaluated"
    error = rows[0]["error"] or "unknown"
    match = _TRACEBACK.search(error)
    if match and out_dir is not None:
        path = Path(out_dir) / "tune" / match[1] / "error.txt"
        try:
            lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
        except OSError:
            lines = []
        last = next((ln for ln in reversed(lines) if ln), "")
        if last:
            error = f"{last[:400]} (traceback: {path})"
    return f"no evaluation succeeded: all {len(rows)} failed; the first error: {error[:600]}"


def _retrain(config: cfg.SearchConfig, space, data, arch: str, folder: Path):
    """Train ``arch`` from scratch (the evaluator's epochs and SGD settings) and export
    it; its metrics and the ONNX file."""
    from raynas.evaluators import TrainingEvaluator
    from raynas.export import build_trained, export_network

    ev = config.evaluator
    trainer = TrainingEvaluator(space, data, epochs=ev.epochs, lr=ev.lr,
                                batch_size=ev.batch_size, weight_decay=ev.weight_decay,
                                seed=config.seed, measure_latency=ev.measure_latency)
    last: dict = {}
    result = trainer.fit(space.from_str(arch), on_epoch=lambda m, get: last.update(get=get))
    model = build_trained(space, arch, last["get"]()["model"], data.num_classes,
                          data.in_channels, data.input_shape)
    return dict(result.metrics), export_network(model, data.test_x[:2], folder)


def default_model_name(config: cfg.SearchConfig) -> str:
    """``raynas-<space>-<dataset>``: a user's space by its name (:func:`raynas.config.space_label`), a
    user's data by its file, folder or function name."""
    import re

    ev = config.evaluator
    space = cfg.space_label(config)
    dataset = ev.dataset
    if dataset in ("folder", "npz") and ev.path:
        dataset = Path(ev.path).stem
    elif ":" in dataset:
        dataset = dataset.rpartition(":")[2]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"raynas-{space}-{dataset}")


def build_evaluator(config: cfg.SearchConfig, space):
    """The training evaluator a config describes (its dataset loaded), or the user's
    training function for ``kind: function``."""
    from raynas.data import load_dataset
    from raynas.evaluators import TrainingEvaluator

    ev = config.evaluator
    if ev.kind == "function":
        from raynas.evaluators.user import UserFunctionEvaluator

        return UserFunctionEvaluator(ev.entrypoint, space, epochs=ev.epochs,
                                     search_metric=ev.search_metric,
                                     report_metric=ev.report_metric, seed=config.seed)
    data = load_dataset(ev.dataset, ev.path, input_size=ev.input_size, seed=config.seed)
    return TrainingEvaluator(
        space, data, epochs=ev.epochs, lr=ev.lr, batch_size=ev.batch_size,
        weight_decay=ev.weight_decay, seed=config.seed, measure_latency=ev.measure_latency,
        search_metric=ev.search_metric, report_metric=ev.report_metric,
    )


def build_tune_settings(config: cfg.SearchConfig):
    """The Tune settings of a config's budget and resources."""
    from raynas.tune import TuneSettings

    return TuneSettings.from_config(config.resources, config.limits.queries)


def export_best(run, evaluator, arch: str, folder: Path, mlflow_model: bool = False) -> Path | None:
    """Export the trained network of ``arch`` (its trial's last checkpoint in ``run.grid``,
    Tune's ``ResultGrid``) into
    ``folder`` with :func:`raynas.export.export_network` (and, with ``mlflow_model``,
    :func:`raynas.export.save_mlflow_model`); return the ONNX file, or ``None`` when
    no checkpoint of ``arch`` exists."""
    from raynas.export import build_trained, export_network, save_mlflow_model, trained_state

    state = trained_state(run.grid, arch)
    if state is None:
        logger.warning("no checkpoint of %s to export", arch)
        return None
    data = evaluator.data
    model = build_trained(evaluator.space, arch, state["model"], data.num_classes,
                          data.in_channels, data.input_shape)
    if mlflow_model:
        save_mlflow_model(model, data.test_x[:2], folder)
    return export_network(model, data.test_x[:2], folder)


def describe(summary: SearchSummary) -> list[str]:
    """Lines for the terminal: the best architecture and where the results are."""
    lines = [f"evaluated {summary.evaluations} architectures"]
    if summary.best_arch is None:
        return [*lines, "no architecture finished successfully"]
    m = summary.best_metrics
    parts = [f"{k}={m[k]:.4g}" for k in ("valid_acc", "test_acc", "params", "flops",
                                          "latency_ms") if k in m]
    lines += [f"best architecture: {summary.best_arch}", "  " + ", ".join(parts)]
    retrained = [f"{k}={m['retrained_' + k]:.4g}" for k in ("valid_acc", "test_acc", "params")
                 if "retrained_" + k in m]
    if retrained:
        lines.append("  retrained from scratch: " + ", ".join(retrained))
    if summary.model_file is not None:
        lines.append(f"  exported network: {summary.model_file}")
    lines.append(f"results: {summary.out_dir} (history.parquet, summary.md, best/, config.yaml)")
    lines += [f"  browse: {command}" for command in summary.browse]
    return lines
