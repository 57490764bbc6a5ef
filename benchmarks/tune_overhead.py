"""Orchestration overhead of a real-training search: raynas vs plain Ray Tune.

Both runs train the same architectures with the same trainable (per-epoch
reports and checkpoints), on one Ray instance, with the same concurrency:

* raynas: the embedded default search, run exactly as `raynas search` runs it
  (`raynas.driver.run_search`: data set-up, PolicySearcher over regularized
  evolution through `run_tune` with actors reused, the MLflow callback with a
  child run per trial, the ONNX export and MLflow model registration of the best
  network, the report);
* plain Tune: the architectures raynas trained, as a `tune.grid_search` over the
  default BasicVariantGenerator, Tune's defaults otherwise (no actor reuse, no
  tracking).

Overhead = 1 - (sum of the trials' own compute) / (concurrent trials x wall time):
the share of the trial slots not spent computing. A trial's own compute is the
evaluator's work: building the network, measuring its cost and latency, training
and evaluating (`compute_seconds`). It is given for the trials phase (`Tuner.fit`)
and for the whole search. Ray start-up is measured once and excluded from both runs.

Usage:
    python benchmarks/tune_overhead.py [--trials 20] [--epochs E] [--channels C]
        [--checkpoint-every 1] [--raynas-only] [--out /tmp/tune_overhead]
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
    parser.add_argument("--trials", type=int, default=None, help="default: the default's budget")
    parser.add_argument("--epochs", type=int, default=None, help="default: the default's")
    parser.add_argument("--channels", type=int, default=None, help="default: the default's")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="default: the default's")
    parser.add_argument("--raynas-only", action="store_true", help="skip the plain Tune run")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tune_overhead"))
    args = parser.parse_args()
    import ray
    from ray import tune

    import raynas.tune
    from raynas import config as cfg
    from raynas.driver import build_evaluator, build_space, run_search
    from raynas.tune.trainable import make_trainable

    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    print(f"Ray start-up: {time.perf_counter() - start:.1f} s "
          f"({ray.cluster_resources().get('CPU', 0):g} CPUs), excluded below")

    config = cfg.from_dict({})
    overrides = config.to_dict()
    if args.trials is not None:
        overrides["budget"] = args.trials
    if args.epochs is not None:
        overrides["evaluator"]["epochs"] = args.epochs
    if args.channels is not None:
        overrides["space"]["options"]["channels"] = args.channels
    if args.checkpoint_every is not None:
        overrides["resources"]["checkpoint_every"] = args.checkpoint_every
    config = cfg.from_dict(overrides)
    res = config.resources
    slots = res.max_concurrent_trials

    # ---- raynas: the whole `raynas search`, its Tuner.fit timed from outside
    phases: dict[str, float] = {}
    run_tune = raynas.tune.run_tune

    def timed_run_tune(*a, **kw):
        begin = time.perf_counter()
        try:
            return run_tune(*a, **kw)
        finally:
            phases["trials"] = time.perf_counter() - begin

    raynas.tune.run_tune = timed_run_tune
    start = time.perf_counter()
    run_search(config, args.out / "raynas", verbose=0)
    total = time.perf_counter() - start
    raynas.tune.run_tune = run_tune
    import pyarrow.parquet as pq

    rows = pq.read_table(args.out / "raynas" / "history.parquet").to_pylist()
    compute = sum(r["compute_seconds"] for r in rows)
    training = sum(r["train_seconds"] for r in rows)
    trials_wall = phases["trials"]
    print(f"\n{len(rows)} trials x {config.evaluator.epochs} epochs, "
          f"{config.space.options['channels']} channels, {slots} concurrent, checkpoint every "
          f"{res.checkpoint_every} epoch(s)")
    print(f"raynas search: {total:.1f} s in all, trials phase {trials_wall:.1f} s, "
          f"the rest (set-up, export, model registration, report) {total - trials_wall:.1f} s; "
          f"trials' compute {compute:.1f} s (training {training:.1f} s)")
    print(f"overhead, trials phase: raynas {100 * overhead(trials_wall, compute, slots):.1f} %")
    print(f"overhead, whole raynas search: {100 * overhead(total, compute, slots):.1f} %  "
          "(target: <= 10 %, and no worse than plain Tune)")
    if args.raynas_only:
        return

    # ---- plain Tune: same trainable and architectures, default search algorithm
    evaluator = build_evaluator(config, build_space(config))
    tuner = tune.Tuner(
        make_trainable(evaluator, res.cpus_per_trial, checkpoint_every=res.checkpoint_every),
        param_space={"arch": tune.grid_search([r["arch"] for r in rows])},
        tune_config=tune.TuneConfig(max_concurrent_trials=slots),
        run_config=tune.RunConfig(name="plain", storage_path=str(args.out), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    start = time.perf_counter()
    results = tuner.fit()
    plain_wall = time.perf_counter() - start
    plain_compute = sum(r.metrics["compute_seconds"] for r in results)
    print(f"plain Tune: trials {plain_wall:.1f} s; trials' compute {plain_compute:.1f} s; "
          f"overhead {100 * overhead(plain_wall, plain_compute, slots):.1f} %")


if __name__ == "__main__":
    main()
