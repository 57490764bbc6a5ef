"""CATCH: context-based meta-RL for transferable architecture search (Chen et al.,
ECCV 2020; spec: ``shared/research/papers.md`` §1).

* :class:`CATCH` — the ask/tell policy (adapts online; from scratch without a
  checkpoint);
* :func:`meta_train` — meta-training over several tasks, Ray tasks as rollout workers;
* :func:`table_tasks` — one task per dataset of a benchmark table;
* :mod:`~raynas.policies.catch.encoder`, :mod:`~raynas.policies.catch.agent` — the
  context encoder, controller and network evaluator.
"""

from raynas.policies.catch.meta import meta_train
from raynas.policies.catch.policy import CATCH, normalize_rewards, read_checkpoint, save_checkpoint
from raynas.policies.catch.tasks import TableTask, table_tasks

__all__ = ["CATCH", "TableTask", "meta_train", "normalize_rewards", "read_checkpoint",
           "save_checkpoint", "table_tasks"]
