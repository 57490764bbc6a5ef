"""Gymnasium and RLlib environments that frame a search as reinforcement learning.

Imported as ``raynas.envs`` (never as a bare ``envs``).

* :class:`NASEnv` — one episode builds one architecture, a decision per step;
  registered as ``raynas/NB201-v0`` (table), ``raynas/NB201-Train-v0`` (real
  training) and ``raynas/NAS-v0`` (any space and evaluator).
* :class:`MultiAgentNASEnv` — one agent per edge, acting at once, with a shared
  reward (MANAS); an RLlib ``MultiAgentEnv``.
* :class:`WeightedSum`, :class:`ADF`, :class:`ADC` — non-stationary multi-objective
  reward wrappers (NPG).
* :func:`make_task_envs` — tasks that share the action space and differ in reward
  (CATCH).

Example:
    >>> import gymnasium as gym
    >>> import raynas.envs  # registers the ids
    >>> env = gym.make("raynas/NB201-v0", table=table_path)  # doctest: +SKIP
"""

import gymnasium as gym

from raynas.envs.nas_env import NASEnv, default_reward
from raynas.envs.registration import make_nas, make_nb201, make_nb201_train
from raynas.envs.tasks import TaskNASEnv, make_task_envs
from raynas.envs.wrappers import ADC, ADF, WeightedSum
from raynas.objectives.rewards import ADCReward, ADFReward, NormalizedObjective, Range, WeightedSumReward

IDS = ("raynas/NB201-v0", "raynas/NB201-Train-v0", "raynas/NAS-v0")
_ENTRY_POINTS = dict(zip(IDS, ("make_nb201", "make_nb201_train", "make_nas")))

for _id, _factory in _ENTRY_POINTS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=f"raynas.envs.registration:{_factory}")


def __getattr__(name: str):
    # MultiAgentNASEnv imports RLlib: only when asked for.
    if name == "MultiAgentNASEnv":
        from raynas.envs.multi_agent import MultiAgentNASEnv

        return MultiAgentNASEnv
    raise AttributeError(name)


__all__ = [
    "ADC", "ADCReward", "ADF", "ADFReward", "IDS", "MultiAgentNASEnv", "NASEnv",
    "NormalizedObjective", "Range", "WeightedSumReward",
    "TaskNASEnv", "WeightedSum", "default_reward", "make_nas", "make_nb201", "make_nb201_train",
    "make_task_envs",
]
