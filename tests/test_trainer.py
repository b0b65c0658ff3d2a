"""Deep SVDD training on a tiny generated dataset: scores, determinism, best-epoch selection."""

import numpy as np
import pytest
import torch

from dsvdd_repro.core.evaluation import COLLAPSE_RATIO, COLLAPSED_RELATIVE_VARIANCE, HEALTHY_RELATIVE_VARIANCE
from dsvdd_repro.data import protocols
from dsvdd_repro.data.fake import make_fake
from tests.nodes import deep_svdd, one_class, resnet18, soft_boundary


def tiny_splits(seed=0):
    images = make_fake(n_classes=3, n_train_per_class=30, n_test_per_class=10, image_size=32)
    return protocols.one_vs_all(images, normal_class=0, seed=seed)


def fit(objective="one_class", epochs=2, seed=0, lr=1e-3, bias=True):
    torch.manual_seed(seed)
    loss = soft_boundary(nu=0.2) if objective == "soft_boundary" else one_class()
    detector = deep_svdd(resnet18(bias=bias), loss, epochs=epochs, batch_size=12, lr=lr, seed=seed, progress=False)
    splits = tiny_splits(seed)
    summary = detector.fit(splits.train, splits.val)
    return detector, summary, detector.score(splits.test), splits


@pytest.mark.slow
def test_scores_are_finite_not_constant_and_training_changes_parameters():
    torch.manual_seed(0)
    before = [p.detach().clone() for p in resnet18().parameters()]
    detector, summary, scores, splits = fit()
    assert scores.shape == (len(splits.test),) and np.isfinite(scores).all()
    assert np.std(scores) > 0
    after = list(detector.net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert summary["best_epoch"] in (1, 2)
    assert summary["val_auc"] == max(h["val_auc"] for h in summary["history"])
    for key in ("loss_svdd", "loss_reg", "reg_weight", "feature_var", "mean_dist", "val_auc", "collapsed"):
        assert key in summary["history"][0]


@pytest.mark.slow
def test_same_seed_same_scores():
    _, _, a, _ = fit(seed=1)
    _, _, b, _ = fit(seed=1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_soft_boundary_records_radius_and_scores_relative_to_it():
    detector, summary, scores, splits = fit(objective="soft_boundary")
    assert all(h["radius"] > 0 for h in summary["history"])
    assert summary["radius"] == detector.best_radius > 0
    # scores are ||phi - c||^2 - R^2 with the kept model's R
    features = detector.embed(splits.test)
    dist = ((features - detector.center) ** 2).sum(dim=1).double().numpy()
    np.testing.assert_allclose(scores, dist - summary["radius"] ** 2, rtol=1e-6)


@pytest.mark.slow
def test_center_is_mean_of_initial_features_with_eps_rule():
    detector, _, _, splits = fit(epochs=1)
    assert detector.center.shape == (512,)
    assert (detector.center.abs() >= 0.1 - 1e-7).all()


def collapse_after_epoch(detector, first: int, scale: float):
    """From epoch `first` on, every batch-norm scale of `detector.net` is multiplied by `scale` after
    the epoch's training: the features become phi = const within float32 tolerance (scale 1e-3) or
    stay healthy (scale 1)."""
    original = detector._train_epoch

    def epoch_then_collapse(train, optimizer, rng, epoch):
        result = original(train, optimizer, rng, epoch)
        if epoch >= first:
            with torch.no_grad():
                for module in detector.net.modules():
                    if isinstance(module, torch.nn.BatchNorm2d):
                        module.weight.mul_(scale)
        return result

    detector._train_epoch = epoch_then_collapse


@pytest.mark.slow
def test_collapse_is_detected_and_best_epoch_precedes_it():
    # features equal within float32 tolerance from epoch 2 on: flagged, and the model of epoch 1 kept
    detector = deep_svdd(resnet18(), epochs=3, batch_size=12, progress=False)
    splits = tiny_splits()
    collapse_after_epoch(detector, first=2, scale=1e-3)
    summary = detector.fit(splits.train, splits.val)
    flags = [h["collapsed"] for h in summary["history"]]
    assert flags == [False, True, True]
    assert all(h["val_relative_var"] < 1e-15 for h in summary["history"][1:])
    assert summary["collapsed"] and summary["collapse_epoch"] == 2
    assert summary["best_epoch"] == 1
    scores = detector.score(splits.test)
    assert np.std(scores) > 0  # scored with the model from before the collapse


@pytest.mark.slow
def test_the_collapse_threshold_lies_between_what_collapsed_and_healthy_networks_measure():
    assert COLLAPSED_RELATIVE_VARIANCE < COLLAPSE_RATIO < HEALTHY_RELATIVE_VARIANCE
    assert np.isclose(np.log(COLLAPSE_RATIO), np.log(COLLAPSED_RELATIVE_VARIANCE * HEALTHY_RELATIVE_VARIANCE) / 2,
                      atol=0.05)
    # a healthy run (features contracting under training, not constant) is never flagged
    detector, summary, _, _ = fit(epochs=3, lr=1e-2)
    assert not summary["collapsed"]
    assert min(h["val_relative_var"] for h in summary["history"]) > 1e3 * COLLAPSE_RATIO


def test_score_before_fit_is_an_error():
    detector = deep_svdd(resnet18(), progress=False)
    with pytest.raises(RuntimeError, match="before fit"):
        detector.score(tiny_splits().test)


class _ConvBN(torch.nn.Module):
    """uint8 images -> a 1x1 conv -> batch norm -> per-channel mean: the smallest net with BN."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)
        self.bn = torch.nn.BatchNorm2d(2)

    def forward(self, images):
        return self.bn(self.conv(images.float() / 255)).mean(dim=(2, 3))


def test_batch_norm_calibration_sets_running_statistics_to_the_training_average():
    torch.manual_seed(0)
    net = _ConvBN()
    params = [p.detach().clone() for p in net.parameters()]
    detector = deep_svdd(net, batch_size=10, progress=False)
    train = tiny_splits().train  # 24 normal images: batches of 10, 10, 4
    assert detector.calibrate_batch_norm(train) == 1
    with torch.no_grad():
        batches = [net.conv(images.float() / 255) for _, images in train.iter_batches(10)]
    expected_mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(dim=0)
    expected_var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(dim=0)
    torch.testing.assert_close(net.bn.running_mean, expected_mean)  # the average of the batches' statistics
    torch.testing.assert_close(net.bn.running_var, expected_var)
    assert net.bn.momentum == 0.1 and int(net.bn.num_batches_tracked) == 3
    assert all(torch.equal(a, b) for a, b in zip(params, net.parameters(), strict=True))


def test_calibration_runs_before_the_center_only_when_asked():
    torch.manual_seed(0)
    splits = tiny_splits()
    for calibrate, expected_tracked in ((False, 0), (True, 3)):
        net = _ConvBN()
        detector = deep_svdd(net, batch_size=10, epochs=0, calibrate_bn=calibrate, progress=False)
        detector.fit(splits.train, splits.val)
        assert int(net.bn.num_batches_tracked) == expected_tracked


@pytest.mark.slow
def test_calibration_defaults_to_random_initialisation_only(tmp_path):
    from torchvision.models import resnet18

    from dsvdd_repro.core.schema import build
    from dsvdd_repro.methods.base import RunContext
    from tests.conftest import compose_config

    path = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    expected = {("none", "null"): True, ("none", "false"): False, (str(path), "null"): False, (str(path), "true"): True}
    for (weights, option), calibrate in expected.items():
        cfg = compose_config([f"model.weights={weights}", f"method.calibrate_bn={option}"])
        context = RunContext(cfg, 32, torch.device("cpu"), tmp_path)
        assert build(cfg.method, context=context).calibrate_bn is calibrate


@pytest.mark.slow
def test_a_loss_that_explodes_ends_the_run_as_diverged_and_keeps_the_model_before_it():
    # the last batch norm's scale and shift x 1e4 before epoch 2 (features ~1e4-fold, the loss ~1e8 x the
    # first step's, as lr=1 can give): epoch 2's first step is past divergence_factor; the run stops
    # there, keeps epoch 1's model and scores with it
    detector = deep_svdd(resnet18(), epochs=3, batch_size=12, progress=False)
    splits = tiny_splits()
    original = detector._train_epoch

    def blow_up_then_epoch(train, optimizer, rng, epoch):
        if epoch == 2:
            last = [m for m in detector.net.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
            with torch.no_grad():
                last.weight.mul_(1e4)
                last.bias.mul_(1e4)
        return original(train, optimizer, rng, epoch)

    detector._train_epoch = blow_up_then_epoch
    summary = detector.fit(splits.train, splits.val)
    assert summary["diverged_at"] == {"epoch": 2, "step": 1} and "1e+06 x the first step's" in summary["error"]
    assert [h["epoch"] for h in summary["history"]] == [1] and summary["best_epoch"] == 1
    scores = detector.score(splits.test)
    assert np.isfinite(scores).all() and np.abs(scores).max() < 1e6  # the model of epoch 1, not the blown-up one
