"""``raynas bench``: many whole searches on a benchmark table, as parallel Ray tasks.

One Ray task runs one (policy, dataset, seed) search in process, without a Tune
trial per lookup (a Tune trial costs ~1 s here, a lookup microseconds). Each
finished search is written to ``<out>/runs/`` at once (atomically), so an interrupted
bench resumes where it stopped; ``curves.parquet``, ``summary.md`` and ``regret.png``
are then built from those files.

A search's file is named after its policy, dataset and seed index *and* a key: a hash
of everything that changes its result (:mod:`raynas.bench.store`). A rerun reuses only
files with the same key, says how many it reused, and never mixes in searches made
with other settings. An unreadable file (a truncated write) is recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raynas.bench.store import (
    file_digest,
    meta_checkpoint,
    read_run,
    run_file,
    search_key,
    search_settings,
    write_run,
)
from raynas.errors import ArgumentError
from raynas.files import write_atomically, write_text
from raynas.objectives.fronts import COST_METRICS, NB201_SHAPES
from raynas.policies import POLICIES, takes_objectives
from raynas.tables import BenchmarkTable
from raynas.types import Objective

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ("policy", "dataset", "seed", "query", "time", "valid_acc", "test_acc",
                 "regret", "sampled_regret", "hv_ratio")
HV_COLUMNS = ("policy", "dataset", "seed", "query", "hv_ratio")



@dataclass(frozen=True)
class BenchConfig:
    """Configuration of ``raynas bench``.

    Attributes:
        benchmark: Path of a Parquet/CSV table of the shared schema.
        datasets: Datasets of the table to search on.
        policies: Registered policy names.
        seeds: Seeds per (policy, dataset); seed ``i`` is the same for every policy.
        budget: Queries per search.
        out: Output folder.
        space: Search space of the table's ``arch_str`` column.
        base_seed: Mixed with the seed index to derive each search's seed.
        batch_size: Architectures asked per synchronous round (in process).
        workers: Simulated workers evaluating at once (:class:`~raynas.search.Simulated`):
            each evaluation takes ``cost_metric`` seconds of simulated time, and a free
            worker asks the policy at once (asynchronous) unless ``synchronous``.
        cost_metric: The table's cost column that is each evaluation's duration
            (``train_time``); the curves' ``time`` column is then simulated seconds.
            ``None``: ``train_time`` when ``workers > 1``, else no clock (time 0).
        synchronous: With ``workers``, rounds of ``workers`` architectures that wait for
            the slowest before the next ask (batch synchronous), instead of asynchronous.
        search_metric: Optimised metric (``<split>_<metric>``), validation by default.
        report_metric: Metric reported for the incumbent, test by default.
        mode: ``"max"`` for accuracies, ``"min"`` for errors or losses; regret is
            always >= 0, the distance of the incumbent's report metric from the best.
        policy_kwargs: Hyperparameters per policy name, e.g. ``{"rea": {"sample_size": 10}}``.
        num_cpus: CPUs for a local Ray instance (``None``: all).
        address: Ray cluster address (``None``: ``RAY_ADDRESS`` or a new local instance).
        objectives: A multi-objective bench: ``((metric, mode), ...)``, the first the
            search metric, e.g. ``(("valid_acc", "max"), ("params", "min"))``. Each
            search's front (chosen on these, scored with the report metric in place of
            the search metric) is compared to the table's true front: ``hv_ratio``.
            ``params``/``flops`` come from the space's cost model. Policies that take
            ``objectives`` (npg, nsga2, motpe) get them.
        keep_histories: Also save every search's full history (every evaluated
            architecture and its metrics) to ``<out>/histories/``.
        transfer: ``leave-one-out``: before searching a dataset, ``catch`` is
            meta-trained on the table's other datasets (checkpoints cached in
            ``<out>/catch/``) and adapts from that checkpoint; ``None``: from scratch.
        meta: :func:`~raynas.policies.catch.meta_train` options (``iterations``,
            ``queries``, ``steps``) for ``transfer``.
        execution: ``ray``: the searches as Ray tasks (several per task, the table in
            the object store once, workers warmed before the searches are timed);
            ``local``: all in this process, no Ray; ``auto`` (default): ``ray`` on a
            cluster (``address`` or ``$RAY_ADDRESS``); otherwise
            the first search runs here, timed, and the rest follow it here when that
            is sooner than starting Ray (:data:`RAY_START_SECONDS`) and sharing them
            over ``num_cpus`` workers, else on Ray. With ``transfer`` always ``ray``
            (CATCH meta-trains on Ray workers).
    """

    benchmark: Path
    datasets: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: int = 20
    budget: int = 200
    out: Path = Path("raynas-results")
    space: str = "nb201"
    base_seed: int = 0
    batch_size: int = 1
    workers: int = 1
    cost_metric: str | None = None
    synchronous: bool = False
    search_metric: str = "valid_acc"
    report_metric: str = "test_acc"
    mode: str = "max"
    policy_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_cpus: int | None = None
    address: str | None = None
    objectives: tuple[tuple[str, str], ...] = ()
    keep_histories: bool = False
    transfer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    execution: str = "auto"

    @property
    def objective(self) -> Objective:
        return Objective(self.search_metric, self.mode)

    @property
    def clock(self) -> str | None:
        """The cost column that drives the simulated clock, if any."""
        return self.cost_metric or ("train_time" if self.workers > 1 else None)

    def __post_init__(self) -> None:
        from raynas.errors import unknown_name

        if not self.datasets:
            raise ArgumentError("datasets: give at least one dataset")
        if not self.policies:
            raise ArgumentError("policies: give at least one policy")
        for name in self.policies:
            if name not in POLICIES:
                raise unknown_name("policy", name, POLICIES)
        if self.mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.transfer not in (None, "leave-one-out"):
            raise ArgumentError(f"transfer must be 'leave-one-out' (or none), got {self.transfer!r}")
        if self.transfer and "catch" not in self.policies:
            raise ArgumentError("transfer: only the catch policy meta-trains; add catch to policies")
        if self.workers < 1:
            raise ArgumentError(f"workers must be >= 1, got {self.workers}")
        if self.workers > 1 and self.batch_size > 1:
            raise ArgumentError("batch_size is for in-process rounds; with workers, rounds "
                                "(synchronous) have one architecture per worker")
        if self.synchronous and self.workers == 1:
            raise ArgumentError("synchronous: give the round size as workers (>= 2)")
        if self.seeds < 1 or self.budget < 1:
            raise ArgumentError(f"seeds and budget must be >= 1, got {self.seeds} and {self.budget}")
        if self.objectives:
            if len(self.objectives) != 2 or self.objectives[0] != (self.search_metric, self.mode):
                raise ArgumentError(
                    "objectives: give two, the first the search metric "
                    f"({self.search_metric}:{self.mode}), e.g. valid_acc:max,params:min"
                )
            if self.objectives[1][1] != "min":
                raise ArgumentError("objectives: the second is a cost to minimise (a cost "
                                    "column of the table, or params/flops), e.g. latency:min")


def search_seed(base_seed: int, index: int) -> int:
    """Seed of the ``index``-th search: independent of policy, dataset and run order."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class _FixedCosts:
    """Params and FLOPs of every table row, computed once (a cost model for the evaluator;
    the table's own columns where it has them)."""

    params_: np.ndarray
    flops_: np.ndarray

    def params(self, archs) -> np.ndarray:
        return self.params_

    def flops(self, archs) -> np.ndarray:
        return self.flops_


@dataclass(frozen=True)
class TrueFront:
    """A dataset's true front and what a multi-objective search is scored with."""

    costs: _FixedCosts | None
    spec: Any  # FrontSpec
    volume: float


def true_fronts(table: BenchmarkTable, config: BenchConfig) -> dict[str, TrueFront]:
    """Per dataset: the table's costs, the front spec and the true front's hypervolume."""
    from raynas.objectives.fronts import FrontSpec, table_costs, table_front

    out = {}
    cost = config.objectives[1][0]
    for dataset in config.datasets:
        costs = None  # a cost column of the table: the evaluator reports it as it is
        classes, size = NB201_SHAPES.get(dataset, (10, 32))
        if cost not in table.costs(dataset):  # params/FLOPs from the space's cost model
            costs = _FixedCosts(*(table_costs(table, dataset, c, classes, size)
                                  for c in ("params", "flops")))
        true = table_front(table, dataset, config.report_metric, cost, classes, size)
        report = tuple(config.report_metric if m == config.search_metric else m
                       for m, _ in config.objectives)
        out[dataset] = TrueFront(costs, FrontSpec(config.objectives, report, true.reference),
                                 true.hypervolume)
    return out


def run_one(
    table: BenchmarkTable,
    dataset: str,
    policy: str,
    seed_index: int,
    config: BenchConfig,
    fronts: dict[str, TrueFront] | None = None,
    table_digest: str | None = None,
) -> pa.Table:
    """One whole search in process; returns its incumbent curve rows (with ``hv_ratio``,
    the front's share of the true front's hypervolume, in a multi-objective bench)."""
    from raynas.evaluators import TabularEvaluator
    from raynas.objectives.fronts import hypervolume_curve
    from raynas.policies import make_policy
    from raynas.search import Budget, Search, Simulated, incumbent_curve
    from raynas.search.history import metric_values

    front = fronts.get(dataset) if fronts else None
    evaluator = TabularEvaluator(table, dataset, config.search_metric, config.report_metric,
                                 cost_metric=config.clock,
                                 cost_model=front.costs if front else None,
                                 seed=search_seed(config.base_seed, seed_index))
    kwargs = dict(config.policy_kwargs.get(policy, {}))
    if policy == "catch" and config.transfer:
        kwargs.setdefault("checkpoint", str(meta_checkpoint(config, dataset, table_digest)))
    if config.objectives and takes_objectives(policy):
        kwargs.setdefault("objectives", dict(config.objectives))
    policy_obj = make_policy(
        policy, table.space, seed=search_seed(config.base_seed, seed_index),
        objective=config.objective, **kwargs,
    )
    backend = Simulated(config.workers) if config.clock else None
    search = Search(
        table.space, policy_obj, evaluator, Budget(max_queries=config.budget),
        batch_size=config.batch_size, backend=backend,
        synchronous=config.synchronous if backend is not None else None,
    )
    result = search.run()
    if config.keep_histories:
        folder = Path(config.out).resolve() / "histories"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(result.history, folder / f"{policy}__{dataset}__{seed_index}.parquet")
    valid, test = incumbent_curve(
        result.history, config.search_metric, config.report_metric, config.mode
    )
    n = len(valid)
    fresh = result.history.filter(pc.invert(result.history["cached"]))
    sampled = metric_values(fresh, config.search_metric)
    best = table.best(dataset, config.search_metric, config.mode)
    return pa.table({
        "policy": pa.array([policy] * n, pa.string()),
        "dataset": pa.array([dataset] * n, pa.string()),
        "seed": pa.array(np.full(n, seed_index), pa.int32()),
        "query": pa.array(np.arange(1, n + 1), pa.int32()),
        # the clock when the query's result arrived (simulated seconds with workers)
        "time": pa.array(fresh["time"].to_numpy(zero_copy_only=False), pa.float64()),
        "valid_acc": valid,
        "test_acc": test,
        "regret": config.objective.sign * (evaluator.optimum(config.mode) - test),
        # the search-metric regret of the architecture evaluated at this query (NaN if it
        # failed); its cumulative sum is the policy's cumulative regret
        "sampled_regret": config.objective.sign * (best - sampled),
        "hv_ratio": pa.array(hypervolume_curve(result.history, front.spec) / front.volume
                             if front else [None] * n, pa.float64()),  # null: one objective
    })


def meta_train_left_out(config: BenchConfig, table: BenchmarkTable,
                        datasets: list[str]) -> dict[str, float]:
    """Meta-train CATCH once per target dataset on the table's other datasets (missing
    checkpoints only); returns the meta-training seconds per target dataset."""
    from raynas.policies.catch import meta_train, read_checkpoint, table_tasks

    seconds = {}
    digest = file_digest(config.benchmark)
    for dataset in datasets:
        path = meta_checkpoint(config, dataset, digest)
        if not path.exists():
            others = [d for d in table.datasets if d != dataset]
            if not others:
                raise ArgumentError(f"transfer: the table has no dataset but {dataset} to "
                                 "meta-train on")
            tasks = table_tasks(config.benchmark, others, space=config.space,
                                search_metric=config.search_metric,
                                report_metric=config.report_metric)
            meta_train(table.space, tasks, seed=config.base_seed, out=path,
                       **{**config.policy_kwargs.get("catch", {}), **config.meta})
        seconds[dataset] = float(read_checkpoint(path)["info"]["seconds"])
    return seconds


def _check(config: BenchConfig, table: BenchmarkTable) -> None:
    """Fail fast, in the driver, on what would otherwise fail inside every Ray task."""
    from raynas.errors import TableError
    from raynas.policies import make_policy

    for dataset in config.datasets:
        table.check_dataset(dataset)
        for metric in (config.search_metric, config.report_metric):
            table.column(dataset, metric)
        if config.objectives:
            cost = config.objectives[1][0]
            if cost not in table.costs(dataset) and cost not in COST_METRICS:
                have = ", ".join(table.costs(dataset)) or "none"
                raise TableError(f"{table.path}: no cost column {cost!r} for {dataset} to use "
                                 f"as an objective (its cost columns: {have}; params and flops "
                                 "also come from the space's cost model)")
            if cost not in table.costs(dataset) and dataset not in NB201_SHAPES:
                raise ArgumentError(f"objectives: {cost} comes from the space's cost model, "
                                    f"which needs the network's size, unknown for {dataset!r} "
                                    f"(known: {', '.join(NB201_SHAPES)}); use a cost column "
                                    "of the table")
        if config.clock and config.clock not in table.costs(dataset):
            have = ", ".join(table.costs(dataset)) or "none"
            raise TableError(f"{table.path}: no cost column {config.clock!r} for {dataset} to "
                             f"clock the simulated workers (its cost columns: {have}); pass "
                             "--cost-metric")
    unknown = set(config.policy_kwargs) - set(config.policies)
    if unknown:
        raise ArgumentError(f"policy_kwargs names policies not in the bench: {sorted(unknown)}")
    for name in config.policies:  # bad hyperparameters and missing extras surface here
        make_policy(
            name, table.space, seed=0, objective=config.objective,
            **config.policy_kwargs.get(name, {}),
        )


RAY_START_SECONDS = 4.0
"""What starting a local Ray instance and warming its workers costs on a 2-CPU machine
(3-8 s measured by ``benchmarks/table_scale.py``): ``execution="auto"`` runs a bench in
process when its searches would take less than that plus their share on Ray."""


def _choose(first_seconds: float, left: int, config: BenchConfig) -> str:
    """``local`` when the ``left`` searches, at the first one's pace, finish here sooner
    than on a new local Ray instance with ``num_cpus`` workers, else ``ray``."""
    cpus = config.num_cpus or os.cpu_count() or 1
    here = first_seconds * left
    there = RAY_START_SECONDS + here / max(cpus, 1)
    return "local" if cpus == 1 or here <= there else "ray"


def _run_guarded(table, job, config, fronts, digest) -> pa.Table | BaseException:
    policy, dataset, seed = job
    try:
        return run_one(table, dataset, policy, seed, config, fronts, digest)
    except Exception as exc:  # noqa: BLE001 - reported with the others, the rest kept
        return exc


def run_many(table: BenchmarkTable, jobs: list[tuple[str, str, int]], config: BenchConfig,
             fronts: dict[str, TrueFront] | None = None,
             table_digest: str | None = None) -> list[pa.Table | BaseException]:
    """Several searches in one Ray task (fewer round trips): each one's curve rows, or
    the exception that ended it."""
    return [_run_guarded(table, job, config, fronts, table_digest) for job in jobs]


def _warm() -> int:
    """A worker's first task: import what the searches run, before they are timed."""
    import raynas.policies  # noqa: F401
    import raynas.search  # noqa: F401

    return os.getpid()


def _run_on_ray(table, jobs, config, fronts, digest, finish, phases) -> dict[str, float]:
    """The searches as Ray tasks, a few per task (about four tasks per CPU), the table
    and fronts in the object store once, the workers warmed first."""
    import ray

    from raynas.cluster import connect

    mark = time.perf_counter()
    connect(config.address, config.num_cpus)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    ray.get([ray.remote(num_cpus=1)(_warm).remote() for _ in range(cpus)])
    phases["ray_start"] = time.perf_counter() - mark
    meta_seconds = {}
    if config.transfer:
        mark = time.perf_counter()
        meta_seconds = meta_train_left_out(
            config, table, sorted({d for p, d, _ in jobs if p == "catch"}))
        phases["meta_train"] = time.perf_counter() - mark
    mark = time.perf_counter()
    remote = ray.remote(num_cpus=1)(run_many)
    table_ref = ray.put(table)
    fronts_ref = ray.put(fronts) if fronts is not None else None
    size = max(1, -(-len(jobs) // (4 * cpus)))
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    pending = {remote.remote(table_ref, chunk, config, fronts_ref, digest): chunk
               for chunk in chunks}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
        for ref in ready:
            chunk = pending.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                results = [exc] * len(chunk)
            for job, result in zip(chunk, results):
                finish(job, result)
    phases["searches"] = time.perf_counter() - mark
    return meta_seconds


def run_bench(config: BenchConfig, progress: bool = True) -> pa.Table:
    """Run every policy x dataset x seed as Ray tasks and write the outputs.

    Returns the curves table (also written to ``<out>/curves.parquet``; a
    multi-objective bench also writes ``<out>/hypervolume.parquet``).
    """
    from tqdm.auto import tqdm

    from raynas.report.bench import regret_scales, write_plot, write_summary

    start = time.perf_counter()
    phases: dict[str, float] = {}
    table = BenchmarkTable.load(config.benchmark, config.space)
    _check(config, table)
    phases["load"] = time.perf_counter() - start
    digest = file_digest(table.path)
    out = Path(config.out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    searches = [(p, d, s) for d in config.datasets for p in config.policies
                for s in range(config.seeds)]
    keys = {job: search_key(config, digest, *job) for job in searches}
    done: dict[tuple[str, str, int], pa.Table] = {}
    for job in searches:
        path = run_file(out, *job, keys[job])
        if path.exists() and (found := read_run(path)) is not None:
            done[job] = found
    jobs = [job for job in searches if job not in done]
    wanted = {run_file(out, *job, keys[job]).name for job in searches}
    foreign = [f for f in (out / "runs").glob("*.parquet") if f.name not in wanted]
    if done:
        logger.info("reusing %d of %d searches already in %s, made with identical settings",
                    len(done), len(searches), out / "runs")
    if foreign:
        logger.info("ignoring %d search file(s) in %s made with other settings (budget, seeds, "
                    "metrics, table, policy options...)", len(foreign), out / "runs")
    meta_seconds: dict[str, float] = {}
    crashed: list[tuple[tuple[str, str, int], BaseException]] = []
    execution = "none: every search reused"
    if jobs:
        fronts = true_fronts(table, config) if config.objectives else None

        def finish(job: tuple[str, str, int], result: pa.Table | BaseException) -> None:
            if isinstance(result, BaseException):
                crashed.append((job, result))
                return
            write_run(result, run_file(out, *job, keys[job]),
                      search_settings(config, digest, *job))
            done[job] = result
            bar.update(1)

        with tqdm(total=len(searches), initial=len(done), desc="bench", unit="search",
                  disable=not progress) as bar:
            mark = time.perf_counter()
            execution, jobs_left = config.execution, list(jobs)
            if config.transfer or (execution == "auto" and (
                    config.address or os.environ.get("RAY_ADDRESS"))):
                execution = "ray"  # CATCH meta-trains on Ray; a cluster is there to use
            if execution == "auto":  # time the first search here, then decide
                first = jobs_left.pop(0)
                finish(first, _run_guarded(table, first, config, fronts, digest))
                execution = _choose(time.perf_counter() - mark, len(jobs_left), config)
            if execution == "local":
                for job in jobs_left:
                    finish(job, _run_guarded(table, job, config, fronts, digest))
                phases["searches"] = time.perf_counter() - mark
            elif jobs_left:
                phases["local_first"] = time.perf_counter() - mark
                meta_seconds = _run_on_ray(table, jobs_left, config, fronts, digest, finish,
                                           phases)
        if crashed:
            (p, d, s), first_error = crashed[0]
            raise RuntimeError(
                f"{len(crashed)} of {len(jobs)} bench searches crashed (a bug; the first, "
                f"{p} on {d} seed {s}, is below). The {len(done)} finished searches are "
                f"kept in {out / 'runs'}; a rerun computes only the missing ones."
            ) from first_error
    mark = time.perf_counter()
    curves = pa.concat_tables(done[job].replace_schema_metadata(None) for job in searches)
    write_atomically(out / "curves.parquet", lambda tmp: pq.write_table(curves, tmp))
    if config.objectives:
        write_atomically(out / "hypervolume.parquet",
                         lambda tmp: pq.write_table(curves.select(list(HV_COLUMNS)), tmp))
    wall = time.perf_counter() - start
    evaluations = curves.num_rows
    write_summary(curves, table, config, out / "summary.md", wall, evaluations,
                  reused=len(searches) - len(jobs))
    if meta_seconds:
        with open(out / "summary.md", "a") as f:
            f.write("\nCATCH meta-training (leave-one-dataset-out), seconds per target "
                    "dataset, not included above: "
                    + ", ".join(f"{d}: {t:.1f}" for d, t in meta_seconds.items()) + "\n")
    write_plot(curves, out / "regret.png", regret_scales(table, config))
    phases["outputs"] = time.perf_counter() - mark
    phases["total"] = time.perf_counter() - start
    fresh = sum(done[job].num_rows for job in jobs)
    timings = {"evaluations": evaluations, "computed": fresh, "execution": execution,
               "seconds": phases}
    write_text(out / "timings.json", json.dumps(timings, indent=1) + "\n")
    logger.info("bench: %d evaluations in %.1f s, %s (%s)", evaluations, phases["total"],
                execution, ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()
                                     if k != "total"))
    return curves
