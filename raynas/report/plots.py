"""What every raynas plot shares: axis labels with units, fronts drawn as staircases,
and a legend entry for the shaded bands."""

from __future__ import annotations

import numpy as np

_LABELS = {
    "acc": "accuracy (%)", "err": "error (%)", "loss": "loss", "params": "parameters (M)",
    "flops": "FLOPs (M multiply-adds)", "latency_ms": "latency (ms)",
    "latency": "latency (s per batch)", "train_time": "training time (s)",
    "cost": "cost (s)", "time": "time (s)",
}
_SPLITS = {"valid": "validation", "test": "test", "train": "training"}


def label(metric: str) -> str:
    """An axis label with its unit: ``valid_acc`` -> ``validation accuracy (%)``,
    ``params`` -> ``parameters (M)``; an unknown name stays as it is."""
    if metric in _LABELS:
        return _LABELS[metric]
    split, _, rest = metric.partition("_")
    if split in _SPLITS and rest:
        return f"{_SPLITS[split]} {_LABELS.get(rest, rest.replace('_', ' '))}"
    for suffix in ("train_time", "latency"):  # <dataset>_train_time, <dataset>_latency
        if metric.endswith("_" + suffix):
            return f"{metric[:-len(suffix) - 1]} {_LABELS[suffix]}"
    return metric


def staircase(ax, x, y, x_mode: str = "min", **kwargs):
    """Draw a 2-objective front as the staircase it is (not a sloped line): sorted by
    ``x``, each point's ``y`` holds until the next point (``x`` minimised: what is
    reachable at a cost of at most ``x``), or from the previous one (``x`` maximised)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x)
    return ax.step(x[order], y[order], where="post" if x_mode == "min" else "pre", **kwargs)


def band_legend(ax, what: str, **legend) -> None:
    """A legend that also says what the shaded bands are (``what``, e.g. "±1 standard
    error over seeds")."""
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="grey", alpha=0.25))
    labels.append(f"shaded: {what}")
    ax.legend(handles, labels, **legend)


def log_if_decades(ax, *series, axis: str = "y", decades: float = 2.0) -> bool:
    """Put ``ax``'s ``axis`` on a log scale when the positive values of ``series`` span at
    least ``decades`` decades (and none is zero or negative); returns whether it did."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series] or [[]])
    values = values[np.isfinite(values)]
    if not len(values) or values.min() <= 0 or values.max() / values.min() < 10 ** decades:
        return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    return True
