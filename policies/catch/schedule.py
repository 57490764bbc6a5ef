"""Schedule CATCH's model-based hyperparameters with a hyper-controller (AutoMBPO's use).

MBPO's real-data ratio has a direct analogue in a search whose policy has a learned
evaluator (:class:`~raynas.policies.catch.policy.CATCH`): the share β of controller
updates made from real evaluations rather than evaluator-predicted rewards
(``real_ratio``), how often the evaluator is refitted (``evaluator_every``) and the
policy updates per real query (``updates``). Every ``interval`` queries a
:class:`~raynas.policies.hyper_controller.HyperController` adjusts them (AutoMBPO's
actions: β ← β · 1.2^(a−1), the others ± 1).

**State** (besides progress and the values): ``evaluator_rank``, the Spearman
correlation between the evaluator's scores of the last ``interval`` picks, made when
they were asked, and their real scores (how far the model can be trusted), and
``improved``, the share of those queries that raised the incumbent. Neither needs
the table's optimum. **Reward:** the incumbent's validation accuracy against CATCH
with the initial values fixed (the reference schedule) on the same task and seed, in
percentage points (``target_range``), the final gap telescoped over the decisions.

**Training** (:func:`catch_stage`, a ``run_stage`` for
:func:`~raynas.policies.hyper_controller.train_controller`): each stage's searches run
as parallel Ray tasks when Ray is running; :func:`catch_validation` judges the best
stages again on held-out tasks, as one stage's mean gap is mostly noise.

Example:
    >>> controller = make_catch_controller()
    >>> [p.name for p in controller.params]
    ['real_ratio', 'evaluator_every', 'updates']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.policies.hyper_controller import Episode, HyperController, HyperParam
from raynas.types import Objective

#: AutoMBPO's scheduled quantities, mapped onto CATCH (initial β as MBPO's 0.05 would
#: starve a 100-query search; 0.5 starts in the middle).
CATCH_PARAMS = (
    HyperParam("real_ratio", initial=0.5, low=0.05, high=1.0, step=1.2),
    HyperParam("evaluator_every", initial=1, low=1, high=8, step=1, mode="add", integer=True),
    HyperParam("updates", initial=5, low=1, high=20, step=1, mode="add", integer=True),
)
CATCH_METRICS = {"evaluator_rank": (-1.0, 1.0), "improved": (0.0, 1.0)}
TARGET = "incumbent_valid"


def make_catch_controller(params: Sequence[HyperParam] = CATCH_PARAMS, *,
                          target_range: float = 2.0, **kwargs: Any) -> HyperController:
    """A hyper-controller over CATCH's ``params``, rewarded on the incumbent's
    validation accuracy in units of ``target_range`` percentage points."""
    return HyperController(list(params), CATCH_METRICS, TARGET, "max",
                           target_range=(0.0, target_range), **kwargs)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation; 0 for fewer than 3 points or a constant side."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def catch_search(evaluator, queries: int, seed: int, values: Mapping[str, float],
                 decide=None, interval: int = 10, catch_options: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Run CATCH for ``queries`` real evaluations on ``evaluator`` (a table task),
    starting from ``values``; every ``interval`` queries ``decide(progress, history,
    values)`` may return new values. Returns the incumbent's validation accuracy
    after every query (``incumbent``), the decision history (``decisions``: the
    observed metrics and values in force), the incumbent's metrics (``best_metrics``;
    after every query: ``best_curve``), and the real/imagined update counts."""
    from raynas.policies.catch.policy import CATCH

    metric = evaluator.search_metric
    policy = CATCH(evaluator.space, seed=seed, objective=Objective(metric),
                   **dict(catch_options or {}), **dict(values))
    incumbent, curve, history, best, best_curve = -np.inf, [], [], {}, []
    window: list[tuple[float | None, float, bool]] = []  # predicted, real, improved
    values = dict(values)
    for query in range(1, queries + 1):
        (arch,) = policy.ask(1)
        (result,) = evaluator.evaluate([arch])
        predicted = policy.predicted.get(arch)
        policy.tell([arch], [result])
        score = float(result.metrics.get(metric, -np.inf)) if result.ok else -np.inf
        window.append((predicted, score, score > incumbent))
        if score > incumbent:
            incumbent, best = score, dict(result.metrics)
        curve.append(incumbent)
        best_curve.append(best)
        if decide is not None and query % interval == 0 and query < queries:
            pairs = [(p, r) for p, r, _ in window if p is not None and np.isfinite(r)]
            observed = {"evaluator_rank": spearman([p for p, _ in pairs], [r for _, r in pairs]),
                        "improved": float(np.mean([i for _, _, i in window])),
                        TARGET: incumbent, "query": float(query)}
            history.append({**observed, **values})
            values = dict(decide(query / queries, history, values))
            policy.set_hyperparameters(**values)
            window = []
    return {"incumbent": curve, "best_metrics": best, "best_curve": best_curve,
            "decisions": history,
            "real_updates": policy.real_updates, "imagined_updates": policy.imagined_updates}


def catch_episode(controller: HyperController, evaluator, queries: int, interval: int, seed: int,
                  reference: Sequence[float] | None = None, rng: np.random.Generator | None = None,
                  epsilon: float = 0.0, greedy: bool = False,
                  catch_options: Mapping[str, Any] | None = None):
    """One CATCH search under ``controller``; returns ``(episode, run, final_gap)``.
    ``reference``: the incumbent curve of CATCH with the initial values fixed
    (computed when not given)."""
    initial = controller.initial_values()
    if reference is None:
        reference = catch_search(evaluator, queries, seed, initial,
                                 catch_options=catch_options)["incumbent"]
    episode = Episode()

    def decide(progress, history, values):
        obs = controller.observe(progress, history, values)
        actions, logp = controller.act(obs, rng, epsilon, greedy)
        episode.observations.append(obs)
        episode.actions.append(actions)
        episode.log_probs.append(logp)
        return controller.adjust(values, actions)

    run = catch_search(evaluator, queries, seed, initial, decide, interval, catch_options)
    curve = run["incumbent"]
    points = [int(d["query"]) for d in run["decisions"]]  # queries at which decisions acted
    outcomes = points[1:] + [queries]
    targets = [curve[q - 1] for q in outcomes]
    refs = [reference[q - 1] for q in outcomes]
    start = controller.gap(curve[points[0] - 1], reference[points[0] - 1]) if points else 0.0
    episode.rewards = controller.rewards(targets, refs, start) if points else []
    return episode, run, controller.gap(curve[-1], reference[-1])


def _reference_job(tasks, k: int, queries: int, values: Mapping[str, float],
                   catch_options: Mapping[str, Any] | None) -> list[float]:
    """The incumbent curve of CATCH with ``values`` fixed on ``tasks[k]``."""
    evaluator, task_seed = tasks[k]
    return catch_search(evaluator, queries, task_seed, values,
                        catch_options=catch_options)["incumbent"]


def _episode_job(tasks, state: dict[str, Any], k: int, queries: int, interval: int,
                 reference: Sequence[float], rng_seed: Sequence[int], epsilon: float,
                 catch_options: Mapping[str, Any] | None, greedy: bool = False
                 ) -> tuple[Episode, float]:
    """One episode on ``tasks[k]`` under the controller saved in ``state``."""
    evaluator, task_seed = tasks[k]
    episode, _, gap = catch_episode(HyperController.from_state(state), evaluator, queries,
                                    interval, task_seed, reference,
                                    np.random.default_rng(list(rng_seed)), epsilon, greedy,
                                    catch_options=catch_options)
    return episode, gap


def _single_thread(job):
    """``job`` with torch on one thread (a 1-CPU Ray task)."""
    def run(*args):
        import torch

        torch.set_num_threads(1)
        return job(*args)
    return run


def catch_stage(controller: HyperController, tasks: Sequence[tuple[Any, int]], episodes: int,
                queries: int, interval: int, seed: int = 0,
                catch_options: Mapping[str, Any] | None = None):
    """A ``run_stage`` for :func:`~raynas.policies.hyper_controller.train_controller`:
    stage ``s`` runs ``episodes`` CATCH searches on ``tasks`` (``(evaluator, seed)``
    pairs, cycled), each against its fixed-schedule reference (computed once).

    Episode ``i`` of stage ``s`` explores with its own generator (seeded
    ``[seed, s, i]``), so a stage's searches are independent: when Ray is running
    they run as parallel 1-CPU Ray tasks, with the same results as in process."""
    search = _episode_runner(tasks, queries, interval, catch_options)

    def run_stage(stage: int, epsilon: float):
        picks = [(stage * episodes + i) % len(tasks) for i in range(episodes)]
        runs = search(controller, picks, [(seed, stage, i) for i in range(episodes)], epsilon)
        return [ep for ep, _ in runs if ep.rewards], [gap for _, gap in runs]

    return run_stage


def catch_validation(tasks: Sequence[tuple[Any, int]], queries: int, interval: int,
                     catch_options: Mapping[str, Any] | None = None):
    """A ``validate`` for :func:`~raynas.policies.hyper_controller.train_controller`:
    the mean final gap of a controller, acting greedily, over one CATCH search per
    task of ``tasks`` (held out from training), each against its fixed-schedule
    reference. Runs as Ray tasks when Ray is running, like :func:`catch_stage`."""
    search = _episode_runner(tasks, queries, interval, catch_options)

    def validate(controller: HyperController) -> float:
        picks = range(len(tasks))
        runs = search(controller, picks, [(0,)] * len(tasks), greedy=True)
        return float(np.mean([gap for _, gap in runs]))

    return validate


def _episode_runner(tasks, queries: int, interval: int,
                    catch_options: Mapping[str, Any] | None):
    """``search(controller, picks, rng_seeds, epsilon=0, greedy=False)``: one episode per
    task index of ``picks`` under ``controller`` (``(episode, final_gap)`` each), each
    against the task's fixed-schedule reference, computed the first time it is needed."""
    run_jobs = _job_runner(tasks)
    references: dict[int, list[float]] = {}

    def search(controller: HyperController, picks: Sequence[int],
               rng_seeds: Sequence[Sequence[int]], epsilon: float = 0.0, greedy: bool = False):
        missing = sorted(set(picks) - set(references))
        initial = controller.initial_values()
        references.update(zip(missing, run_jobs(_reference_job, [
            (k, queries, initial, catch_options) for k in missing])))
        state = controller.state_dict()
        return run_jobs(_episode_job, [(state, k, queries, interval, references[k], rng_seed,
                                        epsilon, catch_options, greedy)
                                       for k, rng_seed in zip(picks, rng_seeds, strict=True)])

    return search


def _job_runner(tasks):
    """``run(job, argument_tuples)``: ``job(tasks, *args)`` for each tuple, as 1-CPU Ray
    tasks when Ray is running (``tasks`` shipped once), else in process."""
    import ray

    if not ray.is_initialized():
        return lambda job, jobs: [job(tasks, *args) for args in jobs]
    shared = ray.put(list(tasks))
    remote = {}

    def run(job, jobs):
        if job not in remote:
            remote[job] = ray.remote(num_cpus=1)(_single_thread(job))
        return ray.get([remote[job].remote(shared, *args) for args in jobs])

    return run
