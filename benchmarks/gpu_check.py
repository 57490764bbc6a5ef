"""GPU readiness: four Tune trials sharing one GPU, and the supernet memory ratio on CUDA.

One prepared script for a machine with a GPU (run it whenever one is lent; record what it
prints in ``benchmarks/README.md``). It:

1. prints the GPU (name, memory, driver, torch's CUDA build);
2. runs a short real search, the embedded default (MNIST-1D, 1-D CNNs) with
   ``gpus_per_trial: 0.25`` and four trials at once, as ``raynas search`` runs it, while
   a sampler thread polls ``nvidia-smi`` every ``--poll`` seconds: per process on the GPU
   (each Tune trial is one) its peak memory, and the GPU's utilisation and memory;
3. checks that the trials ran on CUDA (trial processes seen on the GPU, at most four at
   once, every architecture evaluated) and that the search's best network was exported;
4. measures MANAS's sampled-path supernet against DARTS's mixed-op one on CUDA
   (``benchmarks/manas_memory.py``'s measurement, ``torch.cuda.max_memory_allocated``
   per step): the ratio must stay <= 0.25 as on CPU;
5. prints one summary table, each check ``ok`` or ``FAILED``; the exit status is 1 if any
   check failed.

Where no GPU is visible it exits at once with status 2 and one line saying so.

Usage:

    python benchmarks/gpu_check.py [--trials 8] [--epochs 4] [--poll 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _smi(query: str, what: str = "--query-gpu") -> list[list[str]]:
    out = subprocess.run(["nvidia-smi", f"{what}={query}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        return []
    return [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line]


class Sampler(threading.Thread):
    """Polls nvidia-smi: per-process GPU memory (MiB), GPU utilisation (%) and memory."""

    def __init__(self, poll: float) -> None:
        super().__init__(daemon=True)
        self.poll, self.stop = poll, threading.Event()
        self.peak: dict[str, float] = {}  # pid -> peak MiB
        self.concurrent = 0
        self.util: list[float] = []
        self.memory: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            apps = _smi("pid,used_memory", "--query-compute-apps")
            for pid, mib in apps:
                self.peak[pid] = max(self.peak.get(pid, 0.0), float(mib))
            self.concurrent = max(self.concurrent, len(apps))
            gpu = _smi("utilization.gpu,memory.used")
            if gpu:
                self.util.append(float(gpu[0][0]))
                self.memory.append(float(gpu[0][1]))
            self.stop.wait(self.poll)


def _search(trials: int, epochs: int, gpus: float, poll: float, out: Path) -> dict:
    from raynas import config as cfg

    data = cfg.load(None).to_dict()
    data["budget"] = trials
    data["evaluator"]["epochs"] = epochs
    data["resources"].update(gpus_per_trial=gpus, max_concurrent_trials=round(1 / gpus),
                             cpus_per_trial=1)
    config = out.parent / "gpu_search.yaml"
    cfg.dump(cfg.from_dict(data), config)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "MPLBACKEND": "Agg"}
    sampler = Sampler(poll)
    sampler.start()
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "raynas"), "search", str(config),
                           "--out", str(out), "--quiet"], env=env, capture_output=True,
                          text=True, timeout=900)
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        print((proc.stdout + proc.stderr)[-3000:])
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "history.parquet").to_pylist() if proc.returncode == 0 else []
    ok = [r for r in rows if r["status"] == "ok"]
    trial_peaks = sorted(sampler.peak.values())
    return {"rc": proc.returncode, "wall": wall, "evaluated": len(ok), "trials": trials,
            "gpu_pids": len(sampler.peak), "concurrent": sampler.concurrent,
            "trial_mib": trial_peaks, "util_mean": statistics.mean(sampler.util or [0.0]),
            "util_max": max(sampler.util or [0.0]), "gpu_mib_max": max(sampler.memory or [0.0]),
            "train_s": statistics.median([r["train_seconds"] for r in ok] or [0.0]),
            "exported": (out / "best" / "model.onnx").is_file(),
            "best": max((r["valid_acc"] for r in ok), default=float("nan"))}


def _supernet_ratio() -> dict:
    rows = {}
    for mode in ("sampled", "mixed"):
        out = subprocess.run([sys.executable, str(HERE / "manas_memory.py"), "--mode", mode,
                              "--device", "cuda"], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return {"error": out.stderr[-1500:]}
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    rows["ratio"] = rows["sampled"]["step_mb"] / rows["mixed"]["step_mb"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--gpus-per-trial", type=float, default=0.25)
    parser.add_argument("--poll", type=float, default=0.2, help="nvidia-smi interval (s)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no GPU visible (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda}, CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); nothing was run")
        sys.exit(2)
    props = torch.cuda.get_device_properties(0)
    driver = _smi("driver_version") if shutil.which("nvidia-smi") else []
    print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} "
          f"visible; driver {driver[0][0] if driver else '?'}; torch {torch.__version__} "
          f"(CUDA {torch.version.cuda})")
    if not shutil.which("nvidia-smi"):
        print("note: no nvidia-smi on PATH: per-trial GPU memory and utilisation are not "
              "sampled")
    with tempfile.TemporaryDirectory() as tmp:
        search = _search(args.trials, args.epochs, args.gpus_per_trial, args.poll,
                         Path(tmp) / "search")
    supernet = _supernet_ratio()
    share = round(1 / args.gpus_per_trial)
    checks = [
        ("search finished", search["rc"] == 0, f"exit {search['rc']}, {search['wall']:.1f} s"),
        ("every trial evaluated", search["evaluated"] == search["trials"],
         f"{search['evaluated']}/{search['trials']}"),
        ("trials ran on CUDA", search["gpu_pids"] >= 1,
         f"{search['gpu_pids']} processes seen on the GPU"),
        (f"<= {share} trials share the GPU", 1 <= search["concurrent"] <= share,
         f"at most {search['concurrent']} at once"),
        ("best network exported", search["exported"], f"best valid_acc {search['best']:.2f}"),
        ("supernet memory ratio <= 0.25", "ratio" in supernet and supernet["ratio"] <= 0.25,
         f"{supernet['ratio']:.3f}" if "ratio" in supernet else supernet.get("error", "")[:200]),
    ]
    mib = search["trial_mib"]
    print("\n| check | result | figures |\n|---|---|---|")
    for name, ok, figures in checks:
        print(f"| {name} | {'ok' if ok else 'FAILED'} | {figures} |")
    print("\n| measurement | value |\n|---|---|")
    print(f"| per-trial GPU memory (MiB, nvidia-smi peak) | "
          f"{', '.join(f'{m:.0f}' for m in mib) or 'not sampled'} |")
    print(f"| GPU utilisation mean / max (%) | {search['util_mean']:.0f} / "
          f"{search['util_max']:.0f} |")
    print(f"| GPU memory used, max (MiB) | {search['gpu_mib_max']:.0f} |")
    print(f"| median training time per trial (s) | {search['train_s']:.2f} |")
    if "ratio" in supernet:
        for mode in ("sampled", "mixed"):
            row = supernet[mode]
            print(f"| supernet {mode}: MiB per step / s per step | {row['step_mb']:.1f} / "
                  f"{row['seconds_per_step']:.4f} |")
    sys.exit(0 if all(ok for _, ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
