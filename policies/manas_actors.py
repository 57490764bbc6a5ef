"""Per-edge agents on Ray actors: the ``backend="actors"`` of MANAS and MANAS-LS.

Edges are split into blocks of ``edges_per_actor``; each block is one Ray actor
holding a :class:`~raynas.policies.manas.EdgeAgents` (so thousands of edges do not
mean thousands of processes). :class:`ActorAgents`, the coordinator, gathers the
blocks' actions into joint actions and broadcasts the shared rewards (or the fitted
scores) back. It keeps each block's state after every update; if a block's actor
dies (a crashed worker, a killed process), it starts a new actor from that state
and retries, so the search goes on as if nothing happened.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError

from raynas.policies.manas import EdgeAgents

logger = logging.getLogger(__name__)

class _Group(EdgeAgents):
    """A block of agents that returns its new state with every answer, so the
    coordinator always holds the state that goes with what it was told."""

    def call(self, method: str, *args):
        return getattr(self, method)(*args), self.state_dict()

    def pid(self) -> int:
        import os

        return os.getpid()


AgentGroup = ray.remote(num_cpus=0, max_restarts=0)(_Group)


class ActorAgents:
    """The coordinator of agent-group actors; the same interface as :class:`EdgeAgents`."""

    def __init__(self, num_choices: Sequence[int], seeds: Sequence[int], rule: str = "exp3",
                 eta: float = 0.1, gamma: float = 0.05, edges_per_actor: int = 64) -> None:
        if not ray.is_initialized():  # a new local instance (or $RAY_ADDRESS), never a
            from raynas.cluster import connect  # stale cluster ray.init() would find

            connect()
        self.blocks = [(i, min(i + edges_per_actor, len(num_choices)))
                       for i in range(0, len(num_choices), edges_per_actor)]
        self.specs = [dict(num_choices=list(num_choices[a:b]), seeds=list(seeds[a:b]), rule=rule,
                           eta=eta, gamma=gamma) for a, b in self.blocks]
        self.actors = [AgentGroup.remote(**spec) for spec in self.specs]
        self.states: list[dict[str, Any]] = [None] * len(self.actors)  # type: ignore[list-item]
        self._call("state_dict")

    # --------------------------------------------------------------- plumbing
    def _restart(self, index: int) -> None:
        logger.warning("agent-group actor %d died; restarting it from its last state", index)
        actor = AgentGroup.remote(**self.specs[index])
        ray.get(actor.call.remote("load_state_dict", self.states[index]))
        self.actors[index] = actor

    def _call(self, method: str, args_per_block: Sequence[tuple] | None = None) -> list[Any]:
        """Call ``method`` on every block in parallel and keep each block's new state; a
        dead block is restarted from its last state and asked again."""
        args_per_block = args_per_block or [()] * len(self.actors)
        refs = [a.call.remote(method, *args) for a, args in zip(self.actors, args_per_block)]
        out = []
        for i, ref in enumerate(refs):
            try:
                result, state = ray.get(ref)
            except RayActorError:
                self._restart(i)
                result, state = ray.get(self.actors[i].call.remote(method, *args_per_block[i]))
            self.states[i] = state
            out.append(result)
        return out

    # -------------------------------------------------------------- interface
    def probabilities(self):
        return [p for block in self._call("probabilities") for p in block]

    def sample(self, n: int) -> list[list[int]]:
        blocks = self._call("sample", [(n,)] * len(self.actors))
        return [sum((block[row] for block in blocks), []) for row in range(n)]

    def update_exp3(self, actions: Sequence[Sequence[int]], rewards: Sequence[float]) -> None:
        args = [([list(row[a:b]) for row in actions], list(rewards)) for a, b in self.blocks]
        self._call("update_exp3", args)

    def set_scores(self, scores: Sequence[Sequence[float]]) -> None:
        args = [([list(map(float, s)) for s in scores[a:b]],) for a, b in self.blocks]
        self._call("set_scores", args)

    def state_dict(self) -> dict[str, Any]:
        states = self.states
        return {"rngs": [r for s in states for r in s["rngs"]],
                "scores": [x for s in states for x in s["scores"]],
                "fitted": all(s["fitted"] for s in states)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        args = [({"rngs": state["rngs"][a:b], "scores": state["scores"][a:b],
                  "fitted": state["fitted"]},) for a, b in self.blocks]
        self._call("load_state_dict", args)

    def pids(self) -> list[int]:
        """The agent-group actors' process ids (for monitoring, and the tests)."""
        return ray.get([a.pid.remote() for a in self.actors])
