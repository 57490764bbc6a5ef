"""A cheap, seeded synthetic learning-curve benchmark: SGD on a noisy quadratic.

The noisy quadratic model (NQM; Zhang et al., "Which Algorithmic Choices Matter at
Which Batch Sizes?", NeurIPS 2019) reproduces how learning rate and batch size shape
real training curves, in closed form. The loss is ``½ Σ_i h_i x_i²`` over ``dims``
coordinates with a power-law curvature spectrum ``h_i = i^(−p)``; SGD with learning
rate η and batch size B sees gradient noise of variance ``σ² h_i / B`` per coordinate.
The expected second moments ``m_i = E[x_i²]`` evolve exactly as

    m_i ← (1 − η h_i)² m_i + η² σ² h_i / B        (one step)

so an epoch (``examples / B`` steps) is a geometric sum. A high η makes fast early
progress along flat directions but leaves a noise floor ``∝ η / B``; lowering η (or
raising B) later lowers the floor. A good schedule therefore beats any constant one,
which is what a hyper-controller has to discover. η ≥ 2 / h_max diverges.

Each seed draws its own task (``p``, ``σ²``, initial moments), and the observed loss
carries seeded multiplicative noise, so held-out seeds are held-out tasks.

Example:
    >>> run = NoisyQuadratic(seed=0).start()
    >>> first = run.epoch(lr=0.5, batch_size=64)
    >>> later = [run.epoch(lr=0.5, batch_size=64) for _ in range(5)][-1]
    >>> later["loss"] < first["loss"]
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from raynas.errors import ArgumentError

LOG_LOSS_FLOOR, LOG_LOSS_CEIL = -6.0, 3.0


@dataclass(frozen=True)
class NoisyQuadratic:
    """One seeded NQM task (see the module doc).

    Args:
        seed: Draws the task and its observation noise.
        dims: Coordinates of the quadratic.
        examples: Examples per epoch (steps per epoch = examples / batch size).
        observation_noise: Std of the log-normal noise on the observed loss.
    """

    seed: int
    dims: int = 50
    examples: int = 8192
    observation_noise: float = 0.03
    power: float = field(init=False)
    noise: float = field(init=False)

    def __post_init__(self) -> None:
        if self.dims < 1 or self.examples < 1 or self.observation_noise < 0:
            raise ArgumentError("need dims >= 1, examples >= 1 and observation_noise >= 0")
        rng = np.random.default_rng([self.seed, 2019])
        object.__setattr__(self, "power", float(rng.uniform(1.0, 1.8)))
        object.__setattr__(self, "noise", float(10 ** rng.uniform(-1.5, -0.5)))

    @property
    def curvature(self) -> np.ndarray:
        return np.arange(1, self.dims + 1, dtype=np.float64) ** -self.power

    def start(self) -> CurveRun:
        """A fresh training run on this task."""
        return CurveRun(self)


class CurveRun:
    """One training run on a :class:`NoisyQuadratic` task, an epoch at a time."""

    def __init__(self, task: NoisyQuadratic) -> None:
        self.task = task
        self.h = task.curvature
        self.moments = np.ones(task.dims)  # E[x_i²] at initialisation
        self.epochs = 0
        self.initial_loss = self._loss()

    def state_dict(self) -> dict:
        return {"seed": self.task.seed, "epochs": self.epochs, "moments": self.moments.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.task.seed or len(state["moments"]) != self.task.dims:
            raise ArgumentError("this state belongs to another task")
        self.moments = np.asarray(state["moments"], dtype=np.float64)
        self.epochs = int(state["epochs"])

    def _loss(self) -> float:
        return float(0.5 * np.sum(self.h * self.moments))

    def epoch(self, lr: float, batch_size: float) -> dict[str, float]:
        """Train one epoch with ``lr`` and ``batch_size``; return the observed metrics:
        ``loss`` (noisy), ``log_loss`` (log10 of it, clipped to [−6, 3]),
        ``expected_loss`` (noise-free) and ``steps``."""
        if lr <= 0 or batch_size < 1:
            raise ArgumentError(f"need lr > 0 and batch_size >= 1, got {lr} and {batch_size}")
        steps = max(1, int(self.task.examples // batch_size))
        a = (1.0 - lr * self.h) ** 2
        b = lr**2 * self.task.noise * self.h / batch_size
        with np.errstate(over="ignore", invalid="ignore"):
            power = a**steps
            growth = np.where(np.isclose(a, 1.0), steps, (1.0 - power) / (1.0 - a))
            self.moments = np.minimum(power * self.moments + b * growth, 1e12)
        self.epochs += 1
        expected = self._loss()
        rng = np.random.default_rng([self.task.seed, 7, self.epochs])
        observed = expected * math.exp(self.task.observation_noise * rng.standard_normal())
        log_loss = math.log10(observed) if observed > 0 else LOG_LOSS_FLOOR
        return {"epoch": float(self.epochs), "loss": observed, "expected_loss": expected,
                "log_loss": min(LOG_LOSS_CEIL, max(LOG_LOSS_FLOOR, log_loss)),
                "steps": float(steps)}


def fixed_curve(task: NoisyQuadratic, epochs: int, lr: float, batch_size: float
                ) -> list[dict[str, float]]:
    """The metrics of every epoch of a run with constant hyperparameters."""
    run = task.start()
    return [run.epoch(lr, batch_size) for _ in range(epochs)]


def scheduled_curve(task: NoisyQuadratic, epochs: int, schedule) -> list[dict[str, float]]:
    """A run whose hyperparameters are ``schedule(epoch) -> {"lr": .., "batch_size": ..}``."""
    run = task.start()
    return [run.epoch(**schedule(e)) for e in range(epochs)]
