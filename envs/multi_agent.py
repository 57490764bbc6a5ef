"""``MultiAgentNASEnv``: MANAS's formulation, one agent per edge, as an RLlib ``MultiAgentEnv``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from raynas.envs.nas_env import default_reward
from raynas.errors import ArgumentError
from raynas.objectives.rewards import RewardFn
from raynas.types import Result


class MultiAgentNASEnv(MultiAgentEnv):
    """One agent per decision (``edge_0``, ``edge_1``, ...), all acting at once.

    An episode is one round: ``reset`` gives every agent its observation (its edge
    id, one-hot, then the round's context vector), every agent picks its edge's op
    (``Discrete`` of that edge's number of choices), and ``step`` evaluates the
    resulting architecture. Every agent gets the same global reward (MANAS's
    shared reward), and the round ends (``"__all__"``). Each agent's info holds the
    architecture string and its metrics.

    ``config`` (RLlib's ``env_config``) takes either ``space`` and ``evaluator``
    objects, or ``table`` (a path or a :class:`~raynas.tables.BenchmarkTable`; default:
    the NB201 table shipped with raynas) and ``dataset`` for an NB201 table; plus
    optional ``reward_fn``, ``mode`` and ``context`` (a vector).
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        if "space" not in config:  # an NB201 table (default: the one shipped with raynas)
            from raynas.envs.registration import nb201_table_evaluator

            space, evaluator = nb201_table_evaluator(config.get("table"),
                                                     config.get("dataset", "cifar10"))
        else:
            space, evaluator = config["space"], config["evaluator"]
        self.space, self.evaluator = space, evaluator
        self.reward_fn: RewardFn = config.get("reward_fn") or default_reward(
            evaluator, config.get("mode", "max"))
        context = config.get("context")
        self.context = np.zeros(0, np.float32) if context is None else np.asarray(context, np.float32)
        n = len(space.num_choices)
        self.possible_agents = [f"edge_{i}" for i in range(n)]
        self.agents = list(self.possible_agents)
        low = np.concatenate([np.zeros(n, np.float32), np.full(len(self.context), -np.inf, np.float32)])
        high = np.concatenate([np.ones(n, np.float32), np.full(len(self.context), np.inf, np.float32)])
        observation = gym.spaces.Box(low, high, dtype=np.float32)
        self.observation_spaces = {a: observation for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(k) for a, k in zip(self.possible_agents,
                                                                          space.num_choices)}
        self.cache: dict[tuple[int, ...], Result] = {}
        super().__init__()

    def _observations(self) -> dict[str, np.ndarray]:
        n = len(self.possible_agents)
        return {agent: np.concatenate([np.eye(n, dtype=np.float32)[i], self.context])
                for i, agent in enumerate(self.possible_agents)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, action_dict: dict[str, int]):
        missing = set(self.possible_agents) - set(action_dict)
        if missing:
            raise ArgumentError(f"every edge agent acts each round; missing {sorted(missing)}")
        arch = self.space.validate(tuple(int(action_dict[a]) for a in self.possible_agents))
        if arch not in self.cache:
            self.cache[arch] = self.evaluator.evaluate([arch])[0]
        result = self.cache[arch]
        reward = float(self.reward_fn(dict(result.metrics))) if result.ok else 0.0
        info = {"arch": self.space.to_str(arch), "metrics": dict(result.metrics),
                "status": result.status.value}
        agents = self.possible_agents
        return (self._observations(), dict.fromkeys(agents, reward),
                {"__all__": True, **dict.fromkeys(agents, True)},
                {"__all__": False, **dict.fromkeys(agents, False)},
                {agent: dict(info) for agent in agents})
