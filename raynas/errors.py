"""Exceptions raised by raynas, and the exit status of the ``raynas`` command for each.

Every error raynas raises on purpose is a :class:`RaynasError`. Bad arguments raise
:class:`ArgumentError` (a ``ValueError``) or :class:`ArgumentTypeError` (a ``TypeError``),
so ``except ValueError`` keeps working for library users. The command line turns these,
and only these, into one ``raynas: error: ...`` line; any other exception is a bug in
raynas (or in a library it uses) and keeps its traceback.

Hierarchy::

    RaynasError
    ├── ArgumentError (ValueError)        bad input value: argument, option, file content
    │   ├── ConfigError                   a search config (names the key)
    │   ├── TableError                    a benchmark table (names the column or row)
    │   └── DatasetError                  a dataset folder or file
    ├── ArgumentTypeError (TypeError)     bad input type
    ├── CheckpointError                   a results folder: missing, corrupt, another search's
    │   └── UntrustedFolderError          holds files raynas may not unpickle (--trust-folder)
    ├── StartupError                      the search could not start: Ray, resources, disk
    │   └── WriteError                    a results file could not be written (full disk)
    ├── TrackingError                     ``raynas report --sync`` stopped; retry it
    ├── SearchInterrupted                 stopped by Ctrl+C / SIGINT; resumable
    ├── NoSuccessError                    finished, but no evaluation succeeded
    └── MissingDependencyError (ImportError)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

EXIT_OK = 0
EXIT_BUG = 1  # an unexpected exception: Python's own status for a traceback
EXIT_USAGE = 2  # a user mistake (argparse uses 2 too)
EXIT_NO_SUCCESS = 3  # the search ran, but no evaluation succeeded
EXIT_STARTUP = 4  # could not start, or write its results (Ray, resources, a full disk)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class RaynasError(Exception):
    """Base class of every error raynas raises on purpose."""

    exit_status = EXIT_USAGE


class ArgumentError(RaynasError, ValueError):
    """An argument, option or input value is invalid; the message names it."""


class ArgumentTypeError(RaynasError, TypeError):
    """An argument has the wrong type; the message names it and what was expected."""


class ConfigError(ArgumentError):
    """A configuration file or value is invalid; the message names the key."""


class TableError(ArgumentError):
    """A benchmark table does not follow the schema (see ``raynas.tables``)."""


class DatasetError(ArgumentError):
    """A dataset folder or file is missing, incomplete or corrupt."""


class CheckpointError(RaynasError):
    """A results folder is missing, corrupt or belongs to another search."""


class UntrustedFolderError(CheckpointError):
    """A results folder holds files raynas did not write and would have to unpickle."""


class StartupError(RaynasError):
    """The search could not start: no Ray cluster, resources it cannot have, a folder it
    cannot write."""

    exit_status = EXIT_STARTUP


class WriteError(StartupError):
    """A results file could not be written (a full disk, a read-only folder); what was
    written before stays whole, since every results file is replaced atomically.

    Attributes:
        path: The file that could not be written.
    """

    def __init__(self, path: str | Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)


class TrackingError(RaynasError):
    """Records could not be sent to MLflow (``raynas report --sync``); they stay pending."""

    exit_status = EXIT_STARTUP


class SearchInterrupted(RaynasError):
    """A search stopped by an interrupt (Ctrl+C, SIGINT); its state is saved.

    Attributes:
        out_dir: The results folder to resume (``None`` for a search without one).
        done: Evaluations finished before the interrupt.
    """

    exit_status = EXIT_INTERRUPTED

    def __init__(self, message: str, out_dir: str | Path | None = None, done: int = 0) -> None:
        super().__init__(message)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.done = done


class NoSuccessError(RaynasError):
    """A search ended without one successful evaluation (every one failed or errored)."""

    exit_status = EXIT_NO_SUCCESS


class MissingDependencyError(RaynasError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> ArgumentError:
    """Build an :class:`ArgumentError` for an unknown ``name`` that suggests the closest
    known one.

    Example:
        >>> str(unknown_name("policy", "rae", ["random", "rea", "ls"]))
        "unknown policy 'rae'; did you mean 'rea'? Known: ls, random, rea"
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return ArgumentError(f"unknown {kind} {name!r}{hint} Known: {', '.join(known)}")


def require(module: str, extra: str):
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'raynas[{extra}]'"
        ) from exc
