"""Benchmark tables at scale: load time, lookup cost, bench throughput, and a profile.

In one run, on synthetic tables of a 9-decision custom space (1,036,800 architectures;
``raynas.tables.synthetic``) with 10k, 100k and 1M rows, and on the shipped NB201 table:

* **load**: ``BenchmarkTable.load`` (vectorised parse, validation and index), each size in
  a fresh process, next to the former one-by-one parse (``from_str`` per row and a dict
  of tuples, the peer) on the same column; target: 100k rows in <= 0.5 s;
* **lookups**: microseconds per ``table.row(arch)`` and per
  ``TabularEvaluator.evaluate([arch])`` on random rows; target: flat in the table's size;
* **bench**: ``raynas bench`` as a user runs it, 3 policies (random, rea, ls) x 20 seeds x
  200 queries (12,000 evaluations), on the 100k table and on NB201, with
  ``--execution auto`` (the default) and ``--execution ray`` (Ray started and its
  workers warmed, then the searches as Ray tasks); end to end (process start to exit)
  and for the searches alone (``timings.json``); targets: >= 2,000 evaluations/s end to
  end, >= 20,000/s for the searches once Ray is up;
* **profile**: where one search's time per evaluation goes (cProfile of in-process
  searches, by component).

Usage:

    python benchmarks/table_scale.py [--sizes 10000,100000,1000000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHOICES = [6, 6, 6, 5, 5, 4, 4, 4, 3]

LOAD = """
import json, sys, time
import numpy as np, pyarrow.parquet as pq
from raynas.tables import BenchmarkTable
from raynas.tables.parse import _one_by_one
from raynas.tables.synthetic import synthetic_space
space = synthetic_space(9, {choices})
BenchmarkTable.load(sys.argv[2], space)  # warm the imports on a tiny table
start = time.perf_counter(); table = BenchmarkTable.load(sys.argv[1], space)
load = time.perf_counter() - start
column = pq.read_table(sys.argv[1], columns=["arch_str"]).column("arch_str").to_pylist()
start = time.perf_counter()
archs = list(map(tuple, _one_by_one(space, column, "t").tolist()))
index = {{a: r for r, a in enumerate(archs)}}
peer = time.perf_counter() - start
print(json.dumps({{"load": load, "peer": peer, "rows": len(table)}}))
"""


def _load(path: Path, tiny: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD.format(choices=CHOICES), str(path),
                          str(tiny)], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _lookups(table, n: int = 50_000) -> tuple[float, float]:
    import numpy as np

    from raynas.evaluators import TabularEvaluator

    rng = np.random.default_rng(0)
    archs = [tuple(r) for r in table._codes[rng.integers(0, len(table), n)].tolist()]
    start = time.perf_counter()
    for arch in archs:
        table.row(arch)
    row = (time.perf_counter() - start) / n * 1e6
    evaluator = TabularEvaluator(table, table.datasets[0])
    start = time.perf_counter()
    for arch in archs[: n // 5]:
        evaluator.evaluate([arch])
    evaluate = (time.perf_counter() - start) / (n // 5) * 1e6
    return row, evaluate


def _bench(table: Path, space: str, dataset: str, execution: str, seeds: int,
           out: Path) -> dict:
    raynas = str(Path(sys.executable).parent / "raynas")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    subprocess.run([raynas, "bench", "--benchmark", str(table), "--space", space,
                    "--datasets", dataset, "--policies", "random,rea,ls", "--seeds",
                    str(seeds), "--budget", "200", "--num-cpus", "2", "--execution", execution,
                    "--out", str(out)], env=env, check=True, capture_output=True, timeout=900)
    wall = time.perf_counter() - start
    timings = json.loads((out / "timings.json").read_text())
    return {"wall": wall, **timings}


def _profile(table, dataset: str) -> list[tuple[str, float]]:
    """Microseconds per evaluation by component, over in-process searches."""
    from raynas.bench.runner import BenchConfig, run_one

    config = BenchConfig(benchmark=table.path, datasets=(dataset,),
                         policies=("random", "rea", "ls"), seeds=3, budget=200)
    def searches() -> None:
        for p in config.policies:
            for s in range(3):
                run_one(table, dataset, p, s, config)

    searches()  # warm
    start = time.perf_counter()
    searches()
    wall = time.perf_counter() - start  # unprofiled
    profiler = cProfile.Profile()
    profiler.enable()
    searches()
    profiler.disable()
    evaluations = 3 * 3 * 200
    stats = pstats.Stats(profiler)
    parts = {"policy (ask/tell, mutations, neighbours)": 0.0,
             "search loop (cache, budget, backend)": 0.0,
             "history and state (rows, incumbent)": 0.0, "table lookup (row, metrics)": 0.0,
             "space (validate, to_str, encode)": 0.0, "bench curve rows (Arrow)": 0.0,
             "other (builtins, numpy, pyarrow)": 0.0}
    for (file, _, _), (_, _, tottime, _, _) in stats.stats.items():
        if "/policies/" in file:
            key = "policy (ask/tell, mutations, neighbours)"
        elif "search/history" in file or "search/state" in file:
            key = "history and state (rows, incumbent)"
        elif "raynas/search/" in file:
            key = "search loop (cache, budget, backend)"
        elif "tables/table" in file or "evaluators/tabular" in file or "raynas/types" in file:
            key = "table lookup (row, metrics)"
        elif "raynas/spaces/" in file:
            key = "space (validate, to_str, encode)"
        elif "bench/runner" in file:
            key = "bench curve rows (Arrow)"
        else:
            key = "other (builtins, numpy, pyarrow)"
        parts[key] += tottime
    total = sum(parts.values())
    scale = wall / total if total else 1.0  # the profiler's overhead taken out pro rata
    rows = [(k, v * scale / evaluations * 1e6) for k, v in parts.items()]
    return [*rows, ("total (unprofiled)", wall / evaluations * 1e6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--bench-size", type=int, default=100_000,
                        help="rows of the synthetic table the bench runs on")
    args = parser.parse_args()
    import pyarrow.parquet as pq
    import yaml

    from raynas.tables import BenchmarkTable, default_table
    from raynas.tables.synthetic import synthetic_space, synthetic_table

    sizes = [int(s) for s in args.sizes.split(",")]
    space = synthetic_space(9, CHOICES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tmp / "tiny.parquet"
        pq.write_table(synthetic_table(space, 100, seed=1), tiny)
        paths = {}
        for n in sorted(set(sizes) | {args.bench_size}):
            paths[n] = tmp / f"syn{n}.parquet"
            pq.write_table(synthetic_table(space, n, seed=0), paths[n])
        print(f"# Tables at scale: a 9-decision custom space ({space.size:,} architectures), "
              "synthetic tables; NB201 shipped\n")
        print("## Load (fresh process each) and lookups\n")
        print("| table | rows | load (s) | one-by-one parse + dict, the peer (s) | "
              "row() (µs) | evaluate([arch]) (µs) |")
        print("|---|---|---|---|---|---|")
        for n in sizes:
            loaded = _load(paths[n], tiny)
            row, evaluate = _lookups(BenchmarkTable.load(paths[n], space))
            print(f"| synthetic | {n:,} | {loaded['load']:.3f} | {loaded['peer']:.3f} | "
                  f"{row:.2f} | {evaluate:.2f} |", flush=True)
        nb201 = BenchmarkTable.load(None)
        start = time.perf_counter()
        BenchmarkTable.load(None)
        nb_load = time.perf_counter() - start
        row, evaluate = _lookups(nb201)
        print(f"| NB201 (shipped) | {len(nb201):,} | {nb_load:.3f} (warm) | - | {row:.2f} | "
              f"{evaluate:.2f} |")

        space_file = tmp / "space.yaml"
        space_file.write_text(yaml.safe_dump({"name": space.name, "decisions": {
            d.name: list(d.choices) for d in space.decisions}}))
        evaluations = 3 * args.seeds * 200
        print(f"\n## raynas bench: random, rea, ls x {args.seeds} seeds x 200 queries "
              f"({evaluations:,} evaluations), --num-cpus 2\n")
        print("| table | --execution | ran | end to end (s) | evaluations/s end to end | "
              "Ray start + warm-up (s) | searches (s) | searches/s | outputs (s) |")
        print("|---|---|---|---|---|---|---|---|---|")
        cases = [(f"synthetic {args.bench_size:,}", paths[args.bench_size], str(space_file),
                  "syn"), ("NB201", default_table(), "nb201", "cifar10")]
        for name, table, space_name, dataset in cases:
            for execution in ("auto", "ray"):
                r = _bench(table, space_name, dataset, execution, args.seeds,
                           tmp / f"bench-{dataset}-{execution}")
                sec = r["seconds"]
                searches = sec["searches"] + sec.get("local_first", 0.0)
                print(f"| {name} | {execution} | {r['execution']} | {r['wall']:.2f} | "
                      f"{evaluations / r['wall']:,.0f} | {sec.get('ray_start', 0):.2f} | "
                      f"{searches:.2f} | {evaluations / searches:,.0f} | "
                      f"{sec['outputs']:.2f} |", flush=True)
        print(f"\n## Where a search's time per evaluation goes (in process, synthetic "
              f"{args.bench_size:,} rows, random/rea/ls x 3 seeds x 200 queries)\n")
        print("| component | µs per evaluation |\n|---|---|")
        for part, us in _profile(BenchmarkTable.load(paths[args.bench_size], space), "syn"):
            print(f"| {part} | {us:.1f} |")


if __name__ == "__main__":
    main()
