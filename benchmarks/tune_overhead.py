"""Orchestration overhead of real-training searches: raynas vs plain Ray Tune, per trial.

At each trial length (about 5, 20 and 60 s of a trial's own compute, set by the epochs
of the embedded default's network), four runs train the same architectures with the
same trainable (checkpoints as raynas's default, by time), on one Ray instance, with
the same concurrency, one after another:

* raynas: the whole ``raynas search`` of the embedded default with that many epochs
  (``raynas.driver.run_search``: data set-up, PolicySearcher over regularized
  evolution through ``run_tune`` with actors reused, the MLflow tracker fed by the
  search state and a child run per trial with every epoch's metrics, the ONNX export
  and MLflow model registration of the best network, the report); its trials report
  to Tune by time (``resources.report_seconds``, default 5 s);
* plain Tune, default settings: the architectures raynas trained, as a
  ``tune.grid_search`` over the default BasicVariantGenerator (no actor reuse, no
  tracking), reporting every epoch as a Tune user's trainable does;
* plain Tune with ``reuse_actors=True``, reporting every epoch;
* plain Tune with ``reuse_actors=True``, reporting as raynas does (the same trainable,
  Tune without raynas);
* the same with Tune's own MLflow integration (``MLflowLoggerCallback`` on a SQLite
  store: a run per trial with its reported metrics), the like-for-like peer of a
  tracked raynas search.

Every trial's function records when it starts and ends (wall clock, in the trial's
process); a trial's own compute is the evaluator's work: building the network,
measuring its cost and latency, training and evaluating (``compute_seconds``). Of the
trials phase (``Tuner.fit``, or ``run_tune`` for raynas) times the concurrent slots:

* start-up: from the start of the phase to each slot's first trial (Tune's set-up,
  new worker processes, imports; for raynas also its checks and the MLflow store);
* tail: from each slot's last trial to the end of the phase (the last trials running
  alone, Tune's shut-down, raynas's history);
* per-trial overhead: the rest of the slot time that is not a trial's own compute,
  divided by the trials (the hand-over between trials, reports and checkpoints,
  searcher and tracking work). Target: <= 0.3 s, and never above plain Tune with
  actor reuse.

The whole-search share is ``1 - compute / (slots x wall)`` of the whole ``raynas
search`` (target: <= 10 % at 60 s trials). Ray start-up is measured once and
excluded.

Usage:
    python benchmarks/tune_overhead.py [--lengths 5,20,60] [--trials 6]
        [--out /tmp/tune_overhead]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

TIMELINE = "timeline.jsonl"


def _recording(original, path: str):
    """``original`` (the trial function), recording each call's wall-clock span."""

    def trial(config, **kwargs):
        from ray import tune

        start = time.time()
        try:
            return original(config, **kwargs)
        finally:
            with open(path, "a") as f:
                f.write(json.dumps({"trial": tune.get_context().get_trial_id(), "start": start,
                                    "end": time.time()}) + "\n")

    return trial


def _compute(experiment: Path) -> dict[str, float]:
    """Each trial's own compute: ``compute_seconds`` of its last result."""
    out = {}
    for result in experiment.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines:
            out[lines[-1]["trial_id"]] = float(lines[-1]["compute_seconds"])
    return out


def analyse(timeline: Path, experiment: Path, begin: float, end: float,
            slots: int) -> dict[str, float]:
    """Start-up, tail and per-trial overhead of one trials phase (see the module doc)."""
    spans = [json.loads(line) for line in timeline.read_text().splitlines() if line.strip()]
    compute = _compute(experiment)
    spans = [s for s in spans if s["trial"] in compute]
    starts = sorted(s["start"] for s in spans)[:slots]
    ends = sorted(s["end"] for s in spans)[-slots:]
    startup = sum(t - begin for t in starts)
    tail = sum(end - t for t in ends)
    total = sum(compute.values())
    wall = end - begin
    n = len(compute)
    return {"trials": n, "wall": wall, "compute": total, "per_trial_compute": total / n,
            "startup": startup / slots, "tail": tail / slots,
            "per_trial": (slots * wall - total - startup - tail) / n,
            "share": 1 - total / (slots * wall)}


def _line(name: str, m: dict[str, float]) -> str:
    return (f"  {name:<26} trials phase {m['wall']:7.1f} s, compute {m['compute']:7.1f} s "
            f"({m['per_trial_compute']:.1f} s/trial); start-up {m['startup']:.1f} s/slot, "
            f"tail {m['tail']:.1f} s/slot; per-trial overhead {m['per_trial']:.2f} s; "
            f"slots not computing {100 * m['share']:.1f} %")


def epoch_seconds(config) -> float:
    """Seconds of one epoch of the default's network (measured: 3 epochs minus 1)."""
    import numpy as np

    from raynas.driver import build_evaluator, build_space

    evaluator = build_evaluator(config, build_space(config))
    evaluator.num_threads = 1
    arch = evaluator.space.sample(np.random.default_rng(0))
    evaluator.fit(arch, epochs=1)  # warm-up: the first fit pays torch's start
    times = []
    for epochs in (1, 3):
        start = time.perf_counter()
        evaluator.fit(arch, epochs=epochs)
        times.append(time.perf_counter() - start)
    return max((times[1] - times[0]) / 2, 0.05)


def measure(length: float, trials: int, out: Path, per_epoch: float) -> None:
    from ray import tune

    import raynas.tune
    from raynas import config as cfg
    from raynas.driver import build_evaluator, build_space, run_search
    from raynas.tune import trial as trainable_module

    epochs = max(1, round(length / per_epoch))
    base = cfg.from_dict({}).to_dict()
    base["budget"] = trials
    base["evaluator"]["epochs"] = epochs
    config = cfg.from_dict(base)
    res = config.resources
    slots = res.max_concurrent_trials
    folder = out / f"{length:g}s"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    original = trainable_module.train_architecture

    # ---- raynas: the whole `raynas search`, its run_tune timed from outside
    timeline = folder / f"raynas-{TIMELINE}"
    trainable_module.train_architecture = _recording(original, str(timeline))
    phase: dict[str, float] = {}
    run_tune = raynas.tune.run_tune

    def timed_run_tune(*a, **kw):
        phase["begin"] = time.time()
        try:
            return run_tune(*a, **kw)
        finally:
            phase["end"] = time.time()

    raynas.tune.run_tune = timed_run_tune
    start = time.perf_counter()
    try:
        run_search(config, folder / "raynas", verbose=0)
    finally:
        raynas.tune.run_tune = run_tune
    whole = time.perf_counter() - start
    ours = analyse(timeline, folder / "raynas" / "tune", phase["begin"], phase["end"], slots)
    archs = [json.loads(p.read_text())["arch"]
             for p in sorted((folder / "raynas" / "tune").glob("*/params.json"))]

    # ---- plain Tune, default settings and with actors reused
    evaluator = build_evaluator(config, build_space(config))
    peers = {}
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    tracked = MLflowLoggerCallback(f"sqlite:///{(folder / 'tune-mlflow.db').resolve()}",
                                   experiment_name="plain-tune")
    for name, key, reuse, report, callbacks in (
            ("plain Tune", "plain", False, 0.0, []),
            ("plain Tune, reuse_actors", "reuse", True, 0.0, []),
            ("  ... reporting as raynas", "reuse-by-time", True, res.report_seconds, []),
            ("  ... and Tune's MLflow", "reuse-mlflow", True, res.report_seconds, [tracked])):
        timeline = folder / f"{key}-{TIMELINE}"
        trainable_module.train_architecture = _recording(original, str(timeline))
        tuner = tune.Tuner(
            trainable_module.make_trainable(evaluator, res.cpus_per_trial,
                                            checkpoint_every=res.checkpoint_every,
                                            checkpoint_seconds=res.checkpoint_seconds,
                                            report_seconds=report),
            param_space={"arch": tune.grid_search(archs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=slots, reuse_actors=reuse),
            run_config=tune.RunConfig(name=key, storage_path=str(folder), verbose=0,
                                      callbacks=callbacks,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
        )
        begin = time.time()
        tuner.fit()
        peers[name] = analyse(timeline, folder / key, begin, time.time(), slots)
    trainable_module.train_architecture = original
    print(f"\ntrials of about {length:g} s: {ours['trials']} trials x {epochs} epochs, "
          f"{slots} concurrent, checkpoints "
          + (f"every {res.checkpoint_every} epoch(s)" if res.checkpoint_every else
             f"every {res.checkpoint_seconds:g} s (raynas's default; the same for Tune)")
          + f"; raynas reports every {res.report_seconds:g} s")
    print(_line("raynas", ours))
    for name, m in peers.items():
        print(_line(name, m))
    share = 1 - ours["compute"] / (slots * whole)
    reuse = peers["plain Tune, reuse_actors"]["per_trial"]
    same = peers["  ... reporting as raynas"]["per_trial"]
    tracked = peers["  ... and Tune's MLflow"]["per_trial"]
    print(f"  whole raynas search {whole:.1f} s: {100 * share:.1f} % of its slot time not "
          f"computing (target at 60 s trials: <= 10 %); per-trial overhead "
          f"{ours['per_trial']:.2f} s (target <= 0.3 s; plain Tune with actor reuse "
          f"{reuse:.2f} s reporting every epoch, {same:.2f} s reporting as raynas, "
          f"{tracked:.2f} s with Tune's MLflow callback)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="5,20,60",
                        help="trial lengths in seconds of compute (comma-separated)")
    parser.add_argument("--trials", type=int, default=6, help="trials per run")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tune_overhead"))
    args = parser.parse_args()
    import ray

    from raynas import config as cfg

    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    print(f"Ray start-up: {time.perf_counter() - start:.1f} s "
          f"({ray.cluster_resources().get('CPU', 0):g} CPUs), excluded below")
    per_epoch = epoch_seconds(cfg.from_dict({}))
    print(f"one epoch of the default's network: {per_epoch:.2f} s (sets the epochs per length)")
    for length in (float(x) for x in args.lengths.split(",")):
        measure(length, args.trials, args.out, per_epoch)


if __name__ == "__main__":
    main()
