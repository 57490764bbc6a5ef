"""A user's own network over a user's own space (issue 20, item 1): a ``CustomSpace``
with a builder ``module:function(arch_dict, num_classes, input_shape)``, trained by
raynas on Tune, interrupted and resumed, exported and registered; and the builder's
errors. The space, the builder module and the data are written here, as a user would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raynas.errors import ArgumentError, RaynasError
from raynas.spaces import CustomSpace

RAYNAS = str(Path(sys.executable).parent / "raynas")

BUILDER = '''
from torch import nn

def build(arch, num_classes, input_shape):
    (features,) = input_shape
    act = {"relu": nn.ReLU, "gelu": nn.GELU}[arch["act"]]
    layers, width = [], features
    for _ in range(arch["layers"]):
        layers += [nn.Linear(width, arch["units"]), act()]
        if arch["dropout"]:
            layers.append(nn.Dropout(arch["dropout"]))
        width = arch["units"]
    return nn.Sequential(*layers, nn.Linear(width, num_classes))

def conv1d(arch, num_classes, input_shape):
    channels, length = input_shape
    return nn.Sequential(nn.Conv1d(channels, arch["width"], arch["kernel"], padding="same"),
                         nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(arch["width"], num_classes))

def not_a_module(arch, num_classes, input_shape):
    return "a string"
'''

SPACE = """
name: mlp
decisions:
  layers: [1, 2, 3]
  units: [8, 32]
  act: [relu, gelu]
  dropout: [0.0, 0.2]
builder: usernets:build
"""


@pytest.fixture()
def user_files(tmp_path, monkeypatch):
    """usernets.py (the builder), mlp.yaml (the space), features.npz (the data)."""
    from sklearn.datasets import make_classification

    (tmp_path / "usernets.py").write_text(BUILDER)
    (tmp_path / "mlp.yaml").write_text(SPACE)
    x, y = make_classification(300, 12, n_informative=6, n_classes=3, random_state=0)
    np.savez(tmp_path / "features.npz", x=x, y=y)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("usernets", None)


def test_the_builder_gets_typed_choices_and_its_network_is_counted(user_files):
    from raynas.spaces.cost import count_any_flops, network_cost

    space = CustomSpace.from_yaml(user_files / "mlp.yaml")
    arch = space.from_str("|layers=2|units=32|act=gelu|dropout=0.2|")
    assert space.arch_dict(arch) == {"layers": 2, "units": 32, "act": "gelu", "dropout": 0.2}
    model = space.build(arch, 3, input_shape=(12,))
    assert model(torch.zeros(5, 12)).shape == (5, 3)
    # multiply-adds by hand: 12*32 + 32*32 + 32*3
    assert count_any_flops(model, (12,)) == 12 * 32 + 32 * 32 + 32 * 3
    cost = network_cost(model, (12,), any_layer=True)
    assert cost.params == pytest.approx((12 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3) / 1e6)
    # a conv1d net: the hook counter of the cell spaces sees only its linear layer
    conv = CustomSpace("c", {"width": [4], "kernel": [5]}, builder="usernets:conv1d")
    net = conv.build((0, 0), 2, input_shape=(3, 20))
    assert count_any_flops(net, (3, 20)) == 20 * 4 * 3 * 5 + 4 * 2
    assert space.describe()["builder"] == "usernets:build"


def test_builder_errors_are_clear(user_files):
    with pytest.raises(ArgumentError, match="cannot import nosuch"):
        CustomSpace("x", {"a": [1, 2]}, builder="nosuch.module:build")
    with pytest.raises(ArgumentError, match="usernets has no missing"):
        CustomSpace("x", {"a": [1, 2]}, builder="usernets:missing")
    with pytest.raises(RaynasError, match="has no network builder"):
        CustomSpace("x", {"a": [1, 2]}).build((0,), 2, input_shape=(3,))
    bad = CustomSpace("x", {"a": [1, 2]}, builder="usernets:not_a_module")
    with pytest.raises(ArgumentError, match="returned str, not a torch.nn.Module"):
        bad.build((0,), 2, input_shape=(3,))
    (user_files / "typo.yaml").write_text("name: t\ndecisions: {a: [1]}\nbuildr: usernets:build\n")
    with pytest.raises(ArgumentError, match=r"typo.yaml: .*unknown key\(s\) \['buildr'\]"):
        CustomSpace.from_yaml(user_files / "typo.yaml")


def test_a_constraint_keeps_ignored_decisions_from_duplicating_networks():
    """The conditional-decision idiom: width2 matters only with depth 2; the constraint
    pins it otherwise, so no two architectures build the same network."""
    space = CustomSpace("cond", {"depth": [1, 2], "width1": [8, 16], "width2": [8, 16]},
                        constraint=lambda a: a["depth"] == 2 or a["width2"] == 8)
    archs = [space.arch_dict(a) for a in space]
    assert len(archs) == 6 and all(a["width2"] == 8 for a in archs if a["depth"] == 1)
    rng = np.random.default_rng(0)
    assert all(space.is_valid(space.sample(rng)) for _ in range(50))



CONFIG = """
space: {file: mlp.yaml}
policy: {name: random}
evaluator: {kind: training, dataset: npz, path: features.npz, epochs: 3, batch_size: 32,
            measure_latency: false}
resources: {max_concurrent_trials: 1}
budget: 4
seed: 3
"""


def test_a_user_network_searched_on_tune_interrupted_resumed_exported_registered(user_files, user_code_env):
    """``raynas search`` with ``space: {file, builder}`` on Tune trials: a SIGINT after
    the first trial, ``--resume`` to the end, the same architectures as an uninterrupted
    run, the best network exported (onnxruntime runs it) and registered in MLflow."""
    import mlflow
    import onnxruntime

    from raynas.tracking import default_uri

    (user_files / "search.yaml").write_text(CONFIG)
    env = user_code_env(user_files)
    reference = user_files / "reference"
    done = subprocess.run([RAYNAS, "search", "search.yaml", "--out", str(reference), "--quiet"],
                          cwd=user_files, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = pq.read_table(reference / "history.parquet")["arch"].to_pylist()
    assert len(expected) == 4

    out = user_files / "run"
    proc = subprocess.Popen([RAYNAS, "search", "search.yaml", "--out", str(out), "--quiet"],
                            cwd=user_files, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        history = out / "history.parquet"
        if history.is_file() and pq.read_table(history).num_rows >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    printed, _ = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the search finished before the interrupt")  # never seen: 4 trials left
    assert proc.returncode == 130, printed
    assert f"raynas search --resume {out}" in printed
    resumed = subprocess.run([RAYNAS, "search", "--resume", str(out), "--quiet"], cwd=user_files,
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    history = pq.read_table(out / "history.parquet")
    assert sorted(history["arch"].to_pylist()) == sorted(expected)
    assert {"params", "flops", "valid_acc", "test_acc"} <= set(history.column_names)

    best = (out / "best" / "arch.txt").read_text().strip()
    session = onnxruntime.InferenceSession(str(out / "best" / "model.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name:
                                   np.zeros((7, 12), dtype=np.float32)})
    assert logits.shape == (7, 3)
    from raynas.export import load_network

    space = CustomSpace.from_yaml(user_files / "mlp.yaml")
    model = load_network(space, out / "best", 3, 12, input_shape=(12,))
    assert model(torch.zeros(2, 12)).shape == (2, 3)
    client = mlflow.MlflowClient(default_uri(out))
    (registered,) = client.search_registered_models()
    assert registered.name == "raynas-mlp-features"
    version = client.get_model_version(registered.name, registered.latest_versions[0].version)
    assert best in version.description


def test_a_bad_builder_in_a_config_stops_before_anything_runs(user_files, user_code_env):
    (user_files / "bad.yaml").write_text(CONFIG.replace("mlp.yaml", "bad_space.yaml"))
    (user_files / "bad_space.yaml").write_text(SPACE.replace("usernets:build", "usernets:nope"))
    proc = subprocess.run([RAYNAS, "search", "bad.yaml", "--out", str(user_files / "o")],
                          cwd=user_files, env=user_code_env(user_files), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "usernets has no nope" in proc.stderr
    assert "Traceback" not in proc.stderr and not (user_files / "o" / "config.yaml").exists()
    (user_files / "typo.yaml").write_text(CONFIG.replace("file: mlp.yaml", "file: absent.yaml"))
    proc = subprocess.run([RAYNAS, "search", "typo.yaml", "--out", str(user_files / "o")],
                          cwd=user_files, env=user_code_env(user_files), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "absent.yaml" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_mlp_example_runs_as_written(user_files, user_code_env):
    """examples/mlp_npz/ (a user-style MLP space on a tabular .npz), copied as a user
    would, with a tiny budget."""
    import shutil

    example = Path(__file__).resolve().parents[1] / "examples" / "mlp_npz"
    target = user_files / "mlp_npz"
    shutil.copytree(example, target)
    subprocess.run([sys.executable, "make_data.py"], cwd=target, check=True, timeout=120)
    proc = subprocess.run([RAYNAS, "search", "search.yaml", "--out", str(target / "run"),
                           "--budget", "2", "--quiet"], cwd=target, env=user_code_env(target),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "evaluated 2 architectures" in proc.stdout
    assert (target / "run" / "best" / "model.onnx").is_file()
