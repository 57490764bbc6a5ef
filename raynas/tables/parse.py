"""Parse a table's ``arch_str`` column at once, with Arrow compute: no Python per row.

A space's :meth:`~raynas.spaces.SearchSpace.string_layout` says how its strings split
into literals and one token per decision; the column is split once, every token is
looked up in the vocabulary of all tokens once, and each position's choice index comes
from a lookup array. A row that does not fit is parsed again with the space's own
``from_str`` so the error names it exactly as a one-by-one parse would. Spaces with no
layout, or with constraints (``is_valid``), are parsed (or checked) one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import TableError

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.spaces import SearchSpace


def _row_error(space: SearchSpace, text: str | None, row: int, where: str) -> TableError:
    if text is None:
        return TableError(f"{where}: row {row}: 'arch_str' is empty")
    try:
        space.from_str(text)
    except (ValueError, TypeError) as exc:
        return TableError(f"{where}: row {row}: 'arch_str' {text!r} is not in the "
                          f"{space.name} space: {exc}")
    return TableError(f"{where}: row {row}: 'arch_str' {text!r} does not match the "
                      f"{space.name} space's string layout")  # pragma: no cover - a bug


def _one_by_one(space: SearchSpace, strings: list, where: str) -> np.ndarray:
    out = np.empty((len(strings), len(space.decisions)), dtype=np.int64)
    for row, text in enumerate(strings):
        if text is None:
            raise _row_error(space, None, row, where)
        try:
            out[row] = space.from_str(text)
        except (ValueError, TypeError):
            raise _row_error(space, text, row, where) from None
    return out


def parse_arch_strings(column: pa.ChunkedArray | pa.Array, space: SearchSpace,
                       where: str = "benchmark table") -> np.ndarray:
    """Choice indices, ``(rows, decisions)`` int64, of every string in ``column``;
    :class:`~raynas.errors.TableError` names the first bad row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise _row_error(space, None, row, where)
    layout = space.string_layout()
    strings = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    if layout is None or not strings:
        return _one_by_one(space, column.to_pylist(), where)
    sep, parts = layout
    n = len(column)
    split = pc.split_pattern(pc.utf8_trim_whitespace(column), sep)
    lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != len(parts))
    if bad.size:
        row = int(bad[0])
        raise _row_error(space, column[row].as_py(), row, where)
    vocab: dict[str, int] = {}
    for part in parts:
        for token in ([part] if isinstance(part, str) else part):
            vocab.setdefault(token, len(vocab))
    ids = pc.index_in(pc.list_flatten(split), value_set=pa.array(list(vocab), pa.string()))
    ids = ids.fill_null(len(vocab)).to_numpy(zero_copy_only=False).reshape(n, len(parts))
    codes = np.empty((n, len(space.decisions)), dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    decision = 0
    for position, part in enumerate(parts):
        if isinstance(part, str):
            ok &= ids[:, position] == vocab[part]
            continue
        lookup = np.full(len(vocab) + 1, -1, dtype=np.int64)
        lookup[[vocab[token] for token in part]] = np.arange(len(part))
        codes[:, decision] = lookup[ids[:, position]]
        decision += 1
    ok &= (codes >= 0).all(axis=1)
    bad = np.flatnonzero(~ok)
    if bad.size:
        row = int(bad[0])
        raise _row_error(space, column[row].as_py(), row, where)
    if space.constrained:
        for row, arch in enumerate(map(tuple, codes.tolist())):
            if not space.is_valid(arch):
                raise _row_error(space, column[row].as_py(), row, where)
    return codes

