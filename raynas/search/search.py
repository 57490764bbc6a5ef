"""The :class:`Search` loop: ask -> submit -> receive -> record -> tell, until the budget is spent."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas import interrupts
from raynas.errors import ArgumentError, CheckpointError
from raynas.files import write_text
from raynas.search.backends import Backend, InProcess
from raynas.search.callbacks import Callback, ProgressBar
from raynas.search.history import History
from raynas.search.state import SearchState, StateView
from raynas.types import Arch

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.evaluators import Evaluator
    from raynas.search.policy import Policy
    from raynas.spaces import SearchSpace

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "history.parquet"
_CHECKPOINT_VERSION = 2


@dataclass(frozen=True)
class Budget:
    """When a search stops. At least one limit must be set; the first reached wins.

    Attributes:
        max_queries: Real evaluations (cached repeats are free).
        max_seconds: Seconds on the search's clock: the sum of the evaluations' costs
            in process (real training time, or a table's cost column), the simulated
            time with :class:`~raynas.search.backends.Simulated` workers, wall time with
            Ray tasks. Evaluations running when it is reached still finish.
    """

    max_queries: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_queries is None and self.max_seconds is None:
            raise ArgumentError("Budget needs max_queries and/or max_seconds")
        if self.max_queries is not None and self.max_queries < 1:
            raise ArgumentError(f"max_queries must be >= 1, got {self.max_queries}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ArgumentError(f"max_seconds must be > 0, got {self.max_seconds}")


@dataclass(frozen=True)
class SearchResult:
    """What a finished search returns.

    Attributes:
        history: The full history table (see :mod:`raynas.search.history`).
        incumbent: Best architecture string by the search metric, or ``None``.
        incumbent_metrics: All metrics of the incumbent (its report metric included).
        queries: Real evaluations made.
        stopped: Why the loop ended: ``"budget"``, ``"exhausted"`` (every architecture
            evaluated, or the policy proposed none) or ``"stalled"`` (the policy only
            repeated evaluated architectures, :data:`~raynas.search.state.STALL_ASKS`
            asks in a row).
        grid: What the backend adds: Tune's ``ResultGrid`` for a training search
            (:func:`raynas.tune.run_tune`), else ``None``.
    """

    history: pa.Table
    incumbent: str | None
    incumbent_metrics: dict[str, float]
    queries: int
    stopped: str
    grid: Any = None


class Search(StateView):
    """Run one search: a policy proposes, a backend evaluates, the state records.

    One loop serves every backend (:mod:`raynas.search.backends`): while a worker is free
    and the budget allows, ``policy.ask`` proposes; architectures evaluated already are
    answered from the cache (free); new ones are submitted; finished results are
    recorded in completion order and told to the policy. With ``synchronous`` (the
    default for the in-process backend), a round asks ``batch_size`` architectures,
    waits for all of them and tells them together; otherwise each result is told as it
    arrives and a free worker asks at once (asynchronous search).

    Args:
        space: The search space; every proposed architecture is validated by it.
        policy: Ask/tell policy (its seed makes the whole search deterministic).
        evaluator: Scores architectures; its ``search_metric`` is optimised.
        budget: When to stop.
        batch_size: Architectures asked per synchronous round.
        backend: Where evaluations run; default :class:`~raynas.search.backends.InProcess`
            with ``batch_size`` (a synchronous batch per round).
        synchronous: Wait for a whole round before asking again; default: ``True`` for
            the in-process backend, ``False`` (asynchronous) otherwise.
        out_dir: Where ``history.parquet`` and ``checkpoint.json`` go. Without it
            nothing is written and the search cannot resume.
        checkpoint_every: Steps (asks) between checkpoints (one is also written at the
            start, at the end, and on any exception, from the last consistent state).
        callbacks: Extra :class:`Callback` s.
        progress: Show a progress bar.

    A space whose every architecture was evaluated ends the search at once
    (``stopped="exhausted"``), as does a policy whose ``ask`` returns no architecture; a
    policy that only repeats evaluated architectures ends it as ``"stalled"`` (see
    :class:`~raynas.search.state.SearchState`, the same rule as on Tune).

    Example:
        >>> budget = Budget(max_queries=100)                                   # doctest: +SKIP
        >>> search = Search(space, policy, evaluator, budget, out_dir="run")  # doctest: +SKIP
        >>> result = search.run(resume=True)                                  # doctest: +SKIP
        >>> result.incumbent_metrics["test_acc"]                              # doctest: +SKIP
    """

    def __init__(
        self,
        space: SearchSpace,
        policy: Policy,
        evaluator: Evaluator,
        budget: Budget,
        *,
        batch_size: int = 1,
        backend: Backend | None = None,
        synchronous: bool | None = None,
        out_dir: str | Path | None = None,
        checkpoint_every: int = 25,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
        if checkpoint_every < 1:
            raise ArgumentError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if policy.space is not space and policy.space.describe() != space.describe():
            raise ArgumentError("the policy was built for another search space")
        self.space, self.policy, self.evaluator, self.budget = space, policy, evaluator, budget
        if backend is not None and batch_size not in (1, backend.workers):
            raise ArgumentError(f"batch_size={batch_size} with a backend of {backend.workers} "
                                "workers: a round asks one architecture per worker")
        self.backend = backend if backend is not None else InProcess(batch_size)
        self.synchronous = isinstance(self.backend, InProcess) if synchronous is None else synchronous
        self.batch_size = self.backend.workers
        self.out_dir = Path(out_dir).resolve() if out_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.callbacks = [*callbacks, *([ProgressBar()] if progress else [])]
        if policy.objective.metric != evaluator.search_metric:
            raise ArgumentError(
                f"the policy optimises {policy.objective.metric!r} but the evaluator's search "
                f"metric is {evaluator.search_metric!r}; build the policy with "
                f"objective=Objective({evaluator.search_metric!r}, mode)"
            )
        self.objective = policy.objective
        self.state = SearchState(space, self.objective)
        self._joined: dict[Arch, int] = {}  # repeats of pending archs, told when they finish
        # Where the loop stands between consistent points (checkpointed, so a resumed loop
        # takes the same next step): whether the next step waits for a result (after a
        # pure repeat while others run).
        self._await_result = False
        self._elapsed_before = 0.0
        self._snapshot: dict[str, Any] | None = None
        self._checkpointed_step = 0
        self._space_size: int | None = None
        self.completed = False  # ran to its end (see Callback.on_search_end)

    # ------------------------------------------------------------------ loop
    def run(self, resume: bool = False) -> SearchResult:
        """Run until the budget is spent. With ``resume``, continue from ``out_dir``'s
        checkpoint if there is one (a larger budget than before simply extends the search)."""
        self.backend.bind(self.evaluator)
        if resume:
            if self.out_dir is None:
                raise ArgumentError("resume=True needs an out_dir")
            if (self.out_dir / CHECKPOINT_FILE).exists():
                self._load_checkpoint()
            elif (self.out_dir / HISTORY_FILE).exists():
                raise CheckpointError(
                    f"cannot resume {self.out_dir}: it has {HISTORY_FILE} but no "
                    f"{CHECKPOINT_FILE} (the policy's state and the search's position), and "
                    "starting afresh would overwrite the history; restore the checkpoint, or "
                    "search into another folder"
                )
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._start = time.perf_counter() - self._elapsed_before
        self.completed = False
        for cb in self.callbacks:
            cb.on_search_start(self)
        if self.out_dir is not None:  # with the callbacks' state (an MLflow run id), at once
            self._take_snapshot()
            self._save_checkpoint()
        try:
            stopped = self._loop()
            self.completed = True
        finally:
            self._end()
        return self.result(stopped)

    def _loop(self) -> str:
        stopped = "budget"
        while True:
            interrupts.check()
            if stopped == "budget" and not self.backend.running and self._exhausted():
                stopped = "exhausted"
            while stopped == "budget" and not self._awaiting() and self._may_ask():
                new = self._ask()
                if new is None:
                    stopped = "exhausted"
                    break
                if self._exhausted():
                    stopped = "exhausted"
                elif self.state.stalled:
                    logger.warning("stopping: %d asks in a row proposed nothing new",
                                   self.state.repeat_streak)
                    stopped = "stalled"
                if self.synchronous or not new:
                    break  # a synchronous round waits; a pure repeat lets the loop re-check
            if not self.backend.running:
                if stopped != "budget" or self._spent():
                    return stopped
                continue
            self._receive(self.backend.wait())

    def _awaiting(self) -> bool:
        """The last ask proposed only repeats while evaluations run: wait for one first."""
        return self._await_result and bool(self.backend.running)

    def _spent(self) -> bool:
        b = self.budget
        return (b.max_queries is not None and self.state.queries >= b.max_queries) or (
            b.max_seconds is not None and self.state.clock >= b.max_seconds
        )

    def _may_ask(self) -> bool:
        if self._spent() or self.backend.free < 1:
            return False
        if self.synchronous and self.backend.running:
            return False
        return self._room() > 0

    def _room(self) -> int:
        """Architectures the budget still has room for, beside those running."""
        n = self.batch_size if self.synchronous else self.backend.free
        if self.budget.max_queries is not None:
            n = min(n, self.budget.max_queries - self.state.queries - len(self.state.pending))
        return n

    def _exhausted(self) -> bool:
        """Every architecture of a (small, finite) space has been evaluated."""
        if self._space_size is None:
            self._space_size = _count(self.space)
        return 0 < self._space_size <= len(self.state.cache) and not self.state.pending

    def _ask(self) -> int | None:
        """Ask for what the budget and the free workers allow; submit the new ones. The
        number of new architectures, or ``None`` when the policy proposes nothing."""
        n = self._room()
        self.policy.in_flight = frozenset(self.state.pending)
        archs = [self.space.validate(a) for a in self.policy.ask(n)]
        if not archs:
            return None
        if len(archs) > n:
            raise RuntimeError(f"{self.policy.name}.ask({n}) returned {len(archs)} architectures")
        state, elapsed = self.state, self._elapsed()
        new = [a for a in dict.fromkeys(archs) if not state.is_known(a) and not state.is_pending(a)]
        for arch in new:
            state.submit(arch, step=state.step)
            self.backend.submit(arch)
        state.note_ask(len(new))
        self._await_result = not new and not self.synchronous
        if self.synchronous:
            self._round = archs
            if not new:
                self._receive([])  # nothing to wait for: record the repeats now
            return len(new)
        repeats = [a for a in archs if state.is_known(a)]
        for arch in archs:
            if not state.is_known(arch) and arch not in new:
                self._joined[arch] = self._joined.get(arch, 0) + 1
        rows = [state.record_repeat(a, elapsed=elapsed) for a in repeats]
        if repeats:
            self.policy.tell(repeats, [state.result_of(a) for a in repeats])
        state.step += 1
        if rows:
            self._after(rows)
        return len(new)

    def _receive(self, done: list) -> None:
        """Record finished evaluations (completion order) and tell the policy."""
        state, elapsed = self.state, self._elapsed()
        if self.synchronous:
            if self.backend.running:  # the rest of the round first
                self._pending_done = [*getattr(self, "_pending_done", []), *done]
                return
            done = [*getattr(self, "_pending_done", []), *done]
            self._pending_done = []
            finished = {arch: result for arch, result, _ in done}
            end = max((t for _, _, t in done), default=None)  # the round's results are known
            rows, first = [], set()
            for arch in self._round:
                if arch in finished and arch not in first:
                    first.add(arch)
                    rows.append(state.record(arch, finished[arch], elapsed=elapsed, time=end))
                else:
                    rows.append(state.record_repeat(arch, elapsed=elapsed))
            self.policy.tell(self._round, [state.result_of(a) for a in self._round])
            state.step += 1
            self._after(rows)
            return
        self._await_result = False
        for arch, result, t in done:
            rows = [state.record(arch, result, elapsed=elapsed, time=t)]
            told = [arch]
            for _ in range(self._joined.pop(arch, 0)):
                rows.append(state.record_repeat(arch, elapsed=elapsed))
                told.append(arch)
            self.policy.tell(told, [result] * len(told))
            self._after(rows)

    def _after(self, rows: list[dict[str, Any]]) -> None:
        """Remember the consistent state, checkpoint now and then, run the callbacks."""
        if self.out_dir is not None:
            self._elapsed_before = self._elapsed()
            self._take_snapshot()
            if self.state.step - self._checkpointed_step >= self.checkpoint_every:
                self._save_checkpoint()
        for cb in self.callbacks:
            cb.on_step(self, rows)

    def _elapsed(self) -> float:
        return time.perf_counter() - self._start

    def _end(self) -> None:
        """Checkpoint, then let every callback end (close its progress bar, its run) even
        when the checkpoint cannot be written (a full disk); the first failure is raised."""
        failure: BaseException | None = None
        try:
            if self.out_dir is not None:
                self._save_checkpoint()
        except Exception as exc:  # noqa: BLE001 - raised below, after the callbacks
            failure = exc
        for cb in self.callbacks:
            try:
                cb.on_search_end(self)
            except Exception as exc:  # noqa: BLE001
                if failure is None:
                    failure = exc
                else:
                    logger.warning("%s.on_search_end failed too: %s", type(cb).__name__, exc)
        if failure is not None:
            raise failure

    def result(self, stopped: str = "budget") -> SearchResult:
        """The search's result so far."""
        state = self.state
        return SearchResult(
            history=state.history.to_arrow(),
            incumbent=state.incumbent[0] if state.incumbent else None,
            incumbent_metrics=state.incumbent_metrics(),
            queries=state.queries,
            stopped=stopped,
        )

    # ----------------------------------------------------------- checkpoints
    def _identity(self) -> dict[str, Any]:
        return {
            "space": self.space.describe(),
            "policy": self.policy.name,
            "policy_hyperparameters": self.policy.hyperparameters(),
            "seed": self.policy.seed,
            "evaluator": self.evaluator.describe(),
            "batch_size": self.batch_size,
            "backend": self.backend.describe(),
            "synchronous": self.synchronous,
        }

    def _take_snapshot(self) -> None:
        """Remember the state after the last consistent point (JSON round-trip = deep
        copy): every told result, the pending architectures and the backend's clock."""
        self._snapshot = json.loads(json.dumps({
            "version": _CHECKPOINT_VERSION,
            **self._identity(),
            "budget": asdict(self.budget),
            **self.state.position(),
            "joined": [[list(a), k] for a, k in self._joined.items()],
            "loop": {"await_result": self._await_result},
            "backend_state": self.backend.state_dict(),
            "elapsed": self._elapsed_before,
            "policy_state": self.policy.state_dict(),
            "callbacks": self._callback_states(),
        }))

    def _callback_states(self) -> dict[str, Any]:
        states = {}
        for cb in self.callbacks:
            state = cb.state_dict()
            if state is not None:
                states[type(cb).__name__] = state
        return states

    def _save_checkpoint(self) -> None:
        snap = self._snapshot
        history = History(self.state.history.rows[: snap["num_rows"]])
        history.save(self.out_dir / HISTORY_FILE)
        write_text(self.out_dir / CHECKPOINT_FILE, json.dumps(snap, indent=1))
        self._checkpointed_step = snap["step"]

    def _load_checkpoint(self) -> None:
        path = self.out_dir / CHECKPOINT_FILE
        try:
            snap = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        if snap.get("version") not in (1, _CHECKPOINT_VERSION):
            raise CheckpointError(f"{path}: unsupported checkpoint version {snap.get('version')}")
        mine = json.loads(json.dumps(self._identity()))
        for key, value in mine.items():
            if snap.get("version") == 1 and key in ("backend", "synchronous"):
                continue  # version 1: always the in-process, synchronous loop
            if snap.get(key) != value:
                raise CheckpointError(
                    f"{path} belongs to another search: {key} is {snap.get(key)!r} there, "
                    f"{value!r} here"
                )
        history_path = self.out_dir / HISTORY_FILE
        if not history_path.exists():
            raise CheckpointError(f"{path} has no {HISTORY_FILE} beside it")
        history = History.load(history_path, snap["num_rows"])
        if len(history) != snap["num_rows"]:
            raise CheckpointError(f"{history_path} has fewer rows than {path} records")
        self.state.restore(history, snap)
        self._elapsed_before = snap["elapsed"]
        self._checkpointed_step = snap["step"]
        self._joined = {tuple(a): int(k) for a, k in snap.get("joined", [])}
        loop = snap.get("loop", {})
        if "repeats" in loop:  # checkpoints before the streak moved into the state
            self.state.repeat_streak = int(loop["repeats"])
        self._await_result = bool(loop.get("await_result", False))
        self.backend.load_state_dict(snap.get("backend_state", {"clock": self.state.clock}))
        for arch, (at, _) in self.state.pending.items():  # they were running: run them again
            self.backend.submit(arch, at=at)
        self.policy.load_state_dict(snap["policy_state"])
        states = snap.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in states:
                cb.load_state_dict(states[type(cb).__name__])
        logger.info("resumed %s at %d queries from %s", self.policy.name, self.state.queries, path)


def _count(space: SearchSpace, limit: int = 100_000) -> int:
    """How many valid architectures ``space`` has: the product of its choices when it has
    no constraints, else counted when it is small enough (0 otherwise: never exhausted by
    counting)."""
    from raynas.spaces import SearchSpace

    if type(space).is_valid is SearchSpace.is_valid:
        return space.size
    if space.size > limit:
        return 0
    return sum(1 for _ in space)
