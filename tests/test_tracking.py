"""MLflow tracking against the SQLite default and a real ``mlflow server`` on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.evaluators import TabularEvaluator
from raynas.policies import make_policy
from raynas.search import Budget, Callback, Search
from raynas.tracking import MlflowTracker, default_uri, redact, replay_pending
from raynas.tracking.client import PENDING_FILE

mlflow = pytest.importorskip("mlflow")

BUDGET = 60


def _search(nb201_table, out, tracker, extra=()):
    evaluator = TabularEvaluator(nb201_table, "cifar10")
    policy = make_policy("rea", nb201_table.space, seed=0)
    return Search(nb201_table.space, policy, evaluator, Budget(max_queries=BUDGET),
                  out_dir=out, callbacks=[tracker, *extra]).run()


def _check_run(client, run_id):
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["policy"] == "rea" and run.data.params["policy.sample_size"] == "5"
    assert '"dataset": "cifar10"' in run.data.params["evaluator"]
    per_arch = client.get_metric_history(run_id, "arch/valid_acc")
    assert sorted(m.step for m in per_arch) == list(range(1, BUDGET + 1))
    best = sorted(client.get_metric_history(run_id, "best/valid_acc"), key=lambda m: m.step)
    assert all(a.value < b.value for a, b in zip(best, best[1:]))  # logged on improvement
    assert client.get_metric_history(run_id, "evaluations")[-1].value == BUDGET
    assert {a.path for a in client.list_artifacts(run_id)} == {"history.parquet", "progress.png"}
    # the run list says which search it is and what it found
    assert run.info.run_name.startswith("rea on nb201 (")
    best = max(client.get_metric_history(run_id, "arch/valid_acc"), key=lambda m: m.value)
    assert float(run.data.tags["raynas.best_valid_acc"]) == pytest.approx(best.value, abs=1e-3)
    assert run.data.tags["raynas.best_arch"].startswith("|")


def test_sqlite_default_store(nb201_table, tmp_path):
    tracker = MlflowTracker(tmp_path)
    assert tracker.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracker.tracking_uri.startswith("sqlite:////")  # absolute: four slashes
    _search(nb201_table, tmp_path, tracker)
    client = mlflow.MlflowClient(default_uri(tmp_path))
    _check_run(client, tracker.run_id)
    # MLflow's UI opens it as a machine-learning experiment, not on the GenAI traces page
    experiment = client.get_experiment_by_name("raynas")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    if commit.returncode == 0:
        run = client.get_run(tracker.run_id)
        assert run.data.tags["mlflow.source.git.commit"] == commit.stdout.strip()
    assert not (tmp_path / PENDING_FILE).exists()


class _InterruptBeforeTracker(Callback):
    """Ctrl+C after the search took its snapshot of a step but before the tracker saw
    that step (callbacks run in order; this one comes first)."""

    def __init__(self, at_query):
        self.at_query = at_query

    def on_step(self, search, rows):
        if search.queries >= self.at_query:
            raise KeyboardInterrupt


def test_interrupt_before_the_tracker_saw_a_step_loses_no_metric(nb201_table, tmp_path):
    def search(callbacks):
        evaluator = TabularEvaluator(nb201_table, "cifar10")
        policy = make_policy("rea", nb201_table.space, seed=0)
        return Search(nb201_table.space, policy, evaluator, Budget(max_queries=BUDGET),
                      out_dir=tmp_path, callbacks=callbacks, checkpoint_every=1)

    first = MlflowTracker(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        search([_InterruptBeforeTracker(at_query=23), first]).run()
    second = MlflowTracker(tmp_path)
    search([second]).run(resume=True)
    assert second.run_id == first.run_id
    _check_run(mlflow.MlflowClient(default_uri(tmp_path)), first.run_id)


def test_credentials_are_redacted():
    assert redact("http://alice:s3cret@host:5000/x") == "http://***@host:5000/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


# ------------------------------------------------------------ a real server
@pytest.fixture
def fast_failing_http(monkeypatch):
    # a dead server must fail fast rather than through minutes of retries
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def test_real_mlflow_server(nb201_table, tmp_path, fast_failing_http, mlflow_server, free_port):
    server = mlflow_server(tmp_path / "server", free_port())
    try:
        uri = server.uri
        tracker = MlflowTracker(tmp_path / "run", tracking_uri=uri, experiment="nas-test")
        _search(nb201_table, tmp_path / "run", tracker)
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("nas-test")
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.run_id == tracker.run_id
        _check_run(client, tracker.run_id)
    finally:
        server.stop()


class _StopServerAt(Callback):
    def __init__(self, server, step):
        self.server, self.step = server, step

    def on_step(self, search, rows):
        if search.step == self.step:
            self.server.stop()


def test_server_down_mid_search_loses_nothing(nb201_table, tmp_path, fast_failing_http, caplog,
                                              mlflow_server, free_port):
    port = free_port()
    folder = tmp_path / "server"
    server = mlflow_server(folder, port)
    uri = server.uri
    out = tmp_path / "run"
    tracker = MlflowTracker(out, tracking_uri=uri, flush_seconds=0)  # send every step
    with caplog.at_level(logging.WARNING, logger="raynas.tracking.client"):
        result = _search(nb201_table, out, tracker, extra=[_StopServerAt(server, 25)])
    assert result.queries == BUDGET  # the search finished
    warnings = [r for r in caplog.records if "MLflow tracking" in r.getMessage()]
    assert len(warnings) == 1  # warned once
    assert (out / PENDING_FILE).exists()

    server = mlflow_server(folder, port)  # the server is back, same store
    try:
        raynas = Path(sys.executable).parent / "raynas"
        env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        proc = subprocess.run([str(raynas), "report", str(out), "--sync", "--uri", uri],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "pending MLflow record(s)" in proc.stdout
        assert not (out / PENDING_FILE).exists()
        assert replay_pending(out, uri) == 0  # nothing left
        _check_run(mlflow.MlflowClient(uri), tracker.run_id)
    finally:
        server.stop()


def test_model_logged_while_the_store_is_down_is_registered_on_replay(tmp_path, fast_failing_http,
                                                                     free_port):
    import numpy as np
    import torch

    from raynas.export import save_mlflow_model
    from raynas.spaces import NB201Space
    from raynas.tracking.client import MlflowLogger

    model = NB201Space(channels=4, cells_per_stage=1).build((3, 2, 1, 4, 3, 3), 10, 1).eval()
    example = torch.randn(2, 1, 8, 8)
    model_dir = save_mlflow_model(model, example, tmp_path / "best")
    dead = MlflowLogger(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    run_id = dead.start_run({"policy": "rea"}, {}, "search")
    dead.log_model(run_id, model_dir, "tiny-net")
    dead.end_run(run_id)
    assert dead.failed and (tmp_path / PENDING_FILE).exists()

    assert replay_pending(tmp_path) == 3  # into the default SQLite store
    client = mlflow.MlflowClient(default_uri(tmp_path))
    (version,) = client.search_model_versions("name = 'tiny-net'")
    assert client.get_run(version.run_id).data.params == {"policy": "rea"}
    mlflow.set_tracking_uri(default_uri(tmp_path))
    loaded = mlflow.pyfunc.load_model("models:/tiny-net/1")
    batch = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(loaded.predict(batch.numpy()), model(batch).numpy(), atol=1e-5)


def test_tabular_child_runs_are_configurable(nb201_table, tmp_path):
    tracker = MlflowTracker(tmp_path, child_runs=True)
    _search(nb201_table, tmp_path, tracker)
    client = mlflow.MlflowClient(default_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("raynas").experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == tracker.run_id]
    assert len(children) == BUDGET == len(runs) - 1  # one per real query
    history = {r["query"]: r for r in pq.read_table(tmp_path / "history.parquet").to_pylist()}
    for child in children:
        row = history[int(child.data.tags["raynas.query"])]
        assert child.data.params["arch"] == row["arch"] and child.info.status == "FINISHED"
        assert child.data.metrics["valid_acc"] == row["valid_acc"]
        assert child.data.metrics["test_acc"] == row["test_acc"]


def test_trials_log_their_own_runs_to_a_real_server(tmp_path, fast_failing_http, mlflow_server,
                                                   free_port):
    server = mlflow_server(tmp_path / "server", free_port())
    uri = server.uri
    try:
        config = tmp_path / "trials.yaml"
        config.write_text(
            "space: {name: nb201, channels: 4, cells_per_stage: 1}\npolicy: {name: random}\n"
            "evaluator: {kind: training, dataset: digits, input_size: 8, epochs: 2, "
            "batch_size: 128}\nbudget: 3\n"
            f"tracking: {{uri: '{uri}', experiment: from-trials, log_from: trials}}\n"
        )
        out = tmp_path / "run"
        raynas = Path(sys.executable).parent / "raynas"
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.run([str(raynas), "search", str(config), "--out", str(out), "--quiet"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = mlflow.MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("from-trials").experiment_id])
        (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(children) == 3
        history = pq.read_table(out / "history.parquet").to_pylist()
        assert sorted(c.data.params["arch"] for c in children) == sorted(r["arch"] for r in history)
        for child in children:
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.data.tags["raynas.logged_from"] == "trial"  # not the driver callback
            assert child.info.status == "FINISHED"
            epochs = sorted(client.get_metric_history(child.info.run_id, "valid_acc"),
                            key=lambda m: m.step)
            assert [m.step for m in epochs] == [1, 2]
            row = next(r for r in history if r["arch"] == child.data.params["arch"])
            assert epochs[-1].value == pytest.approx(row["valid_acc"])
        assert client.get_metric_history(parent.info.run_id, "evaluations")[-1].value == 3
        assert "model" in {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert not list(out.rglob(PENDING_FILE))  # everything reached the server
    finally:
        server.stop()


def test_trial_side_records_kept_while_the_store_is_down_are_replayed(tmp_path, fast_failing_http,
                                                                      free_port):
    from raynas.tracking.client import MlflowLogger
    from raynas.tune.trial import TrialTracking

    dead_uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    driver = MlflowLogger(tmp_path, dead_uri)
    parent = driver.start_run({"policy": "rea"}, {}, "search")  # kept locally
    tracking = TrialTracking(dead_uri, "raynas", parent, str(tmp_path / "tune"))
    run = tracking.open("abc123", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    for epoch in (1, 2):
        run.log({"valid_acc": 50.0 + epoch, "epoch": float(epoch)}, epoch)
    run.close()
    driver.end_run(parent)
    assert (tmp_path / "tune" / "trial_abc123" / PENDING_FILE).exists()

    # the driver's 2 records, then the trial's 3 (start, its epochs in one batch, end)
    assert replay_pending(tmp_path) == 5
    assert not list(tmp_path.rglob(PENDING_FILE))
    client = mlflow.MlflowClient(default_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("raynas").experiment_id])
    (search,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (trial,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert trial.data.tags["mlflow.parentRunId"] == search.info.run_id  # relinked on replay
    assert trial.data.tags["raynas.trial_id"] == "abc123" and trial.info.status == "FINISHED"
    history = client.get_metric_history(trial.info.run_id, "valid_acc")
    assert sorted((m.step, m.value) for m in history) == [(1, 51.0), (2, 52.0)]


def test_a_trials_epochs_reach_its_child_run_in_batches_and_constants_once(tmp_path):
    from raynas.tracking.client import MlflowLogger
    from raynas.tune.trial import TrialTracking

    driver = MlflowLogger(tmp_path)
    parent = driver.start_run({"policy": "rea"}, {}, "search")
    run = TrialTracking(driver.tracking_uri, "raynas", parent, str(tmp_path / "tune")).open(
        "t1", "|x=a|")
    client = mlflow.MlflowClient(default_uri(tmp_path))
    for epoch in (1, 2, 3):
        run.log({"valid_acc": 50.0 + epoch, "epoch": float(epoch), "params": 1234.0,
                 "latency_ms": 0.5}, epoch)
    # within the flush interval nothing per-epoch was sent; the constants were, once
    assert client.get_metric_history(run.run_id, "valid_acc") == []
    child = client.get_run(run.run_id)
    assert child.data.params["params"] == "1234.0" and child.data.params["latency_ms"] == "0.5"
    assert child.info.run_name == "|x=a| (t1)"
    run.close()
    history = client.get_metric_history(run.run_id, "valid_acc")
    assert sorted((m.step, m.value) for m in history) == [(1, 51.0), (2, 52.0), (3, 53.0)]
    assert client.get_metric_history(run.run_id, "params") == []  # no flat chart
    assert client.get_run(run.run_id).info.status == "FINISHED"
