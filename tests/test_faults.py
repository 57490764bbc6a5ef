"""Fault injection (issue 18): the ``raynas`` command under the failures a cluster user
meets, each against a run without the fault.

* SIGINT and SIGKILL of the driver at seeded random points of table and training
  searches; ``--resume`` must give the uninterrupted run's history and MLflow record.
* A foreign ``ray start`` head on the machine during searches and benches.
* A tracking server that is down, then up; a replay that stops midway.
* Crafted pickles in a results folder.
* A read-only and a full file system under the results folder.

The matrix and what it found are in docs/reliability.md.
"""

from __future__ import annotations

import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

RAYNAS = str(Path(sys.executable).parent / "raynas")
DETERMINISTIC = ("step", "query", "arch", "cached", "status", "valid_acc", "test_acc")


@pytest.fixture()
def env(ray_env, tmp_path):
    """The environment of every command: no Ray auth on loopback, and a trust key of
    this test's own (the machine's key is untouched)."""
    return {**ray_env, "RAYNAS_TRUST_KEY": str(tmp_path / "trust-key")}


def _raynas(env, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([RAYNAS, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _interrupt(env, args, ready, delay: float, sig: int) -> tuple[int, str, bool]:
    """Start ``raynas *args``, wait until ``ready()``, then ``delay`` seconds, then send
    ``sig``; the exit status, what it printed and whether the signal was sent (it had not
    ended yet)."""
    proc = subprocess.Popen([RAYNAS, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out, sent


def _history(out: Path) -> list[dict]:
    table = pq.read_table(out / "history.parquet")
    return table.select([c for c in DETERMINISTIC if c in table.column_names]).to_pylist()


def _parent_runs(out: Path, experiment="raynas"):
    import mlflow

    from raynas.tracking import default_uri

    client = mlflow.MlflowClient(default_uri(out))
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


# ------------------------------------------------------------------ table searches
TABLE_SEARCH = """
policy: {{name: rea}}
evaluator: {{kind: tabular, path: {table}, dataset: cifar100}}
budget: 600
seed: 4
"""


def _window(env, args, out: Path) -> tuple[int, float]:
    """Run ``raynas *args`` (into ``out``) to its end: its exit status, and the seconds
    from its first checkpoint to its last line of output (the span a signal can hit
    while the search or its finishing runs, not interpreter shutdown)."""
    proc = subprocess.Popen([RAYNAS, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    began = last = None
    for _ in proc.stdout:
        last = time.monotonic()
        if began is None and (out / "checkpoint.json").exists():
            began = last
    proc.wait(timeout=300)
    return proc.returncode, (last - began) if began is not None and last else 0.0


def test_table_search_killed_at_random_points_resumes_to_the_same_result(table_path, tmp_path,
                                                                         env):
    config = tmp_path / "table.yaml"
    config.write_text(TABLE_SEARCH.format(table=table_path))
    reference = tmp_path / "reference"
    status, window = _window(env, ["search", str(config), "--out", str(reference)], reference)
    assert status == 0 and window > 0
    expected = _history(reference)
    rng = np.random.default_rng(18)
    interrupted = 0
    for k, sig in enumerate((signal.SIGINT, signal.SIGKILL) * 3):
        out = tmp_path / f"{sig.name}-{k}"
        # anywhere from the first checkpoint to the last line: mid-search or finishing
        status, printed, sent = _interrupt(env, ["search", str(config), "--out", str(out)],
                                           lambda out=out: (out / "checkpoint.json").exists(),
                                           float(rng.uniform(0.0, window)), sig)
        if not sent or (status in (0, -signal.SIGINT) and "results:" in printed):
            # it finished first: the signal hit interpreter exit (ignored there or fatal)
            # after the last line, and everything is saved
            assert _history(out) == expected
            continue
        interrupted += 1
        if sig == signal.SIGINT:  # never swallowed, even inside a library's callback
            assert status == 130, printed
            assert f"continue with: raynas search --resume {out}" in printed
        else:
            assert status == -signal.SIGKILL
        resumed = _raynas(env, "search", "--resume", str(out))
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _history(out) == expected
        # MLflow: one parent run, continued by the resume, with every evaluation
        client, (parent,) = _parent_runs(out)
        assert parent.info.status == "FINISHED"
        steps = sorted(m.step for m in client.get_metric_history(parent.info.run_id,
                                                                 "arch/valid_acc"))
        assert steps == list(range(1, 601))
    assert interrupted >= 4, f"the signals came too late to test anything ({window:.1f} s)"


# ----------------------------------------------------------------- training searches
TRAINING_SEARCH = """
space: {name: nb201, channels: 4, cells_per_stage: 1}
policy: {name: rea, population_size: 2, sample_size: 2}
evaluator: {kind: training, dataset: digits, input_size: 8, epochs: 2, batch_size: 128,
            measure_latency: false}
resources: {max_concurrent_trials: 1}
tracking: {child_runs: false, register_model: false}
budget: 4
seed: 2
"""


def _trials(out: Path) -> int:
    return len(list((out / "tune").glob("trial_*")))


def test_training_search_killed_at_random_points_resumes_to_the_same_result(tmp_path, env):
    config = tmp_path / "train.yaml"
    config.write_text(TRAINING_SEARCH)
    reference = tmp_path / "reference"
    assert _raynas(env, "search", str(config), "--out", str(reference), "--quiet").returncode == 0
    expected = _history(reference)
    assert len(expected) == 4
    rng = np.random.default_rng(180)
    interrupted = 0
    for k, sig in enumerate((signal.SIGINT, signal.SIGKILL, signal.SIGKILL)):
        out = tmp_path / f"{sig.name}-{k}"
        started = int(rng.integers(1, 4))
        status, printed, sent = _interrupt(
            env, ["search", str(config), "--out", str(out), "--quiet"],
            lambda out=out, n=started: _trials(out) >= n, float(rng.uniform(0.0, 2.0)), sig)
        if not sent or (status == -signal.SIGINT and "results:" in printed):
            continue
        interrupted += 1
        if sig == signal.SIGINT:
            assert status == 130, printed
            assert f"continue with: raynas search --resume {out}" in printed
            assert "Traceback" not in printed
            # the interim history holds finished trials only, all of them ok
            partial = _history(out)
            assert len(partial) < 4 and all(r["status"] == "ok" for r in partial)
            assert partial == expected[: len(partial)]
        resumed = _raynas(env, "search", "--resume", str(out), "--quiet")
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert _history(out) == expected
        client, (parent,) = _parent_runs(out)
        assert parent.info.status == "FINISHED"
        assert client.get_metric_history(parent.info.run_id, "evaluations")[-1].value == 4
    assert interrupted >= 2, "the signals came too late to test anything"


@pytest.fixture()
def interrupted_training(tmp_path, env) -> Path:
    """A training search stopped by SIGINT after its first finished trial."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAINING_SEARCH.replace("budget: 4", "budget: 3"))
    out = tmp_path / "run"
    status, printed, _ = _interrupt(env, ["search", str(config), "--out", str(out), "--quiet"],
                                    lambda: (out / "history.parquet").exists() and
                                 pq.read_table(out / "history.parquet").num_rows >= 1,
                                 0.0, signal.SIGINT)
    assert status == 130, printed
    return out


class _Marker:
    """Unpickling it creates a file: what a crafted pickle would do with a shell."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_crafted_pickles_in_a_results_folder_never_run(interrupted_training, tmp_path, env):
    out, marker = interrupted_training, tmp_path / "PWNED"
    tune = out / "tune"
    original = (tune / "tuner.pkl").read_bytes()
    (tune / "tuner.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    refused = _raynas(env, "search", "--resume", str(out), "--quiet")
    assert refused.returncode == 2 and not marker.exists()
    assert "tuner.pkl is not signed by this machine's raynas key" in refused.stderr
    assert "--trust-folder" in refused.stderr
    # Tune's searcher state is a pickle too
    (tune / "tuner.pkl").write_bytes(original)
    (state,) = tune.glob("search_gen_state-*.json")
    saved = state.read_bytes()
    state.write_bytes(pickle.dumps(_Marker(marker)))
    refused = _raynas(env, "search", "--resume", str(out), "--quiet")
    assert refused.returncode == 2 and not marker.exists() and state.name in refused.stderr
    state.write_bytes(saved)
    # a new search into a folder that holds a Tune experiment never loads it
    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(tune, other / "tune")
    (other / "tune" / "tuner.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    config = tmp_path / "train.yaml"
    fresh = _raynas(env, "search", str(config), "--out", str(other), "--quiet")
    assert fresh.returncode == 2 and not marker.exists()
    assert "already holds" in fresh.stderr and "never takes over" in fresh.stderr
    # a crafted error.pkl of a trial is set aside, and the search resumes
    trial = sorted(tune.glob("trial_*"))[0]
    (trial / "error.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    resumed = _raynas(env, "search", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not marker.exists() and (trial / "error.pkl.untrusted").exists()
    assert pq.read_table(out / "history.parquet").num_rows == 3


def test_a_folder_from_another_machine_needs_trust_folder(interrupted_training, tmp_path, env):
    elsewhere = {**env, "RAYNAS_TRUST_KEY": str(tmp_path / "another-machine-key")}
    refused = _raynas(elsewhere, "search", "--resume", str(interrupted_training), "--quiet")
    assert refused.returncode == 2 and "are not signed by this machine's raynas key" in refused.stderr
    trusted = _raynas(elsewhere, "search", "--resume", str(interrupted_training), "--quiet",
                      "--trust-folder")
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert pq.read_table(interrupted_training / "history.parquet").num_rows == 3


# ------------------------------------------------------- a foreign cluster on the machine
def test_searches_start_their_own_ray_beside_a_foreign_head(head_node, table_path, tmp_path,
                                                            env):
    config = tmp_path / "train.yaml"
    config.write_text(TRAINING_SEARCH.replace("budget: 4", "budget: 2"))
    own = _raynas(env, "search", str(config), "--out", str(tmp_path / "own"), "--quiet")
    assert own.returncode == 0, own.stderr[-3000:]
    assert "Ray: a new local Ray instance" in own.stderr
    assert "evaluated 2 architectures" in own.stdout
    bench = _raynas(env, "bench", "--benchmark", str(table_path), "--datasets", "cifar10",
                    "--policies", "random", "--seeds", "2", "--budget", "10", "--num-cpus", "1",
                    "--out", str(tmp_path / "bench"))
    assert bench.returncode == 0, bench.stderr[-3000:]
    # joining it takes an explicit address, and says so
    joined = _raynas(env, "search", str(config), "--out", str(tmp_path / "joined"), "--quiet",
                     "--address", head_node.gcs)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert f"Ray: the Ray cluster at {head_node.gcs}" in joined.stderr
    unreachable = _raynas(env, "search", str(config), "--out", str(tmp_path / "no"), "--quiet",
                          "--address", "127.0.0.1:9")
    assert unreachable.returncode == 4
    assert "cannot connect to the Ray cluster at 127.0.0.1:9" in unreachable.stderr
    assert not (tmp_path / "no" / "config.yaml").exists()  # it never started


# ---------------------------------------------------------------- a tracking server down
def test_tracking_server_down_then_up(table_path, tmp_path, env, mlflow_server, free_port):
    import mlflow

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    config = tmp_path / "table.yaml"
    config.write_text(TABLE_SEARCH.format(table=table_path).replace("budget: 600", "budget: 80")
                      + f"tracking: {{uri: '{uri}', experiment: faults}}\n")
    out = tmp_path / "run"
    start = time.monotonic()
    down = _raynas(env, "search", str(config), "--out", str(out))
    elapsed = time.monotonic() - start
    assert down.returncode == 0, down.stderr[-2000:]
    assert "MLflow tracking at" in down.stderr and "the tracking server does not answer" in down.stderr
    assert elapsed < 120, f"an unreachable server stalled the search for {elapsed:.0f} s"
    assert (out / "mlflow-pending.jsonl").exists()

    server = mlflow_server(tmp_path / "server", port)
    history = out / "history.parquet"
    moved = out / "history.moved"
    history.rename(moved)  # an artifact the replay cannot find: it stops midway
    stopped = _raynas(env, "report", str(out), "--sync", "--uri", server.uri)
    assert stopped.returncode != 0
    moved.rename(history)
    synced = _raynas(env, "report", str(out), "--sync", "--uri", server.uri)
    assert synced.returncode == 0, synced.stderr[-2000:]
    again = _raynas(env, "report", str(out), "--sync", "--uri", server.uri)
    assert "sent 0 pending MLflow record(s)" in again.stdout
    client = mlflow.MlflowClient(server.uri)
    assert client.get_experiment_by_name("raynas") is None  # the configured experiment only
    (parent,) = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    assert parent.info.status == "FINISHED"  # not left RUNNING by the stopped replay
    steps = sorted(m.step for m in client.get_metric_history(parent.info.run_id,
                                                             "arch/valid_acc"))
    assert steps == list(range(1, 81))  # every evaluation, once
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"history.parquet"}


# ------------------------------------------------------ read-only and full file systems
def _tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs here: {proc.stderr.strip()}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_and_full_file_systems_give_one_line_and_lose_nothing(table_path, tmp_path,
                                                                         env):
    config = tmp_path / "table.yaml"
    config.write_text(TABLE_SEARCH.format(table=table_path)
                      + "tracking: {mlflow: false}\n")
    reference = tmp_path / "reference"
    assert _raynas(env, "search", str(config), "--out", str(reference)).returncode == 0
    readonly = tmp_path / "readonly"
    _tmpfs(readonly, "ro,size=1m")
    try:
        proc = _raynas(env, "search", str(config), "--out", str(readonly / "run"))
        assert proc.returncode == 4 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"raynas: error: cannot write the results folder {readonly / 'run'}: "
            "Read-only file system")
    finally:
        _unmount(readonly)
    full = tmp_path / "full"
    _tmpfs(full, "size=256k")
    try:
        filler = full / "filler"
        filler.write_bytes(b"\0" * (256 * 1024 - 48 * 1024))  # leave 48 KB
        out = full / "run"
        proc = _raynas(env, "search", str(config), "--out", str(out))
        assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"raynas: error: cannot write {out}/") and (
            "No space left on device" in last), last
        assert f"continue with: raynas search --resume {out}" in last
        filler.unlink()  # space again: the search resumes from what it had saved
        resumed = _raynas(env, "search", "--resume", str(out))
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _history(out) == _history(reference)
    finally:
        _unmount(full)
