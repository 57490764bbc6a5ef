"""``PolicySearcher``: any raynas policy as a Ray Tune ``Searcher``."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from raynas.errors import ArgumentError
from raynas.search.history import History
from raynas.search.state import SearchState
from raynas.types import Arch, Result, Status

if TYPE_CHECKING:
    from raynas.search.policy import Policy

ARCH_KEY = "arch"
# Tuner.restore unpickles its own copy of the searcher from the experiment. By search id:
# the copy Tune drives (the last one to be restored, asked or told), for the runner to read
# after fit(); and the results folder the runner gives it (it may have moved).
_ACTIVE: dict[str, PolicySearcher] = {}
_OUT_DIRS: dict[str, str] = {}
# By search id: who hears each row the search state records (raynas callbacks, through
# run_tune); like _OUT_DIRS, never pickled with the searcher.
_LISTENERS: dict[str, Callable[[list[dict[str, Any]]], None]] = {}
# Fields Tune adds to every reported result; they are not the architecture's metrics.
TUNE_FIELDS = frozenset({
    "timestamp", "done", "training_iteration", "time_this_iter_s", "time_total_s", "pid",
    "time_since_restore", "iterations_since_restore", "timesteps_total", "episodes_total",
    "timesteps_since_restore", "warmup_time",
})


class PolicySearcher(Searcher):
    """Drive a raynas :class:`~raynas.search.Policy` from Ray Tune.

    Each Tune trial trains one architecture: ``suggest`` asks the policy for one
    architecture and returns ``{"arch": "<canonical string>"}``; when the trial
    ends, ``on_trial_complete`` tells the policy its final metrics (an errored
    trial is a failed result). Architectures the search has already evaluated
    are answered from its cache without a new trial. ``save``/``restore`` write
    the policy's state and the live trials as JSON, so ``Tuner.restore`` resumes
    the policy where it stopped.

    Args:
        policy: The wrapped policy; its objective's metric and mode are Tune's.
        max_trials: Trials to start in all; then ``suggest`` says FINISHED.

    Example:
        >>> searcher = PolicySearcher(make_policy("rea", space), max_trials=20)  # doctest: +SKIP
        >>> tune.TuneConfig(search_alg=searcher, num_samples=20)                  # doctest: +SKIP
    """

    def __init__(self, policy: Policy, max_trials: int, out_dir: str | Path | None = None,
                 search_id: str | None = None, max_fidelity: float | None = None) -> None:
        if max_trials < 1:
            raise ArgumentError(f"max_trials must be >= 1, got {max_trials}")
        objective = policy.objective
        super().__init__(metric=objective.metric, mode=objective.mode)
        self.policy = policy
        self.space = policy.space
        self.max_trials = max_trials
        self.out_dir = str(out_dir) if out_dir is not None else None
        self.max_fidelity = max_fidelity
        self.search_id = search_id or uuid.uuid4().hex
        self.state = SearchState(self.space, objective)
        self.started = 0
        self.exhausted = False  # the policy stopped proposing new architectures
        self.stalled = False  # ... because it only repeated evaluated ones (see SearchState)
        self.live: dict[str, Arch] = {}
        self.repeats = 0  # cached answers given to the policy
        self.began = time.time()  # the history's clock: wall seconds since the search began
        self.staging_dir: str | None = None  # where Tune last saved the experiment state
        self._space_size: int | None = None
        _ACTIVE[self.search_id] = self

    @staticmethod
    def active(search_id: str) -> PolicySearcher | None:
        """The searcher of ``search_id`` that Tune drives in this process (after
        ``Tuner.restore``, Tune's unpickled copy), or ``None``."""
        return _ACTIVE.get(search_id)

    @staticmethod
    def set_out_dir(search_id: str, out_dir: str | Path | None) -> None:
        """Where the searcher of ``search_id`` writes ``history.parquet`` (``None``: forget)."""
        if out_dir is None:
            _OUT_DIRS.pop(search_id, None)
            _ACTIVE.pop(search_id, None)
        else:
            _OUT_DIRS[search_id] = str(out_dir)

    @staticmethod
    def set_listener(search_id: str,
                     listener: Callable[[list[dict[str, Any]]], None] | None) -> None:
        """Call ``listener(rows)`` with every history row the search of ``search_id``
        records, as it records it (``None``: stop)."""
        if listener is None:
            _LISTENERS.pop(search_id, None)
        else:
            _LISTENERS[search_id] = listener

    def _emit(self, row: dict[str, Any]) -> None:
        listener = _LISTENERS.get(self.search_id)
        if listener is not None:
            listener([row])

    @property
    def history_dir(self) -> str | None:
        return _OUT_DIRS.get(self.search_id, self.out_dir)

    @property
    def finished(self) -> dict[Arch, Result]:
        """Every evaluated architecture's result."""
        return {arch: result for arch, (result, _) in self.state.cache.items()}

    @property
    def done(self) -> bool:
        """Whether the search has nothing left to start or wait for."""
        return not self.live and (self.started >= self.max_trials or self.exhausted)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # The policy's objective is the source of truth; accept only a matching metric.
        return metric in (None, self.metric) and mode in (None, self.mode)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        _ACTIVE[self.search_id] = self
        if self.started >= self.max_trials or self.exhausted:
            return Searcher.FINISHED
        state = self.state
        while not self._space_exhausted():
            self.policy.in_flight = frozenset(state.pending)
            archs = self.policy.ask(1)
            if not archs:
                break
            arch = self.space.validate(archs[0])
            state.step += 1
            if state.is_known(arch):  # answered from the cache, free
                self.repeats += 1
                row = state.record_repeat(arch, elapsed=0.0)
                self.policy.tell([arch], [state.result_of(arch)])
                self._emit(row)
            if state.is_known(arch) or state.is_pending(arch):
                if state.note_ask(0):
                    self.stalled = self.exhausted = True
                    return Searcher.FINISHED
                if self.live:
                    return None  # wait for a running trial before asking again
                continue
            state.note_ask(1)
            self.started += 1
            self.live[trial_id] = arch
            state.submit(arch, at=self._now(), step=state.step - 1)
            return {ARCH_KEY: self.space.to_str(arch)}
        self.exhausted = True  # every architecture evaluated, or the policy offers none
        return Searcher.FINISHED

    def _space_exhausted(self) -> bool:
        from raynas.search.search import _count

        if self._space_size is None:
            self._space_size = _count(self.space)
        return 0 < self._space_size <= len(self.state.cache) + len(self.state.pending)

    def _now(self) -> float:
        return time.time() - self.began

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        _ACTIVE[self.search_id] = self
        arch = self.live.pop(trial_id, None)
        if arch is None:
            return
        outcome = to_result(result, error, self.max_fidelity)
        if error:  # where Tune wrote the traceback, relative to the experiment folder
            outcome = Result.failed(f"the trial errored; its traceback is in "
                                    f"trial_{trial_id}/error.txt of Tune's experiment")
        row = self.state.record(arch, outcome,
                                elapsed=float((result or {}).get("time_total_s", 0.0)),
                                time=self._now())
        self.policy.tell([arch], [outcome])
        if self.history_dir is not None:
            from raynas.search.search import HISTORY_FILE

            self.history().save(Path(self.history_dir) / HISTORY_FILE)
        self._emit(row)

    def history(self) -> History:
        """The search's :class:`~raynas.search.history.History`: one row per finished
        trial, in the order they finished, and one per repeat answered from the cache."""
        return self.state.history

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        self.staging_dir = checkpoint_dir  # Tune's staging folder (see raynas.tune.trust)
        super().save_to_dir(checkpoint_dir, session_str)

    # ------------------------------------------------------------ persistence
    def save(self, checkpoint_path: str) -> None:
        state = {
            "policy": self.policy.name,
            "policy_state": self.policy.state_dict(),
            "started": self.started,
            "exhausted": self.exhausted,
            "stalled": self.stalled,
            "repeats": self.repeats,
            "began": self.began,
            "live": {tid: list(arch) for tid, arch in self.live.items()},
            "history": self.state.history.rows,
            "position": self.state.position(),
        }
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        if state["policy"] != self.policy.name:
            raise ArgumentError(
                f"searcher state is for policy {state['policy']!r}, not {self.policy.name!r}"
            )
        self.policy.load_state_dict(state["policy_state"])
        self.started, self.repeats = state["started"], state["repeats"]
        self.exhausted = bool(state.get("exhausted", False))
        self.stalled = bool(state.get("stalled", False))
        self.began = float(state.get("began", self.began))
        self.live = {tid: tuple(arch) for tid, arch in state["live"].items()}
        self.state = SearchState(self.space, self.policy.objective)
        self.state.restore(History(state["history"]), state["position"])
        _ACTIVE[self.search_id] = self


def to_result(reported: dict[str, Any] | None, error: bool = False,
              max_fidelity: float | None = None) -> Result:
    """A Tune trial's last reported metrics as a :class:`Result` (numbers only).

    The result's fidelity is the epochs the trial reached; a trial that ended before
    ``max_fidelity`` epochs without an error was stopped by a scheduler (ASHA): its
    result is :attr:`~raynas.types.Status.STOPPED`, never the incumbent, and a failure
    to the policy's model (its metrics are kept in the history)."""
    if error or not reported:
        return Result.failed("the trial errored" if error else "the trial reported nothing")
    metrics = {
        k: float(v) for k, v in reported.items()
        if k not in TUNE_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v)
    }
    epochs = metrics.get("epoch")
    stopped = max_fidelity is not None and epochs is not None and epochs < max_fidelity
    return Result(metrics, cost=float(reported.get("train_seconds", 0.0)),
                  status=Status.STOPPED if stopped else Status.OK, fidelity=epochs,
                  error=f"stopped by the scheduler after {epochs:g} of {max_fidelity:g} epochs"
                  if stopped else "")
