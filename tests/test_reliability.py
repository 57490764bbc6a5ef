"""Regression tests of issue 18: no silently wrong results, no code run from a results
folder, explicit clusters, honest exit codes and messages. Each test failed before its
fix. The fault-injection matrix (signals, a foreign Ray head, a tracking server that
goes down, crafted pickles in real training searches) is in ``test_faults.py``."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.bench import BenchConfig, run_bench
from raynas.errors import (
    EXIT_NO_SUCCESS,
    EXIT_STARTUP,
    CheckpointError,
    ConfigError,
    RaynasError,
    StartupError,
    TableError,
    UntrustedFolderError,
)
from raynas.evaluators import TabularEvaluator
from raynas.policies import make_policy
from raynas.search import Budget, Search
from raynas.spaces import NB201Space
from raynas.tables import BenchmarkTable

RAYNAS = str(Path(sys.executable).parent / "raynas")


def _raynas(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           **(env or {})}
    return subprocess.run([RAYNAS, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


# ------------------------------------------------ 1, 16: bench reuses only identical searches
def _bench(table_path, out, **kw) -> BenchConfig:
    settings = {"datasets": ("cifar10",), "policies": ("random", "ls"), "seeds": 2,
                "budget": 20, **kw}
    return BenchConfig(benchmark=table_path, out=out, **settings)


def _at(curves: pa.Table, policy: str, query: int) -> list[float]:
    rows = [r for r in curves.to_pylist() if r["policy"] == policy and r["query"] == query]
    return [r["regret"] for r in sorted(rows, key=lambda r: r["seed"])]


def test_bench_rerun_with_other_settings_recomputes(ray_local, table_path, tmp_path, caplog):
    out = tmp_path / "bench"
    short = run_bench(_bench(table_path, out), progress=False)
    longer = run_bench(_bench(table_path, out, budget=40), progress=False)
    assert longer.filter(pa.compute.equal(longer["query"], 40)).num_rows == 4  # not budget 20
    fresh = run_bench(_bench(table_path, tmp_path / "fresh", budget=40), progress=False)
    assert longer.equals(fresh)  # exactly what a bench into a new folder gives
    summary = (out / "summary.md").read_text()
    assert "budget 40 queries" in summary and "reused" not in summary
    # another base seed and another search metric are other searches too
    seeded = run_bench(_bench(table_path, out, base_seed=7), progress=False)
    assert _at(seeded, "random", 20) != _at(short, "random", 20)
    by_test = run_bench(_bench(table_path, out, search_metric="test_acc"), progress=False)
    assert _at(by_test, "ls", 20) != _at(short, "ls", 20)
    # identical settings: every search reused, and the rerun says so
    with caplog.at_level(logging.INFO, logger="raynas.bench.runner"):
        again = run_bench(_bench(table_path, out), progress=False)
    assert again.equals(short)
    assert "reusing 4 of 4 searches" in caplog.text and "made with other settings" in caplog.text
    assert "4 of 4 searches reused from an earlier run with identical settings" in (
        out / "summary.md").read_text()
    # each result file records the settings it was made with
    meta = pq.read_schema(next((out / "runs").glob("random__cifar10__0__*.parquet"))).metadata
    assert json.loads(meta[b"raynas.settings"])["budget"] in (20, 40)


def test_truncated_bench_file_is_recomputed(ray_local, table_path, tmp_path, caplog):
    out = tmp_path / "bench"
    first = run_bench(_bench(table_path, out), progress=False)
    victim = sorted((out / "runs").glob("ls__*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])  # what a crash mid-write used to leave
    with caplog.at_level(logging.WARNING, logger="raynas.bench.store"):
        again = run_bench(_bench(table_path, out), progress=False)
    assert "is unreadable" in caplog.text and victim.name in caplog.text
    assert again.equals(first)
    assert not list((out / "runs").glob("*.tmp"))  # written through a temporary file


# ------------------------------------- 7: searches where nothing succeeds, sparse tables
@pytest.fixture()
def sparse_table(nb201_table, tmp_path) -> Path:
    """A table of 6 of the space's 15,625 cells."""
    source = pq.read_table(nb201_table.path)
    path = tmp_path / "sparse.parquet"
    pq.write_table(source.slice(0, 6), path)
    return path


def test_search_where_every_evaluation_fails_reports_it(sparse_table):
    table = BenchmarkTable.load(sparse_table)
    missing = [a for a in NB201Space() if table.row(a) is None][:3]

    class Proposes:  # a user policy that only proposes cells the table lacks
        name, seed = "proposes", 0

        def __init__(self):
            self.space, self.told = table.space, []
            from raynas.types import Objective

            self.objective = Objective()

        def ask(self, n):
            return [missing[(len(self.told) + i) % 3] for i in range(n)]

        def tell(self, archs, results):
            self.told += results

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

        def hyperparameters(self):
            return {}

    policy = Proposes()
    result = Search(table.space, policy, TabularEvaluator(table, "cifar10"),
                    Budget(max_queries=3)).run()
    assert result.incumbent is None and result.queries == 3
    assert all(not r.ok and "not in the table" in r.error for r in policy.told)


def test_bench_on_a_sparse_table_reports_coverage_and_empty_searches(ray_local, sparse_table,
                                                                    tmp_path):
    out = tmp_path / "bench"
    curves = run_bench(_bench(sparse_table, out, policies=("random",), budget=5), progress=False)
    assert np.isnan(np.asarray(curves["regret"].to_pylist(), dtype=float)).any()
    summary = (out / "summary.md").read_text()
    assert "covers 0.04% of the space's 15625 architectures" in summary
    assert "searches had no successful evaluation" in summary


def test_cli_search_with_no_success_exits_3_with_the_reason(sparse_table, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"policy: {{name: random}}\nevaluator: {{kind: tabular, path: "
                      f"{sparse_table}, dataset: cifar10}}\ntracking: {{mlflow: false}}\n"
                      "budget: 2\nseed: 3\n")
    proc = _raynas("search", str(config), "--out", str(tmp_path / "run"))
    assert proc.returncode == EXIT_NO_SUCCESS, proc.stderr
    assert "no evaluation succeeded: all 2 failed; the first error:" in proc.stderr
    assert "is not in the table" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "summary.md").is_file()  # the report is written all the same


# ----------------------------------------------------------- 8: resources one node can't give
def test_cpus_per_trial_above_the_cluster_is_refused(ray_local, tmp_path):
    from raynas.data import load_digits
    from raynas.evaluators import TrainingEvaluator
    from raynas.tune import TuneSettings, run_tune

    space = NB201Space(channels=4, cells_per_stage=1)
    evaluator = TrainingEvaluator(space, load_digits(input_size=8), epochs=1)
    with pytest.raises(StartupError, match="cpus_per_trial=3 but the largest node of the Ray "
                                           "cluster has 2 CPU"):
        run_tune(make_policy("random", space, seed=0), evaluator,
                 TuneSettings(num_trials=1, cpus_per_trial=3), tmp_path, verbose=0)


# ------------------------------------------------------------------ 9: exit statuses
def test_cli_keeps_the_traceback_of_errors_raynas_does_not_expect(monkeypatch, capsys, tmp_path):
    """Only raynas's own errors become one line; a bug elsewhere keeps its traceback."""
    from raynas import cli

    def bug(args):
        return {}["valid_acc"]  # what item 6's crash looked like

    monkeypatch.setitem(cli.COMMANDS, "report", bug)
    with pytest.raises(KeyError):
        cli.main(["report", str(tmp_path)])

    def startup(args):
        raise StartupError("no cluster")

    monkeypatch.setitem(cli.COMMANDS, "report", startup)
    assert cli.main(["report", str(tmp_path)]) == EXIT_STARTUP
    assert capsys.readouterr().err.strip() == "raynas: error: no cluster"

    def full_disk(args):
        raise OSError(28, "No space left on device", str(tmp_path / "history.parquet"))

    monkeypatch.setitem(cli.COMMANDS, "report", full_disk)
    assert cli.main(["report", str(tmp_path)]) == EXIT_STARTUP
    assert capsys.readouterr().err.strip() == (
        f"raynas: error: cannot write {tmp_path / 'history.parquet'}: No space left on device")


def test_user_mistakes_are_raynas_errors():
    """Argument checks raise raynas's own types (still ValueError / TypeError)."""
    space = NB201Space()
    for bad in ([0.5] * 6, [True] * 6, "012340"):
        with pytest.raises(RaynasError) as info:
            space.validate(bad)
        assert isinstance(info.value, TypeError)
    with pytest.raises(RaynasError):
        Budget(max_queries=0)
    with pytest.raises(RaynasError) as info:
        make_policy("rea", space, tournament=3)
    assert "bad hyperparameters" in str(info.value)


# ------------------------------------------------ 11, 12, 14: configs and start-up failures
def test_empty_config_is_an_error_that_names_the_default(tmp_path):
    for text in ("", "# only a comment\n", "null\n"):
        config = tmp_path / "empty.yaml"
        config.write_text(text)
        with pytest.raises(ConfigError, match="the config is empty; to run the embedded "
                                              "default search, run `raynas search` with no"):
            from raynas import config as cfg

            cfg.load(config)


def test_relative_paths_are_relative_to_the_config_file(table_path, tmp_path):
    from raynas import config as cfg

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "table.parquet").write_bytes(Path(table_path).read_bytes())
    (folder / "c.yaml").write_text("evaluator: {kind: tabular, path: table.parquet, dataset: "
                                   "cifar10}\npolicy: {name: catch, checkpoint: ../catch.json}\n")
    loaded = cfg.load(folder / "c.yaml")
    assert loaded.evaluator.path == str(folder / "table.parquet")
    assert loaded.policy.options["checkpoint"] == str(tmp_path / "catch.json")
    # the search saved from it resumes from any directory
    out = tmp_path / "run"
    config = folder / "t.yaml"
    config.write_text("evaluator: {kind: tabular, path: table.parquet, dataset: cifar10}\n"
                      "policy: {name: random}\ntracking: {mlflow: false}\nbudget: 5\n")
    assert _raynas("search", str(config), "--out", str(out), cwd=tmp_path).returncode == 0
    (out / "checkpoint.json").unlink()
    (out / "history.parquet").unlink()  # nothing evaluated yet: the resume starts over
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _raynas("search", "--resume", str(out), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 5 architectures" in proc.stdout


def test_a_search_that_fails_to_start_leaves_no_config(table_path, tmp_path):
    out = tmp_path / "run"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"evaluator: {{kind: tabular, path: {table_path}, dataset: cifar11}}\n"
                   "tracking: {mlflow: false}\nbudget: 5\n")
    proc = _raynas("search", str(bad), "--out", str(out))
    assert proc.returncode == 2 and "did you mean 'cifar10'" in proc.stderr
    assert not (out / "config.yaml").exists()
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace("cifar11", "cifar10"))
    proc = _raynas("search", str(good), "--out", str(out))  # the corrected rerun is not refused
    assert proc.returncode == 0, proc.stderr


def test_unwritable_results_folder_is_one_line(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("not a folder")
    proc = _raynas("search", "--out", str(parent / "run"))
    assert proc.returncode == EXIT_STARTUP
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"raynas: error: cannot write the results folder {parent / 'run'}")
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------ 13: resume without checkpoint
def test_resume_without_its_checkpoint_is_refused(nb201_table, cifar10, tmp_path):
    policy = make_policy("ls", nb201_table.space, seed=1)
    Search(nb201_table.space, policy, cifar10, Budget(max_queries=10), out_dir=tmp_path).run()
    history = (tmp_path / "history.parquet").read_bytes()
    (tmp_path / "checkpoint.json").unlink()
    again = Search(nb201_table.space, make_policy("ls", nb201_table.space, seed=1), cifar10,
                   Budget(max_queries=20), out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="it has history.parquet but no checkpoint.json"):
        again.run(resume=True)
    assert (tmp_path / "history.parquet").read_bytes() == history  # nothing overwritten


# ------------------------------------------------------------------- 15: silent coercion
def test_infinite_metrics_are_rejected(nb201_table, tmp_path):
    source = pq.read_table(nb201_table.path).slice(0, 20).to_pydict()
    source["cifar10_valid_acc"][3] = math.inf
    path = tmp_path / "inf.parquet"
    pq.write_table(pa.table(source), path)
    with pytest.raises(TableError, match="'cifar10_valid_acc' has 1 infinite value"):
        BenchmarkTable.load(path)


# ----------------------------------------------------------- 4: signatures of Tune's files
@pytest.fixture()
def trust_key(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_TRUST_KEY", str(tmp_path / "key"))


def _fake_experiment(root: Path) -> Path:
    """A Tune experiment's layout: top-level state files and a trial folder."""
    exp = root / "tune"
    (exp / "trial_1").mkdir(parents=True)
    (exp / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    (exp / "experiment_state-1.json").write_text("{}")
    (exp / "trial_1" / "params.pkl").write_bytes(pickle.dumps({"arch": "x"}))
    (exp / "trial_1" / "result.json").write_text("{}")
    return exp


class _Marker:
    """Unpickling it creates a file: what a crafted tuner.pkl does."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_signed_experiment_verifies_and_a_crafted_pickle_is_refused(trust_key, tmp_path):
    from raynas.tune import trust

    exp = _fake_experiment(tmp_path)
    signer = trust.TuneSigner(None, tmp_path)
    signer.sign_staged(exp)
    assert trust.verify_experiment(tmp_path, str(exp)) == []
    marker = tmp_path / "PWNED"
    (exp / "tuner.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(UntrustedFolderError, match="tuner.pkl is not signed by this machine's "
                                                   "raynas key.*--trust-folder"):
        trust.verify_experiment(tmp_path, str(exp))
    assert not marker.exists()  # checked by its bytes, never loaded
    # an added top-level file is refused too; --trust-folder lets the user decide
    (exp / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    (exp / "search_gen_state-9.json").write_text("{}")
    with pytest.raises(UntrustedFolderError, match="search_gen_state-9.json"):
        trust.verify_experiment(tmp_path, str(exp))
    assert trust.verify_experiment(tmp_path, str(exp), trust=True) == []


def test_unsigned_trial_pickles_are_set_aside(trust_key, tmp_path):
    from raynas.tune import trust

    exp = _fake_experiment(tmp_path)
    trust.TuneSigner(None, tmp_path).sign_staged(exp)
    (exp / "trial_1" / "error.pkl").write_bytes(pickle.dumps(_Marker(tmp_path / "PWNED")))
    assert trust.verify_experiment(tmp_path, str(exp)) == ["trial_1/error.pkl"]
    assert not (exp / "trial_1" / "error.pkl").exists()
    assert (exp / "trial_1" / "error.pkl.untrusted").exists()
    assert trust.verify_experiment(tmp_path, str(exp)) == []  # and never checked again


def test_another_key_or_no_signatures_is_refused(trust_key, tmp_path, monkeypatch):
    from raynas.tune import trust

    exp = _fake_experiment(tmp_path)
    with pytest.raises(UntrustedFolderError, match="the folder has no signatures"):
        trust.verify_experiment(tmp_path, str(exp))
    trust.TuneSigner(None, tmp_path).sign_staged(exp)
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("RAYNAS_TRUST_KEY", str(tmp_path / "another-key"))  # another machine
    with pytest.raises(UntrustedFolderError, match="raynas on this machine did not write them"):
        trust.verify_experiment(tmp_path, str(exp))


# ------------------------------------------------------------------ interrupts
class _SwallowedInterrupt:
    """A callback in which SIGINT arrives inside code that swallows every exception (as
    SQLAlchemy's garbage-collection hooks under MLflow do: "Exception ignored in ...")."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def __getattr__(self, name):  # the other Callback hooks do nothing
        return lambda *args, **kwargs: None

    def on_step(self, search, rows):
        import signal

        if search.step == self.at_step:
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException:  # noqa: BLE001 - the library that loses it
                pass


def test_a_swallowed_ctrl_c_still_stops_the_search_at_a_consistent_point(nb201_table, cifar10,
                                                                        tmp_path):
    from raynas import interrupts

    space = nb201_table.space

    def search(callbacks=()):
        return Search(space, make_policy("rea", space, seed=1), cifar10, Budget(max_queries=60),
                      out_dir=tmp_path, callbacks=list(callbacks))

    expected = Search(space, make_policy("rea", space, seed=1), cifar10,
                      Budget(max_queries=60)).run()
    with interrupts.catching():
        with pytest.raises(KeyboardInterrupt):
            search([_SwallowedInterrupt(at_step=20)]).run()
        assert interrupts.requested()
    assert not interrupts.requested()
    assert pq.read_table(tmp_path / "history.parquet").num_rows < 60
    resumed = search().run(resume=True)
    assert resumed.history["arch"].to_pylist() == expected.history["arch"].to_pylist()


def test_cli_reports_an_interrupt_whose_exception_was_swallowed(table_path, tmp_path, monkeypatch,
                                                                capsys):
    import signal

    from raynas import cli

    def finishes_but_was_interrupted(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001
            pass
        return 0

    monkeypatch.setitem(cli.COMMANDS, "search", finishes_but_was_interrupted)
    before = signal.getsignal(signal.SIGINT)  # Tune leaves its own behind in this process
    status = cli.main(["search", "--out", str(tmp_path / "out")])
    assert status == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # restored
