"""Does architecture matter in the embedded default? MNIST-1D over the 1-D CNN space.

The embedded default (``raynas search`` with no config: ``examples/mnist1d/search.yaml``)
should be a task where the search's choice shows. This script measures, in one run:

* **spread**: ``--random`` architectures drawn uniformly from the space (seeded), each
  trained exactly as the default trains them (its epochs, lr, batch size, seed), as Ray
  tasks on ``--num-cpus`` workers: their validation accuracies' min, quartiles, max;
* **validation noise**: ``--noise-archs`` of them (spread over the quartiles) retrained
  with ``--noise-seeds`` seeds: the seed-to-seed standard deviation of the validation
  accuracy (init and batch order), next to the binomial standard error of an accuracy
  measured on the validation split;
* **the search**: the default itself, ``raynas search --seed S`` for ``--search-seeds``
  seeds (a subprocess each, Ray start-up and MLflow included): its wall time, its best
  architecture's validation and test accuracy, and how far the best is above the median
  random architecture, in units of the validation noise (the larger of the two);
* **the exported best network**: ``best/model.onnx`` loaded with onnxruntime and
  ``best/weights.pt`` with ``raynas.export.load_network``; both score the test split
  and must agree with each other and with the reported test accuracy.

Targets (issue 20): spread >= 10 pp; best - median random >= 3x the validation noise;
the default finishes in <= 3 minutes on 2 CPUs; the exported best is loadable.

Usage:

    python benchmarks/default_task.py [--random 48] [--noise-archs 4] [--noise-seeds 5]
        [--search-seeds 3] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _train(space_file: str, archs: list, seeds: list[int], epochs: int) -> list[dict]:
    """Train ``archs[i]`` with ``seeds[i]`` as the default does; one Ray task per pair."""
    import ray

    from raynas import config as cfg
    from raynas.data import load_dataset
    from raynas.evaluators.training import TrainingEvaluator
    from raynas.spaces.custom import CustomSpace

    ev = cfg.load(None).evaluator
    data_ref = ray.put(load_dataset(ev.dataset, seed=0))

    @ray.remote(num_cpus=1)
    def train(arch, seed, data):
        space = CustomSpace.from_yaml(space_file)
        trainer = TrainingEvaluator(space, data, epochs=epochs, lr=ev.lr,
                                    batch_size=ev.batch_size, weight_decay=ev.weight_decay,
                                    seed=seed, device="cpu", num_threads=1)
        start = time.perf_counter()
        metrics = trainer.evaluate([arch])[0].metrics
        return {"valid": metrics["valid_acc"], "test": metrics["test_acc"],
                "seconds": time.perf_counter() - start}

    return ray.get([train.remote(a, s, data_ref) for a, s in zip(archs, seeds)])


def _search(seed: int, budget: int | None, epochs: int | None, out: Path) -> dict:
    """The default search as a user runs it, in a fresh process."""
    raynas = str(Path(sys.executable).parent / "raynas")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "MPLBACKEND": "Agg"}
    args = [raynas, "search", "--seed", str(seed), "--out", str(out), "--quiet"]
    if budget is not None:
        args += ["--budget", str(budget)]
    if epochs is not None:  # smoke runs only: a config with fewer epochs
        from raynas import config as cfg

        data = cfg.load(None).to_dict()
        data["evaluator"]["epochs"] = epochs
        config = out.parent / f"epochs{epochs}.yaml"
        cfg.dump(cfg.from_dict(data), config)
        args.insert(2, str(config))
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"raynas search failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    best = json.loads((out / "best" / "metrics.json").read_text())
    return {"wall": wall, "valid": best["valid_acc"], "test": best["test_acc"],
            "arch": (out / "best" / "arch.txt").read_text().strip(), "out": out}


def _check_export(out: Path) -> dict:
    """Load best/model.onnx and best/weights.pt; score both on the test split."""
    import onnxruntime
    import torch

    from raynas import config as cfg
    from raynas.data import load_dataset
    from raynas.export import load_network
    from raynas.spaces.custom import CustomSpace

    config = cfg.load(out / "config.yaml")
    data = load_dataset(config.evaluator.dataset, seed=config.seed)
    session = onnxruntime.InferenceSession(str(out / "best" / "model.onnx"))
    name = session.get_inputs()[0].name
    x = data.test_x.numpy()
    onnx_pred = np.concatenate([session.run(None, {name: x[i:i + 1]})[0]
                                for i in range(len(x))]).argmax(1)
    space = CustomSpace.from_yaml(config.space.options["file"])
    model = load_network(space, out / "best", data.num_classes, data.in_channels,
                         data.input_shape).eval()
    with torch.no_grad():
        torch_pred = model(data.test_x).argmax(1).numpy()
    y = data.test_y.numpy()
    return {"onnx_test": 100.0 * float((onnx_pred == y).mean()),
            "torch_test": 100.0 * float((torch_pred == y).mean()),
            "agree": float((onnx_pred == torch_pred).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--random", type=int, default=48, help="random architectures")
    parser.add_argument("--noise-archs", type=int, default=4)
    parser.add_argument("--noise-seeds", type=int, default=5)
    parser.add_argument("--search-seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None,
                        help="architectures per search (default: the default's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="smoke runs only (default: the default's)")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    import ray

    from raynas import config as cfg
    from raynas.spaces.custom import CustomSpace

    default = cfg.load(None)
    epochs = args.epochs or default.evaluator.epochs
    space_file = default.space.options["file"]
    space = CustomSpace.from_yaml(space_file)
    rng = np.random.default_rng(2020)
    archs = []
    while len(archs) < min(args.random, space.size):
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False,
             log_to_driver=False)  # a new instance, never another session's cluster
    start = time.perf_counter()
    spread = _train(space_file, archs, [default.seed] * len(archs), epochs)
    spread_s = time.perf_counter() - start
    valid = np.array([r["valid"] for r in spread])
    test = np.array([r["test"] for r in spread])
    order = np.argsort(valid)
    picks = sorted({int(order[round(q * (len(order) - 1))])
                    for q in np.linspace(0.25, 1.0, args.noise_archs)})
    noise_runs = _train(space_file, [archs[i] for i in picks for _ in range(args.noise_seeds)],
                        [s for _ in picks for s in range(1, args.noise_seeds + 1)], epochs)
    ray.shutdown()
    per_arch = [[r["valid"] for r in noise_runs[k * args.noise_seeds:(k + 1) * args.noise_seeds]]
                for k in range(len(picks))]
    seed_sd = statistics.mean(statistics.stdev(v) for v in per_arch) if args.noise_seeds > 1 \
        else float("nan")
    median = float(np.median(valid))
    n_valid = 800  # MNIST-1D: 4,000 training sequences, 20 % held out
    binomial = 100.0 * (median / 100 * (1 - median / 100) / n_valid) ** 0.5
    noise = max(seed_sd if seed_sd == seed_sd else 0.0, binomial)

    print(f"# The embedded default: {space.name} space ({space.size} architectures) on "
          f"{default.evaluator.dataset}, {epochs} epochs, lr {default.evaluator.lr}")
    print(f"\n## Spread: {len(archs)} random architectures ({spread_s:.0f} s on "
          f"{args.num_cpus} CPUs, {statistics.mean(r['seconds'] for r in spread):.1f} s each)")
    print("| | min | 25 % | median | 75 % | max | max - min |")
    print("|---|---|---|---|---|---|---|")
    for name, acc in (("valid_acc", valid), ("test_acc", test)):
        q = np.percentile(acc, [0, 25, 50, 75, 100])
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in q) + f" | {q[4] - q[0]:.1f} pp |")
    print(f"\n## Validation noise: {len(picks)} architectures x {args.noise_seeds} seeds")
    for k, i in enumerate(picks):
        v = per_arch[k]
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        print(f"- valid {valid[i]:.1f} at seed {default.seed}; seeds 1-{args.noise_seeds}: "
              f"mean {statistics.mean(v):.2f}, sd {sd:.2f} pp")
    print(f"- seed-to-seed sd (mean over architectures): {seed_sd:.2f} pp; binomial standard "
          f"error at the median ({median:.1f} %, {n_valid} sequences): {binomial:.2f} pp; "
          f"noise = the larger, {noise:.2f} pp")

    print(f"\n## The default search (raynas search --seed S), {args.search_seeds} seeds")
    print("| seed | wall (s) | best valid_acc | its test_acc | best - median random | "
          "in noise units |")
    print("|---|---|---|---|---|---|")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.search_seeds):
            run = _search(seed, args.budget, args.epochs, Path(tmp) / f"seed{seed}")
            gap = run["valid"] - median
            print(f"| {seed} | {run['wall']:.1f} | {run['valid']:.2f} | {run['test']:.2f} | "
                  f"{gap:+.2f} pp | {gap / noise:.1f}x |", flush=True)
            runs.append(run)
        export = _check_export(runs[0]["out"])
    walls = [r["wall"] for r in runs]
    gaps = [r["valid"] - median for r in runs]
    print(f"\n- median random architecture: valid {median:.2f}, test "
          f"{float(np.median(test)):.2f}; the search's best: valid "
          f"{statistics.mean(r['valid'] for r in runs):.2f}, test "
          f"{statistics.mean(r['test'] for r in runs):.2f} (mean over seeds)")
    print(f"- exported best (seed 0): onnxruntime test {export['onnx_test']:.2f}, "
          f"load_network test {export['torch_test']:.2f}, reported {runs[0]['test']:.2f}; "
          f"predictions agree on {100 * export['agree']:.1f} %")
    spread_pp = float(valid.max() - valid.min())
    print("\n## Targets")
    print(f"- spread >= 10 pp: {spread_pp:.1f} pp: {'met' if spread_pp >= 10 else 'MISSED'}")
    print(f"- best - median >= 3x noise ({3 * noise:.2f} pp): smallest gap {min(gaps):.2f} pp: "
          f"{'met' if min(gaps) >= 3 * noise else 'MISSED'}")
    print(f"- default <= 180 s on {args.num_cpus} CPUs: slowest {max(walls):.1f} s: "
          f"{'met' if max(walls) <= 180 else 'MISSED'}")
    loadable = export["agree"] == 1.0 and abs(export["torch_test"] - runs[0]["test"]) < 0.05
    print(f"- exported best loadable, same test accuracy: {'met' if loadable else 'MISSED'}")


if __name__ == "__main__":
    main()
