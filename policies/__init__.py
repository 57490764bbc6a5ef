"""Search policies, all behind one ask/tell interface (:class:`raynas.search.Policy`).

Registered names (:func:`make_policy`): ``random``, ``rea`` (regularized
evolution), ``ls`` (local search), ``tpe`` (Optuna's TPE, a peer; needs the
``optuna`` extra), ``manas`` and ``manas-ls`` (per-edge agents, MANAS) ``npg`` (multi-objective
non-stationary policy gradient), ``catch`` (context-based meta-RL; adapts a
meta-trained agent, or searches from scratch), and the multi-objective Optuna peers
``nsga2`` and ``motpe``.

Example:
    >>> from raynas.policies import make_policy
    >>> from raynas.spaces import NB201Space
    >>> make_policy("rea", NB201Space(), seed=0, population_size=20).population_size
    20
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from raynas.errors import ArgumentTypeError, unknown_name
from raynas.policies.catch import CATCH
from raynas.policies.local_search import LocalSearch
from raynas.policies.manas import MANAS, MANASLS
from raynas.policies.npg import NPG
from raynas.policies.random_search import RandomSearch
from raynas.policies.regularized_evolution import RegularizedEvolution
from raynas.policies.tpe import MOTPE, NSGA2, TPE
from raynas.search.policy import Policy

if TYPE_CHECKING:
    from raynas.spaces import SearchSpace
    from raynas.types import Objective

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (
        RandomSearch, RegularizedEvolution, LocalSearch, TPE, MANAS, MANASLS, NPG, MOTPE, NSGA2,
        CATCH,
    )
}


def takes_objectives(name: str) -> bool:
    """Whether the policy registered as ``name`` searches several objectives (it has an
    ``objectives`` argument: npg, nsga2, motpe)."""
    return "objectives" in inspect.signature(POLICIES[name]).parameters


def make_policy(
    name: str,
    space: SearchSpace,
    *,
    seed: int = 0,
    objective: Objective | None = None,
    **hyperparameters: Any,
) -> Policy:
    """Build the policy registered as ``name``; unknown names suggest the closest one."""
    if name not in POLICIES:
        raise unknown_name("policy", name, POLICIES)
    try:
        return POLICIES[name](space, seed=seed, objective=objective, **hyperparameters)
    except TypeError as exc:
        raise ArgumentTypeError(f"policy {name!r}: bad hyperparameters {hyperparameters}: {exc}") from None


__all__ = [
    "CATCH",
    "MANAS",
    "MANASLS",
    "MOTPE",
    "NPG",
    "NSGA2",
    "POLICIES",
    "TPE",
    "LocalSearch",
    "Policy",
    "RandomSearch",
    "RegularizedEvolution",
    "make_policy",
    "takes_objectives",
]
