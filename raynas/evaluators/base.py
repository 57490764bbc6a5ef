"""The evaluator contract: architectures in, :class:`~raynas.types.Result` s out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from raynas.types import Arch, Result


@runtime_checkable
class Evaluator(Protocol):
    """Scores architectures.

    ``evaluate`` is called by the search loop with a batch of valid architectures
    and must return one :class:`Result` per architecture, in order. A failure of
    one architecture is a ``Result`` with ``status=FAILED``, not an exception.

    Attributes:
        search_metric: The metric a search optimises (validation, never test).
        report_metric: The metric reported for the incumbent (test).
    """

    search_metric: str
    report_metric: str

    def evaluate(self, archs: Sequence[Arch], fidelity: float | None = None) -> list[Result]:
        """Evaluate ``archs``; ``fidelity`` (epochs, data fraction) is evaluator-specific."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able description for logs, checkpoints and tracking."""
        ...
