"""Ctrl+C that is never lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be.
When that is inside a garbage-collection callback (SQLAlchemy's, under MLflow) or a
library's ``except BaseException``, the exception is dropped ("Exception ignored in
...") and a command would go on and exit 0 as if nobody had pressed Ctrl+C. Under
:func:`catching` the request is also recorded: the search loop stops at its next
consistent point (:func:`check`), and the ``raynas`` command reports the interrupt
(exit status 130) even when the exception itself was swallowed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = False


def _handler(signum, frame) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


@contextmanager
def catching() -> Iterator[None]:
    """Record every SIGINT while the block runs (main thread only; elsewhere a no-op);
    the record ends with the block."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested = False


def requested() -> bool:
    """Whether SIGINT came since :func:`catching` began."""
    return _requested


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT came (and its exception may have been lost)."""
    if _requested:
        raise KeyboardInterrupt
