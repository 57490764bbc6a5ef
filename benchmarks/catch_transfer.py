"""CATCH's transfer on NAS-Bench-201: leave one dataset out, meta-train on the other
two, adapt on it; against random search, REA, LS and Optuna's TPE in the same run,
plus three ablations (search from scratch, without z, without the evaluator).

Protocol: search on validation accuracy, report the incumbent's test regret (the
table's best test accuracy minus the incumbent's), mean ± std over the seeds at
10/25/50/100 queries. Every variant meta-trains its own checkpoints (cached in
``--out``); the meta-training time per target dataset is printed separately.

Usage:
    python benchmarks/catch_transfer.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--seeds 20] [--budget 100] [--meta-iterations 30] [--out /tmp/catch_transfer]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from raynas.bench import BenchConfig, run_bench
from raynas.bench.store import meta_checkpoint
from raynas.policies.catch import read_checkpoint
from raynas.report.bench import regret_at

PEERS = ("random", "rea", "ls", "tpe")
DATASETS = ("cifar10", "cifar100", "imagenet16_120")
POINTS = (10, 25, 50, 100)
# label -> (transfer, catch options)
VARIANTS = {
    "catch": ("leave-one-out", {}),
    "catch, from scratch": (None, {}),
    "catch, without z": ("leave-one-out", {"use_z": False}),
    "catch, without evaluator": ("leave-one-out", {"use_evaluator": False}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--meta-iterations", type=int, default=30)
    parser.add_argument("--meta-queries", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("/tmp/catch_transfer"))
    args = parser.parse_args()
    common = dict(benchmark=args.table, datasets=DATASETS, seeds=args.seeds, budget=args.budget,
                  meta={"iterations": args.meta_iterations, "queries": args.meta_queries})
    start = time.perf_counter()
    runs, meta_seconds = {}, {}
    for k, (label, (transfer, options)) in enumerate(VARIANTS.items()):
        policies = ("catch", *PEERS) if k == 0 else ("catch",)
        config = BenchConfig(policies=policies, out=args.out / f"variant{k}", transfer=transfer,
                             policy_kwargs={"catch": options}, **common)
        runs[label] = run_bench(config, progress=True)
        if transfer:
            meta_seconds[label] = {
                d: read_checkpoint(meta_checkpoint(config, d))["info"]["seconds"]
                for d in DATASETS}
    print(f"\nwhole run: {time.perf_counter() - start:.0f} s")
    print("\ntest regret (pp) of the incumbent, mean ± std over "
          f"{args.seeds} seeds\n")
    print("| dataset | policy | " + " | ".join(f"@{q}" for q in POINTS) + " |")
    print("|---|---|" + "---|" * len(POINTS))
    for dataset in DATASETS:
        rows = [(label, "catch", runs[label]) for label in VARIANTS]
        rows += [(p, p, runs["catch"]) for p in PEERS]
        for label, policy, curves in rows:
            cells = []
            for q in POINTS:
                r = regret_at(curves, policy, dataset, q)
                cells.append(f"{r.mean():.2f} ± {r.std(ddof=1):.2f}")
            print(f"| {dataset} | {label} | " + " | ".join(cells) + " |")
    print("\nmeta-training seconds per target dataset (2 tasks, 2 CPUs):")
    for label, seconds in meta_seconds.items():
        print(f"  {label}: " + ", ".join(f"{d} {s:.0f} s" for d, s in seconds.items()))


if __name__ == "__main__":
    main()
