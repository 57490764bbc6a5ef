"""The policy contract: ``ask`` what to evaluate, ``tell`` what came out.

A policy never imports Ray; the search loop, Ray runners and the Tune adapter
drive it. Its whole state goes through :meth:`Policy.state_dict` as JSON-able
data, so every search can be checkpointed and resumed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from raynas.errors import ArgumentError
from raynas.types import Arch, Objective, Result

if TYPE_CHECKING:
    from raynas.spaces import SearchSpace


class Policy(ABC):
    """Base class of search policies.

    Call order: ``ask(n)`` returns at most ``n`` valid architectures (fewer when it
    has fewer to offer; none when the space is exhausted for it, which ends the
    search); the caller evaluates them and calls ``tell(archs, results)`` for them, in
    one call after a synchronous round, or one by one as results arrive in an
    asynchronous search (several ``ask`` calls may come before their ``tell``).
    ``state_dict()`` may be called between a ``tell`` and the next ``ask``, with
    evaluations still pending; ``load_state_dict`` on a fresh policy built with the same
    arguments then continues identically.

    Before each ``ask`` the search sets :attr:`in_flight`, the architectures being
    evaluated right now; a policy should not propose them again (the search would
    wait for the running evaluation and answer the repeat from it).

    Args:
        space: The search space.
        seed: Seed of the policy's own ``numpy.random.Generator``.
        objective: Metric to optimise and its direction.

    Example:
        >>> from raynas.policies import RandomSearch
        >>> from raynas.spaces import NB201Space
        >>> policy = RandomSearch(NB201Space(), seed=0)
        >>> archs = policy.ask(2)
        >>> policy.tell(archs, [Result({"valid_acc": 50.0})] * 2)
    """

    name: ClassVar[str]
    in_flight: frozenset[Arch] = frozenset()
    """Architectures being evaluated right now (set by the search before each ``ask``)."""

    def __init__(
        self, space: SearchSpace, *, seed: int = 0, objective: Objective | None = None
    ) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ArgumentError(f"seed must be a non-negative int, got {seed!r}")
        self.space = space
        self.seed = int(seed)
        self.objective = objective or Objective()
        self.rng = np.random.default_rng(self.seed)

    @abstractmethod
    def ask(self, n: int = 1) -> list[Arch]:
        """Return ``n`` valid architectures to evaluate next."""

    @abstractmethod
    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        """Receive the results of architectures returned by :meth:`ask`."""

    def hyperparameters(self) -> dict[str, Any]:
        """The policy's hyperparameters, for logs and tracking."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the RNG plus whatever subclasses add."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]

    # ---------------------------------------------------------------- helpers
    def _not_in_flight(self, draw, tries: int = 100) -> Arch:
        """``draw()`` again while it gives an architecture in flight (up to ``tries``
        times; then the last draw, which the search answers from the running one)."""
        arch = draw()
        for _ in range(tries):
            if arch not in self.in_flight:
                break
            arch = draw()
        return arch

    def _score(self, result: Result) -> float:
        return self.objective.score(result)

    @staticmethod
    def _check_told(archs: Sequence[Arch], results: Sequence[Result]) -> None:
        if len(archs) != len(results):
            raise ArgumentError(f"tell: got {len(archs)} architectures but {len(results)} results")

    @staticmethod
    def _check_n(n: int) -> int:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ArgumentError(f"ask: n must be a positive int, got {n!r}")
        return int(n)
