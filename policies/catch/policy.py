"""The CATCH policy: ask/tell search with a (meta-trained) CATCHer.

Each ``ask``: z is drawn from q(z | context) (the task's history so far; empty: the
prior), the controller proposes ``candidates`` architectures not yet evaluated, the
evaluator ranks them and the top ones are returned, except that each pick is a
random candidate with probability ε (decaying linearly from ``epsilon`` to 0 over
``epsilon_queries`` results). Each ``tell`` appends the results to the context and
makes ``updates`` Adam steps on the joint loss (:mod:`raynas.policies.catch.agent`)
with the ``window`` most recent results as the PPO batch. Rewards are normalised per
task against the context (``rank`` into [−1, 1], or ``zscore``), so tasks with
different accuracy ranges share one agent.

**Model-based updates (Dyna-style, as MBPO's real-data ratio):** each controller
update is *real* with probability ``real_ratio`` (β; the PPO batch is the latest real
results) and otherwise *imagined* (the controller samples ``window`` architectures
and the evaluator's predictions, rank-normalised, are their rewards). The evaluator
is refitted on every ``evaluator_every``-th ``tell``. β, ``evaluator_every`` and
``updates`` can change during a search (:meth:`CATCH.set_hyperparameters`), e.g. by
a hyper-controller (:mod:`raynas.policies.catch.schedule`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.errors import ArgumentError
from raynas.search.policy import Policy
from raynas.types import Arch, Objective, Result

if TYPE_CHECKING:
    import torch

    from raynas.policies.catch.agent import CATCHAgent

# torch is imported where it is used: ``import raynas.policies`` stays light.
LATENT, HIDDEN = 5, 64  # dim of z (PEARL's) and the width of every MLP
CLIP, ENTROPY, KL_WEIGHT = 0.2, 1e-2, 0.1  # PPO's ε, the entropy bonus, β_KL (PEARL's)
NORMALIZATIONS = ("rank", "zscore")
FILLS = ("neighbors", "random")  # what tops up the candidates of a converged controller
CHECKPOINT_FORMAT = "raynas-catch-1"
SCHEDULABLE = ("real_ratio", "evaluator_every", "updates")  # set_hyperparameters' keys


def normalize_rewards(scores: Sequence[float], how: str = "rank") -> np.ndarray:
    """Per-task rewards: ``rank`` (average ranks of ties, scaled into [−1, 1]) or
    ``zscore`` ((s − mean) / std; zeros when all are equal).

    Example:
        >>> normalize_rewards([10.0, 30.0, 20.0]).tolist()
        [-1.0, 1.0, 0.0]
    """
    s = np.asarray(scores, dtype=float)
    if how not in NORMALIZATIONS:
        raise ArgumentError(f"normalize must be one of {NORMALIZATIONS}, got {how!r}")
    if len(s) < 2 or np.ptp(s) == 0:
        return np.zeros(len(s))
    if how == "zscore":
        return (s - s.mean()) / s.std()
    order = np.argsort(s, kind="stable")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts)  # ties: their average rank
    return 2.0 * ranks / (len(s) - 1) - 1.0


def save_checkpoint(agent: CATCHAgent, path: str | Path, **info: Any) -> Path:
    """Write a CATCHer's weights and shape as JSON (no pickle: safe to load)."""
    from raynas.policies.controllers import module_state

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CHECKPOINT_FORMAT, "num_choices": agent.num_choices,
            "latent": agent.latent, "hidden": agent.hidden, "use_z": agent.use_z,
            "weights": module_state(agent), "info": info}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArgumentError(f"{path}: not a readable CATCH checkpoint ({exc})") from None
    if data.get("format") != CHECKPOINT_FORMAT:
        raise ArgumentError(f"{path}: not a CATCH checkpoint (format {data.get('format')!r}, "
                         f"expected {CHECKPOINT_FORMAT!r})")
    return data


class CATCH(Policy):
    """Context-based meta-RL architecture search (see the module doc).

    Args:
        space: The search space.
        seed: Seeds the agent's initial weights and all sampling.
        objective: The search metric.
        checkpoint: A meta-trained agent (:func:`raynas.policies.catch.meta_train`);
            ``None``: search from scratch.
        latent, hidden: The agent's shape (a checkpoint's win).
        candidates: Architectures proposed per pick (M).
        epsilon, epsilon_queries: Random picks among the candidates: probability
            ``epsilon`` at first, 0 after ``epsilon_queries`` results.
        lr: Adam's learning rate.
        updates: Gradient steps per ``tell`` (0: no online learning).
        window: The most recent asks forming the PPO batch.
        normalize: ``rank`` or ``zscore`` reward normalisation per task.
        real_ratio: β, the probability that a controller update uses real results
            rather than evaluator-predicted rewards (1: all real).
        evaluator_every: Refit the evaluator on every this many ``tell`` s.
        use_z: Condition on the task latent (ablation: off).
        use_evaluator: Filter candidates with the evaluator (ablation: off, the
            controller's first sample is taken).
        fill: What tops up the candidates when the controller keeps drawing evaluated
            architectures (a converged controller): ``neighbors``, the unevaluated
            one-decision neighbours of the best results so far, best first, or
            ``random`` architectures. The evaluator ranks them like the controller's.
        clip, entropy, kl_weight: PPO's ε, the entropy bonus, β_KL.

    Asynchronous use: the context encoder, controller and evaluator learn from each
    result as it arrives (the log-probability of a pending architecture is the one it
    was proposed with); architectures being evaluated are never proposed again, like
    evaluated ones.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> policy = CATCH(NB201Space(), seed=0)
        >>> archs = policy.ask(1)
        >>> policy.tell(archs, [Result({"valid_acc": 80.0})])
    """

    name = "catch"

    def __init__(self, space, *, seed: int = 0, objective: Objective | None = None,
                 checkpoint: str | None = None, latent: int = LATENT, hidden: int = HIDDEN,
                 candidates: int = 50, epsilon: float = 0.5, epsilon_queries: int = 20,
                 lr: float = 3e-3, updates: int = 5, window: int = 16, normalize: str = "rank",
                 use_z: bool = True, use_evaluator: bool = True, real_ratio: float = 1.0,
                 evaluator_every: int = 1, fill: str = "neighbors", clip: float = CLIP,
                 entropy: float = ENTROPY, kl_weight: float = KL_WEIGHT) -> None:
        super().__init__(space, seed=seed, objective=objective)
        if normalize not in NORMALIZATIONS:
            raise ArgumentError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if fill not in FILLS:
            raise ArgumentError(f"fill must be one of {FILLS}, got {fill!r}")
        if candidates < 1 or window < 1 or not 0 <= epsilon <= 1 or lr <= 0:
            raise ArgumentError("need candidates >= 1, window >= 1, 0 <= epsilon <= 1, lr > 0")
        self.checkpoint = checkpoint
        saved = read_checkpoint(checkpoint) if checkpoint else None
        if saved is not None:
            if saved["num_choices"] != list(space.num_choices):
                raise ArgumentError(f"{checkpoint}: meta-trained for decisions "
                                 f"{saved['num_choices']}, not this space's "
                                 f"{list(space.num_choices)}")
            latent, hidden, use_z = saved["latent"], saved["hidden"], saved["use_z"]
        self.options = dict(candidates=candidates, epsilon=epsilon,
                            epsilon_queries=epsilon_queries, lr=lr, window=window,
                            normalize=normalize, use_evaluator=use_evaluator, fill=fill, clip=clip,
                            entropy=entropy, kl_weight=kl_weight)
        self.set_hyperparameters(updates=updates, real_ratio=real_ratio,
                                 evaluator_every=evaluator_every)
        import torch

        from raynas.policies.catch.agent import CATCHAgent
        from raynas.policies.controllers import load_module_state, torch_seeded

        with torch_seeded(self.seed):
            self.agent = CATCHAgent(space.num_choices, latent, hidden, use_z)
        if saved is not None:
            load_module_state(self.agent, saved["weights"])
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=lr)
        # this task's history: (arch, score, log-prob when asked); its tail is the PPO batch
        self.context: list[tuple[Arch, float, float]] = []
        self.pending: dict[Arch, float] = {}
        self.predicted: dict[Arch, float] = {}  # the evaluator's score of each pick, when asked
        self.seen: set[Arch] = set()
        self.told = 0
        self.tells = 0
        self.real_updates = self.imagined_updates = 0

    def set_hyperparameters(self, **values: float) -> None:
        """Change the scheduled hyperparameters (``real_ratio``, ``evaluator_every``,
        ``updates``) from the next ``tell`` on."""
        unknown = set(values) - set(SCHEDULABLE)
        if unknown:
            raise ArgumentError(f"CATCH cannot schedule {sorted(unknown)}; known: {SCHEDULABLE}")
        if "real_ratio" in values and not 0 <= values["real_ratio"] <= 1:
            raise ArgumentError(f"real_ratio must be in [0, 1], got {values['real_ratio']}")
        if "evaluator_every" in values and values["evaluator_every"] < 1:
            raise ArgumentError(f"evaluator_every must be >= 1, got {values['evaluator_every']}")
        if "updates" in values and values["updates"] < 0:
            raise ArgumentError(f"updates must be >= 0, got {values['updates']}")
        for key, value in values.items():
            self.options[key] = float(value) if key == "real_ratio" else int(round(value))

    # ------------------------------------------------------------------ ask
    def _context_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        archs = torch.as_tensor([list(c[0]) for c in self.context], dtype=torch.long)
        rewards = normalize_rewards([c[1] for c in self.context], self.options["normalize"])
        return (archs.reshape(len(self.context), len(self.space.num_choices)),
                torch.as_tensor(rewards, dtype=torch.float32))

    def _z(self) -> torch.Tensor:
        import torch

        with torch.no_grad():
            mu, variance = self.agent.posterior(*self._context_tensors())
        noise = torch.as_tensor(self.rng.standard_normal(self.agent.latent), dtype=torch.float32)
        return mu + variance.sqrt() * noise

    def epsilon(self) -> float:
        """The current probability of a random pick among the candidates."""
        o = self.options
        if o["epsilon_queries"] <= 0:
            return 0.0
        return o["epsilon"] * max(0.0, 1.0 - self.told / o["epsilon_queries"])

    def ask(self, n: int = 1) -> list[Arch]:
        import torch

        n = self._check_n(n)
        z = self._z()
        self.agent.set_z(z)
        picks = self.select(self.propose(n), z, n)
        with torch.no_grad():
            logp = self.agent.controller.log_prob(torch.as_tensor(picks, dtype=torch.long), 1.0)
        self.pending.update({a: float(lp) for a, lp in zip(picks, logp)})
        return picks

    def propose(self, n: int) -> list[Arch]:
        """Up to ``candidates`` distinct, not yet evaluated architectures from the
        controller (at its current z), topped up by ``fill`` when the controller keeps
        drawing evaluated ones; at least ``n`` (random ones last)."""
        # The controller's draws are valid by construction (no per-draw validation), and
        # ``taken`` is a set: once the controller has converged, most draws repeat
        # evaluated architectures, every ask runs all four rounds and the neighbour fill,
        # and that per-draw Python work was what grew meta-training's iterations.
        candidates: list[Arch] = []
        taken = self.seen | self.in_flight
        m = self.options["candidates"]
        for _ in range(4):  # rounds of m draws; evaluated ones and repeats are skipped
            for arch in self.agent.controller.sample_many(self.rng, 1.0, m):
                if arch not in taken and len(candidates) < m:
                    candidates.append(arch)
                    taken.add(arch)
            if len(candidates) >= m:
                break
        if self.options["fill"] == "neighbors" and len(candidates) < m:
            for arch, _, _ in sorted(self.context, key=lambda c: -c[1]):
                for other in self.space.neighbors(arch):
                    if other not in taken:
                        candidates.append(other)
                        taken.add(other)
                if len(candidates) >= m:
                    break
            candidates = candidates[:m]
        exhausted = len(self.seen) >= self.space.size
        chosen = set(candidates)
        for _ in range(100 * n):
            if len(candidates) >= n:
                break
            arch = self.space.sample(self.rng)
            if arch not in chosen and arch not in self.in_flight and (
                    exhausted or arch not in self.seen):
                candidates.append(arch)
                chosen.add(arch)
        while len(candidates) < n:  # a space smaller than the batch: repeats are allowed
            candidates.append(self.space.sample(self.rng))
        return candidates

    def select(self, candidates: Sequence[Arch], z: torch.Tensor, n: int) -> list[Arch]:
        """The evaluator's top ``n`` of ``candidates`` (in the controller's order without
        the evaluator), each pick a random remaining candidate with probability ε."""
        import torch

        candidates = list(candidates)
        predicted = {}
        if self.options["use_evaluator"]:
            with torch.no_grad():
                scores = self.agent.predict(torch.as_tensor(candidates, dtype=torch.long), z)
            predicted = dict(zip(candidates, scores.tolist()))
            candidates = [candidates[i] for i in np.argsort(-scores.numpy(), kind="stable")]
        picks = []
        for _ in range(n):
            i = int(self.rng.integers(len(candidates))) if self.rng.random() < self.epsilon() else 0
            picks.append(candidates.pop(i))
        self.predicted.update({a: predicted[a] for a in picks if a in predicted})
        return picks

    # ----------------------------------------------------------------- tell
    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        import torch

        self._check_told(archs, results)
        for arch, result in zip(archs, results):
            arch = tuple(arch)
            self.seen.add(arch)
            score = self._score(result)
            logp = self.pending.pop(arch, None)
            if logp is None:  # told without being asked (e.g. a warm start)
                with torch.no_grad():
                    logp = float(self.agent.controller.log_prob(
                        torch.as_tensor([arch], dtype=torch.long), 1.0)[0])
            if result.ok and math.isfinite(score):
                self.context.append((arch, score, logp))
            self.told += 1
        if len(self.context) >= 2 and self.options["updates"]:
            context = self._context_tensors()
            fit_evaluator = self.tells % self.options["evaluator_every"] == 0
            for _ in range(self.options["updates"]):
                beta = self.options["real_ratio"]
                self._update(context, beta >= 1 or self.rng.random() < beta, fit_evaluator)
        self.tells += 1

    def _update(self, context: tuple[torch.Tensor, torch.Tensor], real: bool = True,
                fit_evaluator: bool = True) -> None:
        import torch

        noise = torch.as_tensor(self.rng.standard_normal(self.agent.latent), dtype=torch.float32)
        o = self.options
        if real:
            recent = slice(-o["window"], None)
            batch, advantages = context[0][recent], context[1][recent]
            old = torch.as_tensor([c[2] for c in self.context[recent]], dtype=torch.float32)
            self.real_updates += 1
        else:  # imagined: the controller's samples, scored by the evaluator
            with torch.no_grad():
                mu, variance = self.agent.posterior(*context)
                z = mu + variance.sqrt() * noise
                self.agent.set_z(z)
                batch = torch.as_tensor(self.agent.controller.sample_many(self.rng, 1.0, o["window"]),
                                        dtype=torch.long)
                old = self.agent.controller.log_prob(batch, 1.0)
                predicted = self.agent.predict(batch, z).numpy()
            advantages = torch.as_tensor(normalize_rewards(predicted, o["normalize"]),
                                         dtype=torch.float32)
            self.imagined_updates += 1
        loss, _ = self.agent.loss(context, batch, advantages, old, noise, o["clip"],
                                  o["entropy"], o["kl_weight"], fit_evaluator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    # ---------------------------------------------------------------- state
    def hyperparameters(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "latent": self.agent.latent,
                "hidden": self.agent.hidden, "use_z": self.agent.use_z, **self.options}

    def state_dict(self) -> dict[str, Any]:
        from raynas.policies.controllers import module_state, optimizer_state

        return {**super().state_dict(), "agent": module_state(self.agent),
                "optimizer": optimizer_state(self.optimizer),
                "context": [[list(a), s, lp] for a, s, lp in self.context],
                "pending": [[list(a), lp] for a, lp in self.pending.items()],
                "seen": sorted(list(a) for a in self.seen), "told": self.told,
                "tells": self.tells, "predicted": [[list(a), p] for a, p in self.predicted.items()],
                "updates_done": [self.real_updates, self.imagined_updates]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from raynas.policies.controllers import load_module_state, load_optimizer_state

        super().load_state_dict(state)
        load_module_state(self.agent, state["agent"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.context = [(tuple(a), float(s), float(lp)) for a, s, lp in state["context"]]
        self.pending = {tuple(a): float(lp) for a, lp in state["pending"]}
        self.seen = {tuple(a) for a in state["seen"]}
        self.told = int(state["told"])
        self.tells = int(state.get("tells", 0))
        self.predicted = {tuple(a): float(p) for a, p in state.get("predicted", [])}
        self.real_updates, self.imagined_updates = state.get("updates_done", [0, 0])
