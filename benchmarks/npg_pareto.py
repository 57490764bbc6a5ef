"""NPG's Pareto fronts on NAS-Bench-201 (accuracy vs parameters) against random
search, NSGA-II and MO-TPE (Optuna), in the same run, plus two ablations: without
warm restarts, and without front refinement.

Protocol: the front is chosen on validation accuracy and parameters (the space's
cost model) and scored with test accuracy; the figure is its hypervolume as a share
of the table's true front's (reference: 0 % accuracy and the space's largest
network), mean over the seeds, after 100 and 300 queries. One ``raynas bench
--objectives valid_acc:max,params:min`` run for all policies; each ablation (no warm
restarts: ``restart_on_move=False`` and one cosine period over the whole budget; no
front refinement: ``refine=0``, sampling from the controller only) is another run with
the same seeds. Writes ``pareto_<dataset>.png`` (seed 0's fronts and the
true front) into ``--figures``.

Usage:
    python benchmarks/npg_pareto.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--seeds 10] [--base-seed 0] [--budget 300] [--out /tmp/npg_pareto] \
        [--figures benchmarks/figures]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from raynas.bench import BenchConfig, run_bench
from raynas.report.bench import hv_ratio_at

POLICIES = ("npg", "random", "nsga2", "motpe")
DATASETS = ("cifar10", "cifar100", "imagenet16_120")
OBJECTIVES = (("valid_acc", "max"), ("params", "min"))
# shared/benchmarks/README.md, "Multi-objective": (random, NSGA-II, MO-TPE) @100 and @300
ANCHORS = {
    "cifar10": {"random": (0.9822, 0.9888), "nsga2": (0.9832, 0.9929), "motpe": (0.9889, 0.9918)},
    "cifar100": {"random": (0.9506, 0.9717), "nsga2": (0.9594, 0.9836), "motpe": (0.9638, 0.9737)},
    "imagenet16_120": {"random": (0.9059, 0.9408), "nsga2": (0.9202, 0.9597),
                       "motpe": (0.9325, 0.9612)},
}
TARGETS = {"cifar10": 0.995, "cifar100": 0.99, "imagenet16_120": 0.98}  # NPG @300


def ablations(budget: int) -> dict[str, dict]:
    """NPG options of each ablation, by label."""
    return {"npg, no warm restarts": {"restart_on_move": False, "period": budget},
            "npg, no front refinement": {"refine": 0.0}}


def plot_fronts(out: Path, dataset: str, table, budget: int, path: Path,
                policies: tuple[str, ...] = POLICIES) -> None:
    """Seed 0's front of every policy (chosen on validation, test accuracy shown) and the
    table's true front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.bench.runner import true_fronts
    from raynas.objectives.fronts import NB201_SHAPES, front_table, table_front
    from raynas.report.plots import staircase

    config = BenchConfig(benchmark=table.path, datasets=(dataset,), policies=("random",),
                         objectives=OBJECTIVES)
    spec = true_fronts(table, config)[dataset].spec
    true = table_front(table, dataset, "test_acc", "params", *NB201_SHAPES[dataset])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, policy in enumerate(policies):
        history = pq.read_table(out / "histories" / f"{policy}__{dataset}__0.parquet")
        front = front_table(history, spec)
        staircase(ax, front["params"].to_numpy(), front["test_acc"].to_numpy(), "min",
                  marker="o", markersize=3, color=f"C{i}", label=policy)
    staircase(ax, true.points[:, 1], true.points[:, 0], "min", color="k", linestyle="--",
              linewidth=1, label="true front")
    ax.set_xlabel("params (M)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: fronts after {budget} queries (seed 0)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--base-seed", type=int, default=0,
                        help="mixed into every search's seed: another value, fresh seeds")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("/tmp/npg_pareto"))
    parser.add_argument("--figures", type=Path, default=None)
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated subset of " + ",".join(POLICIES))
    args = parser.parse_args()
    policies = tuple(p for p in args.policies.split(",") if p)
    start = time.perf_counter()
    common = dict(benchmark=args.table, datasets=DATASETS, seeds=args.seeds, budget=args.budget,
                  base_seed=args.base_seed, objectives=OBJECTIVES, keep_histories=True)
    curves = run_bench(BenchConfig(policies=policies, out=args.out, **common))
    ablated = {label: run_bench(BenchConfig(policies=("npg",), out=args.out / f"ablation{k}",
                                            policy_kwargs={"npg": options}, **common))
               for k, (label, options) in enumerate(ablations(args.budget).items())}
    print(f"\n{len(policies) + len(ablated)} policies x {len(DATASETS)} datasets x {args.seeds} seeds x "
          f"{args.budget} queries in {time.perf_counter() - start:.1f} s")
    points = [q for q in (100, 300) if q <= args.budget]
    print("\nhypervolume / true front's, mean ± standard error "
          f"({args.seeds} seeds; anchor in brackets)\n")
    print("| dataset | policy | " + " | ".join(f"@{q}" for q in points) + " |")
    print("|---|---|" + "---|" * len(points))
    for dataset in DATASETS:
        rows = [(p, curves) for p in policies] + list(ablated.items())
        for label, source in rows:
            policy = "npg" if label.startswith("npg") else label
            cells = []
            for k, q in enumerate(points):
                r = hv_ratio_at(source, policy, dataset, q)
                anchor = ANCHORS[dataset].get(policy)
                cell = f"{r.mean():.4f} ± {r.std(ddof=1) / np.sqrt(len(r)):.4f}"
                cells.append(cell + (f" [{anchor[k]:.4f}]" if anchor and q in (100, 300) else ""))
            print(f"| {dataset} | {label} | " + " | ".join(cells) + " |")
        print(f"|  | target for npg @300 | {TARGETS[dataset]} |")
    if args.figures:
        from raynas.tables import BenchmarkTable

        args.figures.mkdir(parents=True, exist_ok=True)
        table = BenchmarkTable.load(args.table)
        for dataset in DATASETS:
            plot_fronts(args.out, dataset, table, args.budget,
                        args.figures / f"npg_pareto_{dataset}.png", policies)
        print(f"\nfronts of seed 0: {args.figures}/npg_pareto_<dataset>.png")


if __name__ == "__main__":
    main()
