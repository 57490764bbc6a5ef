"""raynas on real Ray clusters: a head node started with `ray start --head`, a search
submitted with `ray job submit`, and a multi-node cluster (``ray.cluster_utils``) that
loses a node mid-search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import raynas.config as cfg
from raynas.driver import run_search

BIN = Path(sys.executable).parent
TINY_SEARCH = """\
space: {name: nb201, channels: 4, cells_per_stage: 1}
policy: {name: random}
evaluator: {kind: training, dataset: digits, input_size: 8, epochs: 1, batch_size: 128,
            measure_latency: false}
resources: {cpus_per_trial: 1, max_concurrent_trials: 2}
budget: 2
seed: 0
"""


@pytest.mark.slow
def test_ray_job_submit_runs_a_search_on_a_real_head_node(head_node, ray_env, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "tiny.yaml").write_text(TINY_SEARCH)
    out = tmp_path / "results"
    submit = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", head_node.dashboard, "--working-dir", str(job_dir),
         "--submission-id", "raynas-tiny", "--",
         "raynas", "search", "tiny.yaml", "--out", str(out), "--quiet"],
        env=ray_env, capture_output=True, text=True, timeout=420,
    )
    logs = submit.stdout + submit.stderr
    assert submit.returncode == 0, logs[-4000:]
    assert JobSubmissionClient(head_node.dashboard).get_job_status("raynas-tiny") == JobStatus.SUCCEEDED
    # The search ran in the job's working dir (the config came with --working-dir) and
    # wrote its results and its MLflow store where --out said.
    assert "evaluated 2 architectures" in logs
    history = pq.read_table(out / "history.parquet").to_pylist()
    assert len(history) == 2 and all(row["status"] == "ok" for row in history)
    assert (out / "best" / "model.onnx").is_file()
    assert cfg.load(out / "config.yaml") == cfg.load(job_dir / "tiny.yaml")

    import mlflow

    from raynas.tracking import default_uri

    assert (out / "mlflow.db").is_file()
    client = mlflow.MlflowClient(default_uri(out))
    runs = client.search_runs([client.get_experiment_by_name("raynas").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED"
    assert client.get_metric_history(parent.info.run_id, "evaluations")[-1].value == 2
    assert len(runs) == 3  # the search and one child run per trial


# ---------------------------------------------------------------- multi-node


def _trial_results(experiment: Path) -> dict[str, list[dict]]:
    """Each trial's reported epochs so far (Tune's result.json lines)."""
    trials = {}
    for path in experiment.glob("trial_*/result.json"):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written
        trials[path.parent.name] = rows
    return trials


@pytest.mark.slow
def test_a_search_spreads_over_nodes_and_survives_losing_one(tmp_path):
    """Head + 2 worker nodes; trials need a custom resource only the workers have. Once
    worker B has finished a trial and is training another, B is removed: B's finished
    trial keeps its result (it is not re-run), and the interrupted trial is retried on
    worker A from its checkpoint."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                           "health_check_failure_threshold": 3},
    })
    worker_a = cluster.add_node(num_cpus=1, resources={"trainer": 1})
    worker_b = cluster.add_node(num_cpus=1, resources={"trainer": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    config = cfg.from_dict({
        "space": {"name": "nb201", "channels": 8, "cells_per_stage": 1},
        "policy": {"name": "random"},
        "evaluator": {"kind": "training", "dataset": "digits", "input_size": 16, "epochs": 4,
                      "batch_size": 32, "measure_latency": False},
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2, "max_failures": 3,
                      "checkpoint_every": 1, "custom_resources": {"trainer": 1}},
        "tracking": {"mlflow": False},
        "budget": 6, "seed": 0,
    })
    out = tmp_path / "search"
    experiment = out / "tune"
    removed: dict[str, object] = {}

    def remove_b_mid_trial() -> None:
        """Wait until B has a finished trial and another one half-trained, then remove B."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "node" not in removed:
            trials = _trial_results(experiment)
            on_b = {t: rows for t, rows in trials.items()
                    if rows and rows[-1]["node_id"] == worker_b.node_id}
            done = {t: rows for t, rows in on_b.items() if rows[-1].get("done")
                    or rows[-1]["epoch"] == 4}
            running = [t for t, rows in on_b.items() if t not in done and 1 <= len(rows) <= 2]
            if done and running:
                removed.update(node=worker_b.node_id, finished=done, interrupted=running[0])
                cluster.remove_node(worker_b)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=remove_b_mid_trial, daemon=True)
    watcher.start()
    try:
        summary = run_search(config, out, verbose=0)
    finally:
        watcher.join(timeout=5)
        ray.shutdown()
        cluster.shutdown()
    assert "node" in removed, "worker B never held a finished and a running trial at once"

    # Every architecture was trained to the end; none failed for good.
    history = pq.read_table(out / "history.parquet").to_pylist()
    assert summary.evaluations == 6 and len(history) == 6
    assert all(row["status"] == "ok" for row in history)
    trials = _trial_results(experiment)
    nodes = {row["node_id"] for rows in trials.values() for row in rows}
    # Trials spread over both workers and, lacking "trainer", never ran on the head.
    assert nodes == {worker_a.node_id, worker_b.node_id}
    # B's finished trials kept their results: not re-run, same accuracy in the history.
    by_arch = {row["arch"]: row for row in history}
    for trial, rows_then in removed["finished"].items():
        rows_now = trials[trial]
        assert [r["epoch"] for r in rows_now] == [1, 2, 3, 4]
        assert {r["node_id"] for r in rows_now} == {removed["node"]}
        arch = json.loads((experiment / trial / "params.json").read_text())["arch"]
        assert by_arch[arch]["valid_acc"] == pytest.approx(rows_then[-1]["valid_acc"])
    # The interrupted trial was retried on A from its checkpoint and finished there.
    retried = trials[removed["interrupted"]]
    on_b = [r["epoch"] for r in retried if r["node_id"] == removed["node"]]
    on_a = [r["epoch"] for r in retried if r["node_id"] == worker_a.node_id]
    assert on_b and on_a and on_a[-1] == 4
    assert on_a[0] == on_b[-1] + 1, "resumed from B's last checkpoint, not from epoch 1"
