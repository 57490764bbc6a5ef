"""NPG: multi-objective NAS by non-stationary policy gradient.

"Multi-objective Neural Architecture Search via Non-stationary Policy Gradient"
(spec: ``shared/research/papers.md`` §3; the formulas marked [R] there are
reconstructions, implemented here as named, documented defaults).

* **Controller:** a factorised categorical distribution per edge, logits θ, sampled
  as softmax(θ / τ).
* **Update:** REINFORCE with a moving-average baseline:
  ``θ_i += lr · (r − b) · (onehot(a_i) − π_i) / τ`` and ``b ← β·b + (1 − β)·r``.
* **Temperature:** cosine decay with warm restarts (SGDR):
  ``τ_t = τ_min + ½ (τ_max − τ_min)(1 + cos(π · T_cur / T_i))``; at a restart
  ``T_cur ← 0`` and ``T_i ← T_mult · T_i``. With ``restart_on_move``, a restart also
  happens whenever the ADF targets move to their next stage.
* **Rewards:** ADF (annealed desirability, the default for several objectives),
  ADC (dominance against the archive) or a weighted sum, from
  :mod:`raynas.envs.mo_rewards`.
* **Result:** the Pareto archive of everything evaluated (:meth:`NPG.front`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.envs.mo_rewards import ADCReward, ADFReward, WeightedSumReward
from raynas.pareto import non_dominated
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
        reward: ``adf``, ``adc`` or ``weighted`` (default: ``adf`` for several
            objectives, ``weighted`` for one).
        ranges: ``{metric: (low, high)}`` for ADF / weighted normalisation; missing
            ones use the running range of what was seen.
        lr: Learning rate of the logits.
        baseline_decay: β of the moving-average baseline.
        tau_max, tau_min, period, t_mult: The temperature schedule.
        restart_on_move: Restart the temperature when the ADF targets move.
        anneal: Evaluations for ADF's targets to sweep their ranges.
        stages: ADF's target steps.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> policy = NPG(NB201Space(), objectives={"valid_acc": "max", "params": "min"})
        >>> arch = policy.ask(1)
        >>> policy.tell(arch, [Result({"valid_acc": 80.0, "params": 0.5})])
    """

    name = "npg"

    def __init__(self, space, *, seed: int = 0, objective: Objective | None = None,
                 objectives: Mapping[str, str] | None = None, reward: str | None = None,
                 ranges: Mapping[str, Sequence[float]] | None = None, lr: float = 0.5,
                 baseline_decay: float = 0.95, tau_max: float = 5.0, tau_min: float = 1.0,
                 period: int = 100, t_mult: float = 1.0, restart_on_move: bool = True,
                 anneal: int = 300, stages: int = 10) -> None:
        super().__init__(space, seed=seed, objective=objective)
        self.objectives = dict(objectives or {self.objective.metric: self.objective.mode})
        reward = reward or ("adf" if len(self.objectives) > 1 else "weighted")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if reward in ("adf", "adc") and len(self.objectives) < 2:
            raise ValueError(f"reward {reward!r} needs >= 2 objectives")
        if lr <= 0 or not 0 <= baseline_decay < 1 or not tau_max >= tau_min > 0 or period < 1:
            raise ValueError("need lr > 0, 0 <= baseline_decay < 1, tau_max >= tau_min > 0, "
                             "period >= 1")
        self.reward_name = reward
        self.ranges = {m: tuple(map(float, r)) for m, r in (ranges or {}).items()}
        self.lr, self.baseline_decay = lr, baseline_decay
        self.tau = dict(tau_max=tau_max, tau_min=tau_min, period=period, t_mult=t_mult)
        self.restart_on_move, self.anneal, self.stages = restart_on_move, anneal, stages
        self.logits = [np.zeros(k) for k in space.num_choices]
        self.baseline: float | None = None
        self.t = 0
        self.restarts: list[int] = []
        self.archive: list[tuple[Arch, dict[str, float]]] = []
        self.told: list[dict[str, float]] = []  # every scored result, to rebuild the reward
        self.reward_fn = self._new_reward()

    def _new_reward(self):
        if self.reward_name == "adf":
            return ADFReward(self.objectives, self.ranges, anneal_episodes=self.anneal,
                             stages=self.stages)
        if self.reward_name == "adc":
            return ADCReward(self.objectives)
        return WeightedSumReward(self.objectives, self.ranges)

    def temperature(self) -> float:
        return cosine_temperature(self.t, restarts=self.restarts, **self.tau)

    def probabilities(self) -> list[np.ndarray]:
        tau = self.temperature()
        out = []
        for theta in self.logits:
            z = theta / tau
            p = np.exp(z - z.max())
            out.append(p / p.sum())
        return out

    def ask(self, n: int = 1) -> list[Arch]:
        probs = self.probabilities()
        return [self.space.validate(tuple(int(self.rng.choice(len(p), p=p)) for p in probs))
                for _ in range(self._check_n(n))]

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        probs, tau = self.probabilities(), self.temperature()
        for arch, result in zip(archs, results):
            metrics = {m: result.metrics.get(m) for m in self.objectives}
            usable = result.ok and all(v is not None and math.isfinite(v) for v in metrics.values())
            reward = self._reward(metrics) if usable else 0.0
            if usable:
                self._archive(tuple(arch), metrics)
            self.baseline = reward if self.baseline is None else (
                self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward)
            advantage = reward - self.baseline
            for theta, p, a in zip(self.logits, probs, arch):
                grad = -p
                grad[a] += 1.0
                theta += self.lr * advantage * grad / tau
            self.t += 1

    def _reward(self, metrics: dict[str, float]) -> float:
        before = self.reward_fn.progress() if self.reward_name == "adf" else None
        reward, _ = self.reward_fn.reward(metrics)
        self.told.append(metrics)
        if before is not None and self.restart_on_move and self.reward_fn.progress() != before:
            self.restarts.append(self.t + 1)  # the targets moved: explore afresh
        return float(reward)

    def _archive(self, arch: Arch, metrics: dict[str, float]) -> None:
        self.archive.append((arch, metrics))
        points = np.array([[m[k] for k in self.objectives] for _, m in self.archive])
        keep = non_dominated(points, list(self.objectives.values()))
        self.archive = [entry for entry, k in zip(self.archive, keep) if k]

    def front(self) -> list[tuple[str, dict[str, float]]]:
        """The Pareto archive: every evaluated architecture no other one dominates."""
        return [(self.space.to_str(a), dict(m)) for a, m in self.archive]

    def hyperparameters(self) -> dict[str, Any]:
        return {"objectives": self.objectives, "reward": self.reward_name, "lr": self.lr,
                "baseline_decay": self.baseline_decay, **self.tau,
                "restart_on_move": self.restart_on_move, "anneal": self.anneal,
                "stages": self.stages}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "logits": [t.tolist() for t in self.logits],
                "baseline": self.baseline, "t": self.t, "restarts": self.restarts,
                "archive": [[list(a), m] for a, m in self.archive], "told": self.told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.logits = [np.asarray(t, dtype=float) for t in state["logits"]]
        self.baseline, self.t = state["baseline"], state["t"]
        self.restarts = list(state["restarts"])
        self.archive = [(tuple(a), dict(m)) for a, m in state["archive"]]
        self.reward_fn = self._new_reward()  # replay the rewards: the same non-stationary state
        for metrics in state["told"]:
            self.reward_fn.reward(metrics)
        self.told = list(state["told"])
