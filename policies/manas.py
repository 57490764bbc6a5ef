"""MANAS: one agent per edge, coordinated only through the shared reward.

Carlucci et al., "MANAS: Multi-Agent Neural Architecture Search" (spec:
``shared/research/papers.md`` §2). Each edge (decision) has an agent that picks
one of its ops; the architecture is the agents' joint action and its reward is
shared by all of them.

* :class:`MANAS` — Exp3 agents: importance-weighted reward sums
  ``B[k] += r · 1{a = k} / π[k]`` and softmax sampling ``π ∝ exp(η B)``, mixed
  with ``γ`` uniform exploration (rewards, not losses, so the sign is ``+``).
* :class:`MANASLS` — least squares: the reward is modelled as a sum of per-(edge,
  op) contributions fitted by ridge regression on every (one-hot architecture,
  reward) pair seen; each agent ranks its ops by contribution and samples op of
  rank ``ρ`` with probability ``1 / (ρ · H_K)`` (Zipf).

Rewards are the objective's scores min-max normalised into [0, 1] by the range
seen so far (Exp3 needs bounded rewards).

The agents' state and sampling live in :class:`EdgeAgents`, a block of edges with
one random generator per edge. The policies keep one block for all edges in
process (the vectorised backend); ``backend="actors"`` spreads the blocks over Ray
actors (:mod:`raynas.policies.manas_actors`), with the same per-edge generators and therefore the
same architectures for the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from raynas.errors import ArgumentError
from raynas.search.policy import Policy
from raynas.types import Arch, Objective, Result

BACKENDS = ("local", "actors")


class EdgeAgents:
    """A block of per-edge agents: scores, probabilities, sampling and updates.

    Args:
        num_choices: Ops per edge of the block.
        seeds: One seed per edge (its own generator, so blocks split anywhere
            sample the same ops).
        rule: ``exp3`` or ``zipf`` (MANAS-LS's sampling from externally fitted scores).
        eta: Exp3 learning rate.
        gamma: Exp3 uniform-exploration share.
    """

    def __init__(self, num_choices: Sequence[int], seeds: Sequence[int], rule: str = "exp3",
                 eta: float = 0.1, gamma: float = 0.05) -> None:
        if rule not in ("exp3", "zipf"):
            raise ArgumentError(f"rule must be 'exp3' or 'zipf', got {rule!r}")
        self.num_choices = [int(k) for k in num_choices]
        self.rule, self.eta, self.gamma = rule, eta, gamma
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.scores = [np.zeros(k) for k in self.num_choices]
        self.fitted = False  # zipf: uniform until scores are set

    def probabilities(self) -> list[np.ndarray]:
        """Every edge's current distribution over its ops."""
        if self.rule == "exp3":
            out = []
            for b, k in zip(self.scores, self.num_choices):
                logits = self.eta * (b - b.max())
                p = np.exp(logits) / np.exp(logits).sum()
                out.append((1 - self.gamma) * p + self.gamma / k)
            return out
        if not self.fitted:
            return [np.full(k, 1.0 / k) for k in self.num_choices]
        return [zipf(b) for b in self.scores]

    def sample(self, n: int) -> list[list[int]]:
        """``n`` joint actions of the block: ``n`` rows, one op per edge."""
        probs = self.probabilities()
        columns = [rng.choice(len(p), size=n, p=p) for rng, p in zip(self.rngs, probs)]
        return np.stack(columns, axis=1).tolist()

    def update_exp3(self, actions: Sequence[Sequence[int]], rewards: Sequence[float]) -> None:
        """Importance-weighted reward sums, with the probabilities the actions were drawn from."""
        probs = self.probabilities()
        for row, reward in zip(actions, rewards):
            for edge, op in enumerate(row):
                self.scores[edge][op] += reward / probs[edge][op]

    def set_scores(self, scores: Sequence[Sequence[float]]) -> None:
        """Per-edge op contributions fitted elsewhere (MANAS-LS)."""
        self.scores = [np.asarray(s, dtype=float) for s in scores]
        self.fitted = True

    def state_dict(self) -> dict[str, Any]:
        return {"rngs": [r.bit_generator.state for r in self.rngs],
                "scores": [s.tolist() for s in self.scores], "fitted": self.fitted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
        self.scores = [np.asarray(s, dtype=float) for s in state["scores"]]
        self.fitted = state["fitted"]


def zipf(scores: np.ndarray) -> np.ndarray:
    """Zipf probabilities over ops ranked by ``scores`` (highest = rank 1; ties by index):
    ``1 / (rank · H_K)``.

    Example:
        >>> zipf(np.array([0.1, 0.9, 0.5])).round(3).tolist()
        [0.182, 0.545, 0.273]
    """
    k = len(scores)
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(k)
    ranks[order] = np.arange(1, k + 1)
    return 1.0 / (ranks * sum(1.0 / r for r in range(1, k + 1)))


class _EdgeAgentPolicy(Policy):
    """Shared machinery: per-edge seeds, the backend, reward normalisation."""

    rule: str

    def __init__(self, space, *, seed: int = 0, objective: Objective | None = None,
                 backend: str = "local", edges_per_actor: int = 64, eta: float = 0.1,
                 gamma: float = 0.05) -> None:
        super().__init__(space, seed=seed, objective=objective)
        if backend not in BACKENDS:
            raise ArgumentError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if eta <= 0 or not 0 <= gamma < 1 or edges_per_actor < 1:
            raise ArgumentError("need eta > 0, 0 <= gamma < 1 and edges_per_actor >= 1")
        self.backend, self.edges_per_actor = backend, edges_per_actor
        self.eta, self.gamma = eta, gamma
        seeds = np.random.SeedSequence(self.seed).generate_state(len(space.num_choices)).tolist()
        spec = dict(num_choices=space.num_choices, seeds=seeds, rule=self.rule, eta=eta, gamma=gamma)
        if backend == "actors":
            from raynas.policies.manas_actors import ActorAgents

            self.agents = ActorAgents(edges_per_actor=edges_per_actor, **spec)
        else:
            self.agents = EdgeAgents(**spec)
        self.low: float | None = None
        self.high: float | None = None

    def ask(self, n: int = 1) -> list[Arch]:
        archs = [self.space.validate(tuple(row)) for row in self.agents.sample(self._check_n(n))]
        return [self._not_in_flight(lambda a=a: a if a not in self.in_flight else
                                    self.space.validate(tuple(self.agents.sample(1)[0])), tries=10)
                for a in archs]

    def _rewards(self, results: Sequence[Result]) -> list[float]:
        """Scores normalised into [0, 1] by the running range (failures: 0)."""
        scores = [self._score(r) for r in results]
        for s in scores:
            if math.isfinite(s):
                self.low = s if self.low is None else min(self.low, s)
                self.high = s if self.high is None else max(self.high, s)
        out = []
        for s in scores:
            if not math.isfinite(s):
                out.append(0.0)
            elif self.high == self.low:
                out.append(0.5)
            else:
                out.append((s - self.low) / (self.high - self.low))
        return out

    def hyperparameters(self) -> dict[str, Any]:
        return {"backend": self.backend, "eta": self.eta, "gamma": self.gamma}

    def probabilities(self) -> list[np.ndarray]:
        """Every edge agent's current distribution over its ops."""
        return self.agents.probabilities()

    def most_likely(self) -> tuple[int, ...]:
        """The derived architecture: every edge's most likely op (MANAS's final choice)."""
        return tuple(int(np.argmax(p)) for p in self.probabilities())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "agents": self.agents.state_dict(),
                "range": [self.low, self.high]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.agents.load_state_dict(state["agents"])
        self.low, self.high = state["range"]


class MANAS(_EdgeAgentPolicy):
    """Exp3 agents, one per edge (see the module doc).

    Args:
        space: The search space.
        seed: Seeds every edge agent's generator.
        objective: The metric rewarded (normalised by its running range).
        eta: Exp3 learning rate η.
        gamma: Share of uniform exploration γ.
        backend: ``local`` (vectorised, in process) or ``actors`` (Ray actors).
        edges_per_actor: Edges per agent-group actor (``actors`` backend).

    Asynchronous use: the edge agents update on each result as it arrives, with the
    probabilities they have then (results of architectures sampled earlier are slightly
    off-policy for Exp3's importance weights); a sample that is being evaluated is
    drawn again.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> policy = MANAS(NB201Space(), seed=0)
        >>> arch = policy.ask(1)
        >>> policy.tell(arch, [Result({"valid_acc": 80.0})])
    """

    name = "manas"
    rule = "exp3"

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        self.agents.update_exp3([list(a) for a in archs], self._rewards(results))


class MANASLS(_EdgeAgentPolicy):
    """Least-squares credit assignment with Zipf sampling (see the module doc).

    Args:
        space: The search space.
        seed: Seeds every edge agent's generator.
        objective: The metric rewarded.
        ridge: Ridge penalty of the least-squares fit (the one-hot design is collinear).
        backend: ``local`` or ``actors``.
        edges_per_actor: Edges per agent-group actor (``actors`` backend).
    """

    name = "manas-ls"
    rule = "zipf"

    def __init__(self, space, *, seed: int = 0, objective: Objective | None = None,
                 ridge: float = 1e-3, backend: str = "local", edges_per_actor: int = 64) -> None:
        super().__init__(space, seed=seed, objective=objective, backend=backend,
                         edges_per_actor=edges_per_actor)
        if ridge <= 0:
            raise ArgumentError(f"ridge must be > 0, got {ridge}")
        self.ridge = ridge
        self.designs: list[Arch] = []
        self.scores_seen: list[float] = []

    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        self._check_told(archs, results)
        for arch, result in zip(archs, results):
            score = self._score(result)
            if math.isfinite(score):
                self.designs.append(tuple(arch))
                self.scores_seen.append(score)
        if self.designs:
            self.agents.set_scores(self.contributions())

    def contributions(self) -> list[np.ndarray]:
        """Ridge estimate of every (edge, op)'s contribution to the reward."""
        z = np.stack([self.space.encode(a) for a in self.designs]).astype(float)
        y = np.asarray(self.scores_seen) - np.mean(self.scores_seen)
        beta = np.linalg.solve(z.T @ z + self.ridge * np.eye(z.shape[1]), z.T @ y)
        bounds = np.concatenate([[0], np.cumsum(self.space.num_choices)])
        return [beta[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def hyperparameters(self) -> dict[str, Any]:
        return {"backend": self.backend, "ridge": self.ridge}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "designs": [list(a) for a in self.designs],
                "scores_seen": self.scores_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.designs = [tuple(a) for a in state["designs"]]
        self.scores_seen = list(state["scores_seen"])
