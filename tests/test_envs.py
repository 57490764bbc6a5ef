"""The RL framing: gymnasium and RLlib environments, reward wrappers, task families."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from raynas.envs import ADC, ADF, IDS, NASEnv, WeightedSum, make_nb201, make_task_envs
from raynas.evaluators import FunctionEvaluator
from raynas.spaces import NB201Space
from raynas.spaces.custom import CustomSpace

TOY = CustomSpace("toy", {"a": [0, 1], "b": [0, 1, 2, 3], "c": [0, 1, 2]})


def toy_env(fn=None, **kwargs) -> NASEnv:
    """Metrics straight from the choices: score = a + b + c, size = b."""
    fn = fn or (lambda arch: {"score": float(sum(arch)), "size": float(arch[1])})
    return NASEnv(TOY, FunctionEvaluator(fn, "score"), **kwargs)


def run_episode(env, actions, seed=0):
    obs, info = env.reset(seed=seed)
    trajectory = [(obs, info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trajectory.append((obs, reward, terminated, truncated, info))
    return trajectory


def registered(env_id: str, table_path) -> gym.Env:
    kwargs = {
        "raynas/NB201-v0": {"table": table_path},
        "raynas/NB201-Train-v0": {"channels": 4, "epochs": 1, "input_size": 8, "batch_size": 256},
        "raynas/NAS-v0": {"space": TOY, "evaluator": FunctionEvaluator(
            lambda arch: {"score": float(sum(arch))}, "score")},
    }[env_id]
    return gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", IDS)
def test_every_registered_id_passes_gymnasiums_checker(env_id, table_path):
    env = registered(env_id, table_path)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(len(env.unwrapped.space.num_choices)):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert terminated and not truncated and "|" in info["arch"] and info["metrics"]
    assert 0.0 <= reward <= 1.0


def test_nb201_episode_observations_and_table_normalised_reward(nb201_table):
    env = make_nb201(nb201_table)
    trajectory = run_episode(env, [3, 2, 1, 4, 0, 3])
    obs0 = trajectory[0][0]
    n, k = 6, 5
    assert obs0.shape == (n * k + 2 * n,) and obs0[: n * k].sum() == 0
    assert np.all(obs0[n * k : n * k + n] == 1) and obs0[n * k + n] == 1  # all undecided, step 0
    obs2 = trajectory[2][0]
    decided = obs2[: n * k].reshape(n, k)
    assert decided[0, 3] == 1 and decided[1, 2] == 1 and decided[2:].sum() == 0
    assert list(obs2[n * k : n * k + n]) == [0, 0, 1, 1, 1, 1] and obs2[n * k + n + 2] == 1
    assert all(step[1] == 0.0 and not step[2] for step in trajectory[1:-1])  # 0 until the end
    _, reward, terminated, _, info = trajectory[-1]
    arch = nb201_table.space.from_str(info["arch"])
    assert arch == (3, 2, 1, 4, 0, 3) and terminated
    valid = nb201_table.column("cifar10", "valid_acc")
    expected = (info["metrics"]["valid_acc"] - valid.min()) / (valid.max() - valid.min())
    assert reward == pytest.approx(expected)
    assert {"valid_acc", "test_acc", "params", "flops"} <= set(info["metrics"])
    best = nb201_table.archs[int(np.argmax(valid))]
    assert run_episode(env, best)[-1][1] == pytest.approx(1.0)  # the table's best scores 1


def test_same_seed_same_episode(table_path):
    def episode(seed):
        env = gym.make("raynas/NB201-v0", table=table_path)
        env.action_space.seed(seed)
        out = run_episode(env, [env.action_space.sample() for _ in range(6)], seed=seed)
        return [(o.tolist(), *rest[:-1], rest[-1].get("arch")) for o, *rest in out[1:]]

    assert episode(7) == episode(7)
    assert episode(7) != episode(8)


def test_action_masks_for_decisions_with_fewer_choices():
    env = toy_env()
    obs, info = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(4)
    assert list(info["action_mask"]) == [1, 1, 0, 0]  # decision a has 2 choices
    obs, _, _, _, info = env.step(3)  # invalid on a: taken modulo 2 and flagged
    assert info["invalid_action"] and obs[1] == 1  # choice 1 of a
    assert list(info["action_mask"]) == [1, 1, 1, 1]  # b has 4
    _, _, _, _, info = env.step(2)
    assert list(info["action_mask"]) == [1, 1, 1, 0] and not info["invalid_action"]
    _, reward, terminated, _, info = env.step(2)
    assert terminated and info["arch"] == "|a=1|b=2|c=2|" and info["metrics"]["score"] == 5.0


def test_vectorises_with_sync_vector_env(table_path):
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("raynas/NB201-v0", table=table_path)] * 3)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 42)
    for _ in range(6):
        obs, rewards, terminated, _, _ = envs.step(np.array([3, 2, 1]))
    assert terminated.all() and len(set(np.round(rewards, 6))) == 3


def test_failed_evaluations_get_the_failure_reward_and_running_range():
    env = toy_env(fn=lambda arch: {"score": 1 / arch[1]})  # b = 0 raises
    assert run_episode(env, [0, 0, 0])[-1][4]["status"] == "failed"
    assert run_episode(env, [0, 0, 0])[-1][1] == 0.0
    assert run_episode(env, [0, 1, 0])[-1][1] == 0.5  # a single point: mid-range
    assert run_episode(env, [0, 2, 0])[-1][1] == 0.0  # the running range is [0.5, 1]
    assert run_episode(env, [0, 1, 0])[-1][1] == 1.0


# ------------------------------------------------------------ reward wrappers
def finish(env, arch):
    return run_episode(env, arch)[-1]


def test_weighted_sum_changes_weights_on_schedule():
    schedule = lambda episode: (1.0, 0.0) if episode < 2 else (0.0, 1.0)  # noqa: E731
    env = WeightedSum(toy_env(), {"score": "max", "size": "min"},
                      ranges={"score": (0, 6), "size": (0, 3)}, schedule=schedule)
    _, reward, _, _, info = finish(env, (1, 3, 2))  # score 6, size 3
    assert reward == pytest.approx(1.0) and info["weights"] == {"score": 1.0, "size": 0.0}
    assert finish(env, (0, 0, 0))[1] == pytest.approx(0.0)
    _, reward, _, _, info = finish(env, (1, 3, 2))  # now only the size counts: the worst
    assert reward == pytest.approx(0.0) and info["weights"] == {"score": 0.0, "size": 1.0}
    env.unwrapped.reset()
    env.set_weights([1, 1])
    assert env.weights.tolist() == [0.5, 0.5]


def test_adf_target_moves_monotonically_and_sweeps_the_front():
    env = ADF(toy_env(), {"score": "max", "size": "min"}, ranges={"score": (0, 6), "size": (0, 3)},
              anneal_episodes=6, band=1 / 3)
    targets, small, large = [], [], []
    for _ in range(8):
        _, r_small, _, _, info = finish(env, (1, 0, 2))  # score 3, size 0
        targets.append(info["targets"]["size"])
        assert info["targets"]["score"] == 6  # the fixed objective keeps its target
        small.append(r_small)
        large.append(finish(env, (1, 3, 2))[1])  # score 6, size 3
    assert targets == sorted(targets) and targets[0] == 0 and targets[-1] == 3
    # hand-computed: geometric mean of d_score = 3/6 and d_size = 1 for the small one
    assert small[0] == pytest.approx(np.sqrt(0.5))
    assert large[0] == 0.0 and large[-1] == pytest.approx(1.0)  # large nets pay off late
    assert np.all(np.diff(large) >= 0)


def test_adc_rewards_dominating_and_penalises_dominated_points():
    env = ADC(toy_env(), {"score": "max", "size": "min"}, bonus=0.5)
    _, first, _, _, info = finish(env, (0, 1, 1))  # score 2, size 1: the first point
    assert first == 0.5 and info["joined_front"] and info["archive_size"] == 1
    _, reward, _, _, info = finish(env, (1, 1, 1))  # score 3, size 1: dominates it
    assert reward == pytest.approx(1.0 + 0.5) and info["archive_size"] == 1
    _, reward, _, _, info = finish(env, (0, 1, 0))  # score 1, size 1: dominated
    assert reward == pytest.approx(-1.0) and not info["joined_front"]
    _, reward, _, _, info = finish(env, (0, 0, 0))  # score 0, size 0: a new trade-off
    assert reward == pytest.approx(0.5) and info["archive_size"] == 2
    assert sorted(map(tuple, env.front())) == [(0.0, 0.0), (3.0, 1.0)]


# ------------------------------------------------------------------- tasks
def test_task_envs_share_actions_and_differ_in_reward(nb201_table):
    envs = make_task_envs(nb201_table, ["cifar10", "cifar100"])
    c10, c100 = envs["cifar10"], envs["cifar100"]
    assert c10.action_space == c100.action_space
    assert c10.observation_space == c100.observation_space
    arch = (3, 3, 3, 3, 3, 3)
    r10, r100 = finish(c10, arch), finish(c100, arch)
    assert r10[4]["task"] == "cifar10" and r100[4]["task"] == "cifar100"
    assert r10[4]["metrics"]["valid_acc"] != r100[4]["metrics"]["valid_acc"]
    assert list(r10[0][-2:]) == [1, 0] and list(r100[0][-2:]) == [0, 1]  # task one-hot
    obs, info = c10.reset(options={"task": "cifar100"})  # switching
    assert info["task"] == "cifar100" and list(obs[-2:]) == [0, 1]
    for action in arch:
        *_, reward_switched, _, _, _ = c10.step(action)
    assert reward_switched == pytest.approx(r100[1])
    with pytest.raises(ValueError, match="unknown task"):
        c10.reset(options={"task": "svhn"})
    hidden = make_task_envs(nb201_table, ["cifar10", "cifar100"], task_in_obs=False)
    assert hidden["cifar10"].observation_space.shape == (42,)


# -------------------------------------------------------------- multi-agent
def test_multi_agent_env_passes_rllibs_checks(table_path):
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    from raynas.envs import MultiAgentNASEnv

    env = MultiAgentNASEnv({"table": str(table_path), "dataset": "cifar10", "context": [0.5, 2]})
    check_multiagent_environments(env)
    assert env.possible_agents == [f"edge_{i}" for i in range(6)]
    assert all(space == gym.spaces.Discrete(5) for space in env.action_spaces.values())
    obs, _ = env.reset(seed=0)
    assert list(obs["edge_2"]) == [0, 0, 1, 0, 0, 0, 0.5, 2]  # edge id + round context
    actions = {agent: 3 for agent in env.agents}
    _, rewards, terminated, truncated, infos = env.step(actions)
    assert len(set(rewards.values())) == 1  # one shared reward
    assert terminated["__all__"] and not truncated["__all__"]
    assert infos["edge_0"]["arch"] == NB201Space().to_str((3,) * 6)
    with pytest.raises(ValueError, match="missing"):
        env.step({"edge_0": 1})


def test_multi_agent_heterogeneous_spaces():
    from raynas.envs import MultiAgentNASEnv

    env = MultiAgentNASEnv({"space": TOY, "evaluator": FunctionEvaluator(
        lambda arch: {"score": float(sum(arch))}, "score")})
    assert [env.action_spaces[a].n for a in env.possible_agents] == [2, 4, 3]
    env.reset()
    _, rewards, *_ = env.step({"edge_0": 1, "edge_1": 3, "edge_2": 2})
    assert rewards["edge_1"] == 0.5  # the running range's first point


@pytest.fixture(scope="module")
def ray_2cpus():
    import ray
    from ray.tune.registry import register_env

    from raynas.envs import MultiAgentNASEnv

    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    register_env("raynas_manas", lambda cfg: MultiAgentNASEnv(cfg))
    yield
    ray.shutdown()


def ppo_config(table_path, per_agent: bool):
    from ray.rllib.algorithms.ppo import PPOConfig

    agents = [f"edge_{i}" for i in range(6)]
    config = (
        PPOConfig()
        .environment("raynas_manas", env_config={"table": str(table_path), "dataset": "cifar10"})
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=256, minibatch_size=64, num_epochs=4, lr=3e-3)
        .rl_module(model_config={"fcnet_hiddens": [32]})
        .debugging(seed=0)
    )
    if per_agent:
        return config.multi_agent(policies=set(agents), policy_mapping_fn=lambda aid, ep, **kw: aid)
    return config.multi_agent(policies={"shared"}, policy_mapping_fn=lambda aid, ep, **kw: "shared")


def test_rllib_ppo_on_the_multi_agent_env_beats_random(ray_2cpus, table_path):
    from raynas.envs import MultiAgentNASEnv

    env = MultiAgentNASEnv({"table": str(table_path), "dataset": "cifar10"})
    random_reward = np.mean([env.reward_fn({"valid_acc": v})
                             for v in env.evaluator.values("valid_acc")])  # exact
    algo = ppo_config(table_path, per_agent=False).build_algo()
    try:
        for _ in range(5):
            result = algo.train()
    finally:
        algo.stop()
    per_agent = result["env_runners"]["episode_return_mean"] / 6  # every agent gets it
    assert per_agent > random_reward + 0.07, (per_agent, random_reward)


def test_rllib_ppo_with_one_policy_per_agent(ray_2cpus, table_path):
    algo = ppo_config(table_path, per_agent=True).build_algo()
    try:
        result = algo.train()
        assert set(result["learners"]) >= {f"edge_{i}" for i in range(6)}
        assert result["env_runners"]["num_episodes"] > 0
    finally:
        algo.stop()


def test_the_rllib_ppo_example_prints_the_architecture_it_found(table_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "rllib_ppo_nb201.py"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, str(script), "--table", str(table_path),
                           "--iterations", "2"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "iteration   2: mean episode reward" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("best architecture"))
    NB201Space().from_str(line.split(": ", 1)[1])  # a valid NB201 string
    assert "test_acc" in proc.stdout and "table best 89.16" in proc.stdout


def test_adf_takes_its_ranges_from_the_table(nb201_table):
    env = ADF(make_nb201(nb201_table), {"valid_acc": "max", "params": "min"})
    assert env.ranges["params"].low == pytest.approx(0.0733, abs=1e-4)
    assert env.ranges["params"].high == pytest.approx(1.5315, abs=1e-4)
    assert env.targets()["params"] == env.ranges["params"].low  # starts at the smallest nets
    with pytest.raises(ValueError, match="needs a .low, high. range"):
        ADF(toy_env(), {"score": "max", "size": "min"})
