"""The original deep SVDD's CIFAR-10 LeNet, its decoder and its preprocessing (models/lenet.py)."""

import numpy as np
import pytest
import torch

from dsvdd_repro.data import protocols
from dsvdd_repro.data.fake import make_fake
from dsvdd_repro.models.lenet import GCNMinMax, LeNetCIFAR10, LeNetConfig, gcn_l1
from dsvdd_repro.schema import ConfigError


def normal_train():
    images = make_fake(n_classes=2, n_train_per_class=30, n_test_per_class=5, image_size=32)
    return protocols.one_vs_all(images, normal_class=0, seed=0, train_fraction=1.0).train


def test_gcn_l1_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 5.0]]]])  # mean 2, |x - mean| = 2, 1, 0, 3: mean 1.5
    expected = torch.tensor([[[[-2.0, -1.0], [0.0, 3.0]]]]) / 1.5
    torch.testing.assert_close(gcn_l1(x), expected)
    assert torch.equal(gcn_l1(torch.full((1, 3, 2, 2), 0.7)), torch.zeros(1, 3, 2, 2))  # constant: zeros


def test_min_max_is_fitted_on_the_training_images_and_maps_them_onto_0_1():
    train = normal_train()
    inputs = GCNMinMax()
    info = inputs.fit(train)
    x = inputs(train.batch(np.arange(len(train))))
    assert info["fitted_on"] == len(train) == 30
    assert float(x.min()) == pytest.approx(0.0, abs=1e-6) and float(x.max()) == pytest.approx(1.0, abs=1e-6)


def test_bias_free_lenet_has_no_bias_and_no_affine_batch_norm():
    free, biased = LeNetCIFAR10(bias=False), LeNetCIFAR10(bias=True)
    assert not any(name.endswith("bias") for name, _ in free.named_parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in free.modules())
    assert any(name.endswith("bias") for name, _ in biased.named_parameters())
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert free.eval()(images).shape == (4, 128) and free.feature_dim(32) == 128
    decoder = free.decoder().eval()
    with torch.no_grad():
        reconstruction = decoder(free(images))
    assert reconstruction.shape == (4, 3, 32, 32) and 0 <= float(reconstruction.min()) <= float(reconstruction.max()) <= 1
    assert not any(name.endswith("bias") for name, _ in decoder.named_parameters())


def test_lenet_node_checks():
    with pytest.raises(ConfigError, match="rep_dim=100"):
        LeNetConfig(rep_dim=100)
    with pytest.raises(ConfigError, match="weights='imagenet'"):
        LeNetConfig(weights="imagenet")
