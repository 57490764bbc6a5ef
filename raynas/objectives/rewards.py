"""Rewards: an evaluated architecture's metrics -> one scalar.

Plain objects, shared by the gymnasium environments and wrappers (:mod:`raynas.envs`)
and by policies (NPG) that score evaluations themselves.

A reward function is any callable ``reward(metrics: dict[str, float]) -> float``.
The default, :class:`NormalizedObjective`, maps the search metric into [0, 1],
higher is better: by the table's range when the evaluator is a table (exact and
stationary), else by the range seen so far (a running range).

Multi-objective rewards (all three non-stationary: the weights, the targets or the
archive change with every reward given):

* :class:`WeightedSumReward` — Σ wᵢ · normᵢ(metricᵢ), the weights may change.
* :class:`ADFReward` — annealed desirability (Derringer–Suich): the targets of all
  objectives but one sweep their range, so the rewarded region traces the front.
* :class:`ADCReward` — Pareto dominance against the archive of what was evaluated.

Objectives are ``{metric: "max" | "min"}``; ranges are ``{metric: (low, high)}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from raynas.errors import ArgumentError

RewardFn = Callable[[dict[str, float]], float]


class Range:
    """A metric's [low, high] range, fixed or growing with what is seen (``fixed=False``).

    Example:
        >>> r = Range(0.0, 100.0)
        >>> r.normalize(75.0, "max"), r.normalize(75.0, "min")
        (0.75, 0.25)
    """

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.fixed = low is not None and high is not None
        if self.fixed and not high > low:
            raise ArgumentError(f"a range needs high > low, got [{low}, {high}]")
        self.low, self.high = low, high

    @classmethod
    def of(cls, values) -> Range:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        return cls(float(values.min()), float(values.max()))

    def observe(self, value: float) -> None:
        if self.fixed or not math.isfinite(value):
            return
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    def normalize(self, value: float, mode: str = "max") -> float:
        """``value`` in [0, 1], 1 the best end of the range for ``mode``; 0.5 while the
        running range is still a single point."""
        if self.low is None or self.high is None or self.high == self.low:
            return 0.5
        unit = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return unit if mode == "max" else 1.0 - unit

    def state(self) -> dict[str, float | None]:
        return {"low": self.low, "high": self.high}


class NormalizedObjective:
    """``metric`` normalised into [0, 1] (1 = best), by a fixed or a running :class:`Range`.

    A failed evaluation (the metric missing or not finite) gets ``failure`` (0 by default).

    Args:
        metric: The metric, e.g. ``valid_acc``.
        mode: ``max`` or ``min``.
        low, high: The fixed range (e.g. a table's); omit both for a running range.
        failure: The reward of a failed evaluation.
    """

    def __init__(self, metric: str, mode: str = "max", low: float | None = None,
                 high: float | None = None, failure: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ArgumentError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.mode, self.failure = metric, mode, failure
        self.range = Range(low, high)

    def __call__(self, metrics: dict[str, float]) -> float:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return self.failure
        self.range.observe(value)
        return self.range.normalize(value, self.mode)

    def __repr__(self) -> str:
        return f"NormalizedObjective({self.metric!r}, {self.mode!r}, range={self.range.state()})"


def check_objectives(objectives: Mapping[str, str], minimum: int = 2) -> dict[str, str]:
    if len(objectives) < minimum:
        raise ArgumentError(f"need >= {minimum} objectives, got {dict(objectives)}")
    for metric, mode in objectives.items():
        if mode not in ("max", "min"):
            raise ArgumentError(f"objective {metric!r}: mode must be 'max' or 'min', got {mode!r}")
    return dict(objectives)


class WeightedSumReward:
    """Weighted sum of normalised objectives (each in [0, 1], 1 = best).

    Args:
        objectives: ``{metric: mode}``.
        ranges: ``{metric: (low, high)}`` for normalising; a metric without one uses
            the running range of what was seen.
        weights: Initial weights (summing to 1), one per objective.
        schedule: Optional ``episode -> weights``; called before each episode's reward.

    Example:
        >>> reward = WeightedSumReward({"acc": "max", "params": "min"},
        ...                            ranges={"acc": (0, 100), "params": (0, 2)})
        >>> float(reward.reward({"acc": 80.0, "params": 0.5})[0])
        0.775
    """

    def __init__(self, objectives: Mapping[str, str],
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 weights: Sequence[float] | None = None,
                 schedule: Callable[[int], Sequence[float]] | None = None) -> None:
        self.objectives = check_objectives(objectives, minimum=1)
        ranges = ranges or {}
        self.ranges = {m: Range(*ranges[m]) if m in ranges else Range() for m in self.objectives}
        self.schedule = schedule
        self.episode = 0
        self.set_weights(weights if weights is not None else [1 / len(self.objectives)] * len(
            self.objectives))

    def set_weights(self, weights: Sequence[float]) -> None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (len(self.objectives),) or np.any(weights < 0) or weights.sum() <= 0:
            raise ArgumentError(f"need {len(self.objectives)} non-negative weights, got {weights}")
        self.weights = weights / weights.sum()

    def reward(self, metrics):
        if self.schedule is not None:
            self.set_weights(self.schedule(self.episode))
        self.episode += 1
        for metric in self.objectives:
            self.ranges[metric].observe(metrics[metric])
        return self.score(metrics), self.state()

    def score(self, metrics) -> float:
        """The reward ``metrics`` would get now, without changing any state."""
        return float(sum(w * self.ranges[m].normalize(metrics[m], mode)
                         for w, (m, mode) in zip(self.weights, self.objectives.items())))

    def state(self):
        return {"weights": dict(zip(self.objectives, self.weights.tolist()))}


class ADFReward:
    """Annealed desirability function (Derringer–Suich), one target per objective.

    Each objective gets a one-sided desirability in [0, 1]: for ``max``,
    0 below ``low`` rising to 1 at the target; for ``min``, 1 below the target
    falling to 0 at ``target + band · (high − low)``. The reward is the geometric
    mean of the desirabilities. The ``fixed`` objective keeps its target (its best
    end, e.g. the highest accuracy); every other objective's target moves
    monotonically across its range over ``anneal_episodes`` (for ``min``, from its
    lowest to its highest value: from small networks to large), so the rewarded
    region sweeps the front.

    Args:
        objectives: ``{metric: mode}``, e.g. ``{"valid_acc": "max", "params": "min"}``.
        ranges: ``{metric: (low, high)}``; an objective without one uses the running
            range of the values seen (its desirability is 1 until it has two values).
        fixed: The objective whose target does not move (default: the first).
        anneal_episodes: Episodes for a target to cross its range.
        band: Width of the falling (or rising) edge past a moving target, as a
            fraction of its range.
        power: Derringer–Suich exponent ``s``.
        stages: Move the targets in this many steps rather than continuously.
        floor_quantile: The fixed objective's zero point (``L_A`` for accuracy): this
            quantile of the values seen so far instead of the worst one, e.g. 0.5 (the
            median). A higher floor sharpens the reward among good architectures,
            which a range stretched by broken ones (1 % accuracy) flattens.
    """

    def __init__(self, objectives: Mapping[str, str],
                 ranges: Mapping[str, tuple[float, float]] | None = None, fixed: str | None = None,
                 anneal_episodes: int = 1000, band: float = 0.2, power: float = 1.0,
                 stages: int | None = None, floor_quantile: float | None = None) -> None:
        self.objectives = check_objectives(objectives)
        ranges = ranges or {}
        self.ranges = {m: Range(*ranges[m]) if m in ranges else Range() for m in self.objectives}
        self.fixed = fixed or next(iter(self.objectives))
        if self.fixed not in self.objectives:
            raise ArgumentError(f"fixed objective {self.fixed!r} is not one of {list(self.objectives)}")
        if anneal_episodes < 1 or not 0 < band <= 1 or power <= 0 or (stages is not None
                                                                       and stages < 1):
            raise ArgumentError("need anneal_episodes >= 1, 0 < band <= 1, power > 0, stages >= 1")
        self.anneal_episodes, self.band, self.power = anneal_episodes, band, power
        self.stages = stages
        if floor_quantile is not None and not 0 <= floor_quantile < 1:
            raise ArgumentError(f"floor_quantile must be in [0, 1), got {floor_quantile}")
        self.floor_quantile = floor_quantile
        self.seen: list[float] = []  # the fixed objective's values, for its floor
        self.episode = 0

    def progress(self) -> float:
        """How far the moving targets are through their ranges, 0 to 1 (in ``stages``
        steps when given, so the targets move at a few instants only)."""
        progress = min(1.0, self.episode / self.anneal_episodes)
        if self.stages:
            progress = min(1.0, np.floor(progress * self.stages) / (self.stages - 1 or 1))
        return float(progress)

    def targets(self) -> dict[str, float | None]:
        """The current target of every objective (``None`` while a running range is empty)."""
        out = {}
        for metric, mode in self.objectives.items():
            r = self.ranges[metric]
            if r.low is None:
                out[metric] = None
                continue
            best, worst = (r.high, r.low) if mode == "max" else (r.low, r.high)
            out[metric] = best if metric == self.fixed else best + (worst - best) * self.progress()
        return out

    def desirability(self, metric: str, value: float) -> float:
        mode, r = self.objectives[metric], self.ranges[metric]
        target = self.targets()[metric]
        if target is None or r.high == r.low:
            return 1.0  # nothing known yet to prefer one value over another
        width = self.band * (r.high - r.low)
        if mode == "max":
            lower = self._floor(r.low) if metric == self.fixed else target - width
            if value >= target:
                return 1.0
            return 0.0 if value <= lower else ((value - lower) / (target - lower)) ** self.power
        upper = self._floor(r.high) if metric == self.fixed else target + width
        if value <= target:
            return 1.0
        return 0.0 if value >= upper else ((upper - value) / (upper - target)) ** self.power

    def _floor(self, worst: float) -> float:
        if self.floor_quantile is None or not self.seen:
            return worst
        mode = self.objectives[self.fixed]
        q = self.floor_quantile if mode == "max" else 1 - self.floor_quantile
        return float(np.quantile(self.seen, q))

    def reward(self, metrics):
        for m in self.objectives:
            self.ranges[m].observe(metrics[m])
        self.seen.append(float(metrics[self.fixed]))
        reward, info = self.score(metrics), self.state()
        self.episode += 1
        return reward, info

    def score(self, metrics) -> float:
        """The reward ``metrics`` would get now, without changing any state."""
        values = [self.desirability(m, metrics[m]) for m in self.objectives]
        return float(np.prod(values) ** (1 / len(values)))

    def state(self):
        return {"targets": self.targets(), "anneal_progress": self.progress()}


class ADCReward:
    """Pareto-dominance reward against the archive of evaluated architectures.

    ``r(a) = (#archive points a dominates − #archive points dominating a) / |archive|``,
    plus ``bonus`` when ``a`` joins the front (nothing in the archive dominates it).
    The archive is the non-dominated set of everything evaluated so far, updated
    after each episode, so the reward is non-stationary: the front expands in bands.

    Args:
        objectives: ``{metric: mode}``.
        bonus: Extra reward for a new non-dominated point.
    """

    def __init__(self, objectives: Mapping[str, str], bonus: float = 0.5) -> None:
        self.objectives = check_objectives(objectives)
        self.signs = np.array([1.0 if m == "max" else -1.0 for m in self.objectives.values()])
        self.bonus = bonus
        self.archive = np.zeros((0, len(self.objectives)))  # stored as maximisation

    def _compare(self, metrics):
        point = np.array([metrics[m] for m in self.objectives]) * self.signs
        a = self.archive
        dominates = np.all(point >= a, axis=1) & np.any(point > a, axis=1)
        dominated = np.all(a >= point, axis=1) & np.any(a > point, axis=1)
        reward = (int(dominates.sum()) - int(dominated.sum())) / len(a) if len(a) else 0.0
        new = not dominated.any() and not np.any(np.all(a == point, axis=1))
        return point, dominates, reward + (self.bonus if new else 0.0), new

    def reward(self, metrics):
        point, dominates, reward, new = self._compare(metrics)
        if new:
            self.archive = np.vstack([self.archive[~dominates], point])
        return reward, {**self.state(), "joined_front": bool(new)}

    def score(self, metrics) -> float:
        """The reward ``metrics`` would get now, without changing the archive (a point
        already on it scores as if new: it matches itself)."""
        return float(self._compare(metrics)[2])

    def front(self) -> np.ndarray:
        """The archive in the objectives' own units (one row per point)."""
        return self.archive * self.signs

    def state(self):
        return {"archive_size": len(self.archive)}
