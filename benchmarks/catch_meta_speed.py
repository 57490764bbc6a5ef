"""CATCH meta-training speed: seconds per iteration early and late, per sampler.

Once CATCH's controller has converged (entropy falls from about 9.6 to 2), most of its
draws are architectures the rollout has already evaluated, so every ``ask`` runs all
four rounds of draws and then the neighbour top-up. That made iterations grow after
about the ninth (issue 21). The fix keeps the draws bit for bit and removes the
per-draw work: ``MLPController.sample_many`` grows its one-hots decision by decision
instead of rebuilding them for every decision, and ``CATCH.propose`` no longer
validates each draw or scans lists for repeats.

This script meta-trains on two tasks of the NB201 table (in process)
three ways in the same run: the current code; the current proposal with the generic
per-decision sampler (``Controller.sample_many``); and the code before the fix (its
sampler and proposal, copied below as the peer). It checks that all three end with
the same weights.

Usage:
    python benchmarks/catch_meta_speed.py [--iterations 30] [--queries 30] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def meta_seconds(table, iterations: int, queries: int) -> tuple[list[float], dict]:
    from raynas.evaluators import TabularEvaluator
    from raynas.policies.catch import meta_train
    from raynas.policies.controllers import module_state

    tasks = {d: (lambda d=d: TabularEvaluator(table, d)) for d in ("cifar10", "cifar100")}
    times, last = [], [time.perf_counter()]

    def tick(_it, _metrics):
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    learner = meta_train(table.space, tasks, iterations=iterations, queries=queries,
                         progress=False, on_iteration=tick)
    return times, module_state(learner.agent)


def _sample_many_before(self, rng, tau, m):
    """``Controller.sample_many`` as it was: one-hots rebuilt per decision, tuples built
    element by element from the tensor."""
    import torch

    with torch.no_grad():
        archs = torch.zeros(m, len(self.num_choices), dtype=torch.long)
        for d in range(len(self.num_choices)):
            p = torch.softmax(self.logits(archs, d).double() / tau, dim=-1).numpy()
            cdf = np.cumsum(p, axis=1)
            u = rng.random(m)[:, None] * cdf[:, -1:]
            archs[:, d] = torch.as_tensor(np.minimum((cdf < u).sum(axis=1), p.shape[1] - 1))
        return [tuple(int(a) for a in row) for row in archs]


def _propose_before(self, n):
    """``CATCH.propose`` as it was: every draw validated, repeats found by list scans."""
    candidates = []
    m = self.options["candidates"]
    for _ in range(4):
        for arch in self.agent.controller.sample_many(self.rng, 1.0, m):
            arch = self.space.validate(arch)
            if (arch not in self.seen and arch not in self.in_flight and arch not in candidates
                    and len(candidates) < m):
                candidates.append(arch)
        if len(candidates) >= m:
            break
    if self.options["fill"] == "neighbors" and len(candidates) < m:
        for arch, _, _ in sorted(self.context, key=lambda c: -c[1]):
            for other in self.space.neighbors(arch):
                if other not in self.seen and other not in self.in_flight and (
                        other not in candidates):
                    candidates.append(other)
            if len(candidates) >= m:
                break
        candidates = candidates[:m]
    exhausted = len(self.seen) >= self.space.size
    for _ in range(100 * n):
        if len(candidates) >= n:
            break
        arch = self.space.sample(self.rng)
        if arch not in candidates and arch not in self.in_flight and (
                exhausted or arch not in self.seen):
            candidates.append(arch)
    while len(candidates) < n:
        candidates.append(self.space.sample(self.rng))
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: torch's, one per core)")
    parser.add_argument("--table", default=None, help="a table of the shared schema "
                        "(default: the shipped NB201 table)")
    args = parser.parse_args()

    import torch

    from raynas.policies.catch import CATCH
    from raynas.policies.controllers import Controller, MLPController
    from raynas.tables import BenchmarkTable

    if args.threads:
        torch.set_num_threads(args.threads)
    table = BenchmarkTable.load(args.table)
    sampler, propose = MLPController.sample_many, CATCH.propose
    variants = {"current": (sampler, propose),
                "current, generic sampler": (Controller.sample_many, propose),
                "before the fix": (_sample_many_before, _propose_before)}
    results = {}
    for label, (sample_many, proposal) in variants.items():
        MLPController.sample_many, CATCH.propose = sample_many, proposal
        try:
            results[label] = meta_seconds(table, args.iterations, args.queries)
        finally:
            MLPController.sample_many, CATCH.propose = sampler, propose
    n = args.iterations
    early, late = slice(1, max(2, n // 4)), slice(max(2, 2 * n // 3), n)
    print(f"CATCH meta-training, 2 tasks x {args.queries} queries, {n} iterations, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'code':26s} {'total s':>8s} {'s/iter early':>13s} {'s/iter late':>12s} "
          f"{'late/early':>11s}")
    for label, (times, _) in results.items():
        e, lt = np.mean(times[early]), np.mean(times[late])
        print(f"{label:26s} {sum(times):8.2f} {e:13.3f} {lt:12.3f} {lt / e:11.2f}")
    print(f"(early: iterations {early.start}-{early.stop - 1}, late: {late.start}-{late.stop - 1};"
          " iteration 0 pays the imports)")
    weights = [w for _, w in results.values()]
    same = all(w == weights[0] for w in weights)
    print(f"same weights after meta-training: {same}")
    if not same:
        raise SystemExit("the variants disagree")


if __name__ == "__main__":
    main()
