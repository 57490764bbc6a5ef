"""Callbacks: hooks the search loop calls, e.g. the progress bar.

A callback subclasses :class:`Callback` and overrides the hooks it needs:

* ``on_search_start(search)`` — once, before the first ``ask`` (also on resume);
* ``on_step(search, rows)`` — after each ``tell``, with the history rows just added;
* ``on_search_end(search)`` — once, when the budget is spent or the loop stops;
  ``search.completed`` says whether it ran to its end (``False`` after an interrupt or
  an error: the search will resume).

Hooks return nothing. An exception in a hook stops the search; its last
consistent state is checkpointed first, so it can resume. A callback with state that
must survive a resume (an MLflow run id) returns it from ``state_dict()`` (JSON-able);
the search keeps it in its checkpoint and hands it back to ``load_state_dict`` before
``on_search_start`` on resume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raynas.search.search import Search


class Callback:
    """Base class with no-op hooks."""

    def on_search_start(self, search: Search) -> None:
        """Called once before the first step."""

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        """Called after every ``ask``/``evaluate``/``tell`` round."""

    def on_search_end(self, search: Search) -> None:
        """Called once when the loop ends."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to keep in the search's checkpoint (JSON-able), or ``None``."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called on resume, before the start)."""


class ProgressBar(Callback):
    """A tqdm bar over queries (or over cost seconds when only those are budgeted)."""

    def __init__(self, description: str = "search") -> None:
        self.description = description
        self._bar = None

    def on_search_start(self, search: Search) -> None:
        from tqdm.auto import tqdm

        budget = search.budget
        by_queries = budget.max_queries is not None
        self._by_queries = by_queries
        self._bar = tqdm(
            total=budget.max_queries if by_queries else budget.max_seconds,
            initial=search.queries if by_queries else search.cost,
            desc=self.description,
            unit="arch" if by_queries else "s",
        )

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        done = search.queries if self._by_queries else search.cost
        self._bar.update(done - self._bar.n)
        best = search.incumbent
        if best is not None:
            self._bar.set_postfix({search.evaluator.search_metric: f"{best[1]:.4g}"}, refresh=False)

    def on_search_end(self, search: Search) -> None:
        if self._bar is not None:
            self._bar.close()
