"""NPG: multi-objective NAS by non-stationary policy gradient.

"Multi-objective Neural Architecture Search via Non-stationary Policy Gradient"
(spec: ``shared/research/papers.md`` §3; the formulas marked [R] there are
reconstructions, implemented here as named, documented defaults).

* **Controller:** a factorised categorical per edge, or an autoregressive LSTM / MLP
  over the edges (:mod:`raynas.policies.controllers`), sampled as softmax(ℓ / τ).
* **Update:** REINFORCE with a moving-average baseline ``b ← β·b + (1 − β)·r`` and
  advantage ``r − b`` (on a factorised controller with plain SGD:
  ``θ_i += lr · (r − b) · (onehot(a_i) − π_i) / τ``), or PPO-clip on the same
  advantages.
* **Temperature:** cosine decay with warm restarts (SGDR):
  ``τ_t = τ_min + ½ (τ_max − τ_min)(1 + cos(π · T_cur / T_i))``; at a restart
  ``T_cur ← 0`` and ``T_i ← T_mult · T_i``. With ``restart_on_move``, a restart also
  happens whenever the ADF targets move to their next stage.
* **Rewards:** ADC (dominance against the archive, the default for several
  objectives), ADF (annealed desirability) or a weighted sum, from
  :mod:`raynas.objectives.rewards`.
* **Result:** the Pareto archive of everything evaluated (:meth:`NPG.front`).
* **Front refinement** (``refine``, 0.75 by default): that share of the picks are
  unevaluated one-decision neighbours of a random member of the current archive, and
  so is a pick the controller can only repeat; the policy gradient learns from them
  like from its own samples. On NB201 it lifts the hypervolume reached at 300
  queries above NSGA-II's (``benchmarks/npg_pareto.py``; ``refine=0`` is the plain
  sampling policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.errors import ArgumentError
from raynas.objectives.pareto import non_dominated
from raynas.objectives.rewards import ADCReward, ADFReward, WeightedSumReward
from raynas.search.policy import Policy
from raynas.types import Arch, Objective, Result

REWARDS = ("adf", "adc", "weighted")


def cosine_temperature(t: int, tau_max: float = 5.0, tau_min: float = 1.0, period: int = 100,
                       t_mult: float = 1.0, restarts: Sequence[int] = ()) -> float:
    """The SGDR temperature at step ``t``: periods of ``period`` steps (each ``t_mult``
    times the previous), plus extra restarts at the steps in ``restarts``.

    Example:
        >>> cosine_temperature(0), cosine_temperature(50), cosine_temperature(100)
        (5.0, 3.0, 5.0)
    """
    start, length = 0, float(period)
    extra = sorted(r for r in restarts if r <= t)
    last_extra = extra[-1] if extra else None
    if last_extra is not None:  # an extra restart begins a fresh first period
        start = last_extra
    while t - start >= length:
        start += int(round(length))
        length *= t_mult
    t_cur = t - start
    return tau_min + 0.5 * (tau_max - tau_min) * (1 + math.cos(math.pi * t_cur / length))


class NPG(Policy):
    """Non-stationary policy gradient over per-edge categorical distributions.

    Args:
        space: The search space.
        seed: Seeds the sampling.
        objective: The search metric (the first objective by default).
        objectives: ``{metric: mode}`` of every objective, e.g. ``{"valid_acc": "max",
            "params": "min"}``; default: the search metric alone.
        reward: ``adf``, ``adc`` or ``weighted`` (default: ``adc`` for several
            objectives, which recovered NB201 fronts best in
            ``benchmarks/npg_pareto.py``; ``weighted`` for one).
        ranges: ``{metric: (low, high)}`` for ADF / weighted normalisation; missing
            ones use the running range of what was seen.
        controller: ``factorised``, ``lstm`` or ``mlp``.
        update: ``reinforce`` or ``ppo`` (PPO-clip).
        optimizer: ``sgd`` or ``adam``.
        lr: Learning rate of the controller.
        baseline_decay: β of the moving-average baseline.
        clip, ppo_epochs, ppo_batch: PPO-clip's ε, steps per batch and batch size.
        tau_max, tau_min, period, t_mult: The temperature schedule.
        restart_on_move: Restart the temperature when the ADF targets move.
        anneal: Evaluations for ADF's targets to sweep their ranges.
        stages: ADF's target steps.
        replay: Extra updates per told batch on ``replay_batch`` architectures drawn
            from everything told so far, re-scored with the *current* reward (the
            non-stationary reward is a known function of the metrics, so past
            evaluations are relabelled when the targets move), advantages z-scored
            within the batch. 0: on-policy updates only.
        replay_batch: Architectures per replay update.
        fresh_tries: Resample up to this many times when the controller draws an
            architecture it was already told about (a cached repeat teaches nothing
            new and costs a query-free round); 0: plain sampling.
        band, power: ADF's falling edge past a moving target (a fraction of the range)
            and its Derringer–Suich exponent ``s``.
        floor_quantile: ADF's accuracy floor ``L_A``: this quantile of the accuracies
            seen (``None``: the worst one).
        refine: Probability that a pick refines the front: an unevaluated
            one-decision neighbour of a random member of the current Pareto archive
            (0: none, the controller samples every pick; with > 0, also what replaces
            a draw the controller can only repeat).

    Asynchronous use: the controller learns from each result as it arrives, at the
    current temperature, so results of architectures sampled before the last updates
    are off-policy (PPO-clip bounds the step); architectures being evaluated are
    excluded from fresh draws and from front refinement, like evaluated ones.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> policy = NPG(NB201Space(), objectives={"valid_acc": "max", "params": "min"})
        >>> arch = policy.ask(1)
        >>> policy.tell(arch, [Result({"valid_acc": 80.0, "params": 0.5})])
    """

    name = "npg"

    def __init__(self, space, *, seed: int = 0, objective: Objective | None = None,
                 objectives: Mapping[str, str] | None = None, reward: str | None = None,
                 ranges: Mapping[str, Sequence[float]] | None = None,
                 controller: str = "factorised", update: str = "reinforce",
                 optimizer: str = "sgd", lr: float = 2.0, baseline_decay: float = 0.95,
                 clip: float = 0.2, ppo_epochs: int = 4, ppo_batch: int = 8,
                 tau_max: float = 5.0, tau_min: float = 1.0, period: int = 100,
                 t_mult: float = 1.0, restart_on_move: bool = True, anneal: int = 300,
                 stages: int = 10, band: float = 0.2, power: float = 1.0,
                 floor_quantile: float | None = None,
                 replay: int = 0, replay_batch: int = 32, fresh_tries: int = 50,
                 refine: float = 0.75) -> None:
        super().__init__(space, seed=seed, objective=objective)
        self.objectives = dict(objectives or {self.objective.metric: self.objective.mode})
        reward = reward or ("adc" if len(self.objectives) > 1 else "weighted")
        if reward not in REWARDS:
            raise ArgumentError(f"reward must be one of {REWARDS}, got {reward!r}")
        if reward in ("adf", "adc") and len(self.objectives) < 2:
            raise ArgumentError(f"reward {reward!r} needs >= 2 objectives")
        if lr <= 0 or not 0 <= baseline_decay < 1 or not tau_max >= tau_min > 0 or period < 1:
            raise ArgumentError("need lr > 0, 0 <= baseline_decay < 1, tau_max >= tau_min > 0, "
                             "period >= 1")
        self.reward_name = reward
        self.ranges = {m: tuple(map(float, r)) for m, r in (ranges or {}).items()}
        self.lr, self.baseline_decay = lr, baseline_decay
        self.tau = dict(tau_max=tau_max, tau_min=tau_min, period=period, t_mult=t_mult)
        self.restart_on_move, self.anneal, self.stages = restart_on_move, anneal, stages
        self.band, self.power, self.floor_quantile = band, power, floor_quantile
        if fresh_tries < 0:
            raise ArgumentError(f"fresh_tries must be >= 0, got {fresh_tries}")
        self.fresh_tries = fresh_tries
        if not 0 <= refine <= 1:
            raise ArgumentError(f"refine must be in [0, 1], got {refine}")
        self.refine = refine
        if replay < 0 or replay_batch < 1:
            raise ArgumentError("need replay >= 0 and replay_batch >= 1")
        self.replay, self.replay_batch = replay, replay_batch
        self.history: list[tuple[Arch, dict[str, float]]] = []  # every usable result
        self.archive: list[tuple[Arch, dict[str, float]]] = []  # its non-dominated ones, in order
        from raynas.policies.controllers import PolicyGradient, make_controller  # torch: lazy

        self.controller_name, self.update = controller, update
        self.controller = make_controller(controller, space.num_choices, seed=self.seed)
        self.learner = PolicyGradient(self.controller, update, optimizer, lr, clip, ppo_epochs,
                                      ppo_batch)
        self.optimizer = optimizer
        self.baseline: float | None = None
        self.t = 0
        self.restarts: list[int] = []
        self.seen: set[Arch] = set()
        self.reward_fn = self._new_reward()

    def _new_reward(self):
        if self.reward_name == "adf":
            return ADFReward(self.objectives, self.ranges, anneal_episodes=self.anneal,
                             stages=self.stages, band=self.band, power=self.power,
                             floor_quantile=self.floor_quantile)
        if self.reward_name == "adc":
            return ADCReward(self.objectives)
        return WeightedSumReward(self.objectives, self.ranges)

    def temperature(self) -> float:
        return cosine_temperature(self.t, restarts=self.restarts, **self.tau)

    def probabilities(self) -> list[np.ndarray]:
        """Each decision's distribution at the current temperature (an autoregressive
        controller's: along its most likely architecture)."""
        return self.controller.greedy(self.temperature())[1]

    def most_likely(self) -> Arch:
        """The controller's most likely architecture."""
        return self.space.validate(self.controller.greedy()[0])

    def ask(self, n: int = 1) -> list[Arch]:
        tau = self.temperature()
        out: list[Arch] = []
        for _ in range(self._check_n(n)):
            arch = None
            if self.refine and self.rng.random() < self.refine:
                arch = self._refinement(out)
            if arch is None:
                for _ in range(self.fresh_tries + 1):  # prefer an architecture not yet evaluated
                    arch = self.space.validate(self.controller.sample(self.rng, tau))
                    if arch not in self.seen and arch not in out and arch not in self.in_flight:
                        break
                else:
                    if self.refine:
                        arch = self._refinement(out) or arch
            out.append(arch)
        return out

    def _refinement(self, taken: Sequence[Arch]) -> Arch | None:
        """An unevaluated one-decision neighbour of a random member of the current
        Pareto archive (``None`` when every archive member's neighbours are evaluated)."""
        for i in self.rng.permutation(len(self.archive)) if self.archive else ():
            options = [a for a in self.space.neighbors(self.archive[i][0])
                       if a not in self.seen and a not in taken and a not in self.in_flight]
            if options:
                return options[int(self.rng.integers(len(options)))]
        return None

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        tau = self.temperature()  # the temperature ``archs`` were sampled at
        advantages = []
        for arch, result in zip(archs, results):
            self.seen.add(tuple(arch))
            metrics = {m: result.metrics.get(m) for m in self.objectives}
            usable = result.ok and all(v is not None and math.isfinite(v) for v in metrics.values())
            reward = self._reward(metrics) if usable else 0.0
            if usable:
                self.history.append((tuple(arch), metrics))
                self._archive_add(tuple(arch), metrics)
            self.baseline = reward if self.baseline is None else (
                self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward)
            advantages.append(reward - self.baseline)
        self.learner.step(archs, advantages, tau)
        for _ in range(self.replay if len(self.history) > 1 else 0):
            idx = self.rng.choice(len(self.history), min(self.replay_batch, len(self.history)),
                                  replace=False)
            scores = np.array([self.reward_fn.score(self.history[i][1]) for i in idx])
            if scores.std() > 0:
                self.learner.step([self.history[i][0] for i in idx],
                                  (scores - scores.mean()) / scores.std(), tau)
        self.t += len(archs)

    def _reward(self, metrics: dict[str, float]) -> float:
        before = self.reward_fn.progress() if self.reward_name == "adf" else None
        reward, _ = self.reward_fn.reward(metrics)
        if before is not None and self.restart_on_move and self.reward_fn.progress() != before:
            self.restarts.append(self.t + 1)  # the targets moved: explore afresh
        return float(reward)

    def front(self) -> list[tuple[str, dict[str, float]]]:
        """The Pareto archive: every evaluated architecture no other one dominates."""
        return [(self.space.to_str(a), dict(m)) for a, m in self.archive]

    def _archive_add(self, arch: Arch, metrics: dict[str, float]) -> None:
        """Keep :attr:`archive` the non-dominated part of the history: a point dominated
        by a dropped one is dominated by what dropped it, so the old archive plus the new
        point is enough (history order is kept)."""
        candidates = [*self.archive, (arch, metrics)]
        points = np.array([[m[k] for k in self.objectives] for _, m in candidates])
        keep = non_dominated(points, list(self.objectives.values()))
        self.archive = [c for c, k in zip(candidates, keep) if k]

    def hyperparameters(self) -> dict[str, Any]:
        return {"objectives": self.objectives, "reward": self.reward_name,
                "controller": self.controller_name, "update": self.update,
                "optimizer": self.optimizer, "lr": self.lr,
                "baseline_decay": self.baseline_decay, **self.tau,
                "restart_on_move": self.restart_on_move, "anneal": self.anneal,
                "stages": self.stages, "band": self.band, "power": self.power,
                "floor_quantile": self.floor_quantile,
                "replay": self.replay, "replay_batch": self.replay_batch,
                "fresh_tries": self.fresh_tries, "refine": self.refine}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "learner": self.learner.state_dict(),
                "baseline": self.baseline, "t": self.t, "restarts": self.restarts,
                "history": [[list(a), m] for a, m in self.history],
                "seen": sorted(list(a) for a in self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.learner.load_state_dict(state["learner"])
        self.baseline, self.t = state["baseline"], state["t"]
        self.restarts = list(state["restarts"])
        self.reward_fn = self._new_reward()  # replay the rewards: the same non-stationary state
        self.history, self.archive = [], []
        for arch, metrics in state["history"]:
            self.history.append((tuple(arch), dict(metrics)))
            self._archive_add(tuple(arch), dict(metrics))
            self.reward_fn.reward(metrics)
        self.seen = {tuple(a) for a in state["seen"]}
