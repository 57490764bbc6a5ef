"""Ray Tune adapter: real training trials driven by any raynas policy.

* :class:`PolicySearcher` — a Tune ``Searcher`` wrapping a policy (save/restore included);
* :func:`make_trainable` — the per-architecture function trainable, with resources;
* :func:`run_tune` — the whole search as a resumable Tune experiment;
* :class:`HyperScheduler` — a ``TrialScheduler`` whose learned hyper-controller
  adjusts running trials' hyperparameters (pause, new config, resume).
"""

from raynas.tune.hyper_scheduler import HyperScheduler
from raynas.tune.runner import PolicySearcher, TuneSettings, run_tune
from raynas.tune.trial import make_trainable

__all__ = ["HyperScheduler", "PolicySearcher", "TuneSettings", "make_trainable", "run_tune"]
