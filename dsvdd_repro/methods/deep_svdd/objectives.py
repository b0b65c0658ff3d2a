"""The deep SVDD losses on a minibatch (Eqs. 1-3 of the paper), without weight decay.

Weight decay (lambda/2 sum ||W||_F^2) is applied by the optimizer (Adam's coupled L2 penalty,
whose gradient lambda W is exactly that term's), so these functions hold the data terms only.

Semi-supervised targets: 0 = unlabeled, +1 = labeled normal, -1 = labeled anomaly (Eq. 3).

The `objective` nodes build `OneClass` or `SoftBoundary`: the loss of a minibatch given the current
radius R, how R moves after the step, and the anomaly score.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from dsvdd_repro.core.schema import at_least, config_node, in_range, positive

# Keeps 1 / ||phi - c||^2 finite for a labeled anomaly that sits exactly on c.
INVERSE_DISTANCE_EPS = 1e-6


def squared_distances(features: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """||phi(x_i) - c||^2 per sample: [B, p], [p] -> [B]."""
    return torch.sum((features - center) ** 2, dim=1)


def _per_sample_terms(dist: torch.Tensor, semi_targets: torch.Tensor | None, eta: float) -> torch.Tensor:
    """Eq. (3)'s summands: d for unlabeled, eta * d^y for labeled samples (y = +1 or -1)."""
    if semi_targets is None:
        return dist
    labeled_normal = eta * dist
    labeled_anomaly = eta / (dist + INVERSE_DISTANCE_EPS)
    terms = torch.where(semi_targets > 0, labeled_normal, dist)
    return torch.where(semi_targets < 0, labeled_anomaly, terms)


def one_class_loss(dist: torch.Tensor, semi_targets: torch.Tensor | None = None, eta: float = 1.0) -> torch.Tensor:
    """Eq. (2) (mean squared distance to c), or Eq. (3) when semi-supervised targets are given."""
    return _per_sample_terms(dist, semi_targets, eta).mean()


def soft_boundary_loss(
    dist: torch.Tensor,
    radius: float,
    nu: float,
    semi_targets: torch.Tensor | None = None,
    eta: float = 1.0,
) -> torch.Tensor:
    """Eq. (1): R^2 + 1/(nu n) sum max(0, d_i - R^2). R is not a trained parameter here (it is the
    (1 - nu) quantile of the distances, see `radius_quantile`), so R^2 carries no gradient.

    With semi-supervised targets, labeled samples contribute eta * max(0, d - R^2) (normals) and
    eta * max(0, R^2 - d) (anomalies, which should lie outside the sphere) - our extension; the
    paper uses only the one-class objective in the semi-supervised setting (Table VI).
    """
    r2 = radius**2
    excess = torch.clamp(dist - r2, min=0.0)
    if semi_targets is not None:
        excess = torch.where(semi_targets > 0, eta * excess, excess)
        excess = torch.where(semi_targets < 0, eta * torch.clamp(r2 - dist, min=0.0), excess)
    return r2 + excess.mean() / nu


def radius_quantile(dist: torch.Tensor, nu: float) -> float:
    """R = the (1 - nu) quantile of ||phi(x_i) - c|| (the paper, Section III-A)."""
    return float(torch.quantile(torch.sqrt(dist.detach().float()), 1.0 - nu))


def initial_center(mean_features: torch.Tensor, eps: float) -> torch.Tensor:
    """c = the mean feature of an initial pass, with coordinates closer to 0 than eps pushed to
    +-eps (a zero coordinate lets a network with no biases reach c trivially)."""
    center = mean_features.clone()
    near_zero = center.abs() < eps
    center[near_zero & (center < 0)] = -eps
    center[near_zero & (center >= 0)] = eps
    return center


@config_node("objective", "one_class")
class OneClassConfig:
    """Eq. (2); with labeled samples Eq. (3), labeled samples weighted by eta."""

    _target_: str = "dsvdd_repro.methods.deep_svdd.objectives.OneClass"
    name: str = "one_class"
    eta: float = 1.0

    def __post_init__(self) -> None:
        positive("eta", self.eta)


@config_node("objective", "soft_boundary")
class SoftBoundaryConfig:
    """Eq. (1); R is the (1 - nu) quantile of the minibatch's distances, updated after every
    iteration (the paper) from the first epoch on, or only after `warm_up_epochs` epochs with R = 0
    (Ruff et al.'s reference code uses 10). nu follows the dataset (Section V-B: 0.2 for VOC2012,
    0.1 for WikiArt; conf/dataset_objective/), override with objective.nu."""

    # recorded as a run axis (dsvdd_repro/core/schema.py): it differs between datasets
    SWEPT: ClassVar[tuple[str, ...]] = ("nu",)

    _target_: str = "dsvdd_repro.methods.deep_svdd.objectives.SoftBoundary"
    name: str = "soft_boundary"
    nu: float = 0.1
    eta: float = 1.0
    warm_up_epochs: int = 0

    def __post_init__(self) -> None:
        in_range("nu", self.nu, 0.0, 1.0, low_open=True)
        positive("eta", self.eta)
        at_least("warm_up_epochs", self.warm_up_epochs, 0)


class OneClass:
    """Eq. (2)/(3); no radius: the score is the squared distance to c."""

    name = "one_class"
    has_radius = False

    def __init__(self, eta: float):
        self.eta = eta

    def loss(self, dist: torch.Tensor, radius: torch.Tensor, semi: torch.Tensor | None) -> torch.Tensor:
        return one_class_loss(dist, semi, self.eta)

    def next_radius(self, dist: torch.Tensor, radius: torch.Tensor, epoch: int) -> torch.Tensor:
        """R after a step of (1-based) `epoch`."""
        return radius

    def score(self, dist: torch.Tensor, radius: float) -> torch.Tensor:
        return dist


class SoftBoundary(OneClass):
    """Eq. (1): R from the minibatch's (1 - nu) distance quantile after every step; the score is
    ||phi - c||^2 - R^2 (the same ranking as the distance)."""

    name = "soft_boundary"
    has_radius = True

    def __init__(self, nu: float, eta: float, warm_up_epochs: int):
        super().__init__(eta)
        self.nu, self.warm_up_epochs = nu, warm_up_epochs

    def loss(self, dist: torch.Tensor, radius: torch.Tensor, semi: torch.Tensor | None) -> torch.Tensor:
        return soft_boundary_loss(dist, radius, self.nu, semi, self.eta)

    def next_radius(self, dist: torch.Tensor, radius: torch.Tensor, epoch: int) -> torch.Tensor:
        if epoch <= self.warm_up_epochs:
            return radius
        return torch.tensor(radius_quantile(dist, self.nu), device=dist.device)

    def score(self, dist: torch.Tensor, radius: float) -> torch.Tensor:
        return dist - radius**2
