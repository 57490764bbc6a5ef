"""``NASEnv``: one episode builds one architecture, one decision per step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from raynas.errors import ArgumentError
from raynas.objectives.rewards import NormalizedObjective, RewardFn
from raynas.types import Result


def default_reward(evaluator, mode: str = "max") -> NormalizedObjective:
    """The search metric in [0, 1]: by the table's range for a table evaluator (it has
    ``values``), else by the running range of what the env has seen."""
    metric = evaluator.search_metric
    if hasattr(evaluator, "values"):
        values = evaluator.values(metric)
        return NormalizedObjective(metric, mode, float(np.nanmin(values)), float(np.nanmax(values)))
    return NormalizedObjective(metric, mode)


class NASEnv(gym.Env):
    """Neural architecture search as a gymnasium environment.

    An episode makes the space's decisions (edges) in order, one per step. The
    reward is 0 until the last step; there the evaluator scores the architecture
    and ``reward_fn`` maps its metrics to a scalar. Evaluations are cached, so an
    architecture seen before costs nothing (and a training evaluator is not rerun).

    Observation (``float32``, flat): the partial architecture as one one-hot row of
    ``max_choices`` per decision (zeros while undecided), a mask with 1 for each
    undecided decision, the step as a one-hot over decisions, then the task
    ``context`` (if any). Action: ``Discrete(max_choices)``; on a decision with fewer
    choices, ``info["action_mask"]`` marks the valid ones, and an invalid action is
    taken modulo the number of choices (and flagged in ``info["invalid_action"]``).

    ``info`` at the last step: ``arch`` (canonical string), ``metrics`` (all of them),
    ``status`` and ``reward_fn``'s own view, if it has one.

    Args:
        space: Any raynas search space.
        evaluator: Any raynas evaluator (table, training, ...).
        reward_fn: ``metrics -> float``; default :func:`default_reward`.
        mode: ``max`` or ``min`` for the default reward's metric.
        context: An optional fixed task-context vector appended to every observation.

    Example:
        >>> env = NASEnv(space, TabularEvaluator(table, "cifar10"))  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                              # doctest: +SKIP
    """

    metadata = {"render_modes": []}

    def __init__(self, space, evaluator, reward_fn: RewardFn | None = None, mode: str = "max",
                 context=None) -> None:
        super().__init__()
        self.space, self.evaluator = space, evaluator
        self.reward_fn = reward_fn or default_reward(evaluator, mode)
        self.num_decisions = len(space.num_choices)
        self.max_choices = max(space.num_choices)
        self.context = np.zeros(0, np.float32) if context is None else np.asarray(context, np.float32)
        size = self.num_decisions * (self.max_choices + 2) + len(self.context)
        low = np.zeros(size, np.float32)
        if len(self.context):
            low[-len(self.context):] = -np.inf
        high = np.ones(size, np.float32)
        if len(self.context):
            high[-len(self.context):] = np.inf
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.max_choices)
        self._masks = np.zeros((self.num_decisions, self.max_choices), np.int8)
        for i, k in enumerate(space.num_choices):
            self._masks[i, :k] = 1
        self.cache: dict[tuple[int, ...], Result] = {}
        self.episodes = 0
        self._choices: list[int] = []

    # ------------------------------------------------------------- gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._choices = []
        return self._observation(), self._info()

    def step(self, action):
        if len(self._choices) >= self.num_decisions:
            raise RuntimeError("the episode is over: call reset()")
        action = int(action)
        k = self.space.num_choices[len(self._choices)]
        invalid = not 0 <= action < k
        self._choices.append(action % k)
        if len(self._choices) < self.num_decisions:
            return self._observation(), 0.0, False, False, {**self._info(), "invalid_action": invalid}
        arch = self.space.validate(tuple(self._choices))
        result = self.evaluate(arch)
        reward = float(self.reward_fn(dict(result.metrics)) if result.ok else self._failure())
        self.episodes += 1
        info = {"arch": self.space.to_str(arch), "metrics": dict(result.metrics),
                "status": result.status.value, "invalid_action": invalid,
                "action_mask": np.ones(self.max_choices, np.int8), "step": self.num_decisions}
        return self._observation(), reward, True, False, info

    # ---------------------------------------------------------------- helpers
    def evaluate(self, arch: tuple[int, ...]) -> Result:
        """The evaluator's result for ``arch``, cached."""
        if arch not in self.cache:
            self.cache[arch] = self.evaluator.evaluate([arch])[0]
        return self.cache[arch]

    def _failure(self) -> float:
        return float(getattr(self.reward_fn, "failure", 0.0))

    def set_context(self, context) -> None:
        """Replace the task-context vector (same length)."""
        context = np.asarray(context, np.float32)
        if context.shape != self.context.shape:
            raise ArgumentError(f"context must have shape {self.context.shape}, got {context.shape}")
        self.context = context

    def _observation(self) -> np.ndarray:
        n, k = self.num_decisions, self.max_choices
        decided = np.zeros((n, k), np.float32)
        for i, choice in enumerate(self._choices):
            decided[i, choice] = 1.0
        undecided = np.ones(n, np.float32)
        undecided[: len(self._choices)] = 0.0
        step = np.zeros(n, np.float32)
        if len(self._choices) < n:
            step[len(self._choices)] = 1.0
        return np.concatenate([decided.ravel(), undecided, step, self.context])

    def _info(self) -> dict[str, Any]:
        t = len(self._choices)
        mask = self._masks[t] if t < self.num_decisions else np.ones(self.max_choices, np.int8)
        return {"action_mask": mask.copy(), "step": t}

