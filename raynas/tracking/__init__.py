"""Experiment tracking with MLflow, imported only when used.

* :mod:`raynas.tracking.client` — the client: runs, the pending queue, the replay;
* :mod:`raynas.tracking.tracker` — :class:`MlflowTracker`, one tracker for every engine;
* :mod:`raynas.tune.trial` — what only Tune sees: per-trial child runs, beside the
  trainable.
"""

from raynas.tracking.client import MlflowLogger, default_uri, redact, replay_pending
from raynas.tracking.tracker import MlflowTracker

__all__ = ["MlflowLogger", "MlflowTracker", "default_uri", "redact", "replay_pending"]
