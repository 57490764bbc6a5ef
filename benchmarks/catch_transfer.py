"""CATCH's transfer on NAS-Bench-201: leave one dataset out, meta-train on the other
two, adapt on it; against random search, REA, LS and Optuna's TPE in the same run,
plus three ablations (search from scratch, without z, without the evaluator).

Protocol: search on validation accuracy, report the incumbent's test regret (the
table's best test accuracy minus the incumbent's), mean ± std over the seeds at
10/25/50/100 queries. Every variant meta-trains its own checkpoints (cached in
``--out``); the meta-training time per target dataset is printed separately.

``--tasks relabelled`` (or ``both``) runs the same on a task family that disagrees
with the meta-training tasks (issue 23): the table with CIFAR-100's operations
relabelled by a fixed permutation (``raynas.tables.variants.relabel_ops``, ops
``RELABEL``: the cell that uses skip-connect on an edge gets the results of the one
that uses conv 3x3 there, ...), so CIFAR-100's good cells are elsewhere while its
values and landscape are kept; targeting CIFAR-100, CATCH meta-trains on the two
unchanged datasets and its prior points the wrong way.

Usage:
    python benchmarks/catch_transfer.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--seeds 20] [--budget 100] [--meta-iterations 30] [--out /tmp/catch_transfer] \
        [--tasks plain|relabelled|both]
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
RELABEL = [0, 3, 4, 1, 2]  # NB201 ops: none, skip <- conv3x3, conv1x1 <- avg pool, ...
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
    parser.add_argument("--tasks", choices=("plain", "relabelled", "both"), default="plain")
    args = parser.parse_args()
    tables = []
    if args.tasks in ("plain", "both"):
        tables.append(("plain leave-one-out", args.table, args.out))
    if args.tasks in ("relabelled", "both"):
        import pyarrow.parquet as pq

        from raynas.tables import BenchmarkTable
        from raynas.tables.variants import relabel_ops

        space = BenchmarkTable.load(args.table).space
        variant = args.out / "relabelled" / "nb201_cifar100_relabelled.parquet"
        variant.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(relabel_ops(pq.read_table(args.table), space, "cifar100", RELABEL),
                       variant)
        tables.append(("CIFAR-100's ops relabelled (disagrees with the others)", variant,
                       args.out / "relabelled"))
    for title, table, out in tables:
        print(f"\n# {title}: {table}")
        _run(args, table, out)


def _run(args, table: Path, out: Path) -> None:
    common = dict(benchmark=table, datasets=DATASETS, seeds=args.seeds, budget=args.budget,
                  meta={"iterations": args.meta_iterations, "queries": args.meta_queries})
    start = time.perf_counter()
    runs, meta_seconds = {}, {}
    for k, (label, (transfer, options)) in enumerate(VARIANTS.items()):
        policies = ("catch", *PEERS) if k == 0 else ("catch",)
        config = BenchConfig(policies=policies, out=out / f"variant{k}", transfer=transfer,
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
