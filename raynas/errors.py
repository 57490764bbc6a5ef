"""Exceptions raised by raynas.

Bad arguments raise :class:`ValueError` or :class:`TypeError`. Failures of the
domain (a broken benchmark table, a checkpoint that does not match the search)
raise subclasses of :class:`RaynasError`, so callers can catch them together.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RaynasError(Exception):
    """Base class of every domain error raised by raynas."""


class TableError(RaynasError, ValueError):
    """A benchmark table does not follow the schema (see ``raynas.benchmarks``)."""


class CheckpointError(RaynasError):
    """A search checkpoint is missing, corrupt or belongs to another search."""


class MissingDependencyError(RaynasError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """Build a ``ValueError`` for an unknown ``name`` that suggests the closest known one.

    Example:
        >>> str(unknown_name("policy", "rae", ["random", "rea", "ls"]))
        "unknown policy 'rae'; did you mean 'rea'? Known: ls, random, rea"
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return ValueError(f"unknown {kind} {name!r}{hint} Known: {', '.join(known)}")


def require(module: str, extra: str):
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'raynas[{extra}]'"
        ) from exc
