"""``PolicySearcher``: any raynas policy as a Ray Tune ``Searcher``."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from raynas.types import Arch, Result

if TYPE_CHECKING:
    from raynas.search.policy import Policy

ARCH_KEY = "arch"
_MAX_REPEATS = 1000
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

    def __init__(self, policy: Policy, max_trials: int) -> None:
        if max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {max_trials}")
        objective = policy.objective
        super().__init__(metric=objective.metric, mode=objective.mode)
        self.policy = policy
        self.space = policy.space
        self.max_trials = max_trials
        self.started = 0
        self.live: dict[str, Arch] = {}
        self.finished: dict[Arch, Result] = {}
        self.repeats = 0  # cached answers given to the policy

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # The policy's objective is the source of truth; accept only a matching metric.
        return metric in (None, self.metric) and mode in (None, self.mode)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.started >= self.max_trials:
            return Searcher.FINISHED
        for _ in range(_MAX_REPEATS):
            (arch,) = self.policy.ask(1)
            arch = self.space.validate(arch)
            if arch in self.finished:
                self.repeats += 1
                self.policy.tell([arch], [self.finished[arch]])
                continue
            self.started += 1
            self.live[trial_id] = arch
            return {ARCH_KEY: self.space.to_str(arch)}
        return Searcher.FINISHED  # the policy proposes nothing new any more

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        arch = self.live.pop(trial_id, None)
        if arch is None:
            return
        outcome = to_result(result, error)
        self.finished[arch] = outcome
        self.policy.tell([arch], [outcome])

    # ------------------------------------------------------------ persistence
    def save(self, checkpoint_path: str) -> None:
        state = {
            "policy": self.policy.name,
            "policy_state": self.policy.state_dict(),
            "started": self.started,
            "repeats": self.repeats,
            "live": {tid: list(arch) for tid, arch in self.live.items()},
            "finished": [
                [list(arch), dict(r.metrics), r.cost, r.status.value, r.error]
                for arch, r in self.finished.items()
            ],
        }
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        if state["policy"] != self.policy.name:
            raise ValueError(
                f"searcher state is for policy {state['policy']!r}, not {self.policy.name!r}"
            )
        self.policy.load_state_dict(state["policy_state"])
        self.started, self.repeats = state["started"], state["repeats"]
        self.live = {tid: tuple(arch) for tid, arch in state["live"].items()}
        self.finished = {
            tuple(arch): Result(metrics, cost, status, error)
            for arch, metrics, cost, status, error in state["finished"]
        }


def to_result(reported: dict[str, Any] | None, error: bool = False) -> Result:
    """A Tune trial's last reported metrics as a :class:`Result` (numbers only)."""
    if error or not reported:
        return Result.failed("the trial errored" if error else "the trial reported nothing")
    metrics = {
        k: float(v) for k, v in reported.items()
        if k not in TUNE_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v)
    }
    return Result(metrics, cost=float(reported.get("train_seconds", 0.0)))
