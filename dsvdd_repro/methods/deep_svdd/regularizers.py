"""The two collapse regularizers (Section IV-B, IV-C) and the loss weighting (Section IV-D).

L_final = L_SVDD + c_t * L_reg (Eq. 6), one regularizer at a time.

- Noise injection (Eq. 4): a linear head g: R^p -> R^k on the features, trained with sigmoid
  cross-entropy against binary labels drawn uniformly from {0, 1} afresh for every sample, output
  and iteration. Its expected loss converges to log 2. g exists only for training: scores use the
  features alone.
- Minibatch variance hinge (Eq. 5): max(0, d_t - mean_q var_q) with the sample variance (n - 1) of
  each feature over the minibatch. d_t = d0 / 10^floor(e / r) for the 0-based epoch index e: the
  threshold is divided by 10 after every r epochs (epochs 1..r of the history use d0, epochs
  r+1..2r use d0/10, ...).
- Adaptive weighting (Eq. 7): c_t = alpha c_{t-1} + beta (1 - alpha) L_SVDD / L_reg from the current
  minibatch's losses, as a constant (no gradient flows through the ratio). When L_reg is below
  `RATIO_GUARD` the ratio is undefined (the variance hinge is exactly 0 whenever the variance is
  above the threshold), so c_t keeps its previous value; c_t * L_reg is then ~0 either way.
  `fixed` weighting is c_t = 1 for all t (Table I).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# L_reg below this leaves c_t unchanged (see the module docstring).
RATIO_GUARD = 1e-8


class Regularizer(nn.Module):
    """L_reg on a minibatch's features; `start_epoch` is called before each epoch (0-based)."""

    name = "none"

    def start_epoch(self, epoch_index: int) -> None:
        pass

    def diagnostics(self) -> dict:
        return {}


class NoiseRegularizer(Regularizer):
    name = "noise"

    def __init__(self, feature_dim: int, k: int, seed: int = 0):
        super().__init__()
        if k < 1:
            raise ValueError(f"regularizer.k={k}: must be >= 1")
        self.head = nn.Linear(feature_dim, k)
        self.k = k
        self._seed = seed
        self._generator: torch.Generator | None = None

    def random_labels(self, n: int, device: torch.device) -> torch.Tensor:
        """Fresh uniform {0, 1} labels, [n, k], from the regularizer's own seeded stream."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self._seed)
        return torch.randint(0, 2, (n, self.k), generator=self._generator, device=device).float()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. (4): mean sigmoid cross-entropy of g(phi) against fresh random binary labels."""
        logits = self.head(features)
        return F.binary_cross_entropy_with_logits(logits, self.random_labels(len(features), features.device))


def minibatch_variance(features: torch.Tensor) -> torch.Tensor:
    """1/(p (n-1)) sum_q sum_i (phi_iq - mean_q)^2: per-feature sample variance averaged over features."""
    return features.var(dim=0, unbiased=True).mean()


class VarianceRegularizer(Regularizer):
    name = "variance"

    def __init__(self, d0: float = 0.1, r: int = 3):
        super().__init__()
        if d0 <= 0 or r < 1:
            raise ValueError(f"variance regularizer needs d0 > 0 and r >= 1, got d0={d0}, r={r}")
        self.d0, self.r = d0, r
        self.threshold = d0

    def threshold_at(self, epoch_index: int) -> float:
        return self.d0 / 10 ** (epoch_index // self.r)

    def start_epoch(self, epoch_index: int) -> None:
        self.threshold = self.threshold_at(epoch_index)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. (5): max(0, d_t - minibatch variance)."""
        return torch.clamp(self.threshold - minibatch_variance(features), min=0.0)

    def diagnostics(self) -> dict:
        return {"variance_threshold": self.threshold}


class LossWeight:
    """c_t of Eq. (6). `adaptive`: Eq. (7); `fixed`: c_t = 1. Kept as a device tensor (no sync)."""

    def __init__(self, mode: str = "adaptive", alpha: float = 0.9, beta: float = 0.5, c0: float = 0.0):
        if mode not in ("adaptive", "fixed"):
            raise ValueError(f"regularizer.weighting={mode!r}; allowed: adaptive, fixed")
        if not (0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0):
            raise ValueError(f"alpha and beta must be in [0, 1], got alpha={alpha}, beta={beta}")
        self.mode, self.alpha, self.beta = mode, alpha, beta
        self.value: torch.Tensor | float = 1.0 if mode == "fixed" else c0

    def update(self, loss_svdd: torch.Tensor, loss_reg: torch.Tensor) -> torch.Tensor:
        """Advance to c_t from this minibatch's losses and return it (detached)."""
        if self.mode == "fixed":
            return torch.ones((), device=loss_reg.device)
        loss_svdd, loss_reg = loss_svdd.detach(), loss_reg.detach()
        previous = torch.as_tensor(self.value, dtype=loss_reg.dtype, device=loss_reg.device)
        defined = loss_reg > RATIO_GUARD
        ratio = loss_svdd / torch.where(defined, loss_reg, torch.ones_like(loss_reg))
        updated = self.alpha * previous + self.beta * (1.0 - self.alpha) * ratio
        self.value = torch.where(defined, updated, previous)
        return self.value


def build_regularizer(name: str, feature_dim: int, k: int, d0: float, r: int, seed: int) -> Regularizer | None:
    if name == "none":
        return None
    if name == "noise":
        return NoiseRegularizer(feature_dim, k, seed)
    if name == "variance":
        return VarianceRegularizer(d0, r)
    raise ValueError(f"regularizer={name!r}; allowed: none, noise, variance")

