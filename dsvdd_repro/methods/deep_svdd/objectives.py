"""The deep SVDD losses on a minibatch (Eqs. 1-3 of the paper), without weight decay.

Weight decay (lambda/2 sum ||W||_F^2) is applied by the optimizer (Adam's coupled L2 penalty,
whose gradient lambda W is exactly that term's), so these functions hold the data terms only.

Semi-supervised targets: 0 = unlabeled, +1 = labeled normal, -1 = labeled anomaly (Eq. 3).
"""

from __future__ import annotations

import torch

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
