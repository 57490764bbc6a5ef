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

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        """Evaluate ``archs`` in full (an evaluator's own settings say what "in full" is:
        a training evaluator's ``epochs``). A result that ended early says so with
        ``status=STOPPED`` and the ``fidelity`` it reached; the engines never ask for a
        lower fidelity (schedulers such as ASHA stop trials instead)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able description for logs, checkpoints and tracking."""
        ...
