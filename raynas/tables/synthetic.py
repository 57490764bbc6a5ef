"""Synthetic benchmark tables of any size, for tests and scaling measurements.

:func:`synthetic_space` makes a custom space of ``decisions`` decisions;
:func:`synthetic_table` draws ``rows`` distinct architectures of a space (seeded) and
gives each a validation and a test accuracy from a fixed random landscape (additive
per-choice effects plus pairwise interactions between neighbouring decisions, squashed
into 20-95 %, with independent noise for valid and test), a training time and a
parameter count. Everything is vectorised (NumPy, Arrow): a million rows take seconds.

Example:
    >>> space = synthetic_space(decisions=4, choices=3)
    >>> data = synthetic_table(space, rows=50, seed=0)
    >>> data.num_rows, data.column_names[:3]
    (50, ['arch_str', 'syn_valid_acc', 'syn_test_acc'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import ArgumentError

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.spaces import SearchSpace
    from raynas.spaces.custom import CustomSpace


def synthetic_space(decisions: int = 9, choices: int | Sequence[int] = 4,
                    name: str = "synthetic") -> CustomSpace:
    """A custom space ``d0..d{n-1}`` with ``choices`` choices each (or one count per
    decision), choice ``j`` of decision ``i`` named ``c{j}``."""
    from raynas.spaces.custom import CustomSpace

    counts = [choices] * decisions if isinstance(choices, int) else list(choices)
    if len(counts) != decisions or min(counts) < 2:
        raise ArgumentError(f"need {decisions} choice counts >= 2, got {counts}")
    return CustomSpace(name, {f"d{i}": [f"c{j}" for j in range(k)]
                              for i, k in enumerate(counts)})


def sample_codes(space: SearchSpace, rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` distinct architectures of ``space`` as choice indices ``(rows, decisions)``,
    drawn uniformly without replacement."""
    size = space.size
    if rows > size:
        raise ArgumentError(f"{space.name} has {size} architectures; cannot draw {rows}")
    rng = np.random.default_rng(seed)
    if size <= 4 * rows:
        keys = rng.permutation(size)[:rows]
    else:
        keys = np.unique(rng.integers(0, size, size=int(rows * 1.2) + 16))
        while len(keys) < rows:
            keys = np.unique(np.concatenate([keys, rng.integers(0, size, size=rows)]))
        keys = rng.permutation(keys)[:rows]
    codes = np.empty((rows, len(space.num_choices)), dtype=np.int64)
    for i in reversed(range(len(space.num_choices))):
        keys, codes[:, i] = np.divmod(keys, space.num_choices[i])
    return codes


def arch_strings(space: SearchSpace, codes: np.ndarray) -> pa.Array:
    """``space``'s strings of ``codes``, built with Arrow (spaces with a
    :meth:`~raynas.spaces.SearchSpace.string_layout`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    layout = space.string_layout()
    if layout is None:
        return pa.array([space.to_str(tuple(row)) for row in codes.tolist()])
    sep, parts = layout
    columns, decision = [], 0
    for part in parts:
        if isinstance(part, str):
            columns.append(pa.array(np.full(len(codes), part, dtype=object), pa.string()))
        else:
            columns.append(pa.array(np.asarray(part, dtype=object)[codes[:, decision]],
                                    pa.string()))
            decision += 1
    return pc.binary_join_element_wise(*columns, sep)


def synthetic_table(space: SearchSpace, rows: int, seed: int = 0,
                    datasets: Sequence[str] = ("syn",), runs: int = 1,
                    noise: float = 0.5) -> pa.Table:
    """A benchmark table of ``rows`` distinct architectures of ``space``: per dataset
    ``<d>_valid_acc`` and ``<d>_test_acc`` (``runs`` > 1: ``<d>_valid_acc@<r>`` and
    ``<d>_test_acc@<r>`` per run, see :mod:`raynas.tables.table`), ``<d>_train_time``;
    and a table-wide ``params``. The landscape is fixed by ``seed``; ``noise`` is the
    standard deviation (pp) of each run's deviation from it."""
    import pyarrow as pa

    rng = np.random.default_rng([seed, 7])
    codes = sample_codes(space, rows, seed)
    columns: dict[str, object] = {"arch_str": arch_strings(space, codes)}
    counts = space.num_choices
    onehot_offsets = np.concatenate([[0], np.cumsum(counts)])[:-1]
    flat = codes + onehot_offsets  # (rows, decisions) indices into one weight vector
    size = np.asarray(rng.uniform(0.5, 2.0, size=sum(counts)))
    params = size[flat].sum(axis=1) * 0.1
    for d in datasets:
        effect = rng.normal(0.0, 1.0, size=sum(counts))
        score = effect[flat].sum(axis=1)
        for i in range(len(counts) - 1):  # neighbouring decisions interact
            pair = rng.normal(0.0, 0.5, size=(counts[i], counts[i + 1]))
            score += pair[codes[:, i], codes[:, i + 1]]
        score = (score - score.mean()) / (score.std() + 1e-12)
        acc = 20.0 + 75.0 / (1.0 + np.exp(-1.5 * score))
        for split in ("valid", "test"):
            for r in range(runs):
                name = f"{d}_{split}_acc" + (f"@{r}" if runs > 1 else "")
                columns[name] = np.clip(acc + rng.normal(0.0, noise, size=rows), 0, 100)
        columns[f"{d}_train_time"] = 60.0 * (1.0 + params) * rng.uniform(0.9, 1.1, size=rows)
    columns["params"] = params
    return pa.table(columns)
