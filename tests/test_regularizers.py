"""The collapse regularizers and the loss weighting (Eqs. 4-7) on tiny hand-checked inputs, and the
collapse they are meant to prevent."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.data import protocols
from dsvdd_repro.data.fake import make_fake
from dsvdd_repro.methods.deep_svdd.regularizers import LossWeight, VarianceConfig, minibatch_variance
from tests.nodes import deep_svdd, noise, variance, weighting


def test_noise_loss_eq4_by_hand():
    reg = noise(feature_dim=2, k=2)
    with torch.no_grad():
        reg.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        reg.head.bias.zero_()
    features = torch.tensor([[0.0, 2.0], [1.0, -1.0]])  # logits = features
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    reg.random_labels = lambda n, device: labels
    sig = torch.sigmoid(features)
    expected = -(labels * sig.log() + (1 - labels) * (1 - sig).log()).sum() / (2 * 2)
    assert reg(features).item() == pytest.approx(expected.item(), rel=1e-6)


def test_noise_loss_of_an_uninformative_head_is_log2():
    reg = noise(feature_dim=4, k=7)
    nn.init.zeros_(reg.head.weight)
    nn.init.zeros_(reg.head.bias)
    assert reg(torch.randn(10, 4)).item() == pytest.approx(math.log(2), rel=1e-6)


def test_random_labels_are_fresh_every_iteration_and_balanced():
    reg = noise(feature_dim=4, k=50, seed=0)
    first = reg.random_labels(100, torch.device("cpu"))
    second = reg.random_labels(100, torch.device("cpu"))
    assert not torch.equal(first, second)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert abs(first.mean().item() - 0.5) < 0.03
    again = noise(feature_dim=4, k=50, seed=0).random_labels(100, torch.device("cpu"))
    assert torch.equal(first, again)  # seeded: reproducible runs


def test_minibatch_variance_and_hinge_eq5():
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0]])
    assert minibatch_variance(features).item() == pytest.approx(3.5)  # (4 + 3) / 2, n - 1 = 2
    reg = variance(d0=5.0, r=3)
    assert reg(features).item() == pytest.approx(1.5)  # max(0, 5 - 3.5)
    reg.start_epoch(3)  # d = 0.5 < 3.5: no penalty
    assert reg(features).item() == 0.0
    collapsed = torch.ones(4, 2)
    assert reg(collapsed).item() == pytest.approx(0.5)


def test_hinge_gradient_pushes_variance_up_only_below_threshold():
    features = torch.tensor([[0.0], [0.2]], requires_grad=True)  # variance 0.02
    variance(d0=0.1)(features).backward()
    assert features.grad[0, 0] > 0 > features.grad[1, 0]  # descent spreads the two points apart


def test_annealing_divides_by_10_every_r_epochs():
    reg = variance(d0=0.1, r=3)
    thresholds = [reg.threshold_at(e) for e in range(9)]  # 0-based epoch indices
    assert thresholds == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001] * 3)
    reg.start_epoch(6)
    assert reg.diagnostics() == {"variance_threshold": pytest.approx(0.001)}


def test_adaptive_weight_recursion_eq7():
    weight = LossWeight(**weighting(weighting="adaptive", alpha=0.9, beta=0.5, c0=0.0))
    c1 = weight.update(torch.tensor(10.0), torch.tensor(2.0))
    assert c1.item() == pytest.approx(0.9 * 0 + 0.5 * 0.1 * 5.0)  # 0.25
    c2 = weight.update(torch.tensor(4.0), torch.tensor(1.0))
    assert c2.item() == pytest.approx(0.9 * 0.25 + 0.05 * 4.0)  # 0.425
    c3 = weight.update(torch.tensor(4.0), torch.tensor(0.0))  # ratio undefined: c_t kept
    assert c3.item() == pytest.approx(0.425)


def test_adaptive_weight_carries_no_gradient_and_fixed_is_one():
    svdd = torch.tensor(3.0, requires_grad=True)
    reg = torch.tensor(1.5, requires_grad=True)
    c = LossWeight(**weighting(weighting="adaptive")).update(svdd, reg)
    assert not c.requires_grad
    (svdd + c * reg).backward()
    assert svdd.grad.item() == 1.0 and reg.grad.item() == pytest.approx(c.item())
    fixed = LossWeight(**weighting(weighting="fixed"))
    assert fixed.update(torch.tensor(100.0), torch.tensor(0.1)).item() == 1.0
    with pytest.raises(ConfigError, match="weighting='sometimes'"):
        VarianceConfig(weighting="sometimes")


class TinyNet(nn.Module):
    """A small MLP with biases: exactly the kind of network that can map everything to c."""

    def __init__(self, image_size=8, bias=True):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(3 * image_size * image_size, 32, bias=bias), nn.ReLU(), nn.Linear(32, 8, bias=bias)
        )
        self.weights_info = {"weights": "none"}

    def forward(self, images):
        return self.layers(images.float() / 255.0)


def toy_splits():
    images = make_fake(n_classes=2, n_train_per_class=100, n_test_per_class=50, image_size=8)
    return protocols.one_vs_all(images, normal_class=0, seed=0)


def train_tiny(regularizer=None, lr=0.1, epochs=8, seed=0):
    torch.manual_seed(seed)
    detector = deep_svdd(
        TinyNet(), regularizer=regularizer,
        lr=lr, backbone_lr_factor=1.0, epochs=epochs, batch_size=20, progress=False, seed=seed, weight_decay=5e-4,
    )
    splits = toy_splits()
    summary = detector.fit(splits.train, splits.val)
    return detector, summary, splits


def test_a_biased_network_collapses_at_a_high_learning_rate_and_the_diagnostics_say_so():
    _, high, _ = train_tiny(regularizer=None, lr=0.1, epochs=4)
    flags = [h["collapsed"] for h in high["history"]]
    assert high["collapsed"] and high["collapse_epoch"] == flags.index(True) + 1
    collapsed = [h for h in high["history"] if h["collapsed"]]
    assert all(h["val_relative_var"] < 1e-3 and h["val_auc"] == 0.5 for h in collapsed)  # phi = const
    assert high["best_epoch"] < high["collapse_epoch"]  # the model kept is from before the collapse
    _, low, _ = train_tiny(regularizer=None, lr=1e-3, epochs=4)
    assert not low["collapsed"] and all(h["val_relative_var"] > 1e-2 for h in low["history"])


def test_noise_regularizer_loss_approaches_log2():
    _, summary, _ = train_tiny(regularizer=noise(feature_dim=8, k=30, seed=0), lr=1e-2, epochs=6)
    assert summary["history"][-1]["loss_reg"] == pytest.approx(math.log(2), abs=0.01)


def test_the_noise_head_takes_no_part_in_scoring():
    regularizer = noise(feature_dim=8, k=5, seed=0)
    detector, _, splits = train_tiny(regularizer=regularizer, lr=1e-3, epochs=2)
    scores = detector.score(splits.test)
    with torch.no_grad():
        regularizer.head.weight.mul_(100.0).add_(3.0)
        regularizer.head.bias.fill_(-7.0)
    np.testing.assert_array_equal(detector.score(splits.test), scores)
    features = detector.embed(splits.test)
    expected = ((features - detector.center) ** 2).sum(dim=1).double().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_the_head_trains_at_the_full_rate_and_the_backbone_lower():
    detector = deep_svdd(TinyNet(), regularizer=noise(8, k=5), lr=1e-2, backbone_lr_factor=0.1, progress=False)
    rates = [group["lr"] for group in detector._optimizer().param_groups]
    assert rates == pytest.approx([1e-3, 1e-2])


def test_variance_history_records_the_threshold_schedule():
    _, summary, _ = train_tiny(regularizer=variance(d0=0.1, r=2), lr=1e-3, epochs=5)
    assert [h["variance_threshold"] for h in summary["history"]] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    assert all(h["reg_weight"] is not None for h in summary["history"])
