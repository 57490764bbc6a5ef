"""A user's own training function (issue 20, item 2): ``evaluator: {kind: function,
entrypoint: ...}`` runs ``train_one(arch, context)`` in process and as Tune trials with
the same results for the same seed, resumes from its own checkpoint after a crash, and
a function that does not report the search metric gets an error naming both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.spaces import CustomSpace

RAYNAS = str(Path(sys.executable).parent / "raynas")

TRAIN = '''
import os
from pathlib import Path

import torch


def train_one(arch, context):
    """A real (tiny) torch training loop of a user's: a linear model whose width the
    architecture picks, trained with its own optimiser, reporting every epoch."""
    g = torch.Generator().manual_seed(context.seed)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] + x[:, 1] * arch["gain"] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(6, arch["width"]), torch.nn.ReLU(),
                                torch.nn.Linear(arch["width"], 2))
    torch.manual_seed(context.seed)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    start = 0
    if context.checkpoint is not None:
        model.load_state_dict(context.checkpoint["model"])
        start = context.checkpoint["epoch"]
        marker = os.environ.get("RESUMED_MARKER")
        if marker:
            Path(marker).write_text(str(start))
    for epoch in range(start, context.max_epochs):
        for i in range(0, 256, 32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
        crash = os.environ.get("CRASH_ONCE")
        if crash and epoch == 1 and not Path(crash).exists():
            Path(crash).write_text("crashed")
            raise RuntimeError("simulated crash after epoch 2's checkpoint")
        with torch.no_grad():
            acc = float((model(x).argmax(1) == y).float().mean()) * 100
        context.report({"valid_acc": acc, "test_acc": acc - 1.0},
                       checkpoint={"model": model.state_dict(), "epoch": epoch + 1})


def wrong_metric(arch, context):
    context.report({"accuracy": 1.0})
'''

SPACE = {"width": [2, 8, 32], "gain": [1, 2, 3]}


@pytest.fixture()
def user_train(tmp_path, monkeypatch):
    (tmp_path / "usertrain.py").write_text(TRAIN)
    (tmp_path / "space.yaml").write_text(
        "name: lin\ndecisions: {width: [2, 8, 32], gain: [1, 2, 3]}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("usertrain", None)



CONFIG = """
space: {file: space.yaml}
policy: {name: random}
evaluator: {kind: function, entrypoint: usertrain:train_one, epochs: 3}
resources: {max_concurrent_trials: 1, max_failures: 1}
tracking: {mlflow: false}
budget: 4
seed: 5
"""


def test_the_same_function_in_process_and_on_tune_gives_the_same_results(user_train, user_code_env):
    from raynas.evaluators.user import UserFunctionEvaluator
    from raynas.policies import make_policy
    from raynas.search import Budget, Search

    (user_train / "search.yaml").write_text(CONFIG)
    proc = subprocess.run([RAYNAS, "search", "search.yaml", "--out", "run", "--quiet"],
                          cwd=user_train, env=user_code_env(user_train), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exported" not in proc.stdout  # no network of raynas's to export
    on_tune = pq.read_table(user_train / "run" / "history.parquet").to_pylist()

    space = CustomSpace.from_yaml(user_train / "space.yaml")
    evaluator = UserFunctionEvaluator("usertrain:train_one", space, epochs=3, seed=5)
    result = Search(space, make_policy("random", space, seed=5), evaluator,
                    Budget(max_queries=4)).run()
    in_process = result.history.to_pylist()
    assert len(on_tune) == len(in_process) == 4
    assert sorted((r["arch"], r["valid_acc"], r["epoch"]) for r in on_tune) == sorted(
        (r["arch"], r["valid_acc"], r["epoch"]) for r in in_process)
    assert all(r["epoch"] == 3.0 for r in in_process)


def test_a_crashed_trial_resumes_from_the_functions_checkpoint(user_train, user_code_env):
    (user_train / "search.yaml").write_text(
        CONFIG.replace("budget: 4", "budget: 1")
        .replace("max_failures: 1", "max_failures: 1, checkpoint_every: 1"))
    reference = subprocess.run([RAYNAS, "search", "search.yaml", "--out", "ref", "--quiet"],
                               cwd=user_train, env=user_code_env(user_train), capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    env = user_code_env(user_train, CRASH_ONCE=str(user_train / "crashed"),
               RESUMED_MARKER=str(user_train / "resumed"))
    proc = subprocess.run([RAYNAS, "search", "search.yaml", "--out", "run", "--quiet"],
                          cwd=user_train, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (user_train / "crashed").exists()
    assert (user_train / "resumed").read_text() == "1"  # from epoch 1's checkpoint
    (row,) = pq.read_table(user_train / "run" / "history.parquet").to_pylist()
    (expected,) = pq.read_table(user_train / "ref" / "history.parquet").to_pylist()
    assert row["status"] == "ok" and row["arch"] == expected["arch"]
    assert row["valid_acc"] == pytest.approx(expected["valid_acc"])


def test_a_function_that_does_not_report_the_search_metric_is_named(user_train, user_code_env):
    from raynas.evaluators.user import MetricMismatchError, UserFunctionEvaluator

    space = CustomSpace.from_yaml(user_train / "space.yaml")
    evaluator = UserFunctionEvaluator("usertrain:wrong_metric", space)
    with pytest.raises(MetricMismatchError, match=r"reported \['accuracy'\] but not the "
                                                  r"search metric 'valid_acc'"):
        evaluator.evaluate([(0, 0)])
    (user_train / "bad.yaml").write_text(CONFIG.replace("train_one", "wrong_metric")
                                         .replace("budget: 4", "budget: 1")
                                         .replace("max_failures: 1", "max_failures: 0"))
    proc = subprocess.run([RAYNAS, "search", "bad.yaml", "--out", "bad", "--quiet"],
                          cwd=user_train, env=user_code_env(user_train), capture_output=True, text=True,
                          timeout=600)
    history = pq.read_table(user_train / "bad" / "history.parquet").to_pylist()
    assert proc.returncode != 0 and history[0]["status"] == "failed"
    # on Tune the history points at the trial's traceback, which names both metrics
    trial = history[0]["error"].split("traceback is in ")[1].split("/error.txt")[0]
    error = (user_train / "bad" / "tune" / trial / "error.txt").read_text()
    assert "reported ['accuracy'] but not the search metric 'valid_acc'" in error
    # and the search's last line says it, with the traceback's file
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("raynas: error: no evaluation succeeded: all 1 failed; the first "
                           "error: raynas.evaluators.user.MetricMismatchError: usertrain:"
                           "wrong_metric reported ['accuracy'] but not the search metric "
                           "'valid_acc'"), last
    assert f"(traceback: {user_train / 'bad' / 'tune' / trial / 'error.txt'})" in last


@pytest.mark.parametrize("text, message", [
    ("evaluator: {kind: function}", "a function evaluator needs one"),
    ("evaluator: {kind: training, entrypoint: a:b}", "only a function evaluator takes one"),
])
def test_function_config_errors(text, message):
    import yaml

    from raynas import config as cfg

    with pytest.raises(cfg.ConfigError, match=message):
        cfg.from_dict(yaml.safe_load(text))


def test_the_train_function_example_runs_as_written(tmp_path, user_code_env):
    """examples/train_function/ (a user's own torch loop on digits, ASHA on), copied as
    a user would, with a budget of 2."""
    import shutil

    example = Path(__file__).resolve().parents[1] / "examples" / "train_function"
    target = tmp_path / "train_function"
    shutil.copytree(example, target)
    proc = subprocess.run([RAYNAS, "search", "search.yaml", "--out", "run", "--budget", "2",
                           "--quiet"], cwd=target, env=user_code_env(target), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    history = pq.read_table(target / "run" / "history.parquet").to_pylist()
    assert len(history) == 2 and all(r["valid_acc"] > 0 for r in history)
