"""``raynas report DIR``: rebuild a search's summary and plots from its results folder.

Needs only ``history.parquet`` (and ``config.yaml`` / ``front.json`` when present); MLflow is not
involved unless ``--sync`` replays tracking records that could not be sent.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from raynas.errors import RaynasError
from raynas.files import write_atomically, write_text
from raynas.objectives.fronts import (
    FrontSpec,
    front_hypervolume,
    front_table,
    hypervolume_curve,
    load_front,
    write_front_files,
)
from raynas.report.units import Scale
from raynas.search.history import incumbent_curve


def write_report(out_dir: str | Path) -> list[Path]:
    """Write ``summary.md`` and ``progress.png`` into ``out_dir`` (and, for a multi-objective
    search, ``pareto.parquet`` and ``pareto.png``); return their paths."""
    out_dir = Path(out_dir).resolve()
    history_path = out_dir / "history.parquet"
    if not history_path.is_file():
        raise RaynasError(f"no history.parquet in {out_dir}: is it a raynas search folder?")
    history = pq.read_table(history_path)
    search_metric, report_metric, mode = "valid_acc", "test_acc", "max"
    if (out_dir / "config.yaml").is_file():
        from raynas import config as cfg

        config = cfg.load(out_dir / "config.yaml")
        ev = config.evaluator
        search_metric, report_metric, mode = ev.search_metric, ev.report_metric, ev.mode
        policy = f"{config.policy.name} {config.policy.options or ''}".strip()
        space = cfg.space_label(config)
        if space != config.space.name:
            space += f" ({config.space.name})"
        setup = f"space `{space}`, policy `{policy}`, {config.evaluator.kind} " \
                f"evaluator on `{config.evaluator.dataset}`, seed {config.seed}"
    else:
        setup = "configuration unknown (no config.yaml)"
    rows = history.to_pylist()
    fresh = [r for r in rows if not r["cached"]]
    ok = [r for r in fresh if r["status"] == "ok" and r.get(search_metric) is not None]
    lines = ["# raynas search report", "", f"- folder: `{out_dir}`", f"- setup: {setup}",
             f"- protocol: search on `{search_metric}`, report `{report_metric}`",
             f"- evaluations: {len(fresh)} ({len(fresh) - len(ok)} failed), "
             f"cached repeats: {len(rows) - len(fresh)}", ""]
    if ok:
        sign = 1 if mode == "max" else -1
        best = max(ok, key=lambda r: sign * r[search_metric])  # the first best, as the search
        _, report = incumbent_curve(history, search_metric, report_metric, mode)
        lines += [f"## Best architecture (by {search_metric}, {mode})", "", f"`{best['arch']}`", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in best.items()
                  if isinstance(v, float) and k not in ("cost", "elapsed")]
        scale = Scale.of([r[report_metric] for r in ok if r.get(report_metric) is not None],
                         report_metric)
        lines += ["", f"Incumbent {report_metric} after each quarter of the evaluations: "
                  + ", ".join(scale.format(report[max(0, len(report) * q // 4 - 1)])
                              for q in (1, 2, 3, 4))]
    spec, true_front = load_front(out_dir)
    written = []
    if spec is not None:
        lines += ["", "## Pareto front", "", *front_lines(history, spec, true_front)]
        written += write_front_files(history, spec, out_dir, true_front)
    summary = out_dir / "summary.md"
    write_text(summary, "\n".join(lines) + "\n")
    plot = out_dir / "progress.png"
    write_progress_plot(history, search_metric, report_metric, plot, spec, mode)
    return [summary, plot, *written]


def front_lines(history, spec: FrontSpec, true_front=None) -> list[str]:
    """Markdown lines on a search's front: its size, hypervolume and members."""
    from raynas.objectives.pareto import hypervolume

    front = front_table(history, spec)
    volume = front_hypervolume(history, spec)
    names = ", ".join(f"{m} ({d})" for m, d in spec.select)
    lines = [f"Chosen on {names}; scored on {', '.join(spec.report)}; reference point "
             f"{tuple(round(r, 6) for r in spec.reference)}.", "",
             f"- architectures on the front: {front.num_rows}",
             f"- hypervolume: {volume:.6g}"]
    if true_front is not None:
        true_volume = hypervolume(true_front, spec.directions, spec.reference)
        lines.append(f"- share of the true front's hypervolume ({true_volume:.6g}): "
                     f"{volume / true_volume:.4f}")
    columns = list(dict.fromkeys([*spec.report, *(m for m, _ in spec.select)]))
    lines += ["", "| arch | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    order = sorted(front.to_pylist(), key=lambda r: r[spec.report[1]])
    lines += [f"| `{_cell(r['arch'])}` | " + " | ".join(f"{r[c]:.4g}" for c in columns) + " |"
              for r in order]
    return lines


def _cell(text: str) -> str:
    """``text`` for a Markdown table cell (NB201 strings are full of ``|``)."""
    return text.replace("|", "\\|")


def write_progress_plot(history, search_metric: str, report_metric: str, path: Path,
                        front: FrontSpec | None = None, mode: str = "max") -> None:
    """The incumbent's search and report metrics vs evaluations; with a ``front``, its
    hypervolume vs evaluations in a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raynas.report.plots import label, log_if_decades

    search, report = incumbent_curve(history, search_metric, report_metric, mode)
    panels = 2 if front is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    x = range(1, len(search) + 1)
    ax.step(x, search, where="post", label=f"{label(search_metric)} (searched on)")
    ax.step(x, report, where="post", linestyle="--", label=f"{label(report_metric)} (reported)")
    ax.set_xlabel("evaluations")
    split, _, rest = label(search_metric).partition(" ")
    same = split in ("validation", "test", "training") and label(report_metric).endswith(rest)
    ax.set_ylabel(rest if same else label(search_metric))  # "accuracy (%)"
    log_if_decades(ax, search, report)  # e.g. losses from 1e-1 down to 1e-4
    ax.set_title(f"the incumbent (best {label(search_metric)} so far)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if front is not None:
        curve = hypervolume_curve(history, front)
        ax = axes[0, 1]
        ax.step(range(1, len(curve) + 1), curve, where="post", color="C2")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume (" + ", ".join(front.report) + ")")
        ax.set_title("hypervolume of the front (chosen on validation, scored on test)",
                     fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
