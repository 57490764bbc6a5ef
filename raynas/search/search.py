"""The :class:`Search` driver: ask -> evaluate -> record -> tell, until the budget is spent."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.errors import ArgumentError, CheckpointError
from raynas.files import write_text
from raynas.search.callbacks import Callback, ProgressBar
from raynas.search.history import RESERVED, History
from raynas.types import Arch, Result

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.evaluators import Evaluator
    from raynas.search.policy import Policy
    from raynas.spaces import SearchSpace

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "history.parquet"
_CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Budget:
    """When a search stops. At least one limit must be set; the first reached wins.

    Attributes:
        max_queries: Real evaluations (cached repeats are free).
        max_seconds: Sum of the evaluations' costs in seconds: real training
            time, or the simulated time of a table's cost column.
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
        stopped: Why the loop ended: ``"budget"`` or ``"exhausted"``.
    """

    history: pa.Table
    incumbent: str | None
    incumbent_metrics: dict[str, float]
    queries: int
    stopped: str


class Search:
    """Run one search: a policy proposes, an evaluator scores, the history records.

    Args:
        space: The search space; every proposed architecture is validated by it.
        policy: Ask/tell policy (its seed makes the whole search deterministic).
        evaluator: Scores architectures; its ``search_metric`` is optimised.
        budget: When to stop.
        batch_size: Architectures asked per round (evaluated together).
        out_dir: Where ``history.parquet`` and ``checkpoint.json`` go. Without it
            nothing is written and the search cannot resume.
        checkpoint_every: Rounds between checkpoints (one is also written at the
            end, and on any exception, from the last completed round).
        callbacks: Extra :class:`Callback` s.
        progress: Show a progress bar.
        max_repeats: Stop after this many rounds in a row that found nothing new
            (e.g. a small space fully explored).

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
        out_dir: str | Path | None = None,
        checkpoint_every: int = 25,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
        max_repeats: int = 1000,
    ) -> None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
        if checkpoint_every < 1:
            raise ArgumentError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if policy.space is not space and policy.space.describe() != space.describe():
            raise ArgumentError("the policy was built for another search space")
        self.space, self.policy, self.evaluator, self.budget = space, policy, evaluator, budget
        self.batch_size = batch_size
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
        self.max_repeats = max_repeats
        self.history = History()
        self.queries = 0
        self.cost = 0.0
        self.step = 0
        self.incumbent: tuple[str, float] | None = None  # (arch string, search metric)
        self._incumbent_score = -math.inf
        self._cache: dict[Arch, tuple[Result, int]] = {}
        self._elapsed_before = 0.0
        self._snapshot: dict[str, Any] | None = None
        self.completed = False  # ran to its end (see Callback.on_search_end)

    # ------------------------------------------------------------------ loop
    def run(self, resume: bool = False) -> SearchResult:
        """Run until the budget is spent. With ``resume``, continue from ``out_dir``'s
        checkpoint if there is one (a larger budget than before simply extends the search)."""
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
            self._take_snapshot()
        start = time.perf_counter() - self._elapsed_before
        stopped = "budget"
        self.completed = False
        for cb in self.callbacks:
            cb.on_search_start(self)
        if self.out_dir is not None:  # with the callbacks' state (an MLflow run id), at once
            self._take_snapshot()
            self._save_checkpoint()
        try:
            repeats = 0
            while not self._spent():
                found = self._round(start)
                repeats = 0 if found else repeats + 1
                if repeats >= self.max_repeats:
                    logger.warning("stopping: %d rounds in a row found nothing new", repeats)
                    stopped = "exhausted"
                    break
                if self.out_dir is not None and self.step % self.checkpoint_every == 0:
                    self._save_checkpoint()
            self.completed = True
        finally:
            self._end()
        return self.result(stopped)

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

    def _spent(self) -> bool:
        b = self.budget
        return (b.max_queries is not None and self.queries >= b.max_queries) or (
            b.max_seconds is not None and self.cost >= b.max_seconds
        )

    def _round(self, start: float) -> bool:
        elapsed = time.perf_counter() - start
        n = self.batch_size
        if self.budget.max_queries is not None:
            n = min(n, self.budget.max_queries - self.queries)
        archs = [self.space.validate(a) for a in self.policy.ask(n)]
        if len(archs) != n:
            raise RuntimeError(f"{self.policy.name}.ask({n}) returned {len(archs)} architectures")
        new = [a for a in dict.fromkeys(archs) if a not in self._cache]
        results = self.evaluator.evaluate(new) if new else []
        if len(results) != len(new):
            raise RuntimeError(f"evaluator returned {len(results)} results for {len(new)} archs")
        first_row = len(self.history)
        fresh = set()
        for arch, result in zip(new, results):
            self.queries += 1
            self.cost += result.cost
            self._cache[arch] = (result, self.queries)
            fresh.add(arch)
        for arch in archs:
            result, query = self._cache[arch]
            cached = arch not in fresh
            fresh.discard(arch)
            text = self.space.to_str(arch)
            self.history.append(
                step=self.step, query=query, arch=text, result=result, cached=cached,
                elapsed=elapsed,
            )
            score = self.objective.score(result)
            if not cached and score > self._incumbent_score:
                self._incumbent_score = score
                self.incumbent = (text, result.metrics[self.objective.metric])
        self.policy.tell(archs, [self._cache[a][0] for a in archs])
        self.step += 1
        if self.out_dir is not None:  # the round is complete: remember it before any hook runs
            self._elapsed_before = time.perf_counter() - start
            self._take_snapshot()
        rows = self.history.rows[first_row:]
        for cb in self.callbacks:
            cb.on_step(self, rows)
        return bool(new)

    def incumbent_metrics(self) -> dict[str, float]:
        """All metrics of the incumbent so far (empty before the first success)."""
        if self.incumbent is None:
            return {}
        return dict(self._cache[self.space.from_str(self.incumbent[0])][0].metrics)

    def result(self, stopped: str = "budget") -> SearchResult:
        """The search's result so far."""
        metrics = self.incumbent_metrics()
        return SearchResult(
            history=self.history.to_arrow(),
            incumbent=self.incumbent[0] if self.incumbent else None,
            incumbent_metrics=metrics,
            queries=self.queries,
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
        }

    def _take_snapshot(self) -> None:
        """Remember the state after the last completed round (JSON round-trip = deep copy)."""
        self._snapshot = json.loads(json.dumps({
            "version": _CHECKPOINT_VERSION,
            **self._identity(),
            "budget": asdict(self.budget),
            "num_rows": len(self.history),
            "queries": self.queries,
            "cost": self.cost,
            "step": self.step,
            "elapsed": self._elapsed_before,
            "incumbent": self.incumbent,
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
        history = History(self.history.rows[: snap["num_rows"]])
        history.save(self.out_dir / HISTORY_FILE)
        write_text(self.out_dir / CHECKPOINT_FILE, json.dumps(snap, indent=1))

    def _load_checkpoint(self) -> None:
        path = self.out_dir / CHECKPOINT_FILE
        try:
            snap = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        if snap.get("version") != _CHECKPOINT_VERSION:
            raise CheckpointError(f"{path}: unsupported checkpoint version {snap.get('version')}")
        mine = json.loads(json.dumps(self._identity()))
        for key, value in mine.items():
            if snap.get(key) != value:
                raise CheckpointError(
                    f"{path} belongs to another search: {key} is {snap.get(key)!r} there, "
                    f"{value!r} here"
                )
        history_path = self.out_dir / HISTORY_FILE
        if not history_path.exists():
            raise CheckpointError(f"{path} has no {HISTORY_FILE} beside it")
        self.history = History.load(history_path, snap["num_rows"])
        if len(self.history) != snap["num_rows"]:
            raise CheckpointError(f"{history_path} has fewer rows than {path} records")
        self.queries, self.cost, self.step = snap["queries"], snap["cost"], snap["step"]
        self._elapsed_before = snap["elapsed"]
        self.incumbent = tuple(snap["incumbent"]) if snap["incumbent"] else None
        if self.incumbent is not None:
            self._incumbent_score = self.objective.sign * self.incumbent[1]
        self._cache = {}
        for row in self.history.rows:
            if not row["cached"]:
                metrics = {k: v for k, v in row.items() if k not in RESERVED}
                result = Result(metrics, row["cost"], row["status"], row["error"])
                self._cache[self.space.from_str(row["arch"])] = (result, row["query"])
        self.policy.load_state_dict(snap["policy_state"])
        states = snap.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in states:
                cb.load_state_dict(states[type(cb).__name__])
        logger.info("resumed %s at %d queries from %s", self.policy.name, self.queries, path)
