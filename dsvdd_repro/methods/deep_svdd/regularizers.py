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

A regularizer is a config node in group `regularizer` whose `_target_` is a `Regularizer`
subclass, built by the deep SVDD method as `build(node, feature_dim=p, seed=seed)`; its own keys
and the weighting keys come from the node. Users add one with a class and a YAML node (README,
"Extending").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from dsvdd_repro.core.schema import at_least, config_node, in_range, one_of, positive

# L_reg below this leaves c_t unchanged (see the module docstring).
RATIO_GUARD = 1e-8
WEIGHTINGS = ("adaptive", "fixed")


@dataclass
class WeightingKeys:
    """Eq. (7)'s keys, shared by every regularizer node: c_t = alpha c_{t-1} + beta (1 - alpha)
    L_SVDD / L_reg from c_0 (adaptive), or c_t = 1 (fixed)."""

    # Table I sweeps the weighting (dsvdd_repro/core/schema.py: what a node records and selects)
    SWEPT: ClassVar[tuple[str, ...]] = ("weighting",)

    weighting: str = "adaptive"
    alpha: float = 0.9
    beta: float = 0.5
    c0: float = 0.0

    def check_weighting(self) -> None:
        one_of("weighting", self.weighting, WEIGHTINGS)
        in_range("alpha", self.alpha, 0.0, 1.0)
        in_range("beta", self.beta, 0.0, 1.0)


@config_node("regularizer", "none")
class NoRegularizerConfig:
    """No collapse regularizer (the D. SVDD and D. SVDD w/ bias rows)."""

    _target_: str = "dsvdd_repro.methods.deep_svdd.regularizers.NoRegularizer"
    name: str = "none"


@config_node("regularizer", "noise")
class NoiseConfig(WeightingKeys):
    """Section IV-B, Eq. (4): a linear head g with k outputs trained on fresh random binary labels.
    The paper selects k from {5, 30, 50, 60, 70, 100, 130, 200} by validation AUC
    (dsvdd_repro/report/selection.py); 5 is the default of a single run."""

    SWEPT: ClassVar[tuple[str, ...]] = ("k",)
    SELECTED: ClassVar[tuple[str, ...]] = ("k",)

    _target_: str = "dsvdd_repro.methods.deep_svdd.regularizers.NoiseRegularizer"
    name: str = "noise"
    k: int = 5

    def __post_init__(self) -> None:
        at_least("k", self.k, 1)
        self.check_weighting()


@config_node("regularizer", "variance")
class VarianceConfig(WeightingKeys):
    """Section IV-C, Eq. (5): hinge on the minibatch feature variance, threshold d0 divided by 10
    every r epochs."""

    SWEPT: ClassVar[tuple[str, ...]] = ("d0", "r")

    _target_: str = "dsvdd_repro.methods.deep_svdd.regularizers.VarianceRegularizer"
    name: str = "variance"
    d0: float = 0.1
    r: int = 3

    def __post_init__(self) -> None:
        positive("d0", self.d0)
        at_least("r", self.r, 1)
        self.check_weighting()


class Regularizer(nn.Module):
    """L_reg on a minibatch's features, weighted by `self.weight` (c_t); `start_epoch` is called
    before each epoch (0-based). Subclasses take (feature_dim, seed, their keys, **weighting)."""

    name = "regularizer"
    active = True  # False: no L_reg at all (the loss is L_SVDD alone)

    def __init__(self, weighting: str, alpha: float, beta: float, c0: float):
        super().__init__()
        self.weight = LossWeight(weighting, alpha, beta, c0)

    def start_epoch(self, epoch_index: int) -> None:
        pass

    def diagnostics(self) -> dict:
        return {}

    # c_t (and a subclass's random streams) travel in state_dict(): checkpoints resume them exactly
    def get_extra_state(self) -> dict:
        return {"weight": self.weight.value}

    def set_extra_state(self, state: dict) -> None:
        self.weight.value = state["weight"]


class NoRegularizer(Regularizer):
    name = "none"
    active = False

    def __init__(self, feature_dim: int, seed: int):
        super().__init__(**asdict(WeightingKeys()))  # never used: no L_reg to weight

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.new_zeros(())


class NoiseRegularizer(Regularizer):
    name = "noise"

    def __init__(self, feature_dim: int, seed: int, k: int, **weighting):
        super().__init__(**weighting)
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

    def get_extra_state(self) -> dict:
        stream = None if self._generator is None else self._generator.get_state()
        return {**super().get_extra_state(), "labels": stream}

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        if state["labels"] is not None:
            self._generator = torch.Generator(device=self.head.weight.device)
            self._generator.set_state(state["labels"])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. (4): mean sigmoid cross-entropy of g(phi) against fresh random binary labels."""
        logits = self.head(features)
        return F.binary_cross_entropy_with_logits(logits, self.random_labels(len(features), features.device))


def minibatch_variance(features: torch.Tensor) -> torch.Tensor:
    """1/(p (n-1)) sum_q sum_i (phi_iq - mean_q)^2: per-feature sample variance averaged over features."""
    return features.var(dim=0, unbiased=True).mean()


class VarianceRegularizer(Regularizer):
    name = "variance"

    def __init__(self, feature_dim: int, seed: int, d0: float, r: int, **weighting):
        super().__init__(**weighting)
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

    def __init__(self, mode: str, alpha: float, beta: float, c0: float):
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
