"""Local search (White, Nolen & Savani 2020, "Local Search is State of the Art
for Neural Architecture Search Benchmarks").

Start from the best of ``num_init`` random architectures (default: one). Query
the neighbours of the current architecture (one decision changed) in random
order and move to the first one that improves on it (first improvement, the
default), or to the best of the whole neighbourhood (best improvement). At a
local optimum, restart from a new random architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raynas.errors import ArgumentError
from raynas.search.policy import Policy
from raynas.types import Arch, Result


class LocalSearch(Policy):
    """First-improvement (or best-improvement) hill climbing with random restarts.

    Args:
        num_init: Random architectures evaluated before the first climb.
        first_improvement: Move as soon as one neighbour beats the current
            architecture; ``False`` scans the whole neighbourhood first.

    When a batch asks for more architectures than the neighbourhood has left,
    the rest are random draws; they still compete for the next move.

    Asynchronous use: results are told as they arrive. The first improvement on the
    centre moves it at once (neighbours of the old centre still pending are simply
    told later and compete for the next move); a climb starts from the best result so
    far as soon as one has arrived; a local optimum is declared only when the whole
    neighbourhood has been told. Random draws and neighbours that are being evaluated
    (:attr:`in_flight`) are skipped.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> ls = LocalSearch(NB201Space(), seed=0, num_init=1)
        >>> len(ls.ask(1))
        1
    """

    name = "ls"

    def __init__(self, space, *, seed=0, objective=None, num_init=1, first_improvement=True):
        super().__init__(space, seed=seed, objective=objective)
        if num_init < 1:
            raise ArgumentError(f"num_init must be >= 1, got {num_init}")
        self.num_init = num_init
        self.first_improvement = first_improvement
        self.num_init_asked = 0
        self.pending = 0
        self.current: tuple[Arch, float] | None = None  # centre of the neighbourhood
        self.best_seen: tuple[Arch, float] | None = None  # best since the last move/restart
        self.queue: list[Arch] = []  # neighbours of `current` not yet asked
        self.outstanding: set[Arch] = set()  # neighbours of `current` asked, not yet told

    def ask(self, n: int = 1) -> list[Arch]:
        out = []
        for _ in range(self._check_n(n)):
            if self.num_init_asked < self.num_init:
                self.num_init_asked += 1
                out.append(self._not_in_flight(lambda: self.space.sample(self.rng)))
                continue
            while self.queue and self.queue[-1] in self.in_flight:
                self.queue.pop()  # being evaluated already: its result will be told
            if self.queue:
                out.append(self.queue.pop())
                self.outstanding.add(out[-1])
            else:
                out.append(self._not_in_flight(lambda: self.space.sample(self.rng)))
        self.pending += len(out)
        return out

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        self.pending -= len(archs)
        for arch, result in zip(archs, results):
            self.outstanding.discard(arch)
            score = self._score(result)
            if self.best_seen is None or score > self.best_seen[1]:
                self.best_seen = (arch, score)
        if self.num_init_asked < self.num_init:
            return
        improved = self.current is None or self.best_seen[1] > self.current[1]
        if self.first_improvement and improved and self.current is not None:
            self._move_to(self.best_seen)
        elif self.current is None and self.pending > 0 and not self.outstanding:
            self._move_to(self.best_seen)  # asynchronous: climb from the best told so far
        elif not self.queue and (self.pending == 0 or not self.outstanding):
            if improved:
                self._move_to(self.best_seen)
            else:  # local optimum: the next ask draws a fresh random start
                self.current, self.best_seen = None, None

    def _move_to(self, member: tuple[Arch, float]) -> None:
        self.current = member
        self.outstanding = set()
        neighbours = self.space.neighbors(member[0])
        order = self.rng.permutation(len(neighbours))
        self.queue = [neighbours[i] for i in order]

    def hyperparameters(self) -> dict[str, Any]:
        return {"num_init": self.num_init, "first_improvement": self.first_improvement}

    def state_dict(self) -> dict[str, Any]:
        def member(m):
            return None if m is None else [list(m[0]), m[1]]

        return {
            **super().state_dict(),
            "num_init_asked": self.num_init_asked,
            "pending": self.pending,
            "current": member(self.current),
            "best_seen": member(self.best_seen),
            "queue": [list(a) for a in self.queue],
            "outstanding": [list(a) for a in self.outstanding],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def member(m):
            return None if m is None else (tuple(m[0]), float(m[1]))

        super().load_state_dict(state)
        self.num_init_asked = int(state["num_init_asked"])
        self.pending = int(state["pending"])
        self.current = member(state["current"])
        self.best_seen = member(state["best_seen"])
        self.queue = [tuple(a) for a in state["queue"]]
        self.outstanding = {tuple(a) for a in state.get("outstanding", [])}
