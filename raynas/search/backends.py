"""Backends: where the search loop's evaluations run, and when their results arrive.

The loop (:class:`~raynas.search.Search`) is the same for every backend: it submits
architectures while workers are free and receives finished results in completion order.
A backend decides the rest:

* :class:`InProcess` — one worker, in this process; a synchronous batch is evaluated
  with one ``evaluator.evaluate`` call. The clock is the sum of the results' costs.
* :class:`Simulated` — ``workers`` virtual workers over an evaluator whose results carry
  a cost in seconds (a table's ``train_time`` column): each evaluation occupies a worker
  for its cost, results arrive in simulated-time order (ties in submission order), and a
  free worker gets the next architecture at once. Deterministic and instant: the clock is
  simulated, nothing sleeps. This answers "how much sooner with k workers?" without k
  machines (Syne Tune's simulator backend is the model).
* :class:`RayTasks` — ``workers`` Ray tasks at once, each evaluating one architecture
  (table lookups, function evaluators); the clock is wall time since the search began.

Ray Tune trials (real training, ASHA, checkpoints) are the fourth backend, through
:class:`~raynas.tune.PolicySearcher`, which records into the same
:class:`~raynas.search.state.SearchState`.

A backend's ``state_dict`` holds what a checkpoint needs to continue identically (the
simulated workers' finish times); the loop re-submits the pending architectures on
resume.
"""

from __future__ import annotations

import heapq
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from raynas.errors import ArgumentError
from raynas.types import Arch, Result

if TYPE_CHECKING:
    from raynas.evaluators import Evaluator

Done = tuple[Arch, Result, float]
"""A finished evaluation: the architecture, its result and the clock when it finished."""


class Backend(ABC):
    """Runs evaluations for the search loop.

    Call order: :meth:`bind` once; then :meth:`submit` while :attr:`free` > 0, and
    :meth:`wait` for at least one finished evaluation while any is running.

    Attributes:
        workers: Evaluations that may run at once.
    """

    workers: int = 1

    def bind(self, evaluator: Evaluator) -> None:
        """Use ``evaluator`` (called once by the loop, before the first submission)."""
        self.evaluator = evaluator

    @property
    @abstractmethod
    def running(self) -> int:
        """Evaluations submitted and not yet returned by :meth:`wait`."""

    @property
    def free(self) -> int:
        return self.workers - self.running

    @property
    @abstractmethod
    def clock(self) -> float:
        """Seconds since the search began (simulated, or the costs so far, or wall)."""

    @abstractmethod
    def submit(self, arch: Arch, at: float | None = None) -> None:
        """Start evaluating ``arch``; ``at`` is the clock it started at when a resumed
        search re-submits it (``None``: now)."""

    @abstractmethod
    def wait(self) -> list[Done]:
        """Block until at least one evaluation finishes; return the finished ones in
        completion order."""

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self.clock}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore :meth:`state_dict` (before pending architectures are re-submitted)."""

    def describe(self) -> dict[str, Any]:
        return {"backend": type(self).__name__.lower(), "workers": self.workers}


class InProcess(Backend):
    """Evaluate in this process, one batch at a time: ``wait`` evaluates everything
    submitted since the last ``wait`` with one ``evaluator.evaluate`` call (a
    synchronous batch), and the clock advances by the results' costs."""

    def __init__(self, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
        self.workers = batch_size
        self._queue: list[Arch] = []
        self._clock = 0.0

    @property
    def running(self) -> int:
        return len(self._queue)

    @property
    def clock(self) -> float:
        return self._clock

    def submit(self, arch: Arch, at: float | None = None) -> None:
        self._queue.append(arch)

    def wait(self) -> list[Done]:
        archs, self._queue = self._queue, []
        results = self.evaluator.evaluate(archs)
        if len(results) != len(archs):
            raise RuntimeError(f"evaluator returned {len(results)} results for {len(archs)} archs")
        done = []
        for arch, result in zip(archs, results):
            self._clock += result.cost
            done.append((arch, result, self._clock))
        return done

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self._clock}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._clock = float(state.get("clock", 0.0))

    def describe(self) -> dict[str, Any]:
        return {"backend": "in_process", "workers": self.workers}


class Simulated(Backend):
    """``workers`` virtual workers on a simulated clock.

    Each evaluation takes its result's ``cost`` seconds of simulated time (a table's
    ``train_time`` column, with ``TabularEvaluator(..., cost_metric="train_time")``): it
    is looked up at once, and arrives when the clock reaches its start plus its cost.
    ``wait`` advances the clock to the next finish; evaluations finishing at the same
    time arrive in submission order.

    Args:
        workers: Virtual workers (evaluations at once).

    Example:
        >>> backend = Simulated(workers=16)      # doctest: +SKIP
        >>> Search(space, policy, TabularEvaluator(table, "cifar10", cost_metric="train_time"),
        ...        Budget(max_queries=200), backend=backend).run()   # doctest: +SKIP
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ArgumentError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._clock = 0.0
        self._events: list[tuple[float, int, Arch, Result]] = []  # (finish, ticket, ...)
        self._tickets = 0

    @property
    def running(self) -> int:
        return len(self._events)

    @property
    def clock(self) -> float:
        return self._clock

    def submit(self, arch: Arch, at: float | None = None) -> None:
        (result,) = self.evaluator.evaluate([arch])
        start = self._clock if at is None else at
        heapq.heappush(self._events, (start + max(result.cost, 0.0), self._tickets, arch, result))
        self._tickets += 1

    def wait(self) -> list[Done]:
        finish, _, arch, result = heapq.heappop(self._events)
        self._clock = finish
        return [(arch, result, finish)]

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self._clock, "tickets": self._tickets}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._clock = float(state.get("clock", 0.0))
        self._tickets = 0  # re-submitted pending evaluations keep their order


class RayTasks(Backend):
    """``workers`` Ray tasks at once, each evaluating one architecture with a copy of the
    evaluator (put in the object store once). Results arrive as tasks finish; the clock
    is wall seconds since the first submission.

    Args:
        workers: Tasks at once.
        num_cpus: CPUs per task.
    """

    def __init__(self, workers: int = 2, num_cpus: float = 1) -> None:
        if workers < 1:
            raise ArgumentError(f"workers must be >= 1, got {workers}")
        self.workers, self.num_cpus = workers, num_cpus
        self._running: dict[Any, Arch] = {}
        self._start: float | None = None
        self._offset = 0.0

    def bind(self, evaluator: Evaluator) -> None:
        import ray

        from raynas.cluster import connect

        super().bind(evaluator)
        connect()
        self._evaluator_ref = ray.put(evaluator)
        self._task = ray.remote(num_cpus=self.num_cpus)(_evaluate_one)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def clock(self) -> float:
        if self._start is None:
            return self._offset
        return self._offset + time.perf_counter() - self._start

    def submit(self, arch: Arch, at: float | None = None) -> None:
        if self._start is None:
            self._start = time.perf_counter()
        self._running[self._task.remote(self._evaluator_ref, arch)] = arch

    def wait(self) -> list[Done]:
        import ray

        ready, _ = ray.wait(list(self._running), num_returns=1)
        done = []
        for ref in ready:
            arch = self._running.pop(ref)
            done.append((arch, ray.get(ref), self.clock))
        return done

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self.clock}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._offset = float(state.get("clock", 0.0))


def _evaluate_one(evaluator: Evaluator, arch: Arch) -> Result:
    (result,) = evaluator.evaluate([arch])
    return result


BACKENDS = {"in_process": InProcess, "simulated": Simulated, "ray": RayTasks}
