"""Exact values of the deep SVDD objectives (Eqs. 1-3) on tiny hand-checked inputs."""

import math

import pytest
import torch

from dsvdd_repro.core.evaluation import auroc, feature_variance, is_collapsed, relative_variance
from dsvdd_repro.methods.deep_svdd.objectives import (
    initial_center,
    one_class_loss,
    radius_quantile,
    soft_boundary_loss,
    squared_distances,
)


def test_squared_distances_by_hand():
    features = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    center = torch.tensor([1.0, 0.0])
    # (0^2 + 2^2), (1 + 0), (2^2 + 1^2)
    assert squared_distances(features, center).tolist() == [4.0, 1.0, 5.0]


def test_one_class_loss_is_mean_squared_distance():
    dist = torch.tensor([4.0, 1.0, 5.0, 2.0])
    assert one_class_loss(dist).item() == pytest.approx(3.0)


def test_semi_supervised_loss_eq3():
    # unlabeled 4, labeled normal 1 (weight eta), labeled anomaly 5 (eta / 5), unlabeled 2
    dist = torch.tensor([4.0, 1.0, 5.0, 2.0])
    targets = torch.tensor([0, 1, -1, 0])
    eta = 2.0
    expected = (4.0 + eta * 1.0 + eta / 5.0 + 2.0) / 4
    assert one_class_loss(dist, targets, eta).item() == pytest.approx(expected, rel=1e-5)


def test_labeled_anomaly_loss_decreases_as_it_moves_away_from_c():
    targets = torch.tensor([-1])
    losses = [one_class_loss(torch.tensor([d]), targets).item() for d in (0.5, 1.0, 4.0, 16.0)]
    assert losses == sorted(losses, reverse=True)


def test_soft_boundary_loss_eq1():
    dist = torch.tensor([1.0, 4.0, 9.0, 0.25])
    radius, nu = 1.5, 0.5  # R^2 = 2.25; violations: 4 - 2.25 = 1.75 and 9 - 2.25 = 6.75
    expected = 2.25 + (1.75 + 6.75) / (nu * 4)
    assert soft_boundary_loss(dist, radius, nu).item() == pytest.approx(expected)


def test_soft_boundary_gradient_only_through_violations():
    dist = torch.tensor([1.0, 9.0], requires_grad=True)
    soft_boundary_loss(dist, 2.0, 0.25).backward()  # R^2 = 4: only the second sample violates
    assert dist.grad.tolist() == pytest.approx([0.0, 1.0 / (0.25 * 2)])


def test_radius_is_quantile_of_distances_not_squared():
    dist = torch.tensor([1.0, 4.0, 9.0, 16.0, 25.0])  # ||phi - c|| = 1..5
    assert radius_quantile(dist, nu=0.5) == pytest.approx(3.0)
    assert radius_quantile(dist, nu=1.0) == pytest.approx(1.0)


def test_center_eps_rule_pushes_near_zero_coordinates_out():
    mean = torch.tensor([0.5, 0.05, -0.05, 0.0, -0.3, 0.1])
    center = initial_center(mean, eps=0.1)
    assert center.tolist() == pytest.approx([0.5, 0.1, -0.1, 0.1, -0.3, 0.1])
    assert mean.tolist()[1] == pytest.approx(0.05)  # input untouched


def test_feature_variance_uses_n_minus_1_and_averages_features():
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0]])
    # column 0: mean 3, sum sq 8 -> 8/2 = 4; column 1: mean 1, sum sq 1+1+4 = 6 -> 3
    assert feature_variance(features) == pytest.approx(3.5)


def test_collapse_rule_is_scale_free():
    spread = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    constant = torch.tensor([[0.5, -0.2]] * 3)
    assert relative_variance(spread) == pytest.approx(relative_variance(spread * 1e-4), rel=1e-6)
    assert relative_variance(constant) == 0.0
    assert relative_variance(torch.zeros(3, 2)) == 0.0
    # variance (1 + 1) / 2 = 1 over second moment (1+9+4+4+0+1)/6 = 19/6
    assert relative_variance(spread) == pytest.approx(6 / 19)
    assert is_collapsed(relative_variance(constant + 1e-6 * spread), 1e-3)
    assert not is_collapsed(relative_variance(spread), 1e-3)


def test_auroc_orientation_and_constant_scores():
    labels = [0, 0, 1, 1]
    assert auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auroc(labels, [1.0, 1.0, 1.0, 1.0]) == 0.5
    with pytest.raises(ValueError, match="both normal"):
        auroc([0, 0], [0.1, 0.2])
    assert not math.isnan(auroc(labels, [0, 1, 0, 1]))


def test_soft_boundary_radius_waits_for_the_warm_up_epochs():
    from tests.nodes import soft_boundary

    dist = torch.tensor([1.0, 4.0, 9.0, 16.0, 25.0])
    zero = torch.zeros(())
    warm = soft_boundary(nu=0.2, warm_up_epochs=2)
    assert warm.next_radius(dist, zero, epoch=1) == 0 and warm.next_radius(dist, zero, epoch=2) == 0
    assert float(warm.next_radius(dist, zero, epoch=3)) == pytest.approx(torch.quantile(dist.sqrt(), 0.8).item())
    assert float(soft_boundary(nu=0.2).next_radius(dist, zero, epoch=1)) > 0  # the paper: from the start
