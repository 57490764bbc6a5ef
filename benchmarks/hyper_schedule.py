"""Learned hyperparameter schedules (AutoMBPO-style) against their baselines, in one run.

Part ``curves`` (use 1, Tune trial scheduling, on the seeded synthetic learning curves
of ``raynas.tables.curves``):

* a hyper-controller over ``lr`` and ``batch_size`` is trained on short runs
  (``--train-epochs``) of training tasks, in process;
* held-out tasks, each searched with the same budget: ``--trials`` trials of E epochs
  whose initial learning rates cover a grid, run as real Tune searches under
  (a) no scheduler (fixed constant schedules), (b) ASHA, (c) Tune's PBT (lr and batch
  size mutations every ``--interval`` epochs), (d) the trained controller
  (``HyperScheduler``, greedy). The figure is the best trial's final log10 loss (lower
  is better) and the epochs spent. E is the training length, then 2.5x longer;
* the same comparison in process on 100 held-out tasks (fixed constant best-of-grid
  vs the controller), for tighter statistics.

Part ``digits`` (use 1 on real training): a controller is trained through short real
Tune searches of NB201 cells on digits (``--digits-stages`` searches of 4 trials x
``--digits-epochs``), rewarded against raynas's default cosine schedule; then, on
held-out architectures, 4 trials from a grid of initial learning rates under no
scheduler (raynas's cosine schedule), ASHA (cosine), PBT and the controller (greedy,
and sampled as AutoMBPO deploys it), at the training length and 2x longer: the best
trial's validation and test accuracy, and their means over the architectures. With
``--digits-schedule residual`` (the default) the controller and PBT scale the cosine
schedule (``lr_scale``; keeping it is the cosine schedule), and the controller observes
validation accuracy, train loss and the learning rate in force; its training searches
start their trials from the same grid of learning rates. With ``constant`` they set a
constant learning rate, the controller observes validation accuracy and train loss, and
its training trials start from lr 0.05.

Part ``catch`` (use 2, the real-evaluation ratio β of a model-based search on the
NB201 table): a controller over CATCH's β, evaluator refit interval and updates per
query (a decision every ``--catch-interval`` queries) is trained on CIFAR-10 and
CIFAR-100 tasks (``--catch-train-seeds`` seeds each, searches of
``--catch-train-queries``; each stage's searches run as parallel Ray tasks), then
compared on ImageNet16-120 (held out, ``--catch-seeds`` seeds) at the training length
and 2x longer with fixed β of 0.1 / 0.25 / 0.5 / 1 (and, at β = 1, 1 or 20 updates per
query instead of 5), a rising and a falling hand-made β schedule, and itself sampling
its actions (AutoMBPO's deployment): mean incumbent validation accuracy and test
regret (± standard error), and how the learned values move with search progress
(Spearman, pooled over the runs and per run).

Usage:
    python benchmarks/hyper_schedule.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--parts curves,digits,catch] [--seeds 3] [--catch-seeds 40] [--out /tmp/hyper_schedule]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np

GRID = (0.1, 0.25, 0.5, 1.0)


def _train(label: str, hc, run_stage, stages: int, seed: int, path: Path,
           start_gap: float | None = None, validate=None) -> tuple[list, float]:
    """Train ``hc`` (ε decaying over half the stages), print each stage, save it to
    ``path``; return the stage log and the seconds it took."""
    from raynas.policies.hyper_controller import train_controller

    start = time.perf_counter()
    log = train_controller(hc, run_stage, stages=stages, decay_stages=max(1, stages // 2),
                           seed=seed, start_gap=start_gap, validate=validate,
                           progress=lambda s, st: print(f"[{label}] stage {s}: mean gap "
                                                        f"{st['mean_gap']:+.3f}, ε {st['epsilon']:.2f}"))
    if validate is not None:
        print(f"[{label}] validation gaps: start {log[-1]['start_validation_gap']:+.3f}, " +
              ", ".join(f"stage {i} {st['validation_gap']:+.3f}" for i, st in enumerate(log)
                        if "validation_gap" in st))
    hc.save(path)
    return log, time.perf_counter() - start


def _best(results, target="log_loss"):
    finals = [r.metrics[target] for r in results if r.metrics and target in r.metrics]
    epochs = sum(int(r.metrics.get("training_iteration", 0)) for r in results if r.metrics)
    return min(finals), epochs


def curves_part(args) -> dict:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    from raynas.policies.hyper_controller import (
        HyperController,
        HyperParam,
        curve_episode,
        curve_stage,
        train_controller,
    )
    from raynas.tables.curves import NoisyQuadratic, fixed_curve
    from raynas.tune.hyper_scheduler import HyperScheduler, run_curve_search

    lr = HyperParam("lr", initial=0.5, low=0.01, high=1.5, step=1.5)
    batch = HyperParam("batch_size", initial=64, low=16, high=1024, step=2, integer=True)
    hc = HyperController([lr, batch], {"log_loss": (-6, 0)}, "log_loss", "min", lr=3e-3,
                         seed=args.seed)
    start = time.perf_counter()
    train_controller(hc, curve_stage(hc, range(200), 16, args.train_epochs, args.interval),
                     stages=args.stages, decay_stages=5, seed=args.seed)
    train_seconds = time.perf_counter() - start
    hc.save(args.out / "curves_controller.json")
    print(f"[curves] controller trained in {train_seconds:.1f} s "
          f"({args.stages} stages x 16 runs of {args.train_epochs} epochs)")

    # in process: 100 held-out tasks, best constant lr of the grid vs the controller
    inproc = {}
    for epochs in (args.train_epochs, int(2.5 * args.train_epochs)):
        same, grid, learned = [], [], []
        for seed in range(1000, 1100):
            task = NoisyQuadratic(seed)
            same.append(fixed_curve(task, epochs, 0.5, 64)[-1]["log_loss"])
            grid.append(min(fixed_curve(task, epochs, g, 64)[-1]["log_loss"] for g in GRID))
            learned.append(curve_episode(hc, task, epochs, args.interval, greedy=True)[1][-1]
                           ["log_loss"])
        learned_a = np.asarray(learned)
        inproc[epochs] = {"fixed_0.5": float(np.mean(same)), "fixed_best_of_grid": float(np.mean(grid)),
                          "controller": float(np.mean(learned)),
                          "better_than_fixed_0.5": float(np.mean(np.asarray(same) > learned_a)),
                          "better_than_best_of_grid": float(np.mean(np.asarray(grid) > learned_a))}
        print(f"[curves] in process, {epochs} epochs, 100 held-out tasks (mean final log10 "
              f"loss): fixed lr 0.5 {np.mean(same):.3f}; controller from lr 0.5, same compute, "
              f"{np.mean(learned):.3f} (better on {inproc[epochs]['better_than_fixed_0.5']:.0%}); "
              f"best constant lr of {GRID}, 4x the compute, {np.mean(grid):.3f} (controller better "
              f"on {inproc[epochs]['better_than_best_of_grid']:.0%})")

    # through Tune, the same budget per task: len(GRID) trials x E epochs
    tune_rows = []
    storage = args.out / "tune"
    for epochs in (args.train_epochs, int(2.5 * args.train_epochs)):
        for seed in range(2000, 2000 + args.seeds):
            row = {"epochs": epochs, "seed": seed}

            def search(name, scheduler, seed=seed, epochs=epochs):
                return run_curve_search(
                    scheduler, [seed], epochs, storage, f"{name}_{seed}_{epochs}",
                    config={"batch_size": 64, "lr": tune.grid_search(list(GRID))},
                    concurrency=4, keep_checkpoints=None if name == "pbt" else 2)

            row["fixed"] = _best(search("fixed", None))
            row["asha"] = _best(search("asha", ASHAScheduler(
                time_attr="training_iteration", max_t=epochs, grace_period=args.interval)))
            pbt = PopulationBasedTraining(
                time_attr="training_iteration", perturbation_interval=args.interval,
                hyperparam_mutations={"lr": tune.loguniform(0.01, 1.5),
                                      "batch_size": [16, 32, 64, 128, 256, 512, 1024]},
            )
            random.seed(seed)  # PBT's perturbations draw from the random module
            row["pbt"] = _best(search("pbt", pbt))
            row["controller"] = _best(search("controller", HyperScheduler(hc, epochs,
                                                                          args.interval)))
            tune_rows.append(row)
            print(f"[curves] Tune, task {seed}, {epochs} epochs: " + ", ".join(
                f"{k} {row[k][0]:.3f} ({row[k][1]} epochs)"
                for k in ("fixed", "asha", "pbt", "controller")))
    del ray
    return {"train_seconds": train_seconds, "in_process": inproc, "tune": tune_rows}


DIGITS_GRID = (0.025, 0.05, 0.1, 0.2)


def digits_part(args) -> dict:
    """Use 1 on real training: NB201 cells (4 channels, 1 cell per stage) on digits."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.policies.hyper_controller import HyperController, HyperParam
    from raynas.spaces import NB201Space
    from raynas.tune.hyper_scheduler import HyperScheduler, training_reference, tune_stage
    from raynas.tune.trial import SCHEDULED_KEY, make_trainable

    space = NB201Space(channels=4, cells_per_stage=1)
    data = load_digits(input_size=8)
    rng = np.random.default_rng(args.seed)
    archs = [space.to_str(space.sample(rng)) for _ in range(12)]
    train_archs, test_archs = archs[:8], archs[8:8 + args.digits_archs]
    storage = (args.out / "digits").resolve()

    def evaluator(epochs):  # one thread, as each 1-CPU trial trains: the reference is exact
        return TrainingEvaluator(space, data, epochs=epochs, batch_size=128, seed=args.seed,
                                 num_threads=1)

    def tuner(name, epochs, param_space, scheduler, keep=2):
        kwargs = {} if scheduler is None or isinstance(scheduler, HyperScheduler) else {
            "metric": "valid_acc", "mode": "max"}
        return tune.Tuner(
            make_trainable(evaluator(epochs), cpus=1), param_space=param_space,
            tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=2,
                                        reuse_actors=True, **kwargs),
            run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0,
                                      checkpoint_config=tune.CheckpointConfig(
                                          num_to_keep=keep)),
        ).fit()

    residual = args.digits_schedule == "residual"
    metrics = {"valid_acc": (0, 100), "train_loss": (0, 2.5)}
    if residual:  # the controller scales the cosine schedule, seeing the rate in force
        param = HyperParam("lr_scale", initial=1.0, low=0.125, high=8.0, step=1.5)
        metrics["lr"] = (0, 0.8)
        mutations = {"lr_scale": tune.loguniform(0.125, 8.0)}
    else:
        param = HyperParam("lr", initial=0.05, low=0.005, high=0.4, step=2.0)
        mutations = {"lr": tune.loguniform(0.005, 0.4)}
    hc = HyperController([param], metrics, "valid_acc", "max", lr=3e-3,
                         epochs=args.digits_ppo_epochs, seed=args.seed)
    epochs = args.digits_epochs
    reference = training_reference(evaluator(epochs))

    def search(stage, scheduler):
        batch = [train_archs[(stage * 4 + i) % len(train_archs)] for i in range(4)]
        if not residual:
            return tuner(f"train{stage:02d}", epochs,
                         {"arch": tune.grid_search(batch), "lr": 0.05}, scheduler)
        lr_of = {a: DIGITS_GRID[(stage + i) % len(DIGITS_GRID)] for i, a in enumerate(batch)}
        return tuner(f"train{stage:02d}", epochs,
                     {"arch": tune.grid_search(batch),
                      "lr": tune.sample_from(lambda c: lr_of[c["arch"]])}, scheduler)

    # untrained, a residual controller keeps: it is the reference schedule (gap 0)
    _, train_seconds = _train("digits", hc, tune_stage(hc, search, reference, epochs, 1),
                              args.digits_stages, args.seed, args.out / "digits_controller.json",
                              start_gap=0.0 if residual else None)
    print(f"[digits] controller trained in {train_seconds:.1f} s ({args.digits_stages} Tune "
          f"searches of 4 trials x {epochs} epochs)")
    rows = []
    for length in (epochs, 2 * epochs):
        for arch in test_archs:
            space_ = {"arch": arch, "lr": tune.grid_search(list(DIGITS_GRID))}
            pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=1,
                                          hyperparam_mutations=mutations)
            random.seed(args.seed)
            pbt_space = {**space_, SCHEDULED_KEY: True, **({"lr_scale": 1.0} if residual else {})}
            runs = {
                "fixed": tuner(f"fixed_{length}", length, space_, None),
                "asha": tuner(f"asha_{length}", length, space_, ASHAScheduler(
                    time_attr="training_iteration", max_t=length, grace_period=1)),
                # PBT's mutations change what the controller's change
                "pbt": tuner(f"pbt_{length}", length, pbt_space, pbt, keep=None),
                "controller": tuner(f"controller_{length}", length, space_,
                                    HyperScheduler(hc, length, 1)),
                # AutoMBPO's deployment, and how training judged it: sampled actions
                "controller_sampled": tuner(f"controller_sampled_{length}", length, space_,
                                            HyperScheduler(hc, length, 1, sample=True,
                                                           seed=args.seed)),
            }
            row = {"epochs": length, "arch": arch}
            for name, results in runs.items():
                done = [r.metrics for r in results if r.metrics and "valid_acc" in r.metrics]
                best = max(done, key=lambda m: m["valid_acc"])
                row[name] = {"valid": best["valid_acc"], "test": best["test_acc"],
                             "epochs": sum(int(m.get("training_iteration", 0)) for m in done)}
            rows.append(row)
            print(f"[digits] {arch}, {length} epochs (best trial; valid / test accuracy): " +
                  ", ".join(f"{k} {row[k]['valid']:.2f} / {row[k]['test']:.2f} "
                            f"({row[k]['epochs']} epochs)" for k in runs))
        same = [r for r in rows if r["epochs"] == length]
        print(f"[digits] mean over {len(same)} held-out architectures, {length} epochs: " +
              ", ".join(f"{k} {np.mean([r[k]['valid'] for r in same]):.2f} / "
                        f"{np.mean([r[k]['test'] for r in same]):.2f}" for k in runs))
    return {"train_seconds": train_seconds, "eval": rows}


#: hand-made β schedules over search progress p, peers of the learned one
HAND_SCHEDULES = {"rising β": lambda p: 0.1 + 0.9 * p, "falling β": lambda p: 1.0 - 0.9 * p}


def _catch_eval(table_path, dataset, queries, seed, values, interval, controller_state=None,
                sample=False, schedule=None):
    """One held-out CATCH search: fixed ``values``, a hand-made β ``schedule`` (a key of
    HAND_SCHEDULES) or the controller in ``controller_state``. Returns the incumbent's
    validation accuracy and test regret after every query."""
    import torch

    torch.set_num_threads(1)
    from raynas.evaluators import TabularEvaluator
    from raynas.policies.catch.schedule import catch_search
    from raynas.policies.hyper_controller import HyperController
    from raynas.tables import BenchmarkTable

    table = BenchmarkTable.load(table_path)
    evaluator = TabularEvaluator(table, dataset)
    decide = None
    if controller_state is not None:
        hc = HyperController.from_state(controller_state)
        rng = np.random.default_rng(seed)

        def decide(progress, history, current):
            obs = hc.observe(progress, history, current)
            return hc.adjust(current, hc.act(obs, rng, greedy=not sample)[0])

        values = hc.initial_values()
    elif schedule is not None:
        beta = HAND_SCHEDULES[schedule]
        values = {**values, "real_ratio": beta(0.0)}

        def decide(progress, history, current):
            return {**current, "real_ratio": beta(progress)}

    run = catch_search(evaluator, queries, seed, values, decide, interval=interval)
    # searched on validation, reported on test
    best_test = float(np.max(table.column(dataset, "test_acc")))
    return {"valid": run["incumbent"], "test_regret": [best_test - m["test_acc"]
                                                      for m in run["best_curve"]],
            "decisions": run["decisions"], "real_updates": run["real_updates"],
            "imagined_updates": run["imagined_updates"]}


def _summary(runs, at):
    """Mean validation accuracy and test regret (± standard error) after ``at`` queries."""
    valid = np.asarray([r["valid"][at - 1] for r in runs])
    regret = np.asarray([r["test_regret"][at - 1] for r in runs])
    return {"valid": float(valid.mean()), "test_regret": float(regret.mean()),
            "test_regret_se": float(regret.std(ddof=1) / np.sqrt(len(regret))),
            "runs": len(runs)}


def _rise(runs, name):
    """How the learned ``name`` moves with search progress: Spearman over the pooled
    decisions of all runs, and the mean of each run's own (0 for a constant run)."""
    from raynas.policies.catch.schedule import spearman

    per_run, points = [], []
    for r in runs:
        p = [d["query"] for d in r["decisions"]]
        v = [d[name] for d in r["decisions"]]
        per_run.append(spearman(p, v))
        points += zip(p, v)
    x, y = np.asarray(points).T
    return {"pooled": spearman(x, y), "mean_per_run": float(np.mean(per_run)),
            "start": float(np.mean([r["decisions"][0][name] for r in runs])),
            "end": float(np.mean([r["decisions"][-1][name] for r in runs]))}


def catch_part(args) -> dict:
    import ray
    import torch

    from raynas.evaluators import TabularEvaluator
    from raynas.policies.catch.schedule import (
        catch_stage,
        catch_validation,
        make_catch_controller,
    )
    from raynas.tables import BenchmarkTable

    torch.set_num_threads(1)
    table = BenchmarkTable.load(args.table)
    interval, short = args.catch_interval, args.catch_train_queries

    def tasks(seeds):
        return [(TabularEvaluator(table, d), s) for s in seeds for d in ("cifar10", "cifar100")]

    hc = make_catch_controller(lr=3e-3, epochs=args.catch_ppo_epochs, seed=args.seed)
    # untrained, the controller keeps: it is the reference (fixed initial values), gap 0;
    # the best stages and it are judged again on held-out seeds of the training datasets
    validate = catch_validation(tasks(range(1000, 1000 + args.catch_val_seeds)), short,
                                interval) if args.catch_val_seeds else None
    log, train_seconds = _train("catch", hc, catch_stage(hc, tasks(range(args.catch_train_seeds)),
                                                         args.catch_episodes, short, interval,
                                                         args.seed),
                                args.catch_stages, args.seed, args.out / "catch_controller.json",
                                start_gap=0.0, validate=validate)
    print(f"[catch] controller trained in {train_seconds:.1f} s ({args.catch_stages} stages x "
          f"{args.catch_episodes} searches of {short} queries, Ray tasks)")

    remote = ray.remote(num_cpus=1)(_catch_eval)
    state, initial = hc.state_dict(), hc.initial_values()
    fixed = {f"fixed β = {b}": {**initial, "real_ratio": b} for b in (0.1, 0.25, 0.5, 1.0)}
    for updates in (1, 20):  # how much the policy updates per query matter, all real
        fixed[f"fixed β = 1.0, {updates} update{'s' * (updates > 1)}"] = {
            **initial, "real_ratio": 1.0, "updates": updates}
    seeds = [100 + s for s in range(args.catch_seeds)]
    lengths = (short, 2 * short)
    jobs = {}  # fixed values: one run of the longer length serves both
    for name, values in fixed.items():
        jobs.update({(name, None, s): (lengths[-1], values, None, False, None) for s in seeds})
    for q in lengths:
        for name in HAND_SCHEDULES:
            jobs.update({(name, q, s): (q, initial, None, False, name) for s in seeds})
        for name, sample in (("controller", False), ("controller, sampled", True)):
            jobs.update({(name, q, s): (q, initial, state, sample, None) for s in seeds})
    futures = {key: remote.remote(str(args.table), "imagenet16_120", job[0], key[2], job[1],
                                  interval, *job[2:]) for key, job in jobs.items()}
    out = {key: ray.get(f) for key, f in futures.items()}
    rows = {}
    for q in lengths:
        for name in [*fixed, *HAND_SCHEDULES, "controller", "controller, sampled"]:
            runs = [out[(name, None if name in fixed else q, s)] for s in seeds]
            row = _summary(runs, q)
            row["real_share"] = float(np.mean([r["real_updates"] / max(1, r["real_updates"] +
                                                                       r["imagined_updates"])
                                               for r in runs])) if name not in fixed else (
                fixed[name]["real_ratio"])
            if name.startswith("controller"):
                row["schedule"] = {p: _rise(runs, p) for p in hc.initial_values()}
            rows[f"{name}@{q}"] = row
            print(f"[catch] imagenet16_120 @{q}, {len(seeds)} seeds: {name:20s} valid "
                  f"{row['valid']:.3f}, test regret {row['test_regret']:.3f} ± "
                  f"{row['test_regret_se']:.3f} (SE), share of real updates {row['real_share']:.2f}")
            for p, rise in row.get("schedule", {}).items():
                print(f"[catch]     learned {p}: {rise['start']:.3g} -> {rise['end']:.3g} on "
                      f"average; Spearman with progress {rise['pooled']:+.2f} pooled, "
                      f"{rise['mean_per_run']:+.2f} per run")
    return {"train_seconds": train_seconds, "training": log, "eval": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", type=Path, default=default_table())
    parser.add_argument("--parts", default="curves,digits,catch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--stages", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="held-out tasks run through Tune")
    parser.add_argument("--digits-epochs", type=int, default=4)
    parser.add_argument("--digits-stages", type=int, default=6)
    parser.add_argument("--digits-archs", type=int, default=2)
    parser.add_argument("--digits-ppo-epochs", type=int, default=120,
                        help="PPO passes per update: AutoMBPO's 30 per episode x 4 episodes")
    parser.add_argument("--digits-schedule", choices=("residual", "constant"), default="residual",
                        help="the controller (and PBT) scale the cosine schedule, or set a "
                             "constant learning rate")
    parser.add_argument("--catch-train-queries", type=int, default=50)
    parser.add_argument("--catch-interval", type=int, default=5, help="queries per decision")
    parser.add_argument("--catch-train-seeds", type=int, default=32,
                        help="training tasks: CIFAR-10 and CIFAR-100 with this many seeds")
    parser.add_argument("--catch-val-seeds", type=int, default=16,
                        help="held-out seeds of CIFAR-10 and CIFAR-100 on which the best "
                             "training stages are judged again (0: AutoMBPO's pick)")
    parser.add_argument("--catch-stages", type=int, default=20)
    parser.add_argument("--catch-episodes", type=int, default=32)
    parser.add_argument("--catch-seeds", type=int, default=40, help="held-out seeds")
    parser.add_argument("--catch-ppo-epochs", type=int, default=120,
                        help="PPO passes per update: AutoMBPO's 30 per episode x 4 episodes")
    parser.add_argument("--out", type=Path, default=Path("/tmp/hyper_schedule"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             configure_logging=False)
    report = {}
    parts = args.parts.split(",")
    if "curves" in parts:
        report["curves"] = curves_part(args)
    if "digits" in parts:
        report["digits"] = digits_part(args)
    if "catch" in parts:
        report["catch"] = catch_part(args)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"report: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
