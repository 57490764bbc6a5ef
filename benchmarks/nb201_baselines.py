"""Baselines on the NB201 table, with Optuna's TPE as a peer, measured in the same run.

1. Speed: times the whole ``raynas bench`` command (random, rea, ls x 3 datasets x
   SEEDS seeds x BUDGET queries) in a fresh process, Ray start-up included.
2. Quality: adds the ``tpe`` peer (Optuna's TPESampler through raynas's ask/tell
   wrapper) to the same output folder (finished searches are reused), then prints
   mean test regret ± standard error at 25/50/100/200 queries next to the anchor
   figures of shared/benchmarks/README.md.

Usage:
    python benchmarks/nb201_baselines.py --table ../shared/benchmarks/nb201_12epoch.parquet
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from raynas.bench import BenchConfig, run_bench
from raynas.report.bench import regret_at, report_points

# Mean test regret over 20 seeds, shared/benchmarks/README.md ("Anchor figures").
ANCHORS = {
    ("cifar10", "random"): (1.89, 1.64, 1.02, 0.85),
    ("cifar10", "rea"): (2.06, 1.16, 0.53, 0.42),
    ("cifar10", "ls"): (1.50, 0.71, 0.42, 0.20),
    ("cifar10", "tpe"): (1.58, 0.80, 0.35, 0.19),
    ("cifar100", "random"): (4.53, 3.44, 2.11, 1.84),
    ("cifar100", "rea"): (3.85, 2.36, 1.30, 0.94),
    ("cifar100", "ls"): (3.56, 1.60, 0.60, 0.24),
    ("cifar100", "tpe"): (3.95, 1.20, 0.51, 0.28),
    ("imagenet16_120", "random"): (4.86, 4.14, 3.04, 2.60),
    ("imagenet16_120", "rea"): (4.82, 3.52, 2.38, 1.97),
    ("imagenet16_120", "ls"): (3.77, 1.59, 0.76, 0.22),
    ("imagenet16_120", "tpe"): (4.41, 2.63, 1.43, 0.97),
}
ANCHOR_QUERIES = (25, 50, 100, 200)
DATASETS = ("cifar10", "cifar100", "imagenet16_120")


def time_bench_command(table: Path, out: Path, seeds: int, budget: int) -> float:
    cmd = [
        str(Path(sys.executable).parent / "raynas"), "bench", "--benchmark", str(table),
        "--datasets", ",".join(DATASETS), "--policies", "random,rea,ls",
        "--seeds", str(seeds), "--budget", str(budget), "--out", str(out), "--num-cpus", "2",
    ]
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("raynas-results/nb201_baselines"))
    parser.add_argument("--policies", default="random,rea,ls,tpe",
                        help="policies of the quality table (tpe is the slow Optuna peer)")
    args = parser.parse_args()
    out = args.out.resolve()
    if out.exists():
        import shutil

        shutil.rmtree(out)  # a fresh folder: the timing must not reuse earlier searches

    wall = time_bench_command(args.table, out, args.seeds, args.budget)
    evaluations = 3 * len(DATASETS) * args.seeds * args.budget
    print(f"raynas bench (random,rea,ls x {len(DATASETS)} datasets x {args.seeds} seeds x "
          f"{args.budget} queries): {wall:.1f} s wall, Ray start-up included; "
          f"{evaluations / wall:.0f} evaluations/s end to end")

    policies = tuple(p.strip() for p in args.policies.split(","))
    start = time.perf_counter()
    config = BenchConfig(
        benchmark=args.table, datasets=DATASETS, policies=policies,
        seeds=args.seeds, budget=args.budget, out=out, num_cpus=2,
    )
    curves = run_bench(config, progress=False)
    if "tpe" in policies:  # the only policy not already run by the timed command
        tpe_wall = time.perf_counter() - start
        tpe_evals = len(DATASETS) * args.seeds * args.budget
        print(f"tpe peer (Optuna TPESampler): {tpe_wall:.1f} s wall; "
              f"{tpe_evals / tpe_wall:.1f} evaluations/s end to end")

    points = [q for q in report_points(args.budget) if q in ANCHOR_QUERIES]
    print("\nmean test regret (pp) ± standard error over seeds | anchor | difference")
    header = "| dataset | policy | " + " | ".join(f"@{q}" for q in points) + " |"
    print(header + "\n" + "|---" * (2 + len(points)) + "|")
    for dataset in DATASETS:
        for policy in config.policies:
            cells = []
            for q in points:
                r = regret_at(curves, policy, dataset, q)
                anchor = ANCHORS[(dataset, policy)][ANCHOR_QUERIES.index(q)]
                se = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else float("nan")
                cells.append(f"{r.mean():.2f} ± {se:.2f} / {anchor:.2f} / {r.mean() - anchor:+.2f}")
            print(f"| {dataset} | {policy} | " + " | ".join(cells) + " |")
    print(f"\noutputs: {out}/curves.parquet, summary.md, regret.png")
    assert pq.read_table(out / "curves.parquet").num_rows == curves.num_rows


if __name__ == "__main__":
    main()
