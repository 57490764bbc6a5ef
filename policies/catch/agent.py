"""CATCHer: context encoder + controller + network evaluator, trained end to end.

* encoder q_φ(z | c) — :class:`~raynas.policies.catch.encoder.ContextEncoder`;
* controller π_θ(a | s, z) — an autoregressive MLP over the decisions with z as extra
  input (:class:`~raynas.policies.controllers.MLPController`), trained by PPO-clip with
  an entropy bonus;
* evaluator f_ω(arch, z) — an MLP regressor of the normalised reward.

One loss trains all three, its gradients reaching φ through the reparameterised z:
``PPO(θ, φ) − entropy · H(π) + MSE(ω, φ) + kl_weight · KL(q_φ(z|c) || N(0, I))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from raynas.policies.catch.encoder import ContextEncoder, kl_to_prior
from raynas.policies.catch.policy import CLIP, ENTROPY, HIDDEN, KL_WEIGHT, LATENT
from raynas.policies.controllers import MLPController, ppo_clip_loss


class CATCHAgent(nn.Module):
    """The three networks of CATCH over a space with ``num_choices`` per decision.

    Args:
        num_choices: Choices of each decision.
        latent: Dimension of z.
        hidden: MLP width.
        use_z: Condition controller and evaluator on z (off: the "without z" ablation;
            z is then always zero and the encoder unused).
    """

    def __init__(self, num_choices: Sequence[int], latent: int = LATENT, hidden: int = HIDDEN,
                 use_z: bool = True) -> None:
        super().__init__()
        self.num_choices = [int(k) for k in num_choices]
        self.arch_dim = sum(self.num_choices)
        self.latent, self.hidden, self.use_z = latent, hidden, use_z
        z_dim = latent if use_z else 0
        self.encoder = ContextEncoder(self.arch_dim, latent, hidden)
        self.controller = MLPController(self.num_choices, hidden, context_dim=z_dim)
        self.evaluator = nn.Sequential(nn.Linear(self.arch_dim + z_dim, hidden), nn.ReLU(),
                                       nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def onehot(self, archs: torch.Tensor) -> torch.Tensor:
        """``(n, decisions)`` choices -> ``(n, arch_dim)`` concatenated one-hots."""
        return torch.cat([nn.functional.one_hot(archs[:, d], k).float()
                          for d, k in enumerate(self.num_choices)], dim=1)

    def posterior(self, archs: torch.Tensor, rewards: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.use_z:
            return torch.zeros(self.latent), torch.ones(self.latent)
        return self.encoder.posterior(self.onehot(archs), rewards)

    def set_z(self, z: torch.Tensor) -> None:
        self.controller.context = z if self.use_z else None

    def predict(self, archs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The evaluator's normalised-reward estimate of each architecture."""
        x = self.onehot(archs)
        if self.use_z:
            x = torch.cat([x, z.expand(len(x), -1)], dim=1)
        return self.evaluator(x).squeeze(1)

    def loss(self, context: tuple[torch.Tensor, torch.Tensor], batch: torch.Tensor,
             advantages: torch.Tensor, old_logp: torch.Tensor, noise: torch.Tensor,
             clip: float = CLIP, entropy: float = ENTROPY, kl_weight: float = KL_WEIGHT,
             fit_evaluator: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
        """The joint loss on one task: ``context`` = (archs, normalised rewards) feeds the
        encoder and trains the evaluator (unless ``fit_evaluator`` is off); ``batch``
        (archs sampled with log-probs ``old_logp``) with ``advantages`` trains the
        controller. ``noise`` ~ N(0, I) reparameterises z."""
        mu, variance = self.posterior(*context)
        z = mu + variance.sqrt() * noise
        self.set_z(z)
        ppo = ppo_clip_loss(self.controller.log_prob(batch, 1.0), old_logp, advantages, clip)
        bonus = self.controller.entropy(batch).mean()
        mse = (((self.predict(context[0], z) - context[1]) ** 2).mean() if fit_evaluator
               else torch.zeros(()))
        kl = kl_to_prior(mu, variance) if self.use_z else torch.zeros(())
        total = ppo - entropy * bonus + mse + kl_weight * kl
        return total, {"ppo": ppo.item(), "entropy": bonus.item(), "mse": mse.item(),
                       "kl": kl.item()}
