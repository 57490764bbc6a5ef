"""CATCH meta-training: one CATCHer learns from several tasks (PEARL-style).

Each iteration, every task runs one rollout episode (``queries`` evaluations from an
empty context, the agent frozen; its z follows the growing context), in parallel as
Ray tasks when Ray is running (one rollout worker per task), else in process. The
learner then takes ``steps`` Adam steps per task on the joint loss: the context is
a random subset of the task's episode (PEARL samples contexts), the PPO batch the
whole episode with its rank-normalised rewards as advantages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from raynas.errors import ArgumentError
from raynas.policies.catch.policy import CATCH, normalize_rewards, save_checkpoint
from raynas.types import Objective

Rollout = list[tuple[list[int], float, float]]  # (arch, score, log-prob when sampled)


def rollout(space, make_evaluator: Callable[[], Any], weights: dict[str, Any], queries: int,
            seed: int, options: Mapping[str, Any]) -> Rollout:
    """One episode of a frozen CATCHer (``updates=0``) on a task from an empty context."""
    from raynas.policies.controllers import load_module_state
    from raynas.search import Budget, Search

    evaluator = make_evaluator()
    policy = CATCH(space, seed=seed, objective=Objective(evaluator.search_metric), updates=0,
                   **options)
    load_module_state(policy.agent, weights)
    Search(space, policy, evaluator, Budget(max_queries=queries)).run()
    return [(list(a), score, logp) for a, score, logp in policy.context]


def meta_train(space, tasks: Mapping[str, Callable[[], Any]], *, iterations: int = 30,
               queries: int = 30, steps: int = 20, seed: int = 0, out: str | Path | None = None,
               progress: bool = True, on_iteration: Callable[[int, dict[str, float]], None]
               | None = None, **options: Any) -> CATCH:
    """Meta-train a CATCHer on ``tasks`` (name -> evaluator factory, picklable for Ray).

    Args:
        space: The search space every task shares.
        tasks: Meta-training tasks.
        iterations: Rollout + update rounds.
        queries: Evaluations per rollout episode.
        steps: Learner steps per task per iteration.
        seed: Seeds the agent, the rollouts and the context subsets.
        out: Write the checkpoint there (JSON) when done.
        progress: Show a progress bar.
        on_iteration: Called with ``(iteration, metrics)`` after each round (e.g. to
            log to MLflow): the mean best score per task and the loss terms.
        **options: :class:`CATCH` options (``latent``, ``hidden``, ``use_z``, ``lr``, ...).

    Returns:
        A :class:`CATCH` policy holding the meta-trained agent.
    """
    from raynas.policies.controllers import module_state

    if not tasks:
        raise ArgumentError("meta_train needs at least one task")
    learner = CATCH(space, seed=seed, **options)
    rollout_options = {k: v for k, v in options.items() if k != "updates"}
    rng = np.random.default_rng(seed)
    remote = _remote_rollout()
    names = list(tasks)
    bar = _bar(iterations, progress)
    start = time.perf_counter()
    for it in range(iterations):
        weights = module_state(learner.agent)
        seeds = [int(rng.integers(2**31)) for _ in names]
        if remote is not None:
            import ray

            episodes = ray.get([remote.remote(space, tasks[n], weights, queries, s, rollout_options)
                                for n, s in zip(names, seeds)])
        else:
            episodes = [rollout(space, tasks[n], weights, queries, s, rollout_options)
                        for n, s in zip(names, seeds)]
        terms = _learn(learner, episodes, steps, rng)
        metrics = {f"best/{n}": max(score for _, score, _ in ep) for n, ep in zip(names, episodes)}
        metrics.update(terms)
        if on_iteration is not None:
            on_iteration(it, metrics)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(mse=f"{terms['mse']:.3f}", kl=f"{terms['kl']:.2f}")
    if bar is not None:
        bar.close()
    if out is not None:
        save_checkpoint(learner.agent, out, tasks=names, iterations=iterations, queries=queries,
                        seconds=round(time.perf_counter() - start, 1))
    return learner


def _learn(learner: CATCH, episodes: list[Rollout], steps: int, rng) -> dict[str, float]:
    import torch

    agent, o = learner.agent, learner.options
    totals: dict[str, list[float]] = {}
    for _ in range(steps):
        for episode in episodes:
            if len(episode) < 2:
                continue
            archs = torch.as_tensor([a for a, _, _ in episode], dtype=torch.long)
            rewards = torch.as_tensor(normalize_rewards([s for _, s, _ in episode],
                                                        o["normalize"]), dtype=torch.float32)
            old = torch.as_tensor([lp for _, _, lp in episode], dtype=torch.float32)
            size = int(rng.integers(1, len(episode) + 1))
            subset = torch.as_tensor(np.sort(rng.choice(len(episode), size, replace=False)))
            noise = torch.as_tensor(rng.standard_normal(agent.latent), dtype=torch.float32)
            loss, parts = agent.loss((archs[subset], rewards[subset]), archs, rewards, old, noise,
                                     o["clip"], o["entropy"], o["kl_weight"])
            learner.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            learner.optimizer.step()
            for k, v in parts.items():
                totals.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in totals.items()}


def _remote_rollout():
    """``rollout`` as a Ray task when Ray is running, else ``None`` (in process)."""
    import ray

    return ray.remote(num_cpus=1)(rollout) if ray.is_initialized() else None


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="meta-train", unit="it")
