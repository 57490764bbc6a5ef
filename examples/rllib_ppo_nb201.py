"""Train RLlib's PPO on the NAS-Bench-201 environment and print the architecture it found.

The environment is ``raynas/NB201-v0``: an episode picks the 6 edges' ops one by one,
and the last step is rewarded with the architecture's validation accuracy (the
search metric), normalised by the table's range. After training, the policy is
decoded greedily (the most likely op at every step) and its architecture is
reported with its test accuracy (report on test), next to the table's best.

Usage:
    python examples/rllib_ppo_nb201.py --table ../shared/benchmarks/nb201_12epoch.parquet \
        [--dataset cifar10] [--iterations 20]
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np


def greedy_architecture(module, env) -> dict:
    """Run the trained policy greedily for one episode; return the last step's info."""
    import torch
    from ray.rllib.core.columns import Columns

    obs, info = env.reset(seed=0)
    done = False
    while not done:
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: torch.as_tensor(obs[None])})
        logits = out[Columns.ACTION_DIST_INPUTS][0].numpy()
        logits = np.where(info["action_mask"] == 1, logits, -np.inf)
        obs, _, done, _, info = env.step(int(np.argmax(logits)))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from raynas.tables import default_table
    parser.add_argument("--table", default=default_table())
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gymnasium as gym
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    import raynas.envs  # noqa: F401 - registers raynas/NB201-v0

    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    env_config = {"table": os.path.abspath(args.table), "dataset": args.dataset}
    config = (
        PPOConfig()
        .environment("raynas/NB201-v0", env_config=env_config)
        .env_runners(num_env_runners=0)  # 2-core friendly: sample in the driver
        .training(train_batch_size_per_learner=512, minibatch_size=128, num_epochs=4, lr=1e-3)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    for i in range(1, args.iterations + 1):
        result = algo.train()
        runners = result["env_runners"]
        print(f"iteration {i:3d}: mean episode reward {runners['episode_return_mean']:.3f} "
              f"({runners['num_episodes']} architectures)")
    env = gym.make("raynas/NB201-v0", **env_config)
    info = greedy_architecture(algo.get_module(), env)
    algo.stop()

    evaluator = env.unwrapped.evaluator
    best_valid = evaluator.values("valid_acc").max()
    print(f"\nbest architecture (greedy policy): {info['arch']}")
    print(f"  valid_acc {info['metrics']['valid_acc']:.2f} (table best {best_valid:.2f}), "
          f"test_acc {info['metrics']['test_acc']:.2f} (table best {evaluator.optimum():.2f}), "
          f"params {info['metrics']['params']:.3f} M")


if __name__ == "__main__":
    main()
