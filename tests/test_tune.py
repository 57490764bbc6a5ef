"""The Ray Tune adapter: PolicySearcher contract, real training trials, fault tolerance."""

from __future__ import annotations

import json
import os
import signal

import pytest
import ray
from conftest import OnlyFirst
from ray import tune
from ray.tune.search import Searcher

from raynas.data import load_digits
from raynas.errors import ArgumentError, StartupError
from raynas.evaluators import TrainingEvaluator
from raynas.policies import make_policy
from raynas.spaces import CustomSpace, NB201Space
from raynas.tune import PolicySearcher, TuneSettings, run_tune
from raynas.types import Objective


@pytest.fixture(scope="module")
def evaluator():
    space = NB201Space(channels=8, cells_per_stage=1)
    return TrainingEvaluator(space, load_digits(input_size=16), epochs=2)


def _finish(searcher, trial_id, valid_acc):
    searcher.on_trial_complete(trial_id, {"valid_acc": valid_acc, "test_acc": 1.0,
                                          "training_iteration": 2})


@pytest.mark.parametrize("policy_name", ["random", "rea", "ls", "tpe"])
def test_searcher_save_restore_round_trip(policy_name, tmp_path):
    space = NB201Space()

    def make():
        return PolicySearcher(make_policy(policy_name, space, seed=3), max_trials=30)

    original = make()
    for i in range(12):
        original.suggest(f"t{i}")
    for i in range(10):  # two trials still running at the checkpoint
        _finish(original, f"t{i}", 50.0 + (i * 7) % 13)
    original.save(str(tmp_path / "state.json"))
    json.loads((tmp_path / "state.json").read_text())  # JSON, never a pickle
    restored = make()
    restored.restore(str(tmp_path / "state.json"))
    assert restored.live == original.live
    for searcher in (original, restored):
        for i in (10, 11):
            _finish(searcher, f"t{i}", 60.0 + i)
    for i in range(12, 20):
        a, b = original.suggest(f"t{i}"), restored.suggest(f"t{i}")
        assert a == b
        _finish(original, f"t{i}", float(i))
        _finish(restored, f"t{i}", float(i))


def test_searcher_answers_repeats_without_trials_and_finishes():
    space = CustomSpace("tiny", {"x": ["a", "b"]})
    searcher = PolicySearcher(make_policy("random", space, seed=0, objective=Objective("v")),
                              max_trials=10)
    configs = []
    for i in range(5):
        config = searcher.suggest(f"t{i}")
        if config == Searcher.FINISHED:
            break
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"v": 1.0})
    assert sorted(c["arch"] for c in configs) == ["|x=a|", "|x=b|"]
    assert len(configs) == 2  # both evaluated: the third suggest says FINISHED at once
    rows = searcher.history().to_arrow().to_pylist()
    assert sum(not r["cached"] for r in rows) == 2
    assert sum(r["cached"] for r in rows) == searcher.repeats  # repeats answered from the cache


def test_searcher_of_a_policy_that_only_repeats_finishes_as_stalled():
    space = CustomSpace("tiny", {"x": ["a", "b", "c"]})
    searcher = PolicySearcher(OnlyFirst(space, objective=Objective("v")), max_trials=10)
    assert searcher.suggest("t0") == {"arch": "|x=a|"}
    assert searcher.suggest("t1") is None  # a repeat of a running trial: wait for it
    searcher.on_trial_complete("t0", {"v": 1.0})
    assert searcher.suggest("t2") == Searcher.FINISHED  # never spins forever
    assert searcher.stalled and searcher.state.queries == 1


def test_searcher_errored_trial_is_a_failure():
    searcher = PolicySearcher(make_policy("rea", NB201Space(), seed=0), max_trials=2)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    assert not next(iter(searcher.finished.values())).ok


def test_real_training_trials_on_tune(ray_local, evaluator, tmp_path):
    import signal

    policy = make_policy("rea", evaluator.space, seed=0, population_size=3, sample_size=2)
    before = signal.getsignal(signal.SIGINT)
    run = run_tune(policy, evaluator, TuneSettings(num_trials=4), tmp_path, verbose=0)
    # Tune's SIGINT handler does not outlive fit(): a Ctrl+C while the best network is
    # exported is raynas's (raynas.interrupts), not silently Tune's
    assert signal.getsignal(signal.SIGINT) is before
    table = run.history
    assert table.num_rows == 4
    assert set(table["status"].to_pylist()) == {"ok"}
    assert table["epoch"].to_pylist() == [2.0] * 4
    assert max(table["valid_acc"].to_pylist()) > 50.0  # it really trained (chance: 10 %)
    assert (tmp_path / "history.parquet").exists()
    # the in-process search's result type, with Tune's ResultGrid beside it
    from raynas.search import SearchResult

    assert isinstance(run, SearchResult) and run.queries == 4 and run.stopped == "budget"
    best = max(table.to_pylist(), key=lambda r: r["valid_acc"])
    assert run.incumbent == best["arch"]
    assert run.incumbent_metrics["valid_acc"] == best["valid_acc"]
    assert len(run.grid) == 4 and not run.grid.errors
    trials = sorted((tmp_path / "tune").glob("trial_*"))
    assert len(trials) == 4
    for name in ("result.json", "progress.csv"):
        assert (trials[0] / name).exists()
    assert list(trials[0].glob("events.out.tfevents.*"))  # TensorBoard works on it
    # checkpoints by time by default: epochs of a second or two do not each pay one, the
    # last epoch always gets one
    assert [len(list(t.glob("checkpoint_*"))) for t in trials] == [1] * 4


def test_gpu_request_without_gpus_is_refused(ray_local, evaluator, tmp_path):
    policy = make_policy("random", evaluator.space, seed=0)
    with pytest.raises(StartupError, match="gpus_per_trial=0.25 but the Ray cluster has 0 GPU"):
        run_tune(policy, evaluator, TuneSettings(num_trials=1, gpus_per_trial=0.25), tmp_path)


def test_custom_resource_the_cluster_lacks_is_refused_unless_autoscaling(ray_local, evaluator,
                                                                         tmp_path, caplog):
    policy = make_policy("random", evaluator.space, seed=0)
    wanted = TuneSettings(num_trials=1, custom_resources={"gpu_node": 1})
    with pytest.raises(StartupError, match="custom_resources needs gpu_node=1 per trial but the "
                                         "Ray cluster has 0 on any node.*autoscaling: true"):
        run_tune(policy, evaluator, wanted, tmp_path)
    from raynas.tune.runner import _check_resources

    with caplog.at_level("WARNING", logger="raynas.tune.runner"):
        _check_resources(TuneSettings(custom_resources={"gpu_node": 1}, autoscaling=True))
    assert "waiting for the autoscaler" in caplog.text


def test_storage_path_holds_the_experiment_and_resumes_from_it(ray_local, evaluator, tmp_path):
    """Tune's experiment goes to <storage_path>/<out name>/tune (shared storage on a
    cluster); the results folder keeps the history, and a rerun restores from storage."""
    storage, out = tmp_path / "shared", tmp_path / "results" / "run1"
    settings = TuneSettings(num_trials=2, storage_path=str(storage))
    policy = make_policy("random", evaluator.space, seed=0)
    run = run_tune(policy, evaluator, settings, out, verbose=0)
    assert run.history.num_rows == 2 and (out / "history.parquet").is_file()
    assert not (out / "tune").exists()
    trials = sorted((storage / "run1" / "tune").glob("trial_*/result.json"))
    assert len(trials) == 2
    rows = [json.loads(line) for line in trials[0].read_text().splitlines()]
    assert {r["node_id"] for r in rows} == {ray.get_runtime_context().get_node_id()}
    again = run_tune(make_policy("random", evaluator.space, seed=0), evaluator, settings, out,
                     verbose=0, resume=True)  # restored from storage: the finished trials
    assert again.history["arch"].to_pylist() == run.history["arch"].to_pylist()


def test_a_search_never_takes_over_another_searchs_experiment(ray_local, evaluator, tmp_path):
    """Two results folders of the same name share a storage_path: the second search
    (another policy) must not restore the first one's trials, fresh or resumed."""
    from raynas.errors import CheckpointError

    storage = tmp_path / "shared"
    settings = TuneSettings(num_trials=2, storage_path=str(storage))
    first = run_tune(make_policy("random", evaluator.space, seed=0), evaluator, settings,
                     tmp_path / "a" / "run", verbose=0)
    other = tmp_path / "b" / "run"
    with pytest.raises(CheckpointError, match="already holds another search's experiment"):
        run_tune(make_policy("ls", evaluator.space, seed=0), evaluator, settings, other, verbose=0)
    with pytest.raises(CheckpointError, match="belongs to another search: policy is 'random' "
                                              "there, 'ls' here"):
        run_tune(make_policy("ls", evaluator.space, seed=0), evaluator, settings, other,
                 verbose=0, resume=True)
    with pytest.raises(CheckpointError, match="seed is 0 there, 5 here"):
        run_tune(make_policy("random", evaluator.space, seed=5), evaluator, settings, other,
                 verbose=0, resume=True)
    assert not (other / "history.parquet").exists()  # nothing of the first was adopted
    assert first.history.num_rows == 2


class _KillFirstTrialOnce(tune.Callback):
    """SIGKILLs a trial's worker process once its first epoch's checkpoint is registered."""

    def __init__(self):
        self.killed = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        result = trial.last_result
        if self.killed is None and result.get("training_iteration") == 1:
            self.killed = (trial.trial_id, result["pid"])
            os.kill(result["pid"], signal.SIGKILL)


def test_killed_trial_worker_retries_from_its_checkpoint(ray_local, evaluator, tmp_path):
    killer = _KillFirstTrialOnce()
    policy = make_policy("random", evaluator.space, seed=1)
    settings = TuneSettings(num_trials=3, max_failures=2, checkpoint_every=1)
    run = run_tune(policy, evaluator, settings, tmp_path, verbose=0, tune_callbacks=[killer])
    assert killer.killed is not None
    table = run.history
    assert table.num_rows == 3 and set(table["status"].to_pylist()) == {"ok"}
    assert table["epoch"].to_pylist() == [2.0] * 3
    killed_trial = tmp_path / "tune" / f"trial_{killer.killed[0]}"
    rows = [json.loads(line) for line in (killed_trial / "result.json").read_text().splitlines()]
    # it resumed at epoch 2 from the epoch-1 checkpoint, in a new process
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert rows[1]["pid"] != killer.killed[1]


def test_an_asha_stopped_trial_is_recorded_as_stopped_and_never_the_incumbent(ray_local,
                                                                               tmp_path):
    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=3, batch_size=128,
                                  measure_latency=False)
    settings = TuneSettings(num_trials=8, max_concurrent_trials=1, asha=True, grace_period=1)
    run = run_tune(make_policy("random", space, seed=4), evaluator, settings, tmp_path,
                   verbose=0)
    rows = run.history.to_pylist()
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped, "ASHA stopped no trial"
    for row in stopped:
        assert row["fidelity"] < 3 and row["fidelity"] == row["epoch"]
        assert "stopped by the scheduler after" in row["error"]
    assert {r["fidelity"] for r in rows if r["status"] == "ok"} == {3.0}
    best = max((r for r in rows if r["status"] == "ok"), key=lambda r: r["valid_acc"])
    from raynas.search.history import incumbent_curve

    search, _ = incumbent_curve(run.history)
    assert search[-1] == best["valid_acc"]  # a stopped trial's early accuracy never counts


def test_trials_report_by_time_and_at_asha_rungs_and_keep_every_epoch(ray_local, tmp_path):
    """With a report interval longer than the trial, a trial reports to Tune only at
    ASHA's rungs and its last epoch; each report carries the epochs in between, and the
    Tune result (the history's fidelity) is the last epoch's."""
    from raynas.tune.runner import asha_rungs
    from raynas.tune.trial import unreported_epochs

    assert asha_rungs(1, 20) == {1, 4, 16} and asha_rungs(2, 8) == {2, 8}
    assert asha_rungs(3, 2) == frozenset()
    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=5, batch_size=256,
                                  measure_latency=False)
    settings = TuneSettings(num_trials=2, max_concurrent_trials=1, asha=True, grace_period=1,
                            report_seconds=1e6)
    run = run_tune(make_policy("random", space, seed=2), evaluator, settings, tmp_path,
                   verbose=0)
    trials = sorted((tmp_path / "tune").glob("trial_*/result.json"))
    assert len(trials) == 2
    for path in trials:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        reported = [r["epoch"] for r in rows]
        assert reported in ([1.0], [1.0, 4.0], [1.0, 4.0, 5.0]), reported  # ASHA may stop it
        logged = [m["epoch"] for r in rows for m in [*unreported_epochs(r), r]]
        assert logged == [float(e) for e in range(1, int(reported[-1]) + 1)]
    assert sorted(run.history["fidelity"].to_pylist())[-1] == 5.0


def test_report_seconds_is_checked():
    from raynas.tune.trial import make_trainable

    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=1)
    with pytest.raises(ArgumentError, match="report_seconds"):
        make_trainable(evaluator, report_seconds=-1)


def test_a_search_opens_with_tunes_own_api_as_the_readme_says(ray_local, evaluator, tmp_path):
    from raynas.tune.trial import make_trainable

    run = run_tune(make_policy("random", evaluator.space, seed=6), evaluator,
                   TuneSettings(num_trials=2), tmp_path, verbose=0)
    analysis = tune.ExperimentAnalysis(str(tmp_path / "tune"))
    assert len(analysis.trial_dataframes) == 2
    grid = tune.Tuner.restore(str(tmp_path / "tune"),
                              trainable=make_trainable(evaluator)).get_results()
    assert sorted(r.config["arch"] for r in grid) == sorted(run.history["arch"].to_pylist())
    assert all(r.checkpoint is not None for r in grid)
