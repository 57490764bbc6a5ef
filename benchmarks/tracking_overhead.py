"""MLflow tracking overhead per evaluated architecture, against the same search untracked.

* Tabular mode: a regularized-evolution search of QUERIES lookups on the NB201
  table, with and without :class:`~raynas.tracking.MlflowTracker` (SQLite default
  store), repeated REPEATS times; the overhead is the difference in wall time per
  architecture. Target: <= 1 ms per architecture, amortised.
* Training mode: the tracked run's MLflow time per trial is measured directly: the
  wall time spent in the tracker's hooks (the search's parent run, fed by the search
  state as trials finish) and in the Tune callback's (a child run per trial, per-epoch
  metrics, closing), per trial; and, once per search, saving, logging and registering
  the best network's MLflow model.

Usage:
    python benchmarks/tracking_overhead.py --table ../shared/benchmarks/nb201_12epoch.parquet
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def tabular(table_path: Path, queries: int, repeats: int) -> None:
    from raynas.evaluators import TabularEvaluator
    from raynas.policies import make_policy
    from raynas.search import Budget, Search
    from raynas.tables import BenchmarkTable
    from raynas.tracking import MlflowTracker

    table = BenchmarkTable.load(table_path)
    evaluator = TabularEvaluator(table, "cifar10")

    nonlocal_queries = [queries]

    def run(tracked: bool) -> float:
        folder = Path(tempfile.mkdtemp())
        try:
            callbacks = [MlflowTracker(folder)] if tracked else []
            policy = make_policy("rea", table.space, seed=0)
            start = time.perf_counter()
            Search(table.space, policy, evaluator, Budget(max_queries=nonlocal_queries[0]),
                   callbacks=callbacks).run()
            return time.perf_counter() - start
        finally:
            shutil.rmtree(folder)

    run_sized = {}
    run(True)  # warm-up: imports
    for n in (queries, 3 * queries):
        nonlocal_queries[0] = n
        plain = statistics.median(run(False) for _ in range(repeats))
        tracked = statistics.median(run(True) for _ in range(repeats))
        run_sized[n] = tracked - plain
        print(f"tabular, {n} architectures, median of {repeats}: untracked {plain:.2f} s, "
              f"tracked {tracked:.2f} s, overhead {(tracked - plain) / n * 1e3:.3f} ms per "
              "architecture (fixed costs included)")
    small, large = queries, 3 * queries
    marginal = (run_sized[large] - run_sized[small]) / (large - small)
    fixed = run_sized[small] - marginal * small
    print(f"  marginal tracking cost: {marginal * 1e3:.3f} ms per architecture (target <= 1 ms); "
          f"fixed cost per search (a new SQLite store, its run, artifacts): {fixed:.2f} s")


def training(trials: int) -> None:
    import logging

    import ray

    from raynas import config as cfg
    from raynas import export
    from raynas.driver import run_search
    from raynas.tracking import tracker
    from raynas.tune import trial

    spent = {"trials": 0.0, "finish": 0.0, "model": 0.0}

    def timed(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    for name in ("setup", "on_trial_start", "on_trial_result", "on_trial_complete"):
        timed(trial.TrialRuns, name, "trials")
    for name in ("on_search_start", "on_step", "on_search_end"):
        timed(tracker.MlflowTracker, name, "trials")
    timed(tracker.MlflowTracker, "finish", "finish")
    timed(export, "save_mlflow_model", "model")
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    folder = Path(tempfile.mkdtemp())
    try:
        config = cfg.from_dict({"budget": trials, "evaluator": {"epochs": 2}})
        start = time.perf_counter()
        run_search(config, folder / "run", verbose=0)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(folder)
    per_trial = spent["trials"] / trials
    print(f"training, {trials} trials x 2 epochs: search wall {wall:.1f} s")
    print(f"  MLflow tracking during the trials (tracker and Tune callback): "
          f"{spent['trials']:.2f} s = {per_trial * 1e3:.0f} ms "
          f"per trial ({100 * spent['trials'] / wall:.1f} % of the driver's wall time)")
    print(f"  once per search: saving the best network as an MLflow model {spent['model']:.2f} s; "
          f"artifacts, model logging and registration, closing {spent['finish']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    tabular(args.table, args.queries, args.repeats)
    training(args.trials)


if __name__ == "__main__":
    main()
