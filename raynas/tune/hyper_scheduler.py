"""Schedule Tune trials' hyperparameters with a learned hyper-controller (AutoMBPO).

:class:`HyperScheduler` is a ``TrialScheduler``: every ``interval`` epochs of a
running trial it shows the trial's progress and recent metrics to a
:class:`~raynas.policies.hyper_controller.HyperController`, which moves each
scheduled hyperparameter (learning rate, weight decay, batch size, or any key of
the trial's config that its trainable reads) down, keeps it, or moves it up. A
changed trial gets its new config and a PAUSE: Tune saves it (the checkpoint it
reported with that epoch), stops it, and resumes it from that checkpoint with the new
config, as with Tune's PBT; an unchanged trial just continues.

With ``explore`` set, the scheduler samples the controller's actions and records
each trial as an :class:`~raynas.policies.hyper_controller.Episode`, rewarded
against a reference schedule (``reference(config, epoch)``): that is how the
controller is trained, over many short Tune searches (:func:`tune_stage`).

Trainables: raynas's training trainable (:func:`raynas.tune.trial.make_trainable`)
reads ``lr``, ``lr_scale`` (a multiplier of its cosine schedule: a *residual* schedule,
whose "keep" is the cosine run), ``weight_decay`` and ``batch_size`` from its config;
:func:`train_curve` runs the synthetic noisy-quadratic curves
(:mod:`raynas.tables.curves`) as Tune trials, cheap enough for the many episodes
controller training needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from raynas.errors import ArgumentError
from raynas.tables.curves import NoisyQuadratic, fixed_curve
from raynas.tune.trial import SCHEDULED_KEY

if TYPE_CHECKING:
    from raynas.policies.hyper_controller import Episode, HyperController

logger = logging.getLogger(__name__)

Reference = Callable[[dict[str, Any], int], float]
"""``reference(trial_config, epoch) -> target metric of the reference schedule``; it
gets the trial's config as it was before the scheduler changed anything."""


class HyperScheduler(FIFOScheduler):
    """A ``TrialScheduler`` that lets ``controller`` adjust each trial's hyperparameters.

    Args:
        controller: The hyper-controller (its ``params`` name config keys).
        epochs: Epochs (``training_iteration`` s) of a full trial: progress is
            ``epoch / epochs``.
        interval: Epochs between decisions.
        explore: ``None`` to deploy a trained controller; a number ε to sample
            actions (uniform per head with probability ε) and record episodes.
        sample: Deployed, sample the policy's actions (as AutoMBPO deploys its
            controller, and as :func:`~raynas.policies.hyper_controller.train_controller`
            judged it) instead of taking the most likely ones.
        reference: The reference schedule's target metric at each epoch, needed
            to reward episodes (``explore``); not needed to act.
        seed: Seeds the sampling of actions: trial ``i`` (in the order trials are
            added) draws from its own generator ``(seed, i)``, whatever order results
            arrive in.
        log_path: Append every decision to this JSONL file (trial, epoch, values,
            probabilities), so a schedule can be inspected and plotted.
    """

    def __init__(self, controller: HyperController, epochs: int, interval: int = 1, *,
                 explore: float | None = None, reference: Reference | None = None,
                 sample: bool = False, seed: int = 0, log_path: str | Path | None = None) -> None:
        super().__init__()
        if epochs < 1 or interval < 1:
            raise ArgumentError(f"need epochs >= 1 and interval >= 1, got {epochs} and {interval}")
        if explore is not None and reference is None:
            raise ArgumentError("recording episodes (explore) needs a reference schedule")
        self.controller, self.epochs, self.interval = controller, epochs, interval
        self.explore, self.reference, self.sample = explore, reference, sample
        self.seed = seed
        self._rngs: dict[str, np.random.Generator] = {}
        self.log_path = Path(log_path) if log_path is not None else None
        self._metric, self._mode = controller.target, controller.mode
        self._seen: dict[str, list[dict[str, float]]] = {}
        self._steps: dict[str, list[tuple[list[float], list[int], float]]] = {}
        self.episodes: list[Episode] = []
        self.initial: dict[str, dict[str, Any]] = {}  # trial id -> config before any change
        self.changes = 0

    # ----------------------------------------------------------- Tune hooks
    @property
    def supports_buffered_results(self) -> bool:
        return False  # every epoch's result must reach the scheduler

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # the controller fixes metric and mode

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        missing = {k: v for k, v in self.controller.initial_values().items()
                   if k not in trial.config}
        trial.set_config({**trial.config, **missing, SCHEDULED_KEY: True})
        self.initial[trial.trial_id] = dict(trial.config)
        self._rngs[trial.trial_id] = np.random.default_rng([self.seed, len(self._rngs)])

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        epoch = int(result.get("training_iteration", 0))
        if self.controller.target not in result:
            return TrialScheduler.CONTINUE
        seen = self._seen.setdefault(trial.trial_id, [])
        if epoch % self.interval or epoch >= self.epochs:
            return TrialScheduler.CONTINUE
        seen.append({k: float(v) for k, v in result.items() if isinstance(v, (int, float))})
        values = {p.name: float(trial.config[p.name]) for p in self.controller.params}
        obs = self.controller.observe(epoch / self.epochs, seen, values)
        greedy = self.explore is None and not self.sample
        actions, logp = self.controller.act(obs, self._rngs[trial.trial_id],
                                            self.explore or 0.0, greedy)
        new = self.controller.adjust(values, actions)
        self._steps.setdefault(trial.trial_id, []).append((obs, actions, logp))
        self._log(trial, epoch, values, new, obs)
        if new == values:
            return TrialScheduler.CONTINUE
        # PAUSE makes Tune save the trial (for a function trainable: this epoch's
        # reported checkpoint) and stop it; it resumes from that checkpoint with the
        # new config when choose_trial_to_run picks it again.
        trial.set_config({**trial.config, **new})
        self.changes += 1
        return TrialScheduler.PAUSE

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        final = result.get(self.controller.target) if result else None
        steps = self._steps.pop(trial.trial_id, [])
        seen = self._seen.pop(trial.trial_id, [])
        if self.explore is None or not steps or final is None:
            return
        from raynas.policies.hyper_controller import Episode

        # decision t acted at epoch (t+1)·interval; its outcome is the target at the
        # next decision, or at the end
        targets = [s[self.controller.target] for s in seen[1:len(steps)]] + [float(final)]
        epochs = [min(self.epochs, (t + 2) * self.interval) for t in range(len(steps) - 1)]
        epochs.append(int(result.get("training_iteration", self.epochs)))
        config = self.initial.get(trial.trial_id, trial.config)
        refs = [self.reference(config, e) for e in epochs]
        target = self.controller.target
        start_gap = self.controller.gap(seen[0][target], self.reference(config, self.interval))
        episode = Episode([s[0] for s in steps], [s[1] for s in steps], [s[2] for s in steps],
                          self.controller.rewards(targets, refs, start_gap))
        self.episodes.append(episode)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._steps.pop(trial.trial_id, None)
        self._seen.pop(trial.trial_id, None)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        # resume adjusted trials before starting new ones
        for status in (Trial.PAUSED, Trial.PENDING):
            for trial in tune_controller.get_trials():
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        return f"HyperScheduler: {self.changes} hyperparameter changes"

    def _log(self, trial: Trial, epoch: int, old: dict, new: dict, obs: list[float]) -> None:
        if new != old:
            logger.info("trial %s, epoch %d: %s", trial.trial_id, epoch,
                        ", ".join(f"{k} {old[k]:g} -> {new[k]:g}" for k in new if new[k] != old[k]))
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as f:
            f.write(json.dumps({"trial": trial.trial_id, "epoch": epoch, "before": old,
                                "after": new,
                                "probabilities": self.controller.probabilities(obs)}) + "\n")


# ------------------------------------------------------------ synthetic trials
CURVE_STATE = "curve.json"


def train_curve(config: dict[str, Any]) -> None:
    """A Tune function trainable: the noisy-quadratic task ``config["seed"]`` for
    ``config["epochs"]`` epochs at ``config["lr"]`` and ``config["batch_size"]``,
    reporting every epoch with a checkpoint (so a scheduler can pause and resume it)."""
    import tempfile

    from ray import tune

    run = NoisyQuadratic(int(config["seed"])).start()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            run.load_state_dict(json.loads(Path(folder, CURVE_STATE).read_text()))
    while run.epochs < int(config["epochs"]):
        metrics = run.epoch(float(config["lr"]), float(config["batch_size"]))
        metrics |= {"lr": float(config["lr"]), "batch_size": float(config["batch_size"])}
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, CURVE_STATE).write_text(json.dumps(run.state_dict()))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def curve_reference(lr: float, batch_size: float, target: str = "log_loss") -> Reference:
    """The constant schedule ``(lr, batch_size)`` on each trial's task, as a reference."""
    cache: dict[tuple[int, int], list[dict[str, float]]] = {}

    def reference(config: dict[str, Any], epoch: int) -> float:
        key = (int(config["seed"]), int(config["epochs"]))
        if key not in cache:
            cache[key] = fixed_curve(NoisyQuadratic(key[0]), key[1], lr, batch_size)
        return cache[key][max(1, epoch) - 1][target]

    return reference


def run_curve_search(scheduler: TrialScheduler | None, seeds: Sequence[int], epochs: int,
                     storage: str | Path, name: str, config: dict[str, Any] | None = None,
                     concurrency: int = 2, callbacks: list | None = None,
                     keep_checkpoints: int | None = 2):
    """One Tune search of the synthetic curves: a trial per seed (its ``config`` may
    grid-search more), under ``scheduler``, with extra Tune ``callbacks``,
    keeping ``keep_checkpoints`` per trial (``None``: all, as PBT's exploits need);
    returns Tune's ``ResultGrid``."""
    from ray import tune

    space = {"epochs": epochs, **(config or {}), "seed": tune.grid_search(list(seeds))}
    tuner = tune.Tuner(
        tune.with_resources(train_curve, {"cpu": 0.5}),
        param_space=space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler, max_concurrent_trials=concurrency, reuse_actors=True,
            **({"metric": "log_loss", "mode": "min"} if scheduler is not None
               and not isinstance(scheduler, HyperScheduler) else {}),
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(Path(storage).resolve()),
                                  verbose=0, callbacks=callbacks,
                                  checkpoint_config=tune.CheckpointConfig(
                                      num_to_keep=keep_checkpoints)),
    )
    return tuner.fit()


def tune_stage(controller: HyperController, search, reference: Reference, epochs: int,
               interval: int):
    """A ``run_stage`` for :func:`~raynas.policies.hyper_controller.train_controller`
    whose stage ``s`` is one real Tune search, ``search(s, scheduler)`` (returning its
    ``ResultGrid``), under an exploring :class:`HyperScheduler` rewarded against
    ``reference``: each trial is an episode."""

    def run_stage(stage: int, epsilon: float):
        scheduler = HyperScheduler(controller, epochs, interval, explore=epsilon,
                                   reference=reference, seed=stage)
        results = search(stage, scheduler)
        gaps = [controller.gap(r.metrics[controller.target],
                               reference(scheduler.initial.get(r.metrics.get("trial_id"),
                                                               r.config), epochs))
                for r in results if r.metrics and controller.target in r.metrics
                and int(r.metrics.get("training_iteration", 0)) >= epochs]
        return scheduler.episodes, gaps

    return run_stage


def tune_curve_stage(controller: HyperController, seeds: Sequence[int], trials: int,
                     epochs: int, interval: int, storage: str | Path, *, lr: float = 0.5,
                     batch_size: float = 64, concurrency: int = 2):
    """:func:`tune_stage` on the synthetic curves: stage ``s`` searches ``trials`` tasks
    (cycling through ``seeds``) from ``(lr, batch_size)``, rewarded against that
    constant schedule."""

    def search(stage: int, scheduler: HyperScheduler):
        batch = [seeds[(stage * trials + i) % len(seeds)] for i in range(trials)]
        return run_curve_search(scheduler, batch, epochs, storage, f"stage{stage:03d}",
                                config={"lr": lr, "batch_size": batch_size},
                                concurrency=concurrency)

    return tune_stage(controller, search, curve_reference(lr, batch_size, controller.target),
                      epochs, interval)


def training_reference(evaluator, target: str = "valid_acc") -> Reference:
    """raynas's default schedule as the reference for training trials: each trial's
    architecture trained in process with a cosine schedule from the trial's initial
    ``lr`` and ``lr_scale`` (the evaluator's other settings), once per (arch, lr,
    lr_scale), cached. A residual controller (one that schedules ``lr_scale``) that
    always keeps reproduces it exactly."""
    cache: dict[tuple[str, float, float, int], list[float]] = {}

    def reference(config: dict[str, Any], epoch: int) -> float:
        key = (config["arch"], float(config.get("lr", evaluator.lr)),
               float(config.get("lr_scale", 1.0)), int(evaluator.epochs))
        if key not in cache:
            curve: list[float] = []
            evaluator.fit(evaluator.space.from_str(key[0]), hyper={"lr": key[1],
                                                                    "lr_scale": key[2]},
                          on_epoch=lambda metrics, _: curve.append(float(metrics[target])))
            cache[key] = curve
        return cache[key][min(len(cache[key]), max(1, epoch)) - 1]

    return reference
