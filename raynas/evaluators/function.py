"""Evaluate architectures with a user's Python function (e.g. for a custom space)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raynas.types import Arch, Result


class FunctionEvaluator:
    """Call ``fn(arch) -> {metric: value}`` for each architecture.

    An exception raised by ``fn`` becomes a failed :class:`Result` with its message,
    so one bad architecture does not stop the search.

    Args:
        fn: Maps an architecture to its metrics.
        search_metric: Metric the search optimises.
        report_metric: Metric reported for the incumbent (default: the search metric).
        name: Shown in logs and checkpoints.

    Example:
        >>> ev = FunctionEvaluator(lambda arch: {"score": float(sum(arch))}, "score")
        >>> ev.evaluate([(1, 2)])[0].metrics["score"]
        3.0
    """

    def __init__(
        self,
        fn: Callable[[Arch], Mapping[str, float]],
        search_metric: str,
        report_metric: str | None = None,
        name: str | None = None,
    ) -> None:
        self.fn = fn
        self.search_metric = search_metric
        self.report_metric = report_metric or search_metric
        self.name = name or getattr(fn, "__name__", "function")

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        results = []
        for arch in archs:
            try:
                results.append(Result(dict(self.fn(arch))))
            except Exception as exc:  # noqa: BLE001 - a user function may raise anything
                results.append(Result.failed(f"{type(exc).__name__}: {exc}"))
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": "function",
            "name": self.name,
            "search_metric": self.search_metric,
            "report_metric": self.report_metric,
        }
