"""A task-conditioned family of NAS environments, for meta-RL (CATCH).

Tasks share the space and therefore the action space; they differ only in reward
(each dataset's accuracy, normalised by that dataset's range).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.envs.nas_env import NASEnv, default_reward
from raynas.errors import ArgumentError


class TaskNASEnv(NASEnv):
    """A :class:`NASEnv` over several tasks: ``reset(options={"task": name})`` switches.

    Args:
        space: The shared search space.
        evaluators: ``{task name: evaluator}``; one reward per task.
        task: The task to start with (default: the first).
        task_in_obs: Append a one-hot task id to the observation as its context;
            ``False`` hides the task, which the agent must then infer from rewards
            (the meta-RL setting).
        mode: ``max`` or ``min`` for every task's default reward.
    """

    def __init__(self, space, evaluators: Mapping[str, Any], task: str | None = None,
                 task_in_obs: bool = True, mode: str = "max") -> None:
        if not evaluators:
            raise ArgumentError("need at least one task")
        self.tasks = list(evaluators)
        self.evaluators = dict(evaluators)
        self.rewards = {name: default_reward(ev, mode) for name, ev in self.evaluators.items()}
        self.task_in_obs = task_in_obs
        task = task or self.tasks[0]
        self._check(task)
        context = self._one_hot(task) if task_in_obs else None
        super().__init__(space, self.evaluators[task], self.rewards[task], context=context)
        self.task = task
        self.caches = {name: {} for name in self.tasks}
        self.cache = self.caches[task]

    def _check(self, task: str) -> None:
        if task not in self.evaluators:
            raise ArgumentError(f"unknown task {task!r}; tasks: {self.tasks}")

    def _one_hot(self, task: str) -> np.ndarray:
        return np.eye(len(self.tasks), dtype=np.float32)[self.tasks.index(task)]

    def switch(self, task: str) -> None:
        """Make ``task`` the current one (its evaluator, reward and context)."""
        self._check(task)
        self.task = task
        self.evaluator, self.reward_fn = self.evaluators[task], self.rewards[task]
        self.cache = self.caches[task]
        if self.task_in_obs:
            self.context = self._one_hot(task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options and "task" in options:
            self.switch(options["task"])
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self.task}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "task": self.task}


def make_task_envs(table=None, datasets: Sequence[str] = ("cifar10", "cifar100", "imagenet16_120"),
                   task_in_obs: bool = True) -> dict[str, TaskNASEnv]:
    """One :class:`TaskNASEnv` per dataset of an NB201 ``table`` (path or loaded; ``None``:
    the one shipped with raynas), each
    starting on its own task; all share the observation and action spaces."""
    from raynas.envs.registration import nb201_table_evaluator

    evaluators = {}
    space = None
    for dataset in datasets:
        space, evaluators[dataset] = nb201_table_evaluator(table, dataset)
    return {d: TaskNASEnv(space, evaluators, task=d, task_in_obs=task_in_obs) for d in datasets}
