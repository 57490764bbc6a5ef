"""``raynas report --compare DIR1 DIR2 ...``: several searches overlaid.

Reads each folder's ``history.parquet`` (and ``config.yaml`` / ``front.json`` when
present) and writes ``compare.md`` (one row per search) and ``compare.png``: the
incumbent's report metric vs evaluations, and, when every search has a front with
the same report metrics, the fronts and their hypervolume vs evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import RaynasError
from raynas.objectives.fronts import (
    FrontSpec,
    front_hypervolume,
    front_table,
    hypervolume_curve,
    load_front,
)
from raynas.objectives.pareto import hypervolume
from raynas.report.units import Scale
from raynas.search.history import incumbent_curve, metric_values


@dataclass(frozen=True)
class _Run:
    label: str
    folder: Path
    setup: str
    history: pa.Table
    front: FrontSpec | None
    true_front: np.ndarray | None
    metrics: tuple[str, str, str] = ("valid_acc", "test_acc", "max")  # search, report, mode


def _load(folder: Path) -> _Run:
    folder = Path(folder).resolve()
    path = folder / "history.parquet"
    if not path.is_file():
        raise RaynasError(f"no history.parquet in {folder}: is it a raynas search folder?")
    setup, metrics = "", _Run.metrics
    if (folder / "config.yaml").is_file():
        from raynas import config as cfg

        config = cfg.load(folder / "config.yaml")
        setup = f"{config.policy.name} on {config.evaluator.dataset}, seed {config.seed}"
        ev = config.evaluator
        metrics = (ev.search_metric, ev.report_metric, ev.mode)
    front, true_front = load_front(folder)
    return _Run(folder.name, folder, setup, pq.read_table(path), front, true_front, metrics)


def _labels(runs: list[_Run]) -> list[str]:
    """Folder names, made unique with their parents where they clash."""
    names = [r.label for r in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{r.folder.parent.name}/{r.label}" for r in runs]


def write_comparison(folders: list[str | Path], out_dir: str | Path) -> list[Path]:
    """Write ``compare.md`` and ``compare.png`` for ``folders`` into ``out_dir``."""
    if len(folders) < 2:
        raise RaynasError("--compare needs at least two search folders")
    runs = [_load(Path(f)) for f in folders]
    labels = _labels(runs)
    kinds = {r.metrics for r in runs}
    if len(kinds) > 1:
        raise RaynasError("--compare: the searches optimise different metrics ("
                          + "; ".join(f"{label}: {m[0]} {m[2]}, reports {m[1]}"
                                      for label, m in zip(labels, (r.metrics for r in runs)))
                          + "); compare searches of one metric")
    search_metric, report_metric, mode = runs[0].metrics
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    fronts = [r.front for r in runs]
    same_front = all(f is not None and f.report == fronts[0].report for f in fronts)

    lines = ["# raynas comparison", "",
             f"Protocol: search on `{search_metric}` ({mode}), report `{report_metric}` of the "
             "incumbent.", "",
             "| search | setup | evaluations | best " + search_metric + " | its " + report_metric
             + (" | front size | hypervolume | share of true front" if same_front else "") + " |",
             "|---" * (8 if same_front else 5) + "|"]
    for label, run in zip(labels, runs):
        search, report = incumbent_curve(run.history, search_metric, report_metric, mode)
        scales = [Scale.of(metric_values(run.history, m), m) for m in (search_metric,
                                                                      report_metric)]
        best = (f"{scales[0].format(search[-1])} | {scales[1].format(report[-1])}"
                if len(search) and not np.isnan(search[-1]) else "- | -")
        row = f"| {label} | {run.setup or '-'} | {len(search)} | {best}"
        if same_front:
            volume = front_hypervolume(run.history, run.front)
            share = "-"
            if run.true_front is not None:
                spec = run.front
                share = f"{volume / hypervolume(run.true_front, spec.directions, spec.reference):.4f}"
            row += f" | {front_table(run.history, run.front).num_rows} | {volume:.6g} | {share}"
        lines.append(row + " |")
    summary = out_dir / "compare.md"
    summary.write_text("\n".join(lines) + "\n")
    plot = out_dir / "compare.png"
    _plot(runs, labels, same_front, plot, runs[0].metrics)
    return [summary, plot]


def _plot(runs: list[_Run], labels: list[str], fronts: bool, path: Path,
          metrics: tuple[str, str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.report.plots import label, log_if_decades, staircase

    panels = 3 if fronts else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    curves = []
    for i, (name, run) in enumerate(zip(labels, runs)):
        _, report = incumbent_curve(run.history, *metrics)
        ax.plot(range(1, len(report) + 1), report, color=f"C{i}", label=name)
        curves.append(report)
    log_if_decades(ax, *curves)

    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"incumbent's {label(metrics[1])}")
    ax.set_title(f"incumbent (chosen on {label(metrics[0])})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if fronts:
        spec = runs[0].front
        x_name, y_name = spec.report[1], spec.report[0]
        ax_front, ax_volume = axes[0, 1], axes[0, 2]
        for i, (name, run) in enumerate(zip(labels, runs)):
            front = front_table(run.history, run.front)
            if front.num_rows:
                staircase(ax_front, front[x_name].to_numpy(), front[y_name].to_numpy(),
                          spec.select[1][1], color=f"C{i}", marker="o", markersize=4,
                          label=name)
            curve = hypervolume_curve(run.history, run.front)
            ax_volume.plot(range(1, len(curve) + 1), curve, color=f"C{i}", label=name)
        true_front = next((r.true_front for r in runs if r.true_front is not None), None)
        if true_front is not None:
            staircase(ax_front, true_front[:, 1], true_front[:, 0], spec.select[1][1],
                      color="k", linestyle="--", linewidth=1, label="true front")
        log_if_decades(ax_front, *(front_table(r.history, r.front)[x_name].to_numpy()
                                   for r in runs), axis="x")  # params, latency: decades
        ax_front.set_xlabel(label(x_name))
        ax_front.set_ylabel(label(y_name))
        ax_front.set_title("fronts (chosen on validation, scored on test)", fontsize=10)
        ax_volume.set_xlabel("evaluations")
        ax_volume.set_ylabel(f"hypervolume ({', '.join(spec.report)})")
        ax_volume.set_title("hypervolume of the front", fontsize=10)
        for ax in (ax_front, ax_volume):
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
