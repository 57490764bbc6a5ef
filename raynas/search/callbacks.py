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
    """The console of a search: a tqdm bar with an ETA over queries (or over cost
    seconds when only those are budgeted), and one line per finished architecture.

    Args:
        description: The bar's label.
        lines: ``"all"``: a line per evaluated architecture (its arch string, metrics,
            seconds and the best so far); ``"best"``: a line only when it is a new best;
            ``"none"``: the bar alone; ``"auto"`` (default): ``"best"`` for table lookups
            (hundreds of architectures a second), else ``"all"``. A stopped or failed
            evaluation is never a new best.
        bar: Show the bar (off when another display owns the terminal, e.g. Tune's
            trial table).
        file: Where the lines go (default: standard output; the bar is on standard
            error).

    Repeats answered from the cache are not lines (they are no evaluation).
    """

    LINE_METRICS = ("valid_acc", "test_acc", "train_loss", "params", "latency_ms")

    def __init__(self, description: str = "search", lines: str = "auto", bar: bool = True,
                 file=None) -> None:
        if lines not in ("auto", "all", "best", "none"):
            raise ValueError(f"lines: expected auto, all, best or none, got {lines!r}")
        self.description, self.lines, self.show_bar, self.file = description, lines, bar, file
        self._bar = None
        self._best: float | None = None

    def on_search_start(self, search: Search) -> None:
        from tqdm.auto import tqdm

        budget = search.budget
        by_queries = budget.max_queries is not None
        self._by_queries = by_queries
        self._total = budget.max_queries if by_queries else budget.max_seconds
        if self.lines == "auto":
            self.lines = "best" if hasattr(search.evaluator, "table") else "all"
        incumbent = search.incumbent
        self._best = None if incumbent is None else incumbent[1]
        if self.show_bar:
            self._bar = tqdm(
                total=self._total, initial=search.queries if by_queries else search.cost,
                desc=self.description, unit="arch" if by_queries else "s", dynamic_ncols=True,
            )

    def on_step(self, search: Search, rows: list[dict[str, Any]]) -> None:
        metric = search.evaluator.search_metric
        sign = -1.0 if search.policy.objective.mode == "min" else 1.0
        for row in rows:
            if row.get("cached"):
                continue
            value = row.get(metric)
            new_best = (row.get("status") == "ok" and value is not None
                        and (self._best is None or sign * value > sign * self._best))
            if self.lines == "all" or (self.lines == "best" and new_best):
                best = None if self._best is None else (None, self._best)
                self._write(self.format_row(row, metric, best, new_best))
            if new_best:
                self._best = value
        if self._bar is not None:
            done = search.queries if self._by_queries else search.cost
            self._bar.update(done - self._bar.n)
            if self._best is not None:
                self._bar.set_postfix({f"best {metric}": f"{self._best:.4g}"}, refresh=False)

    def format_row(self, row: dict[str, Any], metric: str, incumbent, new_best: bool) -> str:
        """One finished architecture as a line: ``[query/total] arch  metrics  seconds  best``."""
        width = len(str(self._total)) if self._by_queries else 0
        where = (f"[{row.get('query', 0):>{width}}/{self._total}]" if self._by_queries
                 else f"[{row.get('time', 0.0):.0f} s]")
        parts = [where, row.get("arch", "")]
        status = row.get("status")
        if status == "failed":
            first = ((row.get("error") or "").strip().splitlines() or ["no error message"])[0]
            parts.append(f"FAILED: {first[:120]}")
        else:
            shown = [metric, *(m for m in self.LINE_METRICS if m != metric)]
            parts += [_metric_text(m, row[m]) for m in shown if row.get(m) is not None]
            if status == "stopped" and row.get("fidelity") is not None:
                parts.append(f"stopped at epoch {row['fidelity']:g}")
        if row.get("cost"):
            parts.append(f"{row['cost']:.1f} s")
        if new_best:
            parts.append("<- new best")
        elif incumbent is not None:
            parts.append(f"(best {metric} {incumbent[1]:.4g})")
        return "  ".join(parts)

    def _write(self, line: str) -> None:
        import sys

        from tqdm.auto import tqdm

        tqdm.write(line, file=self.file or sys.stdout)

    def on_search_end(self, search: Search) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _metric_text(name: str, value: float) -> str:
    """``valid_acc 91.39``, ``params 0.073M`` (params are in millions)."""
    if name == "params":
        return f"params {value:.3g}M"
    if name == "latency_ms":
        return f"latency {value:.3g} ms"
    return f"{name} {value:.4g}"
