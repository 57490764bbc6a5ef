"""Plain data shared by every component: architectures, results and objectives.

An architecture (:data:`Arch`) is a tuple of choice indices, one per decision of a
:class:`~raynas.spaces.SearchSpace`. A :class:`Result` is what an evaluator says
about one architecture. An :class:`Objective` turns a result into the score a
policy maximises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Literal

from raynas.errors import ArgumentError

Arch = tuple[int, ...]
"""An architecture: one choice index per decision. Immutable and hashable."""


class Status(str, Enum):
    """Outcome of one evaluation: ``OK`` (it ran in full), ``FAILED`` (it errored), or
    ``STOPPED`` (a scheduler such as ASHA ended it early; its metrics are those of the
    fidelity it reached)."""

    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Result:
    """What an evaluator reports for one architecture.

    Attributes:
        metrics: Metric name -> value, e.g. ``{"valid_acc": 91.2, "test_acc": 90.8}``.
        cost: Seconds the evaluation costs: real training time, or the simulated
            time a benchmark table records (0 when the table has none).
        status: :attr:`Status.OK`, :attr:`Status.FAILED` with ``error`` set, or
            :attr:`Status.STOPPED` (ended early at ``fidelity``).
        error: Why the evaluation failed; empty when it succeeded.
        fidelity: The fidelity the evaluation reached (epochs trained); ``None`` when it
            ran in full or the evaluator has no fidelity.

    Example:
        >>> r = Result({"valid_acc": 90.0}, cost=12.5)
        >>> r.metrics["valid_acc"], r.ok
        (90.0, True)
    """

    metrics: Mapping[str, float]
    cost: float = 0.0
    status: Status = Status.OK
    error: str = ""
    fidelity: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @classmethod
    def failed(cls, error: str, cost: float = 0.0) -> Result:
        """A failed evaluation with its reason."""
        return cls(metrics={}, cost=cost, status=Status.FAILED, error=error)


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction.

    Attributes:
        metric: Name of the metric in :attr:`Result.metrics`.
        mode: ``"max"`` or ``"min"``.

    Example:
        >>> Objective("valid_acc").score(Result({"valid_acc": 91.0}))
        91.0
        >>> Objective("params", "min").score(Result({"params": 1.5}))
        -1.5
    """

    metric: str = "valid_acc"
    mode: Literal["max", "min"] = "max"
    _sign: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ArgumentError(f"Objective mode must be 'max' or 'min', got {self.mode!r}")
        object.__setattr__(self, "_sign", 1.0 if self.mode == "max" else -1.0)

    @property
    def sign(self) -> float:
        """+1 for ``max``, -1 for ``min``: ``score = sign * value``."""
        return self._sign

    def score(self, result: Result) -> float:
        """Higher-is-better score of ``result``; ``-inf`` for failed or missing metrics."""
        value = result.metrics.get(self.metric)
        if not result.ok or value is None or math.isnan(value):
            return -math.inf
        return self._sign * value
