"""The AutoMBPO-style hyper-controller, the synthetic curves and the Tune hyper-scheduler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from raynas.policies.hyper_controller import (
    DOWN,
    KEEP,
    UP,
    Episode,
    HyperController,
    HyperParam,
    curve_episode,
    curve_stage,
    train_controller,
)
from raynas.tables.curves import NoisyQuadratic, fixed_curve, scheduled_curve

LR = HyperParam("lr", initial=0.5, low=0.01, high=1.5, step=1.5)
BATCH = HyperParam("batch_size", initial=64, low=16, high=1024, step=2, integer=True)


def controller(params=(LR,), **kwargs) -> HyperController:
    return HyperController(list(params), {"log_loss": (-6, 0)}, "log_loss", "min", **kwargs)


def always(hc: HyperController, action: int) -> HyperController:
    """Make every head choose ``action`` (nearly surely)."""
    for head in hc.net.heads:
        bias = torch.full((3,), -20.0)
        bias[action] = 20.0
        head[2].bias.data = bias
    return hc


# ------------------------------------------------------------- action maths
def test_multiplicative_steps_and_bounds():
    assert LR.apply(0.5, UP) == 0.75
    assert LR.apply(0.5, DOWN) == pytest.approx(1 / 3)
    assert LR.apply(0.5, KEEP) == 0.5
    assert LR.apply(1.2, UP) == 1.5  # clipped at high
    assert LR.apply(0.012, DOWN) == 0.01  # clipped at low


def test_additive_and_integer_steps():
    epochs = HyperParam("updates", initial=10, low=1, high=20, step=1, mode="add", integer=True)
    assert [epochs.apply(10, a) for a in (DOWN, KEEP, UP)] == [9, 10, 11]
    assert epochs.apply(20, UP) == 20 and epochs.apply(1, DOWN) == 1
    assert BATCH.apply(64, UP) == 128 and BATCH.apply(1000, UP) == 1024
    assert BATCH.apply(24, DOWN) == 16  # 12 clipped to 16, an integer
    wd = HyperParam("weight_decay", initial=5e-4, low=0, high=1e-2, step=5e-4, mode="add")
    assert wd.apply(5e-4, DOWN) == 0 and wd.apply(5e-4, UP) == pytest.approx(1e-3)


def test_position_is_log_scaled_for_multiplicative_parameters():
    assert LR.position(0.01) == 0 and LR.position(1.5) == pytest.approx(1)
    assert LR.position(np.sqrt(0.01 * 1.5)) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"step": 1.0}, "step > 1"),
    ({"low": 0.0}, "low > 0"),
    ({"initial": 2.0}, "low <= initial <= high"),
    ({"mode": "pow"}, "mode must be one of"),
])
def test_bad_hyperparameters_are_named(kwargs, message):
    spec = {"name": "lr", "initial": 0.5, "low": 0.01, "high": 1.5, "step": 1.5} | kwargs
    with pytest.raises(ValueError, match=message) as info:
        HyperParam(**spec)
    assert "'lr'" in str(info.value)


def test_bad_action_is_refused():
    with pytest.raises(ValueError, match="action must be 0"):
        LR.apply(0.5, 3)


def test_controller_checks_its_configuration():
    with pytest.raises(ValueError, match="target .acc. is not an observed metric.*target_range"):
        HyperController([LR], {"log_loss": (-6, 0)}, "acc")
    with pytest.raises(ValueError, match="names repeat"):
        HyperController([LR, LR], {"log_loss": (-6, 0)}, "log_loss")
    with pytest.raises(ValueError, match="high > low"):
        HyperController([LR], {"log_loss": (0, 0)}, "log_loss")


# ------------------------------------------------------------- state and reward
def test_observation_holds_progress_metrics_trend_and_positions():
    hc = controller((LR, BATCH), window=2)
    history = [{"log_loss": -1.0}, {"log_loss": -2.0}, {"log_loss": -4.0}]
    obs = hc.observe(0.5, history, {"lr": 0.5, "batch_size": 64})
    assert len(obs) == hc.obs_dim == 1 + 2 + 2
    assert obs[0] == 0.5
    assert obs[1] == pytest.approx((-4 + 6) / 6)  # latest, scaled into the range
    assert obs[2] == pytest.approx((-4 - -1) / 6)  # trend over the window of 2
    assert obs[3] == pytest.approx(LR.position(0.5))
    assert all(-1 <= x <= 1 for x in hc.observe(3.0, [{"log_loss": 50.0}], hc.initial_values()))


def test_final_rewards_sum_to_the_final_gap_and_area_rewards_to_the_area():
    hc = controller()
    values, refs = [-2.0, -3.0, -3.5], [-2.0, -2.5, -3.0]  # min mode: lower is better
    rewards = hc.rewards(values, refs, start_gap=0.0)
    assert sum(rewards) == pytest.approx(hc.gap(-3.5, -3.0)) == pytest.approx(0.5 / 6)
    assert rewards[0] == 0.0
    area = controller(reward="area").rewards(values, refs)
    assert area == pytest.approx([0.0, 0.5 / 6, 0.5 / 6])
    ep = Episode([[0.0]] * 3, [[1]] * 3, [0.0] * 3, [1.0, 2.0, 3.0])
    assert ep.returns() == [6.0, 5.0, 3.0]


def test_save_load_round_trip(tmp_path):
    hc = controller((LR, BATCH), seed=3)
    train_controller(hc, curve_stage(hc, range(10), 4, 6, 2), stages=2, decay_stages=1)
    path = hc.save(tmp_path / "hc.json")
    loaded = HyperController.load(path)
    obs = hc.observe(0.3, [{"log_loss": -2.0}], {"lr": 0.75, "batch_size": 128})
    assert loaded.probabilities(obs) == hc.probabilities(obs)
    assert loaded.config() == hc.config() and loaded.updates == hc.updates >= 1
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    assert [loaded.act(obs, rng_a)[0] for _ in range(5)] == [hc.act(obs, rng_b)[0] for _ in range(5)]


def test_loading_a_bad_file_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no hyper-controller"):
        HyperController.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad JSON"):
        HyperController.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"weights": {}}))
    with pytest.raises(ValueError, match="no config/weights"):
        HyperController.load(tmp_path / "other.json")


# ------------------------------------------------------------- synthetic curves
def test_curves_are_seeded_and_reward_a_decaying_schedule():
    task = NoisyQuadratic(seed=4)
    assert fixed_curve(task, 5, 0.5, 64) == fixed_curve(NoisyQuadratic(seed=4), 5, 0.5, 64)
    assert NoisyQuadratic(seed=5).power != task.power
    constant = fixed_curve(task, 20, 0.5, 64)[-1]["expected_loss"]
    decayed = scheduled_curve(task, 20, lambda e: {"lr": 0.5 ** (e // 4), "batch_size": 64})
    assert decayed[-1]["expected_loss"] < constant / 2
    assert fixed_curve(task, 3, 2.5, 64)[-1]["log_loss"] == 3.0  # diverged, clipped


def test_curve_run_state_round_trip():
    run = NoisyQuadratic(seed=1).start()
    run.epoch(0.5, 64)
    copy = NoisyQuadratic(seed=1).start()
    copy.load_state_dict(json.loads(json.dumps(run.state_dict())))
    assert copy.epoch(0.3, 128) == run.epoch(0.3, 128)
    with pytest.raises(ValueError, match="another task"):
        NoisyQuadratic(seed=2).start().load_state_dict(run.state_dict())


def test_trained_controller_beats_the_fixed_schedule_on_held_out_seeds():
    hc = controller((LR, BATCH), lr=3e-3)
    log = train_controller(hc, curve_stage(hc, range(200), 16, 20, 2), stages=25, decay_stages=5)
    assert log[-1]["mean_gap"] > log[0]["mean_gap"]
    for epochs in (20, 50):  # the training length, and 2.5x longer
        gaps = [curve_episode(hc, NoisyQuadratic(seed), epochs, 2, greedy=True)[2]
                for seed in range(1000, 1030)]
        assert np.mean(gaps) > 0.05, epochs  # 0.3 decades of loss below the fixed schedule
        assert np.mean(np.asarray(gaps) > 0) >= 0.8, epochs


# ------------------------------------------------------------- the Tune scheduler
def recorder():
    """A Tune callback keeping every result the driver received, per trial (Tune's
    result.json of a paused trial can miss rows: on resume Tune copies back the copy
    it last synced)."""
    from ray.tune import Callback

    class Recorder(Callback):
        def __init__(self):
            self.results: dict[str, list[dict]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results.setdefault(trial.trial_id, []).append(dict(result))

    return Recorder()


def test_scheduler_pauses_changes_the_config_and_resumes_from_the_checkpoint(ray_local, tmp_path):
    from raynas.tune.hyper_scheduler import HyperScheduler, run_curve_search

    hc = always(controller(), UP)
    scheduler = HyperScheduler(hc, epochs=6, interval=2, log_path=tmp_path / "decisions.jsonl")
    seen = recorder()
    results = run_curve_search(scheduler, [0, 1], 6, tmp_path, "up",
                               config={"lr": 0.5, "batch_size": 64}, callbacks=[seen])
    assert scheduler.changes == 4  # epochs 2 and 4, two trials
    lrs = [0.5, 0.5, 0.75, 0.75, 1.125, 1.125]
    for result in results:
        rows = seen.results[result.metrics["trial_id"]]
        assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
        assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]  # resumed, never restarted
        assert [r["lr"] for r in rows] == pytest.approx(lrs)
        assert result.config["lr"] == pytest.approx(1.125)
        # the task's state went through every pause: the same as one uninterrupted run
        replay = scheduled_curve(NoisyQuadratic(result.config["seed"]), 6,
                                 lambda e: {"lr": lrs[e], "batch_size": 64})
        assert [r["expected_loss"] for r in rows] == pytest.approx(
            [r["expected_loss"] for r in replay], rel=1e-12)
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert sorted(d["epoch"] for d in decisions) == [2, 2, 4, 4]
    assert all(d["probabilities"]["lr"][UP] > 0.99 for d in decisions)


def test_unchanged_trials_are_not_paused(ray_local, tmp_path):
    from raynas.tune.hyper_scheduler import HyperScheduler, run_curve_search

    scheduler = HyperScheduler(always(controller(), KEEP), epochs=4, interval=1)
    results = run_curve_search(scheduler, [3], 4, tmp_path, "keep",
                               config={"lr": 0.5, "batch_size": 64})
    assert scheduler.changes == 0
    assert list(results[0].metrics_dataframe["lr"]) == [0.5] * 4


DIGITS_ARCH = (3, 3, 1, 3, 1, 1)


def digits_evaluator():
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.spaces import NB201Space

    return TrainingEvaluator(NB201Space(channels=4, cells_per_stage=1), load_digits(input_size=8),
                             epochs=3, batch_size=128, num_threads=1)


def run_digits_trial(evaluator, hc: HyperController, tmp_path, name: str):
    """One real training trial of ``DIGITS_ARCH`` from lr 0.1 under ``hc`` (a decision
    every epoch); returns the scheduler, Tune's result and every result row received."""
    from ray import tune

    from raynas.tune.hyper_scheduler import HyperScheduler
    from raynas.tune.trial import make_trainable

    seen, scheduler = recorder(), HyperScheduler(hc, epochs=3, interval=1)
    tuner = tune.Tuner(
        make_trainable(evaluator, cpus=1),
        param_space={"arch": evaluator.space.to_str(DIGITS_ARCH), "lr": 0.1},
        tune_config=tune.TuneConfig(scheduler=scheduler),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=[seen]),
    )
    result = tuner.fit()[0]
    assert result.error is None
    (rows,) = seen.results.values()
    return scheduler, result, rows


def test_real_training_trial_resumes_with_its_new_learning_rate(ray_local, tmp_path):
    lr = HyperParam("lr", initial=0.1, low=0.001, high=1.0, step=2.0)
    hc = always(HyperController([lr], {"valid_acc": (0, 100)}, "valid_acc", "max"), DOWN)
    _, result, rows = run_digits_trial(digits_evaluator(), hc, tmp_path, "digits")
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]  # resumed, never restarted
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.05, 0.025])
    seconds = [r["train_seconds"] for r in rows]
    assert seconds == sorted(seconds)  # carried over from the checkpoints
    assert result.metrics["valid_acc"] > 30  # 10 classes: it trained through the pauses


def test_residual_trial_scales_its_cosine_schedule_and_untrained_keeps_it_exactly(
        ray_local, tmp_path):
    from raynas.tune.hyper_scheduler import training_reference

    evaluator = digits_evaluator()
    scale = HyperParam("lr_scale", initial=1.0, low=0.125, high=8.0, step=2.0)

    def fresh():
        return HyperController([scale], {"valid_acc": (0, 100), "lr": (0, 0.8)}, "valid_acc",
                               "max")

    _, _, rows = run_digits_trial(evaluator, always(fresh(), UP), tmp_path, "up")
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]  # resumed, never restarted
    assert [r["lr_scale"] for r in rows] == [1.0, 2.0, 4.0]
    # cosine over 3 epochs from 0.1 (0.1, 0.075, 0.025), times the scale of each epoch
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.15, 0.1])
    # an untrained controller is undecided, so it keeps: the cosine run itself
    scheduler, _, rows = run_digits_trial(evaluator, fresh(), tmp_path, "untrained")
    assert scheduler.changes == 0 and [r["lr_scale"] for r in rows] == [1.0] * 3
    reference = training_reference(evaluator)
    arch = evaluator.space.to_str(DIGITS_ARCH)
    assert [r["valid_acc"] for r in rows] == [
        reference({"arch": arch, "lr": 0.1}, e) for e in (1, 2, 3)]


def test_deployed_scheduler_can_sample_its_actions_reproducibly(ray_local, tmp_path):
    from raynas.tune.hyper_scheduler import HyperScheduler, run_curve_search

    def keep_or_up() -> HyperController:  # keep and up equally likely, never down
        hc = controller()
        hc.net.heads[0][2].bias.data = torch.tensor([-20.0, 0.0, 0.0])
        return hc

    def lrs(scheduler, name):
        seen = recorder()
        results = run_curve_search(scheduler, [0, 1, 2], 6, tmp_path, name,
                                   config={"lr": 0.5, "batch_size": 64}, concurrency=3,
                                   callbacks=[seen])
        return {r.config["seed"]: [row["lr"] for row in seen.results[r.metrics["trial_id"]]]
                for r in results}

    greedy = HyperScheduler(keep_or_up(), epochs=6, interval=1)
    assert set(map(tuple, lrs(greedy, "greedy").values())) == {(0.5,) * 6}  # a tie keeps
    first = lrs(HyperScheduler(keep_or_up(), epochs=6, interval=1, sample=True, seed=3), "a")
    again = lrs(HyperScheduler(keep_or_up(), epochs=6, interval=1, sample=True, seed=3), "b")
    assert first == again  # one generator per trial: the arrival order of results is moot
    assert len(set(map(tuple, first.values()))) > 1  # the trials drew different schedules
    for schedule in first.values():
        assert all(b in (a, LR.apply(a, UP)) for a, b in zip(schedule, schedule[1:]))  # keep/up


def test_untrained_controller_keeps_when_greedy():
    hc = controller((LR, BATCH))
    obs = hc.observe(0.5, [{"log_loss": -2.0}], hc.initial_values())
    assert hc.act(obs, greedy=True)[0] == [KEEP, KEEP]
    assert always(hc, UP).act(obs, greedy=True)[0] == [UP, UP]


def test_training_keeps_the_starting_controller_unless_a_stage_beats_it():
    hc = controller(lr=3e-3)
    start = hc.state_dict()["weights"]
    run_stage = curve_stage(hc, range(20), 4, 6, 2)
    log = train_controller(hc, run_stage, stages=3, decay_stages=1, start_gap=10.0)
    assert all(stage["mean_gap"] < 10.0 for stage in log)  # a gap of 10 ranges: unbeatable
    assert hc.state_dict()["weights"] == start and hc.updates == 0
    train_controller(hc, run_stage, stages=3, decay_stages=1, start_gap=-10.0)
    assert hc.state_dict()["weights"] != start  # an ε = 0 stage beat it


def test_validation_picks_among_the_best_stages_and_the_start():
    hc = controller(lr=3e-3)
    start = hc.state_dict()["weights"]
    run_stage = curve_stage(hc, range(20), 4, 6, 2)
    scored = []  # the weights validated, in order: the start, then the best stages first

    def validate(scores):
        def score(c):
            scored.append(c.state_dict()["weights"])
            return scores[len(scored) - 1]
        return score

    log = train_controller(hc, run_stage, stages=4, decay_stages=1, candidates=2,
                           validate=validate([1.0, 0.0, 0.5]))
    assert scored[0] == start and hc.state_dict()["weights"] == start
    assert log[-1]["start_validation_gap"] == 1.0
    judged = sorted((s for s in log if "validation_gap" in s), key=lambda s: -s["mean_gap"])
    assert [s["validation_gap"] for s in judged] == [0.0, 0.5]  # stages 1-3 ran at ε = 0
    assert all("loss" in s for s in log)  # every stage updated; validation chose what is kept

    scored.clear()
    train_controller(hc, run_stage, stages=4, decay_stages=1, candidates=2,
                     validate=validate([0.0, 0.1, 0.5]))
    # the second-best stage on training wins on validation and is kept
    assert hc.state_dict()["weights"] == scored[2] != scored[1]
    with pytest.raises(ValueError, match="candidates"):
        train_controller(hc, run_stage, stages=1, candidates=0)


def test_exploring_scheduler_records_rewarded_episodes(ray_local, tmp_path):
    from raynas.tune.hyper_scheduler import tune_curve_stage

    hc = controller((LR, BATCH), lr=3e-3)
    stats = train_controller(hc, tune_curve_stage(hc, range(50), 4, 6, 2, tmp_path),
                             stages=2, decay_stages=1)
    assert [s["episodes"] for s in stats] == [4.0, 4.0]  # a trial is an episode
    assert hc.updates >= 1 and np.isfinite(stats[1]["mean_gap"])


# ------------------------------------------------------------- use 2: CATCH's real ratio
def test_catch_real_ratio_makes_imagined_updates_and_checks_values(cifar10):
    from raynas.policies.catch.policy import CATCH
    from raynas.policies.catch.schedule import catch_search

    everything_real = catch_search(cifar10, 12, 0, {"real_ratio": 1.0, "updates": 3})
    assert everything_real["imagined_updates"] == 0 and everything_real["real_updates"] > 0
    imagined = catch_search(cifar10, 12, 0, {"real_ratio": 0.0, "updates": 3})
    assert imagined["real_updates"] == 0 and imagined["imagined_updates"] > 0
    policy = CATCH(cifar10.space, seed=0)
    with pytest.raises(ValueError, match="real_ratio must be in"):
        policy.set_hyperparameters(real_ratio=1.5)
    with pytest.raises(ValueError, match="cannot schedule"):
        policy.set_hyperparameters(lr=0.1)


def test_catch_episode_is_rewarded_against_the_fixed_schedule(cifar10):
    from raynas.policies.catch.schedule import catch_episode, catch_search, make_catch_controller

    hc = always(make_catch_controller(), DOWN)  # β falls, the evaluator refits less often
    reference = catch_search(cifar10, 20, 1, hc.initial_values())["incumbent"]
    episode, run, gap = catch_episode(hc, cifar10, 20, 5, 1, reference, greedy=True)
    assert len(episode.actions) == len(episode.rewards) == 3  # after queries 5, 10 and 15
    betas = [d["real_ratio"] for d in run["decisions"]]
    assert betas == pytest.approx([0.5, 0.5 / 1.2, 0.5 / 1.44])
    assert gap == pytest.approx(hc.gap(run["incumbent"][-1], reference[-1]))
    start = hc.gap(run["incumbent"][4], reference[4])
    assert sum(episode.rewards) == pytest.approx(gap - start)
    assert all(-1 <= d["evaluator_rank"] <= 1 for d in run["decisions"])


def test_catch_search_reports_the_incumbent_after_every_query(cifar10):
    from raynas.policies.catch.schedule import catch_search

    run = catch_search(cifar10, 15, 2, {"real_ratio": 0.5})
    assert len(run["best_curve"]) == len(run["incumbent"]) == 15
    assert [m["valid_acc"] for m in run["best_curve"]] == run["incumbent"]
    assert run["incumbent"] == sorted(run["incumbent"])  # the best so far never drops
    assert run["best_curve"][-1] == run["best_metrics"] and "test_acc" in run["best_metrics"]


def test_catch_stage_runs_its_searches_as_ray_tasks_with_the_in_process_results(ray_local,
                                                                                  cifar10):
    import ray

    from raynas.policies.catch.schedule import (
        catch_episode,
        catch_search,
        catch_stage,
        make_catch_controller,
    )

    assert ray.is_initialized()
    hc = make_catch_controller(seed=0)
    tasks = [(cifar10, 0), (cifar10, 1)]
    episodes, gaps = catch_stage(hc, tasks, 3, 12, 4, seed=7)(0, 0.5)
    assert len(episodes) == len(gaps) == 3
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a 1-CPU Ray task
    try:
        for i, k in enumerate([0, 1, 0]):  # the tasks, cycled; episode i explores with [7, 0, i]
            evaluator, task_seed = tasks[k]
            reference = catch_search(evaluator, 12, task_seed, hc.initial_values())["incumbent"]
            episode, _, gap = catch_episode(hc, evaluator, 12, 4, task_seed, reference,
                                            np.random.default_rng([7, 0, i]), 0.5)
            assert gap == pytest.approx(gaps[i])
            assert episode.actions == episodes[i].actions
            assert episode.rewards == pytest.approx(episodes[i].rewards)
    finally:
        torch.set_num_threads(threads)
    assert episodes[0].actions != episodes[2].actions  # same task, own exploration


def test_catch_validation_scores_greedy_searches_against_the_reference(cifar10):
    from raynas.policies.catch.schedule import (
        catch_episode,
        catch_search,
        catch_validation,
        make_catch_controller,
    )

    tasks = [(cifar10, 3), (cifar10, 4)]
    validate = catch_validation(tasks, 12, 4)
    assert validate(make_catch_controller()) == 0.0  # untrained, it keeps: the reference
    hc = always(make_catch_controller(), UP)
    gaps = [catch_episode(hc, ev, 12, 4, seed, catch_search(ev, 12, seed, hc.initial_values())
                          ["incumbent"], greedy=True)[2] for ev, seed in tasks]
    assert validate(hc) == pytest.approx(np.mean(gaps))


# ------------------------------------------------------------- in `raynas search`
@pytest.mark.parametrize("param, final_lr", [
    # a constant rate, halved after epochs 1 and 2
    (HyperParam("lr", initial=0.1, low=0.001, high=1.0, step=2.0), 0.025),
    # residual: the config's cosine schedule from 0.05 (0.05, 0.0375, 0.0125), scaled
    # by 1, 1/2, 1/4
    (HyperParam("lr_scale", initial=1.0, low=0.125, high=8.0, step=2.0), 0.0125 / 4),
])
def test_search_config_runs_trials_under_a_saved_controller(tmp_path, param, final_lr):
    import pyarrow.parquet as pq

    from raynas import config as cfg
    from raynas.driver import run_search

    hc = always(HyperController([param], {"valid_acc": (0, 100), "lr": (0, 1)}, "valid_acc",
                                "max"), DOWN)
    path = hc.save(tmp_path / "hc.json")
    config = cfg.from_dict({
        "space": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
        "evaluator": {"kind": "training", "dataset": "digits", "input_size": 8, "epochs": 3,
                      "batch_size": 128, "lr": 0.05},
        "resources": {"hyper_controller": str(path), "hyper_interval": 1},
        "budget": 2, "tracking": {"mlflow": False},
    })
    run_search(config, tmp_path / "out", verbose=0)
    rows = pq.read_table(tmp_path / "out" / "history.parquet").to_pylist()
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(r["lr"] == pytest.approx(final_lr) for r in rows)
    decisions = (tmp_path / "out" / "hyper_decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 4


def test_config_refuses_a_controller_with_asha():
    from raynas import config as cfg

    with pytest.raises(cfg.ConfigError, match="cannot be combined with asha"):
        cfg.from_dict({"resources": {"hyper_controller": "hc.json", "asha": True}})


def test_training_reference_is_the_cosine_run_of_the_initial_config():
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.spaces import NB201Space
    from raynas.tune.hyper_scheduler import training_reference

    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=2, batch_size=128)
    reference = training_reference(evaluator)
    arch = space.to_str((3, 3, 1, 3, 1, 1))
    curve = [reference({"arch": arch, "lr": 0.05}, e) for e in (1, 2)]
    fixed = evaluator.__class__(space, evaluator.data, epochs=2, batch_size=128, lr=0.05)
    assert fixed.fit(space.from_str(arch)).metrics["valid_acc"] == curve[1]
    assert reference({"arch": arch, "lr": 0.05}, 9) == curve[1]  # past the end: the last
    assert evaluator.lr == 0.1  # the evaluator itself is untouched


def test_an_unscheduled_trial_starts_its_cosine_schedule_at_the_configs_lr():
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.spaces import NB201Space

    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=3, batch_size=128)
    lrs = []
    evaluator.fit((3, 3, 1, 3, 1, 1), on_epoch=lambda m, _: lrs.append(m["lr"]),
                  hyper={"lr": 0.2})
    assert lrs == pytest.approx([0.2, 0.2 * 0.75, 0.2 * 0.25])  # cosine over 3 epochs
    lrs.clear()
    evaluator.fit((3, 3, 1, 3, 1, 1), on_epoch=lambda m, _: lrs.append(m["lr"]),
                  hyper={"lr": 0.2}, scheduled=True)
    assert lrs == pytest.approx([0.2] * 3)  # a scheduler's: constant until it changes it
