"""Regularized evolution (Real et al. 2019, "Regularized Evolution for Image
Classifier Architecture Search").

A population of ``population_size`` (P) architectures. Each child is a mutation
of the best of ``sample_size`` (S) members drawn at random; the child joins the
population and the *oldest* member dies (aging), whatever its accuracy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from raynas.errors import ArgumentError
from raynas.search.policy import Policy
from raynas.types import Arch, Result


class RegularizedEvolution(Policy):
    """Aging evolution with tournament selection.

    Args:
        population_size: P, the number of architectures alive at once. The
            first P asks are random.
        sample_size: S, the tournament size (drawn with replacement).

    Asynchronous use (as Real et al. ran it, a free worker takes the next child): a
    pending evaluation is not in the population until its result arrives, so children
    are bred from the members told so far; a child that is being evaluated is bred
    again.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> rea = RegularizedEvolution(NB201Space(), seed=0, population_size=10, sample_size=5)
        >>> len(rea.ask(3))
        3
    """

    name = "rea"

    def __init__(self, space, *, seed=0, objective=None, population_size=10, sample_size=5):
        super().__init__(space, seed=seed, objective=objective)
        if population_size < 1 or not 1 <= sample_size:
            raise ArgumentError(
                f"need population_size >= 1 and sample_size >= 1, got "
                f"{population_size} and {sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[Arch, float]] = deque()
        self.num_random_asked = 0

    def ask(self, n: int = 1) -> list[Arch]:
        out = []
        for _ in range(self._check_n(n)):
            if self.num_random_asked < self.population_size or not self.population:
                self.num_random_asked += 1
                out.append(self._not_in_flight(lambda: self.space.sample(self.rng)))
            else:
                out.append(self._not_in_flight(self._child))
        return out

    def _child(self) -> Arch:
        picks = self.rng.integers(len(self.population), size=self.sample_size)
        parent = max((self.population[i] for i in picks), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        for arch, result in zip(archs, results):
            self.population.append((arch, self._score(result)))
            if len(self.population) > self.population_size:
                self.population.popleft()

    def hyperparameters(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "population": [[list(a), s] for a, s in self.population],
            "num_random_asked": self.num_random_asked,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque((tuple(a), float(s)) for a, s in state["population"])
        self.num_random_asked = int(state["num_random_asked"])
