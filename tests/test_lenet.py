"""The original deep SVDD's CIFAR-10 LeNet, its decoder and its preprocessing (models/lenet.py)."""

import ast
import inspect

import numpy as np
import pytest
import torch

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.data import protocols
from dsvdd_repro.data.fake import make_fake
from dsvdd_repro.models import lenet as lenet_module
from dsvdd_repro.models.lenet import GCNMinMax, LeNetConfig, gcn_l1
from tests.nodes import lenet


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
    info = inputs.fit(images for _, images in train.iter_batches(7))  # plain uint8 batches: 7, 7, 7, 7, 2
    x = inputs(train.batch(np.arange(len(train))))
    assert info["fitted_on"] == len(train) == 30
    assert float(x.min()) == pytest.approx(0.0, abs=1e-6) and float(x.max()) == pytest.approx(1.0, abs=1e-6)
    again = GCNMinMax()
    again.fit([train.batch(np.arange(len(train)))])  # the same range however the images are batched
    assert (float(again.low), float(again.high)) == (float(inputs.low), float(inputs.high))


def test_the_network_knows_no_dataset():
    imported = [node.module for node in ast.walk(ast.parse(inspect.getsource(lenet_module)))
                if isinstance(node, ast.ImportFrom)]
    assert not any(module and module.split(".")[0] == "data" for module in imported), imported


def test_bias_free_lenet_has_no_bias_and_no_affine_batch_norm():
    free, biased = lenet(bias=False), lenet(bias=True)
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


# The authors' autoencoder rule: xavier_uniform_(gain=calculate_gain("leaky_relu")) on every (transposed)
# convolution, bound = gain * sqrt(6 / (fan_in + fan_out)) with fan = channels x 5 x 5; the linear map
# keeps PyTorch's default (bound 1 / sqrt(fan_in)). Hand-computed, gain = sqrt(2 / (1 + 0.01^2)).
GAIN = (2 / 1.0001) ** 0.5
AUTHORS_BOUNDS = {
    "convs.0": GAIN * (6 / ((3 + 32) * 25)) ** 0.5,  # 0.11710
    "convs.1": GAIN * (6 / ((32 + 64) * 25)) ** 0.5,  # 0.07071
    "convs.2": GAIN * (6 / ((64 + 128) * 25)) ** 0.5,  # 0.05000
    "fc": 1 / (128 * 4 * 4) ** 0.5,  # PyTorch's default, as theirs
}
DECODER_BOUNDS = {
    "deconvs.0": GAIN * (6 / ((8 + 128) * 25)) ** 0.5,
    "deconvs.1": GAIN * (6 / ((128 + 64) * 25)) ** 0.5,
    "deconvs.2": GAIN * (6 / ((64 + 32) * 25)) ** 0.5,
    "out": GAIN * (6 / ((32 + 3) * 25)) ** 0.5,
}


def _bounds_hold(module, bounds):
    for name, bound in bounds.items():
        weight = module.get_submodule(name).weight.detach()
        # uniform on [-bound, bound]: never beyond it, and (thousands of draws) its extremes reach 97% of it
        assert float(weight.abs().max()) <= bound, name
        assert float(weight.abs().max()) > 0.97 * bound, name
        assert float(weight.std()) == pytest.approx(bound / 3 ** 0.5, rel=0.05), name


def test_the_authors_initialisation_bounds_every_convolution_of_encoder_and_decoder():
    torch.manual_seed(0)
    net = lenet(init="xavier_leaky_relu")
    assert AUTHORS_BOUNDS["convs.0"] == pytest.approx(0.11710, abs=1e-5)
    _bounds_hold(net, AUTHORS_BOUNDS)
    _bounds_hold(net.decoder(), DECODER_BOUNDS)
    # PyTorch's default (init=torch) is kaiming_uniform_(a=sqrt(5)): bound 1 / sqrt(fan_in), 2-3.4x smaller
    default = lenet()
    assert float(default.convs[1].weight.detach().abs().max()) <= 1 / (32 * 25) ** 0.5
    assert AUTHORS_BOUNDS["convs.1"] * (32 * 25) ** 0.5 == pytest.approx(2.0, abs=1e-3)  # 2x on conv2
    assert AUTHORS_BOUNDS["convs.2"] * (64 * 25) ** 0.5 == pytest.approx(2.0, abs=1e-3)
    with pytest.raises(ConfigError, match=r"init='glorot'.*torch, xavier_leaky_relu"):
        LeNetConfig(init="glorot")


def test_a_float_input_is_refused_not_passed_through_unprocessed():
    net = lenet().eval()
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(TypeError, match="uint8 images.*got torch.float32"):
        net(images.float())
    with torch.no_grad():  # encode() is the network on inputs it has preprocessed itself
        torch.testing.assert_close(net(images), net.encode(net.inputs(images)))
