"""The search engine: one loop over interchangeable backends (in process, simulated
clock with k workers, Ray tasks), pending architectures, exhaustion and resume."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raynas.evaluators import TabularEvaluator
from raynas.policies import POLICIES, make_policy
from raynas.search import Budget, Callback, InProcess, RayTasks, Search, Simulated
from raynas.search.policy import Policy
from raynas.spaces import Decision, SearchSpace, get_space
from raynas.tables import BenchmarkTable

DETERMINISTIC = ("step", "query", "arch", "cached", "status", "time", "valid_acc", "test_acc")
FAST = ("random", "rea", "ls", "manas", "manas-ls", "npg", "tpe", "catch")


def _rows(history: pa.Table, columns=DETERMINISTIC) -> list[dict]:
    return history.select([c for c in columns if c in history.column_names]).to_pylist()


@pytest.fixture(scope="module")
def timed(nb201_table):
    """CIFAR-10 lookups whose cost is the table's train_time (the simulated clock)."""
    return TabularEvaluator(nb201_table, "cifar10", cost_metric="train_time")


@pytest.mark.parametrize("policy", FAST)
def test_one_simulated_worker_gives_the_in_process_history(policy, nb201_table, timed):
    space = nb201_table.space
    budget = Budget(max_queries=40)
    local = Search(space, make_policy(policy, space, seed=3), timed, budget).run()
    simulated = Search(space, make_policy(policy, space, seed=3), timed, budget,
                       backend=Simulated(workers=1)).run()
    assert _rows(simulated.history) == _rows(local.history)


# ------------------------------------------------------------ the simulated clock by hand
class Scripted(Policy):
    """Proposes the architectures of ``order``, in that order (a fixed schedule, so the
    completion order below is the clock's alone)."""

    name = "scripted"

    def __init__(self, space, order, **kw):
        super().__init__(space, **kw)
        self.order, self.asked, self.told = list(order), 0, []

    def ask(self, n=1):
        out = self.order[self.asked:self.asked + n]
        self.asked += len(out)
        return [(a,) for a in out]

    def tell(self, archs, results):
        self.told += [a[0] for a in archs]


COSTS = [5.0, 1.0, 3.0, 2.0, 4.0, 6.0]


@pytest.fixture(scope="module")
def toy():
    space = SearchSpace("toy", [Decision("op", tuple("abcdef"))])
    data = pa.table({
        "arch_str": [space.to_str((i,)) for i in range(6)],
        "toy_valid_acc": [float(10 * i) for i in range(6)],
        "toy_test_acc": [float(10 * i) for i in range(6)],
        "toy_train_time": COSTS,
    })
    table = BenchmarkTable(data, space)
    return space, TabularEvaluator(table, "toy", cost_metric="train_time")


@pytest.mark.parametrize(("workers", "order", "times"), [
    # two workers: 0 (5 s) and 1 (1 s) start at 0; 1 ends at 1 and 2 (3 s) starts; ...
    (2, [1, 2, 0, 3, 4, 5], [1.0, 4.0, 5.0, 6.0, 9.0, 12.0]),
    # three: 2 and 3 both end at 3 s; the one submitted first (2) arrives first
    (3, [1, 2, 3, 0, 4, 5], [1.0, 3.0, 3.0, 5.0, 7.0, 9.0]),
])
def test_simulated_completion_order_and_times_by_hand(toy, workers, order, times):
    space, evaluator = toy
    policy = Scripted(space, range(6))
    result = Search(space, policy, evaluator, Budget(max_queries=6),
                    backend=Simulated(workers)).run()
    rows = result.history.to_pylist()
    assert [space.from_str(r["arch"])[0] for r in rows] == order
    assert [r["time"] for r in rows] == times
    assert [r["query"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert policy.told == order  # told as results arrive
    assert result.stopped == "exhausted"  # every architecture of the space evaluated


def test_seconds_budget_is_simulated_time(toy):
    space, evaluator = toy
    result = Search(space, Scripted(space, range(6)), evaluator, Budget(max_seconds=4.5),
                    backend=Simulated(2)).run()
    # nothing new starts once the clock passed 4.5 s; what was running still finishes
    assert [r["time"] for r in result.history.to_pylist()] == [1.0, 4.0, 5.0, 6.0]


def test_synchronous_rounds_wait_for_the_whole_batch(toy):
    space, evaluator = toy
    result = Search(space, Scripted(space, range(6)), evaluator, Budget(max_queries=6),
                    backend=Simulated(3), synchronous=True).run()
    rows = result.history.to_pylist()
    assert [r["step"] for r in rows] == [0, 0, 0, 1, 1, 1]
    # a round's results are the search's when its slowest (5 s) is done; the second
    # round starts then, and ends with its slowest (5 + 6 s)
    assert [r["time"] for r in rows] == [5.0, 5.0, 5.0, 11.0, 11.0, 11.0]


def test_a_policy_that_exhausts_a_small_space_ends_at_once(toy):
    space, evaluator = toy
    result = Search(space, make_policy("random", space, seed=0), evaluator,
                    Budget(max_queries=1000)).run()
    assert result.stopped == "exhausted" and result.queries == 6
    assert result.history.num_rows < 100  # no thousand rounds of repeats first


def test_a_policy_with_nothing_to_offer_ends_the_search(toy):
    space, evaluator = toy
    result = Search(space, Scripted(space, [0, 1]), evaluator, Budget(max_queries=5)).run()
    assert result.stopped == "exhausted" and result.queries == 2


# --------------------------------------------------------- policies with pending results
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_ask_while_results_are_pending_does_not_repropose_them(name, nb201_table):
    policy = make_policy(name, nb201_table.space, seed=1)
    first = policy.ask(4)
    policy.in_flight = frozenset(first)
    again = policy.ask(4)
    assert not set(again) & set(first)


class _InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step(self, search, rows):
        if search.step >= self.step and search.state.pending:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", FAST)
def test_resume_with_evaluations_pending_gives_the_uninterrupted_history(name, nb201_table,
                                                                        timed, tmp_path):
    space = nb201_table.space

    def search(out, callbacks=()):
        return Search(space, make_policy(name, space, seed=5), timed, Budget(max_queries=30),
                      backend=Simulated(4), out_dir=out, checkpoint_every=3,
                      callbacks=callbacks)

    expected, saved, resumed = _cut_and_resume(search, _InterruptAt(11), tmp_path)
    assert saved["pending"], "the checkpoint was taken with evaluations pending"
    assert _rows(resumed.history) == _rows(expected.history)


def _cut_and_resume(search, interrupt: Callback, tmp_path):
    """``search(out, callbacks)`` run whole, then cut by ``interrupt`` and resumed: the
    whole result, the checkpoint the cut left, the resumed result."""
    import json

    expected = search(tmp_path / "whole").run()
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "cut", [interrupt]).run()
    saved = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    return expected, saved, search(tmp_path / "cut").run(resume=True)


class _InterruptAfterRepeat(Callback):
    """Interrupt right after an ask that proposed only evaluated architectures while
    others run: the loop's next step (wait for a result, not ask) must survive resume."""

    def on_step(self, search, rows):
        if rows and all(r["cached"] for r in rows) and search.state.pending:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", ["rea", "ls"])
def test_resume_right_after_a_pure_repeat_gives_the_uninterrupted_history(name, nb201_table,
                                                                         timed, tmp_path):
    space = nb201_table.space

    def search(out, callbacks=()):
        return Search(space, make_policy(name, space, seed=7), timed, Budget(max_queries=400),
                      backend=Simulated(16), out_dir=out, checkpoint_every=1,
                      callbacks=callbacks)

    expected, _, resumed = _cut_and_resume(search, _InterruptAfterRepeat(), tmp_path)
    assert any(expected.history["cached"].to_pylist()), "no repeat to interrupt after"
    assert _rows(resumed.history) == _rows(expected.history)


def test_ray_tasks_backend_runs_k_evaluations_at_once(ray_local, nb201_table, timed):
    space = nb201_table.space
    result = Search(space, make_policy("rea", space, seed=0), timed, Budget(max_queries=20),
                    backend=RayTasks(workers=2)).run()
    assert result.queries == 20 and result.incumbent is not None
    history = result.history.to_pylist()
    assert len({r["arch"] for r in history if not r["cached"]}) == 20


def test_in_process_batches_are_one_evaluate_call(toy):
    space, evaluator = toy
    calls = []

    class Counting(TabularEvaluator):
        def evaluate(self, archs):
            calls.append(len(archs))
            return super().evaluate(archs)

    counting = Counting(evaluator.table, "toy", cost_metric="train_time")
    Search(space, Scripted(space, range(6)), counting, Budget(max_queries=6),
           backend=InProcess(batch_size=3)).run()
    assert calls == [3, 3]


SIMULATED_SEARCH = """
policy: {{name: rea}}
evaluator: {{kind: tabular, path: {table}, dataset: cifar10}}
budget: {{queries: 1500, workers: 16}}
tracking: {{mlflow: false}}
seed: 7
"""


def test_sigint_during_a_simulated_16_worker_search_resumes_identically(table_path, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import numpy as np
    import pyarrow.parquet as pq

    raynas = str(Path(sys.executable).parent / "raynas")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    config = tmp_path / "sim.yaml"
    config.write_text(SIMULATED_SEARCH.format(table=table_path))
    whole = tmp_path / "whole"
    assert subprocess.run([raynas, "search", str(config), "--out", str(whole)], env=env,
                          capture_output=True, timeout=300).returncode == 0
    history = pq.read_table(whole / "history.parquet")
    expected = _rows(history)
    serial = sum(history["cost"].to_pylist())  # what one worker would have taken
    assert serial > 12 * max(history["time"].to_pylist())  # 16 at once
    rng = np.random.default_rng(19)
    for attempt in range(5):
        out = tmp_path / f"cut{attempt}"
        proc = subprocess.Popen([raynas, "search", str(config), "--out", str(out)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not (out / "checkpoint.json").exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 0.8)))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            continue  # finished first; try an earlier moment
        assert proc.returncode == 130 and f"raynas search --resume {out}" in err, err
        done = pq.read_table(out / "history.parquet").num_rows
        assert done < len(expected)
        resumed = subprocess.run([raynas, "search", "--resume", str(out)], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _rows(pq.read_table(out / "history.parquet")) == expected
        return
    pytest.fail("every search finished before the interrupt")


def test_bench_with_simulated_workers_reports_regret_at_simulated_times(ray_local, table_path,
                                                                       tmp_path):
    from raynas.bench import BenchConfig, run_bench
    from raynas.errors import TableError

    def bench(**kw):
        return BenchConfig(benchmark=table_path, datasets=("cifar10",), policies=("random", "rea"),
                           seeds=3, budget=40, out=tmp_path / "bench", **kw)

    serial = run_bench(bench(cost_metric="train_time"), progress=False).to_pandas()
    parallel = run_bench(bench(workers=8), progress=False).to_pandas()  # train_time clock
    assert len(parallel) == len(serial) == 2 * 3 * 40  # not the serial files reused
    # the same evaluations take far less simulated time with 8 workers
    last = parallel.groupby(["policy", "seed"])["time"].max()
    assert (last < serial.groupby(["policy", "seed"])["time"].max() / 4).all()
    assert (parallel.groupby(["policy", "seed"])["time"].apply(
        lambda t: t.is_monotonic_increasing)).all()
    summary = (tmp_path / "bench" / "summary.md").read_text()
    assert "8 simulated worker(s), asynchronous" in summary
    assert "Regret at simulated times (`train_time` clock, 8 worker(s))" in summary
    synchronous = run_bench(bench(workers=8, synchronous=True), progress=False).to_pandas()
    assert not synchronous.equals(parallel)
    # a table without the clock's column: one error naming the cost columns it has
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(table_path).drop(["cifar10_train_time"]), tmp_path / "t.parquet")
    with pytest.raises(TableError, match="no cost column 'train_time' for cifar10 to clock the "
                                         r"simulated workers \(its cost columns: latency, params\)"):
        run_bench(BenchConfig(benchmark=tmp_path / "t.parquet", datasets=("cifar10",),
                              policies=("random",), seeds=1, budget=5, workers=4,
                              out=tmp_path / "b2"), progress=False)


def test_scaling_sim_benchmark_smoke(table_path, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling_sim.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--table", str(table_path), "--policies", "random,rea",
         "--seeds", "3", "--workers", "1,4", "--queries", "40", "--target-queries", "20",
         "--synchronous", "--num-cpus", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| random | async | 4 |" in proc.stdout and "| rea | sync | 4 |" in proc.stdout
    assert "best policy per k" in proc.stdout and "the whole study:" in proc.stdout


def test_cost_bias_shows_on_a_table_whose_costs_vary(table_path):
    """The shared table's train_time varies little, so asynchronous workers show no cost
    bias there. On a table where costs span 1-100 s and the better networks train longer,
    k asynchronous workers hear of cheap networks first: the first k results cost far
    less than an unbiased sample, and the incumbent after k results is worse than the
    one a synchronous batch of the same k architectures finds (which waits for all)."""
    import pyarrow.parquet as pq

    data = pq.read_table(table_path)
    valid = data["cifar10_valid_acc"].to_numpy()
    rank = valid.argsort().argsort() / (len(valid) - 1)
    data = data.set_column(data.column_names.index("cifar10_train_time"), "cifar10_train_time",
                           pa.array(1.0 + 99.0 * rank))
    table = BenchmarkTable(data, get_space("nb201"))
    evaluator = TabularEvaluator(table, "cifar10", cost_metric="train_time")
    k, seeds = 16, range(8)
    first_cost, sample_cost, async_best, sync_best = [], [], [], []
    for seed in seeds:
        for synchronous in (False, True):
            result = Search(table.space, make_policy("random", table.space, seed=seed),
                            evaluator, Budget(max_queries=4 * k), backend=Simulated(k),
                            synchronous=synchronous).run()
            rows = [r for r in result.history.to_pylist() if not r["cached"]]
            first = rows[:k]  # in arrival order
            if synchronous:
                sync_best.append(max(r["valid_acc"] for r in first))
                sample_cost.append(np.mean([r["train_time"] for r in first]))  # all k started
            else:
                async_best.append(max(r["valid_acc"] for r in first))
                first_cost.append(np.mean([r["train_time"] for r in first]))
    assert np.mean(first_cost) < 0.75 * np.mean(sample_cost)  # cheap networks first
    assert np.mean(async_best) < np.mean(sync_best)  # ...and they are the weaker ones
