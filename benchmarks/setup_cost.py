"""Set-up cost of table searches with a front: the NB201 cost model, cold and cached.

A multi-objective table search (accuracy vs parameters) needs every architecture's
parameter count: ``LinearCostModel`` builds 28 NB201 networks to get it (the true
front of the table, the reference point and the evaluator's ``params`` metric), and
caches the result per (space, options, classes, input size) in the process and under
``$RAYNAS_CACHE_DIR``. This script times, in fresh processes:

* the cost model alone, cold (empty cache folder) and cached;
* the whole ``raynas search`` of ``examples/nb201_front.yaml`` with ``--budget 100``
  (random search, the MLflow tracker on SQLite, the report and plots), cold and
  cached; the target is <= 5 s with the cache (issue 21).

Each figure is the median of ``--repeats`` runs. Usage:

    python benchmarks/setup_cost.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = ("from raynas.spaces import NB201Space; from raynas.spaces.cost import LinearCostModel;"
         "import time; t = time.perf_counter(); LinearCostModel(NB201Space(), 10, 32);"
         "print(time.perf_counter() - t)")


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=100)
    args = parser.parse_args()
    raynas = str(Path(sys.executable).parent / "raynas")
    base = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
            "MPLBACKEND": "Agg"}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, cold in (("cold (empty cache)", True), ("cached", False)):
            model, search = [], []
            for i in range(args.repeats):
                cache = Path(tmp) / (f"cold{i}" if cold else "warm")
                env = {**base, "RAYNAS_CACHE_DIR": str(cache)}
                if not cold and i == 0:  # fill the cache once
                    subprocess.run([sys.executable, "-c", MODEL], check=True, env=env)
                out = subprocess.run([sys.executable, "-c", MODEL], check=True, env=env,
                                     capture_output=True, text=True)
                model.append(float(out.stdout.strip()))
                if cold:
                    cache = Path(tmp) / f"cold-search{i}"
                    env = {**base, "RAYNAS_CACHE_DIR": str(cache)}
                search.append(_timed([raynas, "search", str(REPO / "examples" / "nb201_front.yaml"),
                                      "--budget", str(args.budget), "--quiet", "--out",
                                      str(Path(tmp) / f"run-{label[:4]}{i}")], env))
            rows[label] = (statistics.median(model), statistics.median(search))
    print(f"NB201 cost model and a {args.budget}-query front search (examples/nb201_front.yaml), "
          f"median of {args.repeats}:")
    for label, (model, search) in rows.items():
        print(f"  {label:<20} cost model {model:6.2f} s   whole raynas search {search:6.2f} s")
    print(f"  target: the cached search <= 5 s: "
          f"{'met' if rows['cached'][1] <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
