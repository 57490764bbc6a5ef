"""Multi-objective rewards as ``gymnasium.Wrapper`` s around :class:`~raynas.envs.NASEnv`.

Each wrapper replaces the reward of an episode's last step with a function of the
architecture's metrics (``info["metrics"]``) and puts its current state (weights,
targets, archive) in ``info``. All three are non-stationary: the weights, the
targets or the archive change as episodes go by, which is what NPG's policy tracks.

* :class:`WeightedSum` — Σ wᵢ · normᵢ(metricᵢ), the weights may change over time.
* :class:`ADF` — an annealed desirability function (Derringer–Suich): desirabilities
  with targets; the targets of all objectives but one sweep their range over the
  episodes, so the rewarded region traces the front (left to right for size).
* :class:`ADC` — Pareto dominance against the archive of what was evaluated:
  a reward for dominating archive points, a penalty for being dominated.

Objectives are ``{metric: "max" | "min"}``; ranges are ``{metric: (low, high)}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from raynas.errors import ArgumentError
from raynas.objectives.rewards import ADCReward, ADFReward, WeightedSumReward, check_objectives


def table_ranges(env: gym.Env, metrics) -> dict[str, tuple[float, float]]:
    """``{metric: (min, max)}`` over the whole table, if ``env``'s evaluator is a table
    (has ``values``); else ``{}``."""
    evaluator = getattr(env.unwrapped, "evaluator", None)
    if not hasattr(evaluator, "values"):
        return {}
    return {m: (float(np.nanmin(evaluator.values(m))), float(np.nanmax(evaluator.values(m))))
            for m in metrics}


class _EpisodeReward(gym.Wrapper):
    """Rewrites the reward of each episode's last step from its metrics, with the
    ``reward(metrics) -> (reward, info)`` and ``state()`` of a reward class mixed in."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated and info.get("status") == "ok":
            reward, extra = self.reward(info["metrics"])
            info = {**info, **extra}
        elif terminated:
            reward, info = 0.0, {**info, **self.state()}
        return obs, float(reward), terminated, truncated, info


class WeightedSum(_EpisodeReward, WeightedSumReward):
    """:class:`~raynas.objectives.rewards.WeightedSumReward` on an environment's episodes.

    Example:
        >>> env = WeightedSum(nas_env, {"valid_acc": "max", "params": "min"},   # doctest: +SKIP
        ...                   schedule=lambda e: (1 - e / 1000, e / 1000))
    """

    def __init__(self, env: gym.Env, objectives: Mapping[str, str],
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 weights: Sequence[float] | None = None,
                 schedule: Callable[[int], Sequence[float]] | None = None) -> None:
        _EpisodeReward.__init__(self, env)
        WeightedSumReward.__init__(self, check_objectives(objectives), ranges, weights, schedule)


class ADF(_EpisodeReward, ADFReward):
    """:class:`~raynas.objectives.rewards.ADFReward` on an environment's episodes; the
    ranges default to the table's when the environment's evaluator is a table."""

    def __init__(self, env: gym.Env, objectives: Mapping[str, str],
                 ranges: Mapping[str, tuple[float, float]] | None = None, **kwargs: Any) -> None:
        _EpisodeReward.__init__(self, env)
        ranges = dict(ranges or table_ranges(env, objectives))
        missing = set(objectives) - set(ranges)
        if missing:
            raise ArgumentError(f"ADF needs a (low, high) range for {sorted(missing)}")
        ADFReward.__init__(self, objectives, ranges, **kwargs)


class ADC(_EpisodeReward, ADCReward):
    """:class:`~raynas.objectives.rewards.ADCReward` on an environment's episodes."""

    def __init__(self, env: gym.Env, objectives: Mapping[str, str], bonus: float = 0.5) -> None:
        _EpisodeReward.__init__(self, env)
        ADCReward.__init__(self, objectives, bonus)
