"""MANAS and MANAS-LS against random search, REA and LS on the NB201 table, same run.

Every policy searches every dataset with the same seeds through ``raynas bench``
(per-edge agents rewarded by the table's validation accuracy; search on valid,
report test). Prints, per dataset and policy:

* the mean test regret of the incumbent ± standard error at 50/100/200 queries;
* the cumulative regret (the sum over queries of the evaluated architectures'
  validation regret) at 50/100/200 queries, and its growth from 100 to 200
  queries (< 2: sublinear).

Usage:
    python benchmarks/manas_nb201.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--seeds 20] [--budget 200] [--out /tmp/manas_nb201]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from raynas.bench import BenchConfig, run_bench

POLICIES = ("manas", "manas-ls", "random", "rea", "ls")
DATASETS = ("cifar10", "cifar100", "imagenet16_120")
POINTS = (50, 100, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("/tmp/manas_nb201"))
    args = parser.parse_args()
    start = time.perf_counter()
    curves = run_bench(BenchConfig(
        benchmark=args.table, datasets=DATASETS, policies=POLICIES, seeds=args.seeds,
        budget=args.budget, out=args.out,
    )).to_pandas()
    print(f"{len(POLICIES)} policies x {len(DATASETS)} datasets x {args.seeds} seeds x "
          f"{args.budget} queries in {time.perf_counter() - start:.1f} s\n")
    points = [q for q in POINTS if q <= args.budget] or [args.budget]  # a smoke run: its end
    header = " / ".join(f"@{q}" for q in points)
    print(f"| dataset | policy | test regret {header} | cumulative regret {header} | "
          f"growth @{points[-1]}/@{points[-1] // 2} |")
    print("|---|---|---|---|---|")
    for dataset in DATASETS:
        for policy in POLICIES:
            runs = curves[(curves.policy == policy) & (curves.dataset == dataset)]
            by_seed = [g.sort_values("query") for _, g in runs.groupby("seed")]
            regret = np.array([g.regret.to_numpy()[: args.budget] for g in by_seed])
            cumulative = np.array([np.nancumsum(g.sampled_regret.to_numpy()[: args.budget])
                                   for g in by_seed])
            se = regret.std(axis=0, ddof=1) / np.sqrt(len(regret))
            final = " / ".join(f"{regret[:, q - 1].mean():.2f} ± {se[q - 1]:.2f}" for q in points)
            cum = " / ".join(f"{cumulative[:, q - 1].mean():.0f}" for q in points)
            half = points[-1] // 2
            growth = cumulative[:, points[-1] - 1].mean() / cumulative[:, half - 1].mean()
            print(f"| {dataset} | {policy} | {final} | {cum} | {growth:.2f} |")


if __name__ == "__main__":
    main()
