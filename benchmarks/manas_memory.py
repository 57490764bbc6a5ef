"""Memory and time per training step: MANAS's sampled-path supernet vs DARTS's mixed-op one.

Both supernets are the same DARTS-space network (same width, depth, batch and
input); the sampled one runs one op per edge (a random architecture per step),
the mixed one runs all 8 ops of every edge, weighted by softmax(alphas). Each mode
runs in its own process. On CPU the figure is the growth of the process's peak
RSS over a training step beyond the model's own memory (parameters, gradients,
optimiser state are created and touched before measuring); on a GPU it is
``torch.cuda.max_memory_allocated`` over the step. Target: sampled <= 1/4 of mixed.

Usage:
    python benchmarks/manas_memory.py [--channels 16] [--layers 8] [--batch 32] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(mode: str, channels: int, layers: int, batch: int, steps: int, device: str) -> dict:
    import numpy as np
    import torch

    from raynas.evaluators.supernet import Supernet
    from raynas.spaces import DARTSSpace

    torch.manual_seed(0)
    space = DARTSSpace(channels=channels, layers=layers)
    net = Supernet(space, num_classes=10, in_channels=3, mode=mode).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    rng = np.random.default_rng(0)
    # touch every parameter, gradient and momentum buffer once: the model's own memory
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _rss_mb()
    times = []
    for _ in range(steps):
        if mode == "sampled":
            net.set_arch(space.sample(rng))
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else _rss_mb()
    return {"mode": mode, "step_mb": peak - base, "model_mb": base,
            "seconds_per_step": float(np.median(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: one mode, JSON out
    args = parser.parse_args()
    shape = (args.channels, args.layers, args.batch, args.steps, args.device)
    if args.mode:
        print(json.dumps(measure(args.mode, *shape)))
        return
    rows = {}
    for mode in ("sampled", "mixed"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--channels",
                              str(args.channels), "--layers", str(args.layers), "--batch",
                              str(args.batch), "--steps", str(args.steps), "--device", args.device],
                             capture_output=True, text=True, check=True)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"DARTS space, {args.channels} channels, {args.layers} cells, batch {args.batch} of "
          f"32x32x3, {args.steps} steps on {args.device}")
    for mode, row in rows.items():
        print(f"  {mode:8s}: {row['step_mb']:8.1f} MiB per step (model {row['model_mb']:.0f} MiB), "
              f"{row['seconds_per_step']:.3f} s per step")
    ratio = rows["sampled"]["step_mb"] / rows["mixed"]["step_mb"]
    speed = rows["mixed"]["seconds_per_step"] / rows["sampled"]["seconds_per_step"]
    print(f"sampled / mixed memory: {ratio:.3f} (target <= 0.25); sampled is {speed:.1f}x faster")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
