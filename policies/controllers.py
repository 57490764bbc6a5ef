"""Policy-gradient controllers over a space's decisions, and their updates.

A controller is a torch module giving a distribution over architectures,
``π(a) = Π_d softmax(ℓ_d / τ)[a_d]``:

* :class:`FactorisedController` (``factorised``) — independent logits per decision.
* :class:`LSTMController` (``lstm``) — ENAS-style autoregressive: an LSTM cell reads
  the previous decision's choice; a head per decision turns its state into logits.
* :class:`MLPController` (``mlp``) — autoregressive: a one-hidden-layer MLP reads the
  choices made so far (one-hots, zeros for undecided) plus the decision's position.

Every controller starts uniform (its output heads are zero) and samples with a
numpy ``Generator``, so sampling is deterministic from the policy's seed.

:class:`PolicyGradient` trains one with REINFORCE (one step per told batch:
``−mean(A · log π(a))``) or PPO-clip (every ``ppo_batch`` results, ``ppo_epochs``
steps on ``−mean(min(ρA, clip(ρ, 1 ± ε)A))`` with ``ρ = π(a) / π_old(a)``). Its whole
state (weights, optimiser moments, PPO buffer) is JSON-able.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.errors import ArgumentError

CONTROLLERS = ("factorised", "lstm", "mlp")
UPDATES = ("reinforce", "ppo")
OPTIMIZERS = ("sgd", "adam")
HIDDEN = 32  # autoregressive controllers' hidden width


class Controller(nn.Module):
    """Base class: ``logits(archs, d)`` gives decision ``d``'s logits given the choices
    of ``archs[:, :d]`` (a ``(batch, decisions)`` long tensor)."""

    autoregressive = False

    def __init__(self, num_choices: Sequence[int]) -> None:
        super().__init__()
        self.num_choices = [int(k) for k in num_choices]

    def logits(self, archs: torch.Tensor, d: int) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, archs: torch.Tensor, tau: float) -> torch.Tensor:
        """``log π(a)`` of each row of ``archs`` at temperature ``tau``."""
        total = torch.zeros(len(archs))
        for d in range(len(self.num_choices)):
            logp = torch.log_softmax(self.logits(archs, d) / tau, dim=-1)
            total = total + logp.gather(1, archs[:, d : d + 1]).squeeze(1)
        return total

    @torch.no_grad()
    def sample(self, rng: np.random.Generator, tau: float) -> tuple[int, ...]:
        arch = torch.zeros(1, len(self.num_choices), dtype=torch.long)
        for d in range(len(self.num_choices)):
            p = self._probs(arch, d, tau)
            arch[0, d] = int(rng.choice(len(p), p=p))
        return tuple(int(a) for a in arch[0])

    @torch.no_grad()
    def sample_many(self, rng: np.random.Generator, tau: float, m: int) -> list[tuple[int, ...]]:
        """``m`` architectures at once (one forward pass per decision for all of them)."""
        archs = torch.zeros(m, len(self.num_choices), dtype=torch.long)
        for d in range(len(self.num_choices)):
            p = torch.softmax(self.logits(archs, d).double() / tau, dim=-1).numpy()
            cdf = np.cumsum(p, axis=1)
            u = rng.random(m)[:, None] * cdf[:, -1:]
            archs[:, d] = torch.as_tensor(np.minimum((cdf < u).sum(axis=1), p.shape[1] - 1))
        return list(map(tuple, archs.tolist()))

    @torch.no_grad()
    def greedy(self, tau: float = 1.0) -> tuple[tuple[int, ...], list[np.ndarray]]:
        """The most likely choice decision by decision, and the distribution each was
        taken from (for a factorised controller: the marginals)."""
        arch = torch.zeros(1, len(self.num_choices), dtype=torch.long)
        probs = []
        for d in range(len(self.num_choices)):
            p = self._probs(arch, d, tau)
            probs.append(p)
            arch[0, d] = int(np.argmax(p))
        return tuple(int(a) for a in arch[0]), probs

    def _probs(self, arch: torch.Tensor, d: int, tau: float) -> np.ndarray:
        p = torch.softmax(self.logits(arch, d)[0].detach().double() / tau, dim=-1).numpy()
        return p / p.sum()


class FactorisedController(Controller):
    """Independent logits per decision (all zeros at first: uniform)."""

    def __init__(self, num_choices: Sequence[int]) -> None:
        super().__init__(num_choices)
        self.theta = nn.ParameterList([nn.Parameter(torch.zeros(k)) for k in self.num_choices])

    def logits(self, archs: torch.Tensor, d: int) -> torch.Tensor:
        return self.theta[d].expand(len(archs), -1)


class LSTMController(Controller):
    """ENAS-style: an LSTM cell fed the previous choice's embedding (a learned start
    token first), one linear head per decision."""

    autoregressive = True

    def __init__(self, num_choices: Sequence[int], hidden: int = HIDDEN) -> None:
        super().__init__(num_choices)
        self.offsets = np.concatenate([[0], np.cumsum(self.num_choices)])
        self.embed = nn.Embedding(int(self.offsets[-1]) + 1, hidden)  # +1: the start token
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList([nn.Linear(hidden, k) for k in self.num_choices])
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def logits(self, archs: torch.Tensor, d: int) -> torch.Tensor:
        n = len(archs)
        h = c = torch.zeros(n, self.cell.hidden_size)
        token = torch.full((n,), int(self.offsets[-1]), dtype=torch.long)
        for i in range(d + 1):
            h, c = self.cell(self.embed(token), (h, c))
            token = archs[:, i] + int(self.offsets[i])
        return self.heads[d](h)

    def log_prob(self, archs: torch.Tensor, tau: float) -> torch.Tensor:
        # one pass over the sequence instead of ``logits`` per decision (quadratic)
        n = len(archs)
        h = c = torch.zeros(n, self.cell.hidden_size)
        token = torch.full((n,), int(self.offsets[-1]), dtype=torch.long)
        total = torch.zeros(n)
        for d, head in enumerate(self.heads):
            h, c = self.cell(self.embed(token), (h, c))
            logp = torch.log_softmax(head(h) / tau, dim=-1)
            total = total + logp.gather(1, archs[:, d : d + 1]).squeeze(1)
            token = archs[:, d] + int(self.offsets[d])
        return total


class MLPController(Controller):
    """An MLP over the choices so far (one-hots, zeros for undecided) and the decision's
    position one-hot, plus an optional context vector (:attr:`context`, e.g. CATCH's
    task latent z; gradients flow into it); one linear head per decision."""

    autoregressive = True

    def __init__(self, num_choices: Sequence[int], hidden: int = HIDDEN,
                 context_dim: int = 0) -> None:
        super().__init__(num_choices)
        self.offsets = np.concatenate([[0], np.cumsum(self.num_choices)])
        self.context_dim = context_dim
        self.context: torch.Tensor | None = None  # (context_dim,); None: zeros
        n_in = int(self.offsets[-1]) + len(self.num_choices) + context_dim
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(hidden, k) for k in self.num_choices])
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def logits(self, archs: torch.Tensor, d: int) -> torch.Tensor:
        return self._head(self._onehots(archs), d)

    @torch.no_grad()
    def sample_many(self, rng: np.random.Generator, tau: float, m: int) -> list[tuple[int, ...]]:
        """As :meth:`Controller.sample_many`, the same draws bit for bit, with the one-hots
        grown decision by decision instead of rebuilt for each (decision ``d``'s head
        reads only the choices before it)."""
        archs = np.zeros((m, len(self.num_choices)), dtype=np.int64)
        onehots = torch.zeros(m, int(self.offsets[-1]))
        rows = torch.arange(m)
        for d in range(len(self.num_choices)):
            p = torch.softmax(self._head(onehots, d).double() / tau, dim=-1).numpy()
            cdf = np.cumsum(p, axis=1)
            u = rng.random(m)[:, None] * cdf[:, -1:]
            archs[:, d] = np.minimum((cdf < u).sum(axis=1), p.shape[1] - 1)
            onehots[rows, torch.as_tensor(archs[:, d]) + int(self.offsets[d])] = 1.0
        return list(map(tuple, archs.tolist()))

    def _onehots(self, archs: torch.Tensor) -> torch.Tensor:
        """Every decision's choice of each row, one-hot: ``(n, sum(num_choices))``."""
        onehots = torch.zeros(len(archs), int(self.offsets[-1]))
        rows = torch.arange(len(archs))
        for i in range(len(self.num_choices)):
            onehots[rows, archs[:, i] + int(self.offsets[i])] = 1.0
        return onehots

    def _head(self, onehots: torch.Tensor, d: int) -> torch.Tensor:
        """Decision ``d``'s logits from the choices of the decisions before it."""
        n, width = onehots.shape
        x = torch.zeros(n, width + len(self.num_choices))
        x[:, : int(self.offsets[d])] = onehots[:, : int(self.offsets[d])]
        x[:, width + d] = 1.0
        if self.context_dim:
            z = self.context if self.context is not None else torch.zeros(self.context_dim)
            x = torch.cat([x, z.expand(n, -1)], dim=1)
        return self.heads[d](self.body(x))

    def log_prob(self, archs: torch.Tensor, tau: float) -> torch.Tensor:
        onehots = self._onehots(archs)  # once, not once per decision
        total = torch.zeros(len(archs))
        for d in range(len(self.num_choices)):
            logp = torch.log_softmax(self._head(onehots, d) / tau, dim=-1)
            total = total + logp.gather(1, archs[:, d : d + 1]).squeeze(1)
        return total

    def entropy(self, archs: torch.Tensor) -> torch.Tensor:
        """Summed entropy of the decisions along each row of ``archs``."""
        onehots = self._onehots(archs)
        total = torch.zeros(len(archs))
        for d in range(len(self.num_choices)):
            logp = torch.log_softmax(self._head(onehots, d), dim=-1)
            total = total - (logp.exp() * logp).sum(dim=1)
        return total


def ppo_clip_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                  clip: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate, to minimise: ``−mean(min(ρA, clip(ρ, 1 − ε, 1 + ε)A))``
    with ``ρ = exp(new_logp − old_logp)``.

    Example:
        >>> ppo_clip_loss(torch.log(torch.tensor([1.5])), torch.zeros(1), torch.ones(1)).item()
        -1.2000000476837158
    """
    ratio = torch.exp(new_logp - old_logp)
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator inside the block (e.g. to initialise a policy's
    networks from its seed) and restore its previous state after."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def make_controller(name: str, num_choices: Sequence[int], seed: int) -> Controller:
    """A controller by name; its non-zero initial weights come from ``seed``."""
    if name not in CONTROLLERS:
        raise ArgumentError(f"controller must be one of {CONTROLLERS}, got {name!r}")
    cls = {"factorised": FactorisedController, "lstm": LSTMController, "mlp": MLPController}[name]
    with torch_seeded(seed):
        return cls(num_choices)


class PolicyGradient:
    """REINFORCE or PPO-clip updates of a controller (see the module doc).

    Args:
        controller: The controller to train.
        update: ``reinforce`` or ``ppo``.
        optimizer: ``sgd`` (plain; on a factorised controller the classic
            ``θ += lr · A · (onehot(a) − π) / τ``) or ``adam``.
        lr: Learning rate.
        clip: PPO's ε.
        ppo_epochs: PPO steps per collected batch.
        ppo_batch: Results collected before each PPO update.
    """

    def __init__(self, controller: Controller, update: str = "reinforce", optimizer: str = "sgd",
                 lr: float = 0.5, clip: float = 0.2, ppo_epochs: int = 4,
                 ppo_batch: int = 8) -> None:
        if update not in UPDATES:
            raise ArgumentError(f"update must be one of {UPDATES}, got {update!r}")
        if optimizer not in OPTIMIZERS:
            raise ArgumentError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if lr <= 0 or not 0 < clip < 1 or ppo_epochs < 1 or ppo_batch < 1:
            raise ArgumentError("need lr > 0, 0 < clip < 1, ppo_epochs >= 1, ppo_batch >= 1")
        self.controller, self.update, self.clip = controller, update, clip
        self.ppo_epochs, self.ppo_batch = ppo_epochs, ppo_batch
        params = list(controller.parameters())
        self.optimizer = (torch.optim.SGD(params, lr=lr) if optimizer == "sgd"
                          else torch.optim.Adam(params, lr=lr))
        self.buffer: list[tuple[list[int], float, float, float]] = []  # arch, A, logp_old, τ

    def step(self, archs: Sequence[Sequence[int]], advantages: Sequence[float], tau: float) -> None:
        """Learn from ``archs`` sampled at temperature ``tau`` with these advantages."""
        batch = torch.as_tensor(np.asarray(archs, dtype=np.int64).reshape(len(archs), -1))
        adv = torch.as_tensor(np.asarray(advantages, dtype=np.float32))
        if self.update == "reinforce":
            self._descend(-(adv * self.controller.log_prob(batch, tau)).mean())
            return
        with torch.no_grad():
            old = self.controller.log_prob(batch, tau)
        self.buffer += [(list(map(int, a)), float(x), float(o), float(tau))
                        for a, x, o in zip(batch.tolist(), adv, old)]
        if len(self.buffer) >= self.ppo_batch:
            self._ppo()

    def _ppo(self) -> None:
        archs = torch.as_tensor([b[0] for b in self.buffer], dtype=torch.long)
        adv, old, taus = (torch.as_tensor([b[i] for b in self.buffer]) for i in (1, 2, 3))
        self.buffer = []
        for _ in range(self.ppo_epochs):
            # one temperature per row: rows sampled at different τ keep their own
            new = torch.stack([self.controller.log_prob(archs[i : i + 1], float(taus[i]))[0]
                               for i in range(len(archs))])
            self._descend(ppo_clip_loss(new, old, adv, self.clip))

    def _descend(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"weights": module_state(self.controller),
                "optimizer": optimizer_state(self.optimizer), "buffer": self.buffer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_module_state(self.controller, state["weights"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.buffer = [(list(a), float(x), float(o), float(t)) for a, x, o, t in state["buffer"]]


# JSON-able torch state (policies' state_dicts are JSON; float32 round-trips exactly)
def module_state(module: nn.Module) -> dict[str, Any]:
    return {k: v.tolist() for k, v in module.state_dict().items()}


def load_module_state(module: nn.Module, state: dict[str, Any]) -> None:
    module.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in state.items()})


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    opt = optimizer.state_dict()
    return {"state": {str(k): {n: (t.tolist() if torch.is_tensor(t) else t) for n, t in s.items()}
                      for k, s in opt["state"].items()},
            "param_groups": opt["param_groups"]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    optimizer.load_state_dict({
        "state": {int(k): {n: torch.as_tensor(v, dtype=torch.float32) for n, v in s.items()}
                  for k, s in state["state"].items()},
        "param_groups": state["param_groups"],
    })
