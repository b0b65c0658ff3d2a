"""ResNet-18 feature extractor phi: uint8 images in, one feature vector per image out.

Choices the paper leaves open, and ours:
- "ResNet-18 with max-pooling layer" / Figure 2's "without the pooling layer": we read the pooling
  layer as the global pooling after the last residual stage, and "max-pooling" literally:
  `pooling=max` (the default) replaces torchvision's global average pooling by global max pooling
  (512 features). The other reading, torchvision's own global average pooling (which its ImageNet
  weights were trained with), is `pooling=avg`; `pooling=none` flattens the last feature map
  (512 x h x w features; at 32 px the map is 1 x 1, so all three give 512 features). The
  classifier `fc` is removed.
- `bias=False` imposes the standard deep SVDD constraints (Ruff et al. 2018). ResNet-18's
  convolutions have no bias; batch norm's additive shift is the only bias term. Two readings:
  `bias_free=zero_shift` (the default) sets every batch-norm shift (beta) to zero and freezes it,
  keeping the trainable scale (gamma); `bias_free=affine_free` is Ruff et al.'s reference code
  (batch norm with affine=False): the scale is fixed to 1 as well. Both keep the mean/variance
  normalisation. `bias=True` keeps every beta trainable (the collapse-prone "D. SVDD w/ bias").
- Inputs are scaled to [0, 1] and normalised with ImageNet's mean and std inside the module, so
  data stays uint8 until the batch reaches the device.
"""

from __future__ import annotations

import torch
from torch import nn

from dsvdd_repro.core.schema import config_node, one_of
from dsvdd_repro.models.weights import load_backbone_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("max", "avg", "none")
BIAS_FREE = ("zero_shift", "affine_free")
POOLING_LAYERS = {"max": lambda: nn.AdaptiveMaxPool2d(1), "avg": lambda: nn.AdaptiveAvgPool2d(1), "none": nn.Identity}


@config_node("model", "resnet18")
class ResNet18Config:
    """torchvision's ResNet-18 without its fc layer. bias=false: the standard deep SVDD constraints
    (every batch-norm shift zeroed and frozen). pooling: global max pooling of the last feature map
    (max) or its flattened map (none). weights: imagenet | none | <path to a state-dict file>, or
    auto (ImageNet when the file is on this machine, else none)."""

    _target_: str = "dsvdd_repro.models.resnet.ResNet18Features"
    name: str = "resnet18"
    bias: bool = True
    pooling: str = "max"
    # how bias=false removes batch norm's bias: zero_shift (beta = 0, gamma trainable) or affine_free
    bias_free: str = "zero_shift"
    # the profile's request (profile.weights: imagenet | none | auto | <path>) unless set here
    weights: str = "${resolve_weights:${profile.weights}}"

    def __post_init__(self) -> None:
        one_of("pooling", self.pooling, POOLINGS)
        one_of("bias_free", self.bias_free, BIAS_FREE)


class ResNet18Features(nn.Module):
    def __init__(self, pooling: str, bias: bool, weights: str, bias_free: str):
        super().__init__()
        # imported here: a LeNet or shallow run never imports torchvision (~1.5 s)
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        self.weights_info = load_backbone_weights(net, weights)
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
        self.pool = POOLING_LAYERS[pooling]()
        self.pooling, self.bias = pooling, bias
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        if not bias:
            remove_bias_terms(self, scales_too=bias_free == "affine_free")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: uint8 (or float in [0, 255]) [B, 3, H, W] -> features float [B, p]."""
        x = (images.float() - self.mean) / self.std
        return torch.flatten(self.pool(self.body(x)), 1)

    def feature_dim(self, image_size: int) -> int:
        with torch.no_grad():
            was_training = self.training
            self.eval()
            dim = self(torch.zeros(1, 3, image_size, image_size, device=self.mean.device)).shape[1]
            self.train(was_training)
        return int(dim)


def remove_bias_terms(module: nn.Module, scales_too: bool = False) -> list[str]:
    """Zero and freeze every additive bias (conv/linear bias, batch-norm beta); with `scales_too`
    also fix every batch-norm scale (gamma) to 1 (batch norm without affine parameters). Returns
    the names of the frozen parameters."""
    frozen = []
    for name, child in module.named_modules():
        bias = getattr(child, "bias", None)
        if isinstance(bias, nn.Parameter):
            with torch.no_grad():
                bias.zero_()
            bias.requires_grad_(False)
            frozen.append(f"{name}.bias")
        if scales_too and isinstance(child, nn.modules.batchnorm._BatchNorm) and child.weight is not None:
            with torch.no_grad():
                child.weight.fill_(1.0)
            child.weight.requires_grad_(False)
            frozen.append(f"{name}.weight")
    return frozen
