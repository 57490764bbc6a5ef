"""CATCH's context encoder q_φ(z | c) (PEARL-style amortised inference).

A shared MLP maps each (architecture one-hot, normalised reward) pair of a task's
search history to a Gaussian factor N(μ_i, σ_i²); the posterior is the product of
those factors and the N(0, I) prior, so it is permutation invariant, an empty
context gives the prior and every pair shrinks the variance:

    σ² = 1 / (1 + Σ_i 1/σ_i²),   μ = σ² · Σ_i μ_i / σ_i².
"""

from __future__ import annotations

import torch
from torch import nn

MIN_VARIANCE = 1e-4  # floor of a factor's variance: one pair cannot pin z exactly


def product_of_gaussians(mus: torch.Tensor, variances: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The N(0, I) prior times the factors ``N(mus[i], variances[i])`` (``(n, d)`` each):
    the posterior's mean and variance, ``(d,)`` each.

    Example:
        >>> mu, var = product_of_gaussians(torch.tensor([[2.0]]), torch.tensor([[1.0]]))
        >>> mu.item(), var.item()
        (1.0, 0.5)
    """
    precision = 1.0 + (1.0 / variances).sum(dim=0)
    variance = 1.0 / precision
    return variance * (mus / variances).sum(dim=0), variance


def kl_to_prior(mu: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) || N(0, I))."""
    return 0.5 * (variance + mu**2 - 1.0 - torch.log(variance)).sum()


class ContextEncoder(nn.Module):
    """Ψ_φ: (arch one-hot, reward) -> (μ_i, σ_i²), combined by :func:`product_of_gaussians`.

    Args:
        arch_dim: Length of an architecture's one-hot encoding.
        latent: Dimension of z.
        hidden: Width of the MLP's two hidden layers.
    """

    def __init__(self, arch_dim: int, latent: int = 5, hidden: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.net = nn.Sequential(nn.Linear(arch_dim + 1, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * latent))

    def posterior(self, archs: torch.Tensor, rewards: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(z | c) for the context ``(archs (n, arch_dim), rewards (n,))``."""
        if len(archs) == 0:
            return torch.zeros(self.latent), torch.ones(self.latent)
        out = self.net(torch.cat([archs, rewards[:, None]], dim=1))
        mus, raw = out[:, : self.latent], out[:, self.latent :]
        return product_of_gaussians(mus, nn.functional.softplus(raw) + MIN_VARIANCE)
