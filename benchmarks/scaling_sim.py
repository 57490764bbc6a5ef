"""Scaling by simulation: how much sooner does each policy reach a regret with k workers?

Every search runs on raynas's simulated backend (``raynas.search.Simulated``): k virtual
workers on the shared NB201 table, each evaluation taking its ``<dataset>_train_time``
seconds of simulated time, results arriving in simulated-time order, a free worker
asking the policy at once (asynchronous). Nothing sleeps; the searches of one k run as
one ``raynas bench --workers k`` (Ray tasks over this machine's cores).

For each policy and k the script reports:

* **regret at fixed simulated times** (mean over seeds with a result by then): the time
  one worker of random search needs to reach the target, and 1/4, 1/16, 1/64 of it;
* **time to the target regret**: the first simulated time a search's incumbent reaches
  the median regret random search reaches after ``--target-queries`` queries with one
  worker; its median over seeds (a search that never reaches it counts as infinite),
  and the **speed-up** median(k = 1) / median(k) beside the ideal k;
* the same for **synchronous batches** of k (ask k, wait for the slowest, tell all),
  with ``--synchronous``;
* the **cost bias**: the median simulated time of the first k results against the
  table's mean ``train_time`` (below 1: cheap, small networks finish first).

Targets (issue 19): random search's speed-up >= 0.9 k up to k = 64; REA and LS >= 0.7 k
up to k = 16.

Usage:
    python benchmarks/scaling_sim.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--policies random,rea,ls,npg,catch] [--workers 1,4,16,64,256] [--seeds 20] \
        [--dataset cifar10] [--queries 300] [--synchronous] [--out /tmp/scaling_sim]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def time_to(curves, policy: str, target: float) -> np.ndarray:
    """Per seed: the first simulated time the incumbent's regret is <= ``target``."""
    sub = curves[curves["policy"] == policy]
    out = []
    for _, run in sub.groupby("seed"):
        hit = run[run["regret"] <= target]
        out.append(float(hit["time"].min()) if len(hit) else math.inf)
    return np.asarray(out)


def regret_at(curves, policy: str, seconds: float) -> np.ndarray:
    sub = curves[(curves["policy"] == policy) & (curves["time"] <= seconds)]
    return np.asarray([run.sort_values("time")["regret"].iloc[-1] if len(run) else np.nan
                       for _, run in sub.groupby("seed")])


def run(bench, k: int, synchronous: bool, out: Path):
    from raynas.bench.runner import run_bench

    config = replace(bench, workers=k, synchronous=synchronous and k > 1,
                     budget=bench.budget + 2 * k, out=out)
    start = time.perf_counter()
    curves = run_bench(config, progress=False).to_pandas()
    return curves, time.perf_counter() - start


def cost_bias(curves, k: int, mean_cost: float) -> float:
    """The median simulated time of each search's first k results over the table's mean
    train_time: below 1, the first results are cheap (small) networks."""
    first = curves[curves["query"] <= k]
    return float(first["time"].median()) / mean_cost if len(first) else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--policies", type=lambda s: s.split(","),
                        default=["random", "rea", "ls", "npg", "catch"])
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 4, 16, 64, 256])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300,
                        help="queries per search with one worker; k workers get 2k more")
    parser.add_argument("--target-queries", type=int, default=100)
    parser.add_argument("--synchronous", action="store_true",
                        help="also run synchronous batches of k for every k > 1")
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/scaling_sim"))
    args = parser.parse_args()
    if args.table is None or not Path(args.table).is_file():
        parser.error(f"--table: no table at {args.table}")
    if args.workers[0] != 1:
        parser.error("--workers must start with 1 (the speed-ups are against one worker)")
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", "Mean of empty slice")

    import ray

    from raynas.bench.runner import BenchConfig
    from raynas.tables import BenchmarkTable

    started = time.perf_counter()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False,
             logging_level=logging.WARNING)
    table = BenchmarkTable.load(args.table)
    mean_cost = float(table.column(args.dataset, "train_time").mean())
    bench = BenchConfig(benchmark=args.table, datasets=(args.dataset,),
                        policies=tuple(args.policies), seeds=args.seeds, budget=args.queries,
                        cost_metric="train_time")
    modes = [("async", False)] + ([("sync", True)] if args.synchronous else [])
    results, walls = {}, {}
    for k in args.workers:
        for mode, sync in modes:
            if sync and k == 1:
                continue
            results[(mode, k)], walls[(mode, k)] = run(bench, k, sync,
                                                      args.out / f"{mode}_{k}")
    one = results[("async", 1)]
    random_one = one[(one["policy"] == "random") & (one["query"] == args.target_queries)]
    target = float(np.median(random_one["regret"])) if len(random_one) else math.nan
    base = {p: np.median(time_to(one, p, target)) for p in args.policies}
    reference = base.get("random", next(iter(base.values())))  # one worker's time to target
    times = [reference / 64, reference / 16, reference / 4, reference]
    print(f"\n{args.dataset}, {args.seeds} seeds; target regret {target:.2f} pp (the median "
          f"random search reaches after {args.target_queries} queries with one worker); "
          f"the table's mean train_time {mean_cost:.0f} s")
    print("\n| policy | mode | k | regret @" + " | @".join(f"{t:,.0f} s" for t in times)
          + " | time to target (median) | speed-up | ideal | first-k time / mean cost | wall |")
    print("|---|---|---|" + "---|" * len(times) + "---|---|---|---|---|")
    for (mode, k), curves in results.items():
        for policy in args.policies:
            t = np.median(time_to(curves, policy, target))
            cells = " | ".join(f"{np.nanmean(regret_at(curves, policy, s)):.2f}" for s in times)
            speed = base[policy] / t if math.isfinite(t) and t > 0 else math.nan
            bias = cost_bias(curves[curves["policy"] == policy], k, mean_cost)
            print(f"| {policy} | {mode} | {k} | {cells} | {t:,.0f} s | {speed:.1f}x | {k}x | "
                  f"{bias:.2f} | {walls[(mode, k)]:.0f} s |", flush=True)
    print("\nbest policy per k, at an equal simulated-time budget (the time by which every "
          "search with that k finished its queries):")
    for (mode, k), curves in results.items():
        budget = float(curves.groupby(["policy", "seed"])["time"].max().min())
        means = {p: np.nanmean(regret_at(curves, p, budget)) for p in args.policies}
        best = min(means, key=means.get)
        ranked = ", ".join(f"{p} {m:.2f}" for p, m in sorted(means.items(), key=lambda x: x[1]))
        print(f"- {mode} k={k} ({budget:,.0f} s): {best}; regret {ranked}")
    print(f"\nthe whole study: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
