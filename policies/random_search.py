"""Random search: architectures drawn uniformly at random from the space."""

from __future__ import annotations

from collections.abc import Sequence

from raynas.search.policy import Policy
from raynas.types import Arch, Result


class RandomSearch(Policy):
    """Uniform random sampling. Repeats are answered by the search's cache.

    Asynchronous use: it has no state to go stale; a draw of an architecture that is
    being evaluated (:attr:`in_flight`) is drawn again.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> RandomSearch(NB201Space(), seed=1).ask(1)
        [(2, 2, 3, 4, 0, 0)]
    """

    name = "random"

    def ask(self, n: int = 1) -> list[Arch]:
        return [self._not_in_flight(lambda: self.space.sample(self.rng))
                for _ in range(self._check_n(n))]

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
