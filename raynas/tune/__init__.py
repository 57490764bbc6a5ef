"""Ray Tune adapter: real training trials driven by any raynas policy.

* :class:`PolicySearcher` — a Tune ``Searcher`` wrapping a policy (save/restore included);
* :func:`make_trainable` — the per-architecture function trainable, with resources;
* :func:`run_tune` — the whole search as a resumable Tune experiment.
"""

from raynas.tune.runner import TuneSettings, run_tune
from raynas.tune.searcher import PolicySearcher
from raynas.tune.trainable import make_trainable

__all__ = ["PolicySearcher", "TuneSettings", "make_trainable", "run_tune"]
