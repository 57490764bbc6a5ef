"""Everything raynas reports, in one place:

* :mod:`raynas.report.search` — one search's ``summary.md`` and ``progress.png``;
* :mod:`raynas.report.compare` — ``raynas report --compare``: searches side by side;
* :mod:`raynas.report.bench` — ``raynas bench``'s ``summary.md`` and ``regret.png``.

The Pareto-front files and plot of a multi-objective search are written by
:mod:`raynas.objectives.fronts`, beside the rest of the multi-objective code.
"""

from raynas.report.compare import write_comparison
from raynas.report.search import write_progress_plot, write_report

__all__ = ["write_comparison", "write_progress_plot", "write_report"]
