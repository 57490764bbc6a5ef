"""``raynas bench``: many whole searches on a benchmark table, as parallel Ray tasks.

One Ray task runs one (policy, dataset, seed) search in process, without a Tune
trial per lookup (a Tune trial costs ~1 s here, a lookup microseconds). Each
finished search is written to ``<out>/runs/`` at once, so an interrupted bench
resumes where it stopped; ``curves.parquet``, ``summary.md`` and ``regret.png``
are then built from those files.
"""

from __future__ import annotations

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

from raynas.benchmarks import BenchmarkTable
from raynas.benchmarks.front import COST_METRICS, NB201_SHAPES
from raynas.policies import POLICIES, takes_objectives
from raynas.types import Objective

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ("policy", "dataset", "seed", "query", "valid_acc", "test_acc", "regret",
                 "sampled_regret", "hv_ratio")
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
        batch_size: Architectures asked per round.
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

    @property
    def objective(self) -> Objective:
        return Objective(self.search_metric, self.mode)

    def __post_init__(self) -> None:
        from raynas.errors import unknown_name

        if not self.datasets:
            raise ValueError("datasets: give at least one dataset")
        if not self.policies:
            raise ValueError("policies: give at least one policy")
        for name in self.policies:
            if name not in POLICIES:
                raise unknown_name("policy", name, POLICIES)
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.transfer not in (None, "leave-one-out"):
            raise ValueError(f"transfer must be 'leave-one-out' (or none), got {self.transfer!r}")
        if self.transfer and "catch" not in self.policies:
            raise ValueError("transfer: only the catch policy meta-trains; add catch to policies")
        if self.seeds < 1 or self.budget < 1:
            raise ValueError(f"seeds and budget must be >= 1, got {self.seeds} and {self.budget}")
        if self.objectives:
            if len(self.objectives) != 2 or self.objectives[0] != (self.search_metric, self.mode):
                raise ValueError(
                    "objectives: give two, the first the search metric "
                    f"({self.search_metric}:{self.mode}), e.g. valid_acc:max,params:min"
                )
            if self.objectives[1][0] not in COST_METRICS or self.objectives[1][1] != "min":
                raise ValueError("objectives: the second must be params:min or flops:min (the "
                                 "table's true front is computed against the space's cost model)")
            unknown = [d for d in self.datasets if d not in NB201_SHAPES]
            if unknown:
                raise ValueError(f"objectives: network sizes are unknown for {unknown}; known: "
                                 f"{', '.join(NB201_SHAPES)}")


def search_seed(base_seed: int, index: int) -> int:
    """Seed of the ``index``-th search: independent of policy, dataset and run order."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class _FixedCosts:
    """Params and FLOPs of every table row, computed once (a cost model for the evaluator)."""

    params_: np.ndarray
    flops_: np.ndarray

    def params(self, archs) -> np.ndarray:
        return self.params_

    def flops(self, archs) -> np.ndarray:
        return self.flops_


@dataclass(frozen=True)
class TrueFront:
    """A dataset's true front and what a multi-objective search is scored with."""

    costs: _FixedCosts
    spec: Any  # FrontSpec
    volume: float


def true_fronts(table: BenchmarkTable, config: BenchConfig) -> dict[str, TrueFront]:
    """Per dataset: the table's costs, the front spec and the true front's hypervolume."""
    from raynas.benchmarks.front import table_front
    from raynas.front_report import FrontSpec
    from raynas.spaces.cost import LinearCostModel

    out = {}
    cost = config.objectives[1][0]
    for dataset in config.datasets:
        classes, size = NB201_SHAPES[dataset]
        model = LinearCostModel(table.space, num_classes=classes, input_size=size)
        costs = _FixedCosts(model.params(table.archs), model.flops(table.archs))
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
) -> pa.Table:
    """One whole search in process; returns its incumbent curve rows (with ``hv_ratio``,
    the front's share of the true front's hypervolume, in a multi-objective bench)."""
    from raynas.evaluators import TabularEvaluator
    from raynas.front_report import hypervolume_curve
    from raynas.policies import make_policy
    from raynas.search import Budget, Search, incumbent_curve

    front = fronts.get(dataset) if fronts else None
    evaluator = TabularEvaluator(table, dataset, config.search_metric, config.report_metric,
                                 cost_model=front.costs if front else None)
    kwargs = dict(config.policy_kwargs.get(policy, {}))
    if policy == "catch" and config.transfer:
        kwargs.setdefault("checkpoint", str(meta_checkpoint(config, dataset)))
    if config.objectives and takes_objectives(policy):
        kwargs.setdefault("objectives", dict(config.objectives))
    policy_obj = make_policy(
        policy, table.space, seed=search_seed(config.base_seed, seed_index),
        objective=config.objective, **kwargs,
    )
    search = Search(
        table.space, policy_obj, evaluator, Budget(max_queries=config.budget),
        batch_size=config.batch_size,
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
    sampled = np.asarray(fresh[config.search_metric].to_numpy(zero_copy_only=False), dtype=float)
    best = table.best(dataset, config.search_metric, config.mode)
    return pa.table({
        "policy": pa.array([policy] * n, pa.string()),
        "dataset": pa.array([dataset] * n, pa.string()),
        "seed": pa.array(np.full(n, seed_index), pa.int32()),
        "query": pa.array(np.arange(1, n + 1), pa.int32()),
        "valid_acc": valid,
        "test_acc": test,
        "regret": config.objective.sign * (evaluator.optimum(config.mode) - test),
        # the search-metric regret of the architecture evaluated at this query (NaN if it
        # failed); its cumulative sum is the policy's cumulative regret
        "sampled_regret": config.objective.sign * (best - sampled),
        "hv_ratio": pa.array(hypervolume_curve(result.history, front.spec) / front.volume
                             if front else [None] * n, pa.float64()),  # null: one objective
    })


def meta_checkpoint(config: BenchConfig, dataset: str) -> Path:
    """Where the CATCH checkpoint meta-trained without ``dataset`` is cached."""
    return Path(config.out).resolve() / "catch" / f"without-{dataset}.json"


def meta_train_left_out(config: BenchConfig, table: BenchmarkTable,
                        datasets: list[str]) -> dict[str, float]:
    """Meta-train CATCH once per target dataset on the table's other datasets (missing
    checkpoints only); returns the meta-training seconds per target dataset."""
    from raynas.policies.catch import meta_train, read_checkpoint, table_tasks

    seconds = {}
    for dataset in datasets:
        path = meta_checkpoint(config, dataset)
        if not path.exists():
            others = [d for d in table.datasets if d != dataset]
            if not others:
                raise ValueError(f"transfer: the table has no dataset but {dataset} to "
                                 "meta-train on")
            tasks = table_tasks(config.benchmark, others, space=config.space,
                                search_metric=config.search_metric,
                                report_metric=config.report_metric)
            meta_train(table.space, tasks, seed=config.base_seed, out=path,
                       **{**config.policy_kwargs.get("catch", {}), **config.meta})
        seconds[dataset] = float(read_checkpoint(path)["info"]["seconds"])
    return seconds


def _run_file(out: Path, policy: str, dataset: str, seed: int) -> Path:
    return out / "runs" / f"{policy}__{dataset}__{seed}.parquet"


def _init_ray(config: BenchConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(
            num_cpus=config.num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )


def _check(config: BenchConfig, table: BenchmarkTable) -> None:
    """Fail fast, in the driver, on what would otherwise fail inside every Ray task."""
    from raynas.policies import make_policy

    for dataset in config.datasets:
        table.check_dataset(dataset)
        for metric in (config.search_metric, config.report_metric):
            table.column(dataset, metric)
    unknown = set(config.policy_kwargs) - set(config.policies)
    if unknown:
        raise ValueError(f"policy_kwargs names policies not in the bench: {sorted(unknown)}")
    for name in config.policies:  # bad hyperparameters and missing extras surface here
        make_policy(
            name, table.space, seed=0, objective=config.objective,
            **config.policy_kwargs.get(name, {}),
        )


def run_bench(config: BenchConfig, progress: bool = True) -> pa.Table:
    """Run every policy x dataset x seed as Ray tasks and write the outputs.

    Returns the curves table (also written to ``<out>/curves.parquet``; a
    multi-objective bench also writes ``<out>/hypervolume.parquet``).
    """
    import ray
    from tqdm.auto import tqdm

    from raynas.bench.report import write_plot, write_summary

    start = time.perf_counter()
    table = BenchmarkTable.load(config.benchmark, config.space)
    _check(config, table)
    out = Path(config.out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [
        (p, d, s)
        for d in config.datasets
        for p in config.policies
        for s in range(config.seeds)
        if not _run_file(out, p, d, s).exists()
    ]
    total = len(config.datasets) * len(config.policies) * config.seeds
    if len(jobs) < total:
        logger.info("resuming: %d of %d searches already on disk", total - len(jobs), total)
    meta_seconds: dict[str, float] = {}
    if jobs:
        _init_ray(config)
        if config.transfer:
            meta_seconds = meta_train_left_out(
                config, table, sorted({d for p, d, _ in jobs if p == "catch"}))
        remote = ray.remote(num_cpus=1)(run_one)
        table_ref = ray.put(table)
        fronts = ray.put(true_fronts(table, config)) if config.objectives else None
        pending = {
            remote.remote(table_ref, d, p, s, config, fronts): (p, d, s) for p, d, s in jobs
        }
        with tqdm(total=total, initial=total - len(jobs), desc="bench", unit="search",
                  disable=not progress) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=min(len(pending), 8), timeout=5.0)
                for ref in done:
                    p, d, s = pending.pop(ref)
                    pq.write_table(ray.get(ref), _run_file(out, p, d, s))
                    bar.update(1)
    curves = pa.concat_tables(
        pq.read_table(_run_file(out, p, d, s))
        for d in config.datasets
        for p in config.policies
        for s in range(config.seeds)
    )
    pq.write_table(curves, out / "curves.parquet")
    if config.objectives:
        pq.write_table(curves.select(list(HV_COLUMNS)), out / "hypervolume.parquet")
    wall = time.perf_counter() - start
    evaluations = curves.num_rows
    write_summary(curves, table, config, out / "summary.md", wall, evaluations)
    if meta_seconds:
        with open(out / "summary.md", "a") as f:
            f.write("\nCATCH meta-training (leave-one-dataset-out), seconds per target "
                    "dataset, not included above: "
                    + ", ".join(f"{d}: {t:.1f}" for d, t in meta_seconds.items()) + "\n")
    write_plot(curves, out / "regret.png")
    logger.info("bench: %d evaluations in %.1f s", evaluations, wall)
    return curves
