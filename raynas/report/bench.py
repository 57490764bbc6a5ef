"""Bench outputs: ``summary.md`` (regret table) and ``regret.png`` (regret curves)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raynas.files import write_atomically, write_text
from raynas.report.units import Scale

if TYPE_CHECKING:
    from raynas.bench.runner import BenchConfig
    from raynas.tables import BenchmarkTable

REPORT_QUERIES = (25, 50, 100, 200)


def report_points(budget: int) -> list[int]:
    """Queries at which the summary reports regret: 25/50/100/200 up to the budget, and the budget."""
    points = [q for q in REPORT_QUERIES if q <= budget]
    return points if budget in points else [*points, budget]


def regret_at(curves: pa.Table, policy: str, dataset: str, query: int) -> np.ndarray:
    """Regret of each seed's incumbent after ``query`` queries (its last value if it stopped early)."""
    return value_at(curves, policy, dataset, query, "regret")


def regret_at_time(curves: pa.Table, policy: str, dataset: str, seconds: float) -> np.ndarray:
    """Regret of each seed's incumbent at ``seconds`` on the clock (NaN for a seed that
    had no result by then)."""
    mask = pc.and_(pc.equal(curves["policy"], policy), pc.equal(curves["dataset"], dataset))
    sub = curves.filter(mask)
    seeds = sub["seed"].to_numpy()
    times = sub["time"].to_numpy(zero_copy_only=False)
    regret = np.asarray(sub["regret"].to_numpy(zero_copy_only=False), dtype=float)
    out = []
    for seed in np.unique(seeds):
        rows = (seeds == seed) & (times <= seconds)
        out.append(regret[rows][-1] if rows.any() else np.nan)
    return np.asarray(out, dtype=float)


def time_points(curves: pa.Table) -> list[float]:
    """Simulated times at which the summary reports regret: the time by which every
    search of the bench finished its budget, and 1/8, 1/4, 1/2 of it."""
    ends = pc.max(curves["time"]).as_py()
    if not ends:
        return []
    by_search = curves.group_by(["policy", "dataset", "seed"]).aggregate([("time", "max")])
    horizon = float(pc.min(by_search["time_max"]).as_py())
    return [horizon / 8, horizon / 4, horizon / 2, horizon]


def hv_ratio_at(curves: pa.Table, policy: str, dataset: str, query: int) -> np.ndarray:
    """Each seed's front hypervolume share after ``query`` queries."""
    return value_at(curves, policy, dataset, query, "hv_ratio")


def value_at(curves: pa.Table, policy: str, dataset: str, query: int, column: str) -> np.ndarray:
    """Each seed's ``column`` after ``query`` queries (its last value if it stopped early)."""
    mask = pc.and_(pc.equal(curves["policy"], policy), pc.equal(curves["dataset"], dataset))
    sub = curves.filter(pc.and_(mask, pc.less_equal(curves["query"], query)))
    seeds = sub["seed"].to_numpy()
    queries = sub["query"].to_numpy()
    values = sub[column].to_numpy(zero_copy_only=False)
    out = []
    for seed in np.unique(seeds):
        rows = seeds == seed
        out.append(values[rows][np.argmax(queries[rows])])
    return np.asarray(out, dtype=float)


def regret_floor(
    table: BenchmarkTable, dataset: str, search: str, report: str, mode: str = "max"
) -> float:
    """Report-metric regret of the architecture with the best search metric: what a
    search that finds the validation optimum gets."""
    sign = 1.0 if mode == "max" else -1.0
    best_row = int(np.argmax(sign * table.column(dataset, search)))
    return sign * (table.best(dataset, report, mode) - float(table.column(dataset, report)[best_row]))


def write_summary(
    curves: pa.Table,
    table: BenchmarkTable,
    config: BenchConfig,
    path: Path,
    wall_seconds: float,
    evaluations: int,
    reused: int = 0,
) -> str:
    """Write the markdown summary: mean ± std of regret at the report points.

    ``reused`` searches came from an earlier run with identical settings. Searches with
    no successful evaluation have no regret: they are counted per policy and left out
    of the means (a cell is ``—`` when no seed has a value)."""
    points = report_points(config.budget)
    coverage = len(table) / table.space.size
    lines = [
        "# raynas bench summary",
        "",
        f"- table: `{table.path}` ({len(table)} architectures, space `{table.space.name}`"
        + (f"; it covers {coverage:.2%} of the space's {table.space.size} architectures, and a "
           "query of one it lacks fails" if coverage < 1 else "") + ")",
        f"- protocol: search on `{config.search_metric}`, report `{config.report_metric}` of the "
        f"incumbent (best so far by the search metric, mode `{config.mode}`); regret = distance "
        "of the incumbent's report metric from the table's best",
        f"- {config.seeds} seeds per policy and dataset, budget {config.budget} queries "
        "(cached repeats are free)",
        *([f"- {config.workers} simulated worker(s), "
           f"{'synchronous rounds' if config.synchronous else 'asynchronous'}; each "
           f"evaluation takes its `{config.clock}` seconds of simulated time"]
          if config.clock else []),
        f"- wall time {wall_seconds:.1f} s for {evaluations} evaluations "
        f"({evaluations / max(wall_seconds, 1e-9):.0f} evaluations/s end to end)",
        *([f"- {reused} of {len(config.policies) * len(config.datasets) * config.seeds} "
           "searches reused from an earlier run with identical settings (`runs/`)"]
          if reused else []),
        "",
    ]
    for dataset in config.datasets:
        best = table.best(dataset, config.report_metric, config.mode)
        floor = regret_floor(
            table, dataset, config.search_metric, config.report_metric, config.mode
        )
        values = table.column(dataset, config.report_metric)
        scale = Scale.of(values, config.report_metric, best=best)
        median = float(np.median(values))
        gap = abs(best - median)
        lines += [
            f"## {dataset}",
            "",
            f"Best {config.report_metric}: {scale.format(best)}; median: "
            f"{scale.format(median)}; regret floor (best by {config.search_metric}): "
            f"{scale.format(floor)}. Regret in {scale.unit}, mean ± std.",
            "",
            *_policy_table(config.policies, points, lambda p, q, d=dataset, s=scale: s.mean_std(
                regret_at(curves, p, d, q))),
            "",
            f"Normalised regret, (best − incumbent) / (best − median) of `{config.report_metric}` "
            "(0: the table's best, 1: its median architecture), mean ± std:",
            "",
            *_policy_table(config.policies, points, lambda p, q, d=dataset, g=gap: _normalised(
                regret_at(curves, p, d, q), g)),
            "",
            *_time_lines(curves, config, dataset, scale),
            *_failure_lines(curves, config.policies, dataset, config.budget),
        ]
        if config.objectives:
            objectives = ", ".join(f"{m} ({d})" for m, d in config.objectives)
            lines += [
                f"Front chosen on {objectives}, scored with `{config.report_metric}`: its "
                "hypervolume as a share of the table's true front's, mean ± standard error.",
                "",
                *_policy_table(config.policies, points, lambda p, q, d=dataset: _mean_se(
                    hv_ratio_at(curves, p, d, q))),
                "",
            ]
    text = "\n".join(lines)
    write_text(path, text)
    return text


def _policy_table(policies, points, cell) -> list[str]:
    """A Markdown table: a row per policy, a column per report point, ``cell(policy, q)``."""
    return ["| policy | " + " | ".join(f"@{q}" for q in points) + " |",
            "|---|" + "---|" * len(points),
            *(f"| {p} | " + " | ".join(cell(p, q) for q in points) + " |" for p in policies)]


def _time_lines(curves: pa.Table, config: BenchConfig, dataset: str,
                scale: Scale) -> list[str]:
    """Regret at fixed simulated times (a bench with a clock)."""
    if not config.clock:
        return []
    points = time_points(curves.filter(pc.equal(curves["dataset"], dataset)))
    if not points:
        return []
    header = "| policy | " + " | ".join(f"{s:,.0f} s" for s in points) + " |"
    rows = [f"| {p} | " + " | ".join(scale.mean_std(regret_at_time(curves, p, dataset, s))
                                      for s in points) + " |" for p in config.policies]
    return [f"Regret at simulated times (`{config.clock}` clock, {config.workers} "
            "worker(s)), mean ± std over seeds with a result by then:", "",
            header, "|---|" + "---|" * len(points), *rows, ""]


def _failure_lines(curves: pa.Table, policies, dataset: str, budget: int) -> list[str]:
    """Lines on searches that ended with no successful evaluation, or with failures."""
    lines = []
    for policy in policies:
        final = regret_at(curves, policy, dataset, budget)
        empty = int(np.isnan(final).sum())
        if empty:
            lines.append(f"- {policy}: {empty} of {len(final)} searches had no successful "
                         "evaluation (every query failed, e.g. architectures missing from the "
                         "table); they are left out of the means above")
    return [*lines, ""] if lines else []


def _normalised(regret: np.ndarray, gap: float) -> str:
    if gap <= 0:
        return "—"
    return Scale(1.0, False, "").mean_std(np.asarray(regret, dtype=float) / gap)


def _mean_se(values: np.ndarray) -> str:
    values = values[~np.isnan(values)]
    if not len(values):
        return "—"
    if len(values) < 2:
        return f"{values.mean():.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1) / np.sqrt(len(values)):.4f}"


def regret_scales(table: BenchmarkTable, config: BenchConfig) -> dict[str, Scale]:
    """Per dataset, the :class:`~raynas.report.units.Scale` of its report metric."""
    return {d: Scale.of(table.column(d, config.report_metric), config.report_metric,
                        best=table.best(d, config.report_metric, config.mode))
            for d in config.datasets}


def write_plot(curves: pa.Table, path: Path, scales: dict[str, Scale] | None = None) -> None:
    """Mean regret vs queries (log-scaled), one panel per dataset, ±1 standard error bands.

    The regret axis is linear near zero and logarithmic beyond 0.1 pp for accuracies in
    percent, beyond a hundredth of the dataset's scale for other metrics (``scales``:
    best minus median of the report metric; default: accuracies in percent), labelled
    in the metric's units.

    Seed i is the same for every policy (common random numbers), so curves that
    start with random draws coincide at first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.report.plots import band_legend

    datasets = list(dict.fromkeys(curves["dataset"].to_pylist()))
    policies = list(dict.fromkeys(curves["policy"].to_pylist()))
    clocked = "time" in curves.column_names and (pc.max(curves["time"]).as_py() or 0) > 0
    fig, axes = plt.subplots(2 if clocked else 1, len(datasets),
                             figsize=(5 * len(datasets), 8 if clocked else 4), squeeze=False)
    scales = scales or {}
    for ax, dataset in zip(axes[0], datasets):
        scale = scales.get(dataset, Scale(10.0, True, "percentage points"))
        for policy in policies:
            mask = pc.and_(pc.equal(curves["policy"], policy), pc.equal(curves["dataset"], dataset))
            sub = curves.filter(mask)
            query = sub["query"].to_numpy()
            regret = np.asarray(sub["regret"].to_numpy(zero_copy_only=False), dtype=float)
            known = ~np.isnan(regret)  # a search has no regret before its first success
            xs = np.unique(query[known])
            if not len(xs):
                continue
            values = [regret[known & (query == x)] for x in xs]
            mean = np.array([v.mean() for v in values])
            sem = np.array([v.std() / np.sqrt(len(v)) for v in values])
            (line,) = ax.plot(xs, mean, label=policy)
            ax.fill_between(xs, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
        if not ax.lines:
            ax.text(0.5, 0.5, "no successful evaluation", ha="center", transform=ax.transAxes)
            ax.set_title(dataset)
            continue
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=_linthresh(scale))
        ax.set_ylim(bottom=0)
        ax.set_title(f"{dataset}: mean test regret of the incumbent", fontsize=10)
        ax.set_xlabel("queries (evaluated architectures)")
        ax.set_ylabel(f"test regret ({scale.unit})")
        ax.grid(True, which="both", alpha=0.3)
        band_legend(ax, "±1 standard error over seeds", fontsize=8)
    if clocked:
        for ax, dataset in zip(axes[1], datasets):
            _time_panel(ax, curves, dataset, policies,
                        scales.get(dataset, Scale(10.0, True, "percentage points")))
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _linthresh(scale: Scale) -> float:
    """Where the regret axis turns logarithmic: 0.1 pp for accuracies in percent, a
    hundredth of the scale for other metrics (a loss table's 1e-6)."""
    return 0.1 if scale.percent else scale.scale / 100


def _time_panel(ax, curves: pa.Table, dataset: str, policies: list[str], scale: Scale) -> None:
    """Mean regret vs simulated seconds (the incumbent at each time, seeds with a result)."""
    sub = curves.filter(pc.equal(curves["dataset"], dataset))
    ends = sub["time"].to_numpy(zero_copy_only=False)
    grid = np.geomspace(max(float(np.nanmin(ends[ends > 0])), 1e-3), float(np.nanmax(ends)), 60)
    for policy in policies:
        mean = [np.nanmean(v) if np.isfinite(v).any() else np.nan
                for v in (regret_at_time(sub, policy, dataset, s) for s in grid)]
        ax.plot(grid, mean, label=policy)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=_linthresh(scale))
    ax.set_ylim(bottom=0)
    ax.set_title(f"{dataset}: mean test regret vs simulated time", fontsize=10)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"test regret ({scale.unit})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
