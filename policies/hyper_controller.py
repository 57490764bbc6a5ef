"""An AutoMBPO-style hyper-controller: a PPO policy that schedules hyperparameters.

After Lai et al., "On Effective Scheduling of Model-based Reinforcement Learning"
(NeurIPS 2021; spec and the official code's constants in ``shared/research/papers.md``
§4). Every ``interval`` (epochs of a training run, queries of a search) the
controller looks at the run and moves each scheduled hyperparameter one step
**down, keep or up** (actions 0, 1, 2):

* ``mul`` parameters: ``v ← clip(v · step^(a − 1), low, high)`` (AutoMBPO's β ← β · 1.2^(a−1));
* ``add`` parameters: ``v ← clip(v + step · (a − 1), low, high)`` (AutoMBPO's G ← G + a − 1);
  ``integer`` ones are rounded.

**State** (each entry clipped to [−1, 1]): training progress in [0, 1]; for each
observed metric, its latest value and its trend over the last ``window`` decisions,
both scaled by the metric's range; and each hyperparameter's position in its bounds
(log-scaled for ``mul``).

**Reward:** improvement over a *reference schedule* at the same point of the run,
in units of the target metric's range. With ``reward="final"`` (the default) the
reward of a decision is the change of that gap since the previous decision, so
the rewards of a run sum to its final gap to the reference; with ``"area"``
(AutoMBPO's) it is the gap itself, summed over the run. A decision's advantage is
its undiscounted reward-to-go, normalised over the update's batch.

**Network and update** (AutoMBPO's): one head per hyperparameter, Dense(``hidden``,
tanh) → 3 logits, output layers zero so the controller starts uniform; PPO-clip
(ε = 0.2) with Adam (lr 3e-4), minibatches of 64, ``epochs`` passes over the
episodes of one update. Exploration: with probability ``epsilon`` a head's action
is uniform (AutoMBPO decays ε over its training stages).

A trained controller is saved as JSON (:meth:`HyperController.save`) and reused on
runs longer than it was trained on: its state only sees *progress*, not epochs.

Example:
    >>> lr = HyperParam("lr", initial=0.1, low=0.001, high=1.0, step=2.0)
    >>> lr.apply(0.1, 2), lr.apply(0.1, 0), lr.apply(0.8, 2)
    (0.2, 0.05, 1.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.errors import ArgumentError
from raynas.policies.controllers import (
    load_module_state,
    load_optimizer_state,
    module_state,
    optimizer_state,
    ppo_clip_loss,
    torch_seeded,
)

DOWN, KEEP, UP = 0, 1, 2
ACTIONS = 3
MODES = ("mul", "add")
REWARDS = ("final", "area")


@dataclass(frozen=True)
class HyperParam:
    """One scheduled hyperparameter and how an action moves it.

    Args:
        name: The key it has in a trial's config (e.g. ``lr``).
        initial: Its value at the start of a run.
        low: Lower bound.
        high: Upper bound.
        step: Factor (``mul``, > 1) or increment (``add``, > 0) of one step.
        mode: ``mul`` or ``add``.
        integer: Round to an integer (e.g. a batch size).
    """

    name: str
    initial: float
    low: float
    high: float
    step: float
    mode: str = "mul"
    integer: bool = False

    def __post_init__(self) -> None:
        where = f"hyperparameter {self.name!r}"
        if self.mode not in MODES:
            raise ArgumentError(f"{where}: mode must be one of {MODES}, got {self.mode!r}")
        if not self.low <= self.initial <= self.high:
            raise ArgumentError(f"{where}: need low <= initial <= high, got {self.low}, "
                             f"{self.initial}, {self.high}")
        if self.mode == "mul" and (self.low <= 0 or self.step <= 1):
            raise ArgumentError(f"{where}: a 'mul' parameter needs low > 0 and step > 1, got "
                             f"low={self.low}, step={self.step}")
        if self.mode == "add" and self.step <= 0:
            raise ArgumentError(f"{where}: an 'add' parameter needs step > 0, got {self.step}")

    def apply(self, value: float, action: int) -> float:
        """``value`` moved by ``action`` (0 down, 1 keep, 2 up), within the bounds."""
        if action not in (DOWN, KEEP, UP):
            raise ArgumentError(f"{self.name}: action must be 0 (down), 1 (keep) or 2 (up), got {action}")
        shift = action - KEEP
        moved = value * self.step**shift if self.mode == "mul" else value + self.step * shift
        moved = min(self.high, max(self.low, moved))
        if self.integer:
            moved = float(round(moved))
        return round(moved, 12)

    def position(self, value: float) -> float:
        """Where ``value`` lies in the bounds, in [0, 1] (log scale for ``mul``)."""
        if self.high == self.low:
            return 0.5
        if self.mode == "mul":
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


@dataclass
class Episode:
    """One run under the controller: what it saw, did and earned at each decision."""

    observations: list[list[float]] = field(default_factory=list)
    actions: list[list[int]] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def returns(self) -> list[float]:
        """Undiscounted reward-to-go of each decision."""
        return list(np.cumsum(self.rewards[::-1])[::-1]) if self.rewards else []


class _Heads(nn.Module):
    def __init__(self, obs_dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, ACTIONS))
            for _ in range(heads)
        )
        for head in self.heads:
            nn.init.zeros_(head[2].weight)
            nn.init.zeros_(head[2].bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Log-probabilities, shape (batch, heads, 3)."""
        return torch.stack([torch.log_softmax(h(obs), -1) for h in self.heads], dim=1)


class HyperController:
    """A PPO hyper-controller over ``params`` (see the module doc).

    Args:
        params: The scheduled hyperparameters.
        metrics: The observed metrics and their ranges ``(low, high)``, used to scale
            them into the state (e.g. ``{"valid_acc": (0, 100)}``).
        target: The metric the reward is measured on.
        mode: ``max`` or ``min``: whether a higher target is better.
        target_range: The target's ``(low, high)`` when it is not an observed metric
            (e.g. a quantity the state must not see).
        window: Decisions over which a metric's trend is taken.
        reward: ``final`` (rewards sum to the final gap) or ``area`` (AutoMBPO's).
        hidden: Width of each head's hidden layer.
        lr: Adam's learning rate.
        clip: PPO's ε.
        epochs: PPO passes over an update's decisions.
        minibatch: PPO minibatch size.
        seed: Seeds the network's initial weights and the minibatch order.
    """

    def __init__(self, params: Sequence[HyperParam], metrics: Mapping[str, tuple[float, float]],
                 target: str, mode: str = "max", *,
                 target_range: tuple[float, float] | None = None, window: int = 3,
                 reward: str = "final",
                 hidden: int = 64, lr: float = 3e-4, clip: float = 0.2, epochs: int = 10,
                 minibatch: int = 64, seed: int = 0) -> None:
        if not params:
            raise ArgumentError("a hyper-controller needs at least one hyperparameter")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ArgumentError(f"hyperparameter names repeat: {names}")
        if target not in metrics and target_range is None:
            raise ArgumentError(f"target {target!r} is not an observed metric {sorted(metrics)}; "
                             "give its target_range")
        if mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {mode!r}")
        if reward not in REWARDS:
            raise ArgumentError(f"reward must be one of {REWARDS}, got {reward!r}")
        ranges = {**metrics, **({target: target_range} if target_range is not None else {})}
        for name, (low, high) in ranges.items():
            if not high > low:
                raise ArgumentError(f"metric {name!r}: range needs high > low, got ({low}, {high})")
        if window < 1 or hidden < 1 or epochs < 1 or minibatch < 1 or lr <= 0 or not 0 < clip < 1:
            raise ArgumentError("need window, hidden, epochs, minibatch >= 1, lr > 0 and 0 < clip < 1")
        self.params = list(params)
        self.metrics = {k: (float(lo), float(hi)) for k, (lo, hi) in metrics.items()}
        self.target, self.mode, self.window, self.reward = target, mode, window, reward
        self.target_range = tuple(map(float, ranges[target]))
        self.hidden, self.lr, self.clip = hidden, lr, clip
        self.epochs, self.minibatch, self.seed = epochs, minibatch, seed
        self.obs_dim = 1 + 2 * len(self.metrics) + len(self.params)
        with torch_seeded(seed):
            self.net = _Heads(self.obs_dim, len(self.params), hidden)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.updates = 0

    # ------------------------------------------------------------- acting
    def initial_values(self) -> dict[str, float]:
        return {p.name: float(p.initial) for p in self.params}

    def observe(self, progress: float, history: Sequence[Mapping[str, float]],
                values: Mapping[str, float]) -> list[float]:
        """The state: ``progress`` in [0, 1], the metrics of ``history`` (one mapping
        per decision so far, latest last) and the current hyperparameter ``values``."""
        obs = [float(progress)]
        for name, (low, high) in self.metrics.items():
            series = [float(h[name]) for h in history if name in h and math.isfinite(h[name])]
            span = high - low
            last = (series[-1] - low) / span if series else 0.0
            past = series[-1 - self.window] if len(series) > self.window else (
                series[0] if series else 0.0)
            trend = (series[-1] - past) / span if series else 0.0
            obs += [last, trend]
        obs += [p.position(float(values[p.name])) for p in self.params]
        return [min(1.0, max(-1.0, x)) for x in obs]

    def act(self, observation: Sequence[float], rng: np.random.Generator | None = None,
            epsilon: float = 0.0, greedy: bool = False) -> tuple[list[int], float]:
        """One action per hyperparameter and their joint log-probability under the
        policy. Sampled with ``rng`` (uniform per head with probability ``epsilon``),
        or the most likely actions with ``greedy`` (keep where a head is undecided:
        an untrained controller follows the schedule it starts from)."""
        with torch.no_grad():
            logp = self.net(torch.as_tensor([observation], dtype=torch.float32))[0].numpy()
        actions = []
        for head in logp:
            if greedy:
                best = np.flatnonzero(head == head.max())
                actions.append(KEEP if KEEP in best else int(best[0]))
            elif rng is None:
                raise ArgumentError("act() needs an rng unless greedy=True")
            elif epsilon > 0 and rng.random() < epsilon:
                actions.append(int(rng.integers(ACTIONS)))
            else:
                probs = np.exp(head.astype(np.float64))
                actions.append(int(rng.choice(ACTIONS, p=probs / probs.sum())))
        return actions, float(sum(head[a] for head, a in zip(logp, actions)))

    def adjust(self, values: Mapping[str, float], actions: Sequence[int]) -> dict[str, float]:
        """The hyperparameters after ``actions`` (one per parameter, in order)."""
        if len(actions) != len(self.params):
            raise ArgumentError(f"need {len(self.params)} actions, got {len(actions)}")
        return {p.name: p.apply(float(values[p.name]), int(a)) for p, a in zip(self.params, actions)}

    def gap(self, value: float, reference: float) -> float:
        """How far ``value`` is ahead of the reference's, in units of the target's range."""
        low, high = self.target_range
        sign = 1.0 if self.mode == "max" else -1.0
        return sign * (float(value) - float(reference)) / (high - low)

    def rewards(self, values: Sequence[float], references: Sequence[float],
                start_gap: float = 0.0) -> list[float]:
        """The rewards of a run's decisions: ``values[t]`` is the target after decision
        ``t`` acted, ``references[t]`` the reference schedule's at the same point, and
        ``start_gap`` the gap when the first decision was taken."""
        gaps = [self.gap(v, r) for v, r in zip(values, references, strict=True)]
        if self.reward == "area":
            return gaps
        return [g - (gaps[t - 1] if t else start_gap) for t, g in enumerate(gaps)]

    # ------------------------------------------------------------- learning
    def update(self, episodes: Sequence[Episode], rng: np.random.Generator | None = None
               ) -> dict[str, float]:
        """One PPO update on ``episodes``; returns the mean return and the loss."""
        obs, acts, old, adv = [], [], [], []
        for ep in episodes:
            if not (len(ep.observations) == len(ep.actions) == len(ep.log_probs)
                    == len(ep.rewards)):
                raise ArgumentError("an episode needs one observation, action, log-prob and "
                                 "reward per decision")
            obs += ep.observations
            acts += ep.actions
            old += ep.log_probs
            adv += ep.returns()
        if not obs:
            raise ArgumentError("update() needs at least one decision")
        mean_return = float(np.mean([ep.returns()[0] for ep in episodes if ep.rewards]))
        advantages = np.asarray(adv, dtype=np.float64)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        acts_t = torch.as_tensor(acts, dtype=torch.long)
        old_t = torch.as_tensor(old, dtype=torch.float32)
        adv_t = torch.as_tensor(advantages, dtype=torch.float32)
        rng = rng or np.random.default_rng(self.seed + self.updates)
        loss = 0.0
        for _ in range(self.epochs):
            order = rng.permutation(len(obs))
            for start in range(0, len(order), self.minibatch):
                idx = torch.as_tensor(order[start:start + self.minibatch])
                logp = self.net(obs_t[idx]).gather(2, acts_t[idx].unsqueeze(2)).squeeze(2).sum(1)
                step = ppo_clip_loss(logp, old_t[idx], adv_t[idx], self.clip)
                self.optimizer.zero_grad(set_to_none=True)
                step.backward()
                self.optimizer.step()
                loss = float(step.detach())
        self.updates += 1
        return {"mean_return": mean_return, "loss": loss, "decisions": float(len(obs))}

    def probabilities(self, observation: Sequence[float]) -> dict[str, list[float]]:
        """Per hyperparameter, the policy's (down, keep, up) probabilities."""
        with torch.no_grad():
            logp = self.net(torch.as_tensor([observation], dtype=torch.float32))[0]
        return {p.name: [round(float(x), 6) for x in row.exp()] for p, row in zip(self.params, logp)}

    # ------------------------------------------------------------- persistence
    def config(self) -> dict[str, Any]:
        return {"params": [asdict(p) for p in self.params],
                "metrics": {k: list(v) for k, v in self.metrics.items()},
                "target": self.target, "mode": self.mode,
                "target_range": list(self.target_range), "window": self.window,
                "reward": self.reward, "hidden": self.hidden, "lr": self.lr, "clip": self.clip,
                "epochs": self.epochs, "minibatch": self.minibatch, "seed": self.seed}

    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config(), "weights": module_state(self.net),
                "optimizer": optimizer_state(self.optimizer), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != self.config():
            raise ArgumentError("the saved controller was built with another configuration")
        load_module_state(self.net, state["weights"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.updates = int(state["updates"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HyperController:
        config = dict(state["config"])
        params = [HyperParam(**p) for p in config.pop("params")]
        metrics = {k: tuple(v) for k, v in config.pop("metrics").items()}
        config["target_range"] = tuple(config["target_range"])
        controller = cls(params, metrics, config.pop("target"), config.pop("mode"), **config)
        controller.load_state_dict(state)
        return controller

    def save(self, path: str | Path) -> Path:
        """Write the controller (configuration, weights, optimiser) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.state_dict()))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> HyperController:
        """A controller saved with :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no hyper-controller at {path}")
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ArgumentError(f"{path}: not a saved hyper-controller (bad JSON: {exc})") from None
        if not isinstance(state, dict) or "config" not in state or "weights" not in state:
            raise ArgumentError(f"{path}: not a saved hyper-controller (no config/weights)")
        return cls.from_state(state)


def train_controller(controller: HyperController, run_stage, *, stages: int = 10,
                     epsilon: float = 1.0, decay_stages: int = 5, seed: int = 0,
                     start_gap: float | None = None, validate=None, candidates: int = 3,
                     progress=None) -> list[dict[str, float]]:
    """Train ``controller`` AutoMBPO's way: ``stages`` stages of runs, one PPO update per
    stage, ε decaying linearly from ``epsilon`` to 0 over ``decay_stages``. At the end
    the controller holds the weights of the ε = 0 stage whose runs scored best (mean
    final gap to the reference), as AutoMBPO keeps its best controller.

    ``start_gap``: the mean final gap of the controller as it starts, where it is
    known; then it is kept unless a stage beats it. A residual controller (one whose
    "keep" is the reference schedule, like ``lr_scale`` over raynas's cosine schedule)
    starts at exactly 0: untrained, it keeps (see :meth:`HyperController.act`).

    ``validate(controller)``: the mean final gap of a controller on held-out runs
    (acting greedily). Where one stage's runs are noisy, its best mean is mostly luck;
    with ``validate``, the ``candidates`` ε = 0 stages that scored best, and the
    starting controller, are scored again by it, and the best of them on validation
    is kept (each candidate's ``validation_gap`` is in its stage's statistics; the
    starting controller's is in the last one, as ``start_validation_gap``).

    ``run_stage(stage, epsilon)`` runs a stage's episodes with the current controller
    and returns ``(episodes, final_gaps)`` (in process: :func:`curve_stage`; as Tune
    searches: :func:`raynas.tune.hyper_scheduler.tune_curve_stage`; CATCH searches:
    :func:`raynas.policies.catch.schedule.catch_stage`).
    ``progress(stage, stats)`` is called after every stage. Returns each stage's
    statistics (``mean_gap``, ``mean_return``, ``loss``, ``epsilon``, ``episodes``).
    """
    if stages < 1:
        raise ArgumentError(f"need stages >= 1, got {stages}")
    if candidates < 1:
        raise ArgumentError(f"need candidates >= 1, got {candidates}")
    rng = np.random.default_rng(seed)
    log: list[dict[str, float]] = []
    start = controller.state_dict()
    keep = candidates if validate is not None else 1
    judged: list[tuple[float, int, dict[str, Any]]] = []  # best ε = 0 stages: (gap, stage, state)
    for stage in range(stages):
        eps = epsilon * max(0.0, 1.0 - stage / decay_stages) if decay_stages > 0 else 0.0
        episodes, gaps = run_stage(stage, eps)
        gap = float(np.mean(gaps)) if len(gaps) else -math.inf
        if eps == 0.0:  # judged without forced exploration; ties keep the earlier stage
            judged = sorted([*judged, (gap, stage, controller.state_dict())],
                            key=lambda j: (-j[0], j[1]))[:keep]
        stats = controller.update(episodes, rng) if episodes else {}
        stats |= {"stage": float(stage), "mean_gap": gap, "epsilon": eps,
                  "episodes": float(len(episodes))}
        log.append(stats)
        if progress is not None:
            progress(stage, stats)

    def score(state: dict[str, Any]) -> float:
        controller.load_state_dict(state)
        return float(validate(controller))

    best, best_gap = None, -math.inf  # None: the weights training ended with
    if validate is not None:
        best, best_gap = start, score(start)
        log[-1]["start_validation_gap"] = best_gap
    elif start_gap is not None:
        best, best_gap = start, float(start_gap)
    for gap, stage, state in judged:
        if validate is not None:
            gap = log[stage]["validation_gap"] = score(state)
        if gap > best_gap:  # the starting controller wins ties
            best, best_gap = state, gap
    if best is not None:
        controller.load_state_dict(best)
    return log


def curve_stage(controller: HyperController, seeds: Sequence[int], episodes: int, epochs: int,
                interval: int, seed: int = 0):
    """A ``run_stage`` for :func:`train_controller` on the synthetic noisy-quadratic
    curves, in process: stage ``s`` runs ``episodes`` tasks cycling through ``seeds``."""
    from raynas.tables.curves import NoisyQuadratic

    def run_stage(stage: int, epsilon: float):
        rng = np.random.default_rng([seed, stage])
        runs = [curve_episode(controller, NoisyQuadratic(seeds[(stage * episodes + i) % len(seeds)]),
                              epochs, interval, rng=rng, epsilon=epsilon)
                for i in range(episodes)]
        return [r[0] for r in runs], [r[2] for r in runs]

    return run_stage


def curve_episode(controller, task, epochs: int, interval: int,
                  reference: list[dict[str, float]] | None = None,
                  rng: np.random.Generator | None = None, epsilon: float = 0.0,
                  greedy: bool = False):
    """Run ``task`` for ``epochs`` under ``controller`` (a
    :class:`~raynas.policies.hyper_controller.HyperController` over ``lr`` and/or
    ``batch_size``), deciding after every ``interval`` epochs (as
    :class:`~raynas.tune.hyper_scheduler.HyperScheduler` does). The reward is measured
    against ``reference`` (default: the constant run at the controller's initial
    values). Returns ``(episode, curve, final_gap)``; ``curve`` has every epoch's
    metrics plus the hyperparameters used. ``task`` is a
    :class:`~raynas.tables.curves.NoisyQuadratic` (or anything with its ``start``)."""
    from raynas.tables.curves import fixed_curve

    if interval < 1 or epochs < 1:
        raise ArgumentError(f"need epochs >= 1 and interval >= 1, got {epochs} and {interval}")
    values = controller.initial_values()
    fixed = {"lr": values.get("lr", 0.5), "batch_size": values.get("batch_size", 64)}
    reference = reference or fixed_curve(task, epochs, **fixed)
    run, episode, curve = task.start(), Episode(), []
    seen: list[dict[str, float]] = []
    targets, refs = [], []
    while len(curve) < epochs:
        hyper = {**fixed, **values}
        for _ in range(min(interval, epochs - len(curve))):
            curve.append(run.epoch(hyper["lr"], hyper["batch_size"]) | hyper)
        if episode.actions:  # the outcome of the last decision
            targets.append(curve[-1][controller.target])
            refs.append(reference[len(curve) - 1][controller.target])
        if len(curve) >= epochs:
            break
        seen.append(curve[-1])
        obs = controller.observe(len(curve) / epochs, seen, values)
        actions, logp = controller.act(obs, rng, epsilon, greedy)
        values = controller.adjust(values, actions)
        episode.observations.append(obs)
        episode.actions.append(actions)
        episode.log_probs.append(logp)
    first = seen[0] if seen else curve[-1]
    start_gap = controller.gap(first[controller.target],
                               reference[int(first["epoch"]) - 1][controller.target])
    episode.rewards = controller.rewards(targets, refs, start_gap)
    final = controller.gap(curve[-1][controller.target], reference[-1][controller.target])
    return episode, curve, final
