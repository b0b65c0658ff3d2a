"""ResNet-18 feature extractor: bias removal, pooling, and every way of getting weights."""

import urllib.error

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.models import weights as weights_module
from dsvdd_repro.models.resnet import ResNet18Config
from dsvdd_repro.models.weights import WeightsError
from tests import nodes


def test_bias_false_zeroes_and_freezes_every_batchnorm_shift():
    net = nodes.resnet18(bias=False)
    betas = [m.bias for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(betas) == 20
    assert all(not b.requires_grad and b.abs().sum() == 0 for b in betas)
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    gammas = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(g.requires_grad for g in gammas)  # scaling is not a bias: it stays trainable


def test_bias_true_keeps_batchnorm_shifts_trainable():
    net = nodes.resnet18(bias=True)
    assert all(m.bias.requires_grad for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_pooling_max_vs_none_feature_sizes():
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert nodes.resnet18(pooling="max").eval()(images).shape == (2, 512)
    assert nodes.resnet18(pooling="none").eval()(images).shape == (2, 512 * 2 * 2)
    with pytest.raises(ConfigError, match="pooling='mean'"):
        ResNet18Config(pooling="mean")


def test_weights_from_a_state_dict_file_load_every_backbone_tensor(tmp_path):
    source = resnet18(weights=None)
    torch.nn.init.constant_(source.layer4[1].bn2.weight, 0.123)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    net = nodes.resnet18(weights=str(path))
    assert torch.allclose(net.body[7][1].bn2.weight, torch.full((512,), 0.123))
    assert net.weights_info["weights"] == "file" and len(net.weights_info["sha256"]) == 64


def test_weights_file_missing_a_tensor_fails_naming_it(tmp_path):
    state = resnet18(weights=None).state_dict()
    del state["layer2.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="missing backbone tensors: layer2.0.conv1.weight"):
        nodes.resnet18(weights=str(path))


def test_weights_file_with_wrong_shapes_or_foreign_tensors_fails(tmp_path):
    state = resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="wrong shapes: conv1.weight"):
        nodes.resnet18(weights=str(path))
    state = resnet18(weights=None).state_dict()
    state["extra.head.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="extra.head.weight"):
        nodes.resnet18(weights=str(path))


def test_weights_path_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsError, match="no such file; allowed: imagenet, none"):
        nodes.resnet18(weights=str(tmp_path / "nope.pth"))


def test_imagenet_offline_fails_fast_saying_where_and_what_else(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(self, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", no_network)
    with pytest.raises(WeightsError) as error:
        nodes.resnet18(weights="imagenet")
    message = str(error.value)
    assert str(tmp_path / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "model.weights=none" in message and "model.weights=/path/to" in message


def test_imagenet_weights_go_through_torchvisions_api(monkeypatch, tmp_path):
    # A cached file where torchvision expects it is what the weights API returns offline.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    source = resnet18(weights=None)
    expected = weights_module.imagenet_weights_path()
    expected.parent.mkdir(parents=True)
    torch.save(source.state_dict(), expected)
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", lambda self, **kw: torch.load(expected))
    net = nodes.resnet18(weights="imagenet")
    assert net.weights_info["weights"] == "imagenet" and net.weights_info["file"] == str(expected)
    assert torch.equal(net.body[0].weight, source.conv1.weight)


def test_pooling_readings_max_avg_and_none():
    torch.manual_seed(0)
    net = nodes.resnet18(pooling="max").eval()
    avg = nodes.resnet18(pooling="avg").eval()
    avg.load_state_dict(net.state_dict())
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        last_map = net.body((images.float() - net.mean) / net.std)
        torch.testing.assert_close(net(images), last_map.amax(dim=(2, 3)))
        torch.testing.assert_close(avg(images), last_map.mean(dim=(2, 3)))


def test_affine_free_reading_fixes_batchnorm_scales_to_one_as_well():
    shift = nodes.resnet18(bias=False, bias_free="zero_shift")
    free = nodes.resnet18(bias=False, bias_free="affine_free")
    norms = [m for m in free.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all((m.weight == 1).all() and not m.weight.requires_grad and (m.bias == 0).all() for m in norms)
    assert all(m.weight.requires_grad for m in shift.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ConfigError, match="bias_free='gamma'"):
        ResNet18Config(bias_free="gamma")
