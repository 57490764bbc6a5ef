"""raynas: Ray-based distributed neural architecture search, framed as reinforcement learning.

The pieces of one search (see ``DESIGN.md``):

* a :class:`~raynas.spaces.SearchSpace` says what an architecture is;
* a policy (``raynas.policies``) decides what to evaluate next (``ask``/``tell``);
* an evaluator (``raynas.evaluators``) scores architectures;
* :class:`~raynas.search.Search` runs the loop, records the history and checkpoints.
"""

from __future__ import annotations

__version__ = "0.1.0"
