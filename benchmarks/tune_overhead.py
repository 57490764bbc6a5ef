"""Orchestration overhead of a real-training search: raynas vs plain Ray Tune.

Both runs train the same architectures with the same trainable (per-epoch
reports and checkpoints), on one Ray instance, with the same concurrency:

* raynas: the embedded default search (`raynas search`'s config: NB201 at reduced
  width on digits, 2 concurrent trials), driven by PolicySearcher (regularized
  evolution) through `run_tune`;
* plain Tune: the architectures raynas trained, as a `tune.grid_search` over the
  default BasicVariantGenerator, Tune's defaults otherwise (no actor reuse).

Overhead = 1 - (sum of the trials' own compute: training + evaluation) /
(concurrent trials x wall time): the share of the trial slots not spent computing.
It is given for the trials phase (`Tuner.fit`) and for the whole search (data
set-up, trials, export of the best network). Ray start-up is measured once and
excluded from both runs.

Usage:
    python benchmarks/tune_overhead.py [--trials 20] [--epochs 4] [--out /tmp/tune_overhead]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path


def overhead(wall: float, compute: float, slots: int) -> float:
    return 1 - compute / (slots * wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--checkpoint-every", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tune_overhead"))
    args = parser.parse_args()
    import ray
    from ray import tune

    from raynas import config as cfg
    from raynas.driver import (
        build_evaluator,
        build_policy,
        build_space,
        build_tune_settings,
        export_best,
    )
    from raynas.tune import run_tune
    from raynas.tune.trainable import make_trainable

    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    print(f"Ray start-up: {time.perf_counter() - start:.1f} s "
          f"({ray.cluster_resources().get('CPU', 0):g} CPUs), excluded below")

    config = cfg.from_dict({
        "budget": args.trials, "evaluator": {"epochs": args.epochs},
        "resources": {"checkpoint_every": args.checkpoint_every},
    })
    res = config.resources
    slots = res.max_concurrent_trials

    # ---- raynas: set-up, trials, export (what `raynas search` does)
    start = time.perf_counter()
    space = build_space(config)
    evaluator = build_evaluator(config, space)
    setup = time.perf_counter() - start
    settings = build_tune_settings(config)
    start = time.perf_counter()
    run = run_tune(build_policy(config, space), evaluator, settings, args.out / "raynas", verbose=0)
    trials_wall = time.perf_counter() - start
    rows = run.history.to_arrow().to_pylist()
    best = max(rows, key=lambda r: r["valid_acc"])["arch"]
    start = time.perf_counter()
    export_best(run, evaluator, best, args.out / "best")
    export = time.perf_counter() - start
    compute = sum(r["compute_seconds"] for r in rows)
    training = sum(r["train_seconds"] for r in rows)
    total = setup + trials_wall + export

    # ---- plain Tune: same trainable and architectures, default search algorithm
    tuner = tune.Tuner(
        make_trainable(evaluator, res.cpus_per_trial, checkpoint_every=args.checkpoint_every),
        param_space={"arch": tune.grid_search([r["arch"] for r in rows])},
        tune_config=tune.TuneConfig(max_concurrent_trials=slots),
        run_config=tune.RunConfig(name="plain", storage_path=str(args.out), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    start = time.perf_counter()
    results = tuner.fit()
    plain_wall = time.perf_counter() - start
    plain_compute = sum(r.metrics["compute_seconds"] for r in results)

    print(f"\n{args.trials} trials x {args.epochs} epochs, {slots} concurrent, checkpoint "
          f"every {args.checkpoint_every} epoch(s)")
    print(f"raynas: set-up {setup:.1f} s, trials {trials_wall:.1f} s, export {export:.1f} s; "
          f"trials' compute {compute:.1f} s (training {training:.1f} s)")
    print(f"plain Tune: trials {plain_wall:.1f} s; trials' compute {plain_compute:.1f} s")
    print(f"overhead, trials phase: raynas {100 * overhead(trials_wall, compute, slots):.1f} % | "
          f"plain Tune {100 * overhead(plain_wall, plain_compute, slots):.1f} %")
    print(f"overhead, whole raynas search (set-up + trials + export): "
          f"{100 * overhead(total, compute, slots):.1f} %  (target: <= 10 %, and no worse "
          "than plain Tune)")


if __name__ == "__main__":
    main()
