"""Optuna's samplers as raynas policies: peers to compare against anywhere.

* ``tpe`` — :class:`TPE`, Optuna's ``TPESampler`` on the search metric.
* ``motpe`` — :class:`MOTPE`, the same sampler on several objectives (MO-TPE).
* ``nsga2`` — :class:`NSGA2`, Optuna's ``NSGAIISampler`` on several objectives.

Needs the ``optuna`` extra (``pip install 'raynas[optuna]'``). Every decision is
a categorical Optuna parameter named after the decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.errors import ArgumentError, CheckpointError, require
from raynas.search.policy import Policy
from raynas.types import Arch, Result


class TPE(Policy):
    """Tree-structured Parzen Estimator (Optuna's ``TPESampler``) through ask/tell.

    Optuna's sampler state is not serialisable, so :meth:`state_dict` stores the
    told history and :meth:`load_state_dict` replays it on a fresh, identically
    seeded study; the replay checks that it proposes the same architectures.

    Args:
        n_startup_trials: Random trials before TPE takes over (Optuna's default 10).
        multivariate: Use the multivariate TPE.

    Asynchronous use: Optuna keeps each pending architecture as a running trial; TPE
    models only the finished ones, so proposals made while many are pending are close
    to independent draws from the same model, and may repeat a running architecture
    (the search then answers it from that evaluation).

    Example:
        >>> from raynas.spaces import NB201Space
        >>> tpe = TPE(NB201Space(), seed=0)                               # doctest: +SKIP
        >>> archs = tpe.ask(1)                                            # doctest: +SKIP
    """

    name = "tpe"

    def __init__(self, space, *, seed=0, objective=None, n_startup_trials=10, multivariate=False):
        super().__init__(space, seed=seed, objective=objective)
        self.n_startup_trials = n_startup_trials
        self.multivariate = multivariate
        self._setup({self.objective.metric: self.objective.mode})

    def _setup(self, objectives: Mapping[str, str]) -> None:
        self.objectives = dict(objectives)
        self._optuna = require("optuna", "optuna")
        self._optuna.logging.set_verbosity(self._optuna.logging.WARNING)
        self._study = self._new_study()
        self._pending: dict[Arch, list[Any]] = {}
        self._events: list[dict[str, Any]] = []  # {"ask": archs} | {"tell": [[arch, values]]}

    def _sampler(self):
        return self._optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=self.n_startup_trials, multivariate=self.multivariate
        )

    def _new_study(self):
        directions = ["maximize" if m == "max" else "minimize" for m in self.objectives.values()]
        return self._optuna.create_study(directions=directions, sampler=self._sampler())

    def _suggest(self, trial) -> Arch:
        return tuple(
            d.choices.index(trial.suggest_categorical(d.name, d.choices))
            for d in self.space.decisions
        )

    def ask(self, n: int = 1) -> list[Arch]:
        out = []
        for _ in range(self._check_n(n)):
            trial = self._study.ask()
            arch = self._suggest(trial)
            self._pending.setdefault(arch, []).append(trial)
            out.append(arch)
        self._events.append({"ask": [list(a) for a in out]})
        return out

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        told = []
        for arch, result in zip(archs, results):
            if not self._pending.get(arch):
                raise ArgumentError(f"tell: {self.space.to_str(arch)} was not asked")
            trial = self._pending[arch].pop(0)
            values = [result.metrics.get(m) for m in self.objectives] if result.ok else [None]
            if any(v is None or not math.isfinite(v) for v in values):
                self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
                told.append([list(arch), None])
            else:
                self._study.tell(trial, values)
                told.append([list(arch), values])
        self._events.append({"tell": told})

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "events": self._events}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._study, self._pending, self._events = self._new_study(), {}, []
        for event in state["events"]:
            if "ask" in event:
                archs = self.ask(len(event["ask"]))
                if [list(a) for a in archs] != event["ask"]:
                    raise CheckpointError("TPE: replaying the history proposed other architectures")
            else:
                archs = [tuple(a) for a, _ in event["tell"]]
                results = [self._replayed(score) for _, score in event["tell"]]
                self.tell(archs, results)

    def _replayed(self, values: list[float] | None) -> Result:
        if values is None:
            return Result.failed("failed before the checkpoint")
        if isinstance(values, (int, float)):  # a checkpoint of raynas 0.1's TPE: the score
            return Result({self.objective.metric: self.objective.sign * values})
        return Result(dict(zip(self.objectives, values)))


class _MultiObjective(TPE):
    """An Optuna sampler on several objectives (``{metric: mode}``); the search
    metric must be one of them."""

    def __init__(self, space, *, seed=0, objective=None,
                 objectives: Mapping[str, str] | None = None, **kwargs):
        Policy.__init__(self, space, seed=seed, objective=objective)
        objectives = dict(objectives or {self.objective.metric: self.objective.mode,
                                         "params": "min"})
        if len(objectives) < 2:
            raise ArgumentError(f"{self.name} needs >= 2 objectives, got {objectives}")
        self._options = kwargs
        self._setup(objectives)

    def hyperparameters(self) -> dict[str, Any]:
        return {"objectives": self.objectives, **self._options}


class MOTPE(_MultiObjective):
    """Multi-objective TPE (Optuna's ``TPESampler`` with several directions).

    Args:
        objectives: ``{metric: mode}``; default the search metric and ``params`` (min).
        n_startup_trials: Random trials before TPE takes over.
    """

    name = "motpe"

    def __init__(self, space, *, seed=0, objective=None, objectives=None, n_startup_trials=10):
        super().__init__(space, seed=seed, objective=objective, objectives=objectives,
                         n_startup_trials=n_startup_trials)

    def _sampler(self):
        return self._optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=self._options["n_startup_trials"])


class NSGA2(_MultiObjective):
    """NSGA-II (Optuna's ``NSGAIISampler``).

    Args:
        objectives: ``{metric: mode}``; default the search metric and ``params`` (min).
        population_size: Individuals per generation.
    """

    name = "nsga2"

    def __init__(self, space, *, seed=0, objective=None, objectives=None, population_size=20):
        super().__init__(space, seed=seed, objective=objective, objectives=objectives,
                         population_size=population_size)

    def _sampler(self):
        return self._optuna.samplers.NSGAIISampler(
            seed=self.seed, population_size=self._options["population_size"])
