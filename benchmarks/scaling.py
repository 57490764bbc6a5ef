"""Scaling out: the same raynas workloads on 1, 2 and 3 Ray worker nodes.

Each configuration is a fresh multi-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``): a head node with no CPUs (it runs no work, like a
cluster's head) and N worker nodes of one CPU each. The workloads:

* **tabular**: a fixed `raynas bench` (policies x datasets x seeds on the NB201 table,
  one Ray task per search), run through ``raynas.bench.run_bench`` as `raynas bench
  --address` runs it. The default policy is NPG (about 0.75 s per 200-query search
  here): REA or LS searches take 15-30 ms, less than the bench's fixed costs (loading
  the table, writing the curves, summary and plot), so they would measure those
  instead. Workers are warmed first (a one-seed bench), so the figure is the steady
  state; the warm-up is reported too.
* **peer, plain processes**: the same searches over N plain ``multiprocessing``
  processes, no Ray and no bench bookkeeping: how far this machine's cores scale.
* **per-task overhead**: a round trip of an empty Ray task, one at a time and
  ``--noop-tasks`` at once, and the bench's wall time that is not its searches' own
  compute.
* **training**: a real-training `raynas search` on digits with as many concurrent trials
  as worker nodes (``raynas.driver.run_search``, MLflow off).

Speed-up = wall time on 1 worker / wall time on N workers (when ``--nodes`` does not
start at 1, the first configuration's wall time times its node count stands in). On a
2-core machine, 3 one-CPU nodes are oversubscribed: the third can only add contention.

Usage:
    python benchmarks/scaling.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--nodes 1,2,3] [--seeds 64] [--budget 200] [--policies npg] \
        [--trials 6] [--epochs 3] [--parts tabular,training] [--out /tmp/scaling]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def start_cluster(workers: int):
    """A head node without CPUs and ``workers`` nodes of 1 CPU; the driver connects."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": 200 * 1024**2})
    for _ in range(workers):
        cluster.add_node(num_cpus=1, object_store_memory=150 * 1024**2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    return cluster


def stop_cluster(cluster) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


def noop_overhead(n: int) -> tuple[float, float]:
    """Milliseconds per empty task: one round trip at a time, and amortised over ``n``."""
    import ray

    @ray.remote(num_cpus=1)
    def noop():
        return None

    ray.get([noop.remote() for _ in range(2 * n)])  # warm every worker
    start = time.perf_counter()
    for _ in range(50):
        ray.get(noop.remote())
    serial = (time.perf_counter() - start) / 50 * 1e3
    start = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    batched = (time.perf_counter() - start) / n * 1e3
    return serial, batched


_TABLE = None


def _pool_init(path: str, space: str) -> None:
    global _TABLE
    # one thread per process, as Ray gives its workers (OMP_NUM_THREADS=1): with torch's
    # default of one thread per core, N processes on N cores spin against each other
    os.environ["OMP_NUM_THREADS"] = "1"
    from raynas.tables import BenchmarkTable

    _TABLE = BenchmarkTable.load(path, space)


def _pool_search(job) -> int:
    from raynas.bench.runner import run_one

    dataset, policy, seed, config = job
    return run_one(_TABLE, dataset, policy, seed, config, None).num_rows


def plain_processes(config, processes: int) -> float:
    """The peer: the bench's searches over ``processes`` plain worker processes (no Ray),
    warmed first; the wall time of the searches alone, what this machine's cores allow."""
    import multiprocessing

    jobs = [(d, p, s, config) for d in config.datasets for p in config.policies
            for s in range(config.seeds)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, _pool_init, (str(config.benchmark), config.space)) as pool:
        pool.map(_pool_search, jobs[:processes], chunksize=1)  # imports and first calls
        start = time.perf_counter()
        pool.map(_pool_search, jobs, chunksize=1)
        return time.perf_counter() - start


def search_compute(config) -> float:
    """Seconds the bench's searches take in one warm process, one after another, no Ray."""
    from raynas.bench.runner import run_one
    from raynas.tables import BenchmarkTable

    table = BenchmarkTable.load(config.benchmark, config.space)
    for policy in config.policies:  # imports and first-call costs, as in a warm Ray worker
        run_one(table, config.datasets[0], policy, config.seeds, config, None)
    start = time.perf_counter()
    for dataset in config.datasets:
        for policy in config.policies:
            for seed in range(config.seeds):
                run_one(table, dataset, policy, seed, config, None)
    return time.perf_counter() - start


def tabular(bench, workers: int, noop_tasks: int, out: Path) -> dict[str, float]:
    """``bench`` on a fresh cluster of ``workers`` nodes, after a warm-up bench."""
    from dataclasses import replace

    from raynas.bench.runner import run_bench

    cluster = start_cluster(workers)
    try:
        start = time.perf_counter()
        run_bench(replace(bench, seeds=max(1, workers), out=out / "warmup"), progress=False)
        warmup = time.perf_counter() - start
        serial, batched = noop_overhead(noop_tasks)
        start = time.perf_counter()
        run_bench(replace(bench, out=out / "bench"), progress=False)
        wall = time.perf_counter() - start
    finally:
        stop_cluster(cluster)
    return {"warmup": warmup, "wall": wall, "noop_serial_ms": serial, "noop_batched_ms": batched}


def training(args, workers: int, out: Path) -> float:
    from raynas import config as cfg
    from raynas.driver import run_search

    config = cfg.from_dict({
        "space": {"name": "nb201", "channels": 8, "cells_per_stage": 1},
        "policy": {"name": "random"},
        "evaluator": {"kind": "training", "dataset": "digits", "input_size": 16,
                      "epochs": args.epochs, "measure_latency": False},
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": workers},
        "tracking": {"mlflow": False},
        "budget": args.trials, "seed": 0,
    })
    cluster = start_cluster(workers)
    try:
        start = time.perf_counter()
        run_search(config, out / f"train_{workers}", verbose=0)
        return time.perf_counter() - start
    finally:
        stop_cluster(cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["cifar10"])
    parser.add_argument("--policies", type=lambda s: s.split(","), default=["npg"])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--noop-tasks", type=int, default=400)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--parts", type=lambda s: s.split(","), default=["tabular", "training"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/scaling"))
    args = parser.parse_args()
    if "tabular" in args.parts and (args.table is None or not Path(args.table).is_file()):
        parser.error(f"--table: no table at {args.table}")
    shutil.rmtree(args.out, ignore_errors=True)
    logging.basicConfig(level=logging.WARNING)

    if "tabular" in args.parts:
        from raynas.bench.runner import BenchConfig

        bench = BenchConfig(benchmark=args.table, datasets=tuple(args.datasets),
                            policies=tuple(args.policies), seeds=args.seeds, budget=args.budget)
        searches = len(args.datasets) * len(args.policies) * args.seeds
        compute = search_compute(bench)
        print(f"\ntabular: {searches} searches ({','.join(args.policies)} x "
              f"{','.join(args.datasets)} x {args.seeds} seeds, {args.budget} queries); their "
              f"own compute, in one process without Ray: {compute:.1f} s "
              f"({compute / searches * 1e3:.0f} ms per search)")
        print("| worker nodes | warm-up | bench wall | speed-up | efficiency | "
              "overhead per search | empty task, serial | empty task, batched | "
              "peer: plain processes, searches only | peer speed-up |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        base = plain_base = None
        for n in args.nodes:
            r = tabular(bench, n, args.noop_tasks, args.out / f"tabular_{n}")
            plain = plain_processes(bench, n)
            base, plain_base = base or r["wall"], plain_base or plain
            speedup = base / r["wall"] * args.nodes[0]
            per_search = (r["wall"] * n - compute) / searches * 1e3
            print(f"| {n} | {r['warmup']:.1f} s | {r['wall']:.1f} s | {speedup:.2f}x | "
                  f"{speedup / n:.0%} | {per_search:.0f} ms | {r['noop_serial_ms']:.2f} ms | "
                  f"{r['noop_batched_ms']:.2f} ms | {plain:.1f} s | "
                  f"{plain_base / plain * args.nodes[0]:.2f}x |", flush=True)

    if "training" in args.parts:
        print(f"\ntraining: `raynas search`, {args.trials} NB201 cells (8 channels) x "
              f"{args.epochs} epochs on digits, 1 CPU per trial, as many concurrent trials "
              "as worker nodes")
        print("| worker nodes | wall | speed-up |")
        print("|---|---|---|")
        base = None
        for n in args.nodes:
            wall = training(args, n, args.out)
            base = base or wall
            print(f"| {n} | {wall:.1f} s | {base / wall * args.nodes[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
