"""The original deep SVDD's CIFAR-10 network (Ruff et al., ICML 2018, "Deep One-Class
Classification"; reference [13] of the paper), its autoencoder decoder and its preprocessing.

- Encoder phi: three 5x5 convolutions (32, 64, 128 channels, padding 2), each followed by batch
  norm (eps 1e-4), leaky ReLU and 2x2 max pooling, then a linear map of the 128 x 4 x 4 map to
  `rep_dim` (128) features. `bias=False` (the standard deep SVDD constraints): no bias anywhere
  and batch norm without affine parameters. `bias=True` (the collapse study): biases in the
  convolutions and the linear map, affine batch norm.
- Decoder (autoencoder pretraining): batch norm of the features, then the features as a
  (rep_dim / 16) x 4 x 4 map through four 5x5 transposed convolutions (128, 64, 32, 3 channels),
  each but the last followed by batch norm, leaky ReLU and 2x upsampling, and a sigmoid output.
- Initialisation (`init`): `torch`, PyTorch's defaults (what the authors' deep SVDD network gets
  when it is not pretrained); `xavier_leaky_relu`, the authors' autoencoder rule: every convolution
  and transposed convolution, encoder and decoder, Glorot-uniform with the leaky-ReLU gain
  (sqrt(2 / (1 + 0.01^2)), bound gain * sqrt(6 / (fan_in + fan_out))), the linear map PyTorch's
  default. Their pretrained encoder starts deep SVDD, so the original-protocol variants
  (conf/variant/dsvdd_ruff2018.yaml) set it; with Adam, whose steps are ~lr whatever a weight's
  scale, the initial scale sets how fast each layer turns (a class moves by more than seed noise).
- Preprocessing (`GCNMinMax`, part of the network so data stays uint8 until the device): pixels
  to [0, 1], global contrast normalisation with the l1 norm per image (subtract the image's mean,
  divide by its mean absolute deviation), then min-max scaling with the minimum and maximum of the
  normalised training images (the normal class's train images in one-vs-all), fitted by
  `fit_inputs` on batches of those images, plain uint8 tensors the caller (the method) hands over,
  before anything else (Ruff et al. hard-coded these numbers per class). The network knows no
  dataset.
  `forward` takes uint8 images only (a float batch is refused, never passed through unprocessed);
  `encode` is the network on inputs already preprocessed (the autoencoder's targets).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from dsvdd_repro.core.schema import ConfigError, at_least, config_node, one_of

INITS = ("torch", "xavier_leaky_relu")


@config_node("model", "lenet_cifar10")
class LeNetConfig:
    """The original deep SVDD's CIFAR-10 LeNet (dsvdd_repro/models/lenet.py): no bias anywhere
    (bias=false, the standard constraints) or with biases and affine batch norm (bias=true).
    No pretrained weights exist: `weights` is none; `pretrain=autoencoder` initialises it.
    `init`: torch (PyTorch's defaults) or xavier_leaky_relu (the authors' autoencoder rule)."""

    _target_: str = "dsvdd_repro.models.lenet.LeNetCIFAR10"
    name: str = "lenet_cifar10"
    bias: bool = False
    rep_dim: int = 128
    weights: str = "none"
    init: str = "torch"

    def __post_init__(self) -> None:
        at_least("rep_dim", self.rep_dim, 16)
        one_of("init", self.init, INITS)
        if self.rep_dim % 16:
            raise ConfigError("rep_dim", self.rep_dim, "must be a multiple of 16 (the decoder's 4 x 4 map)")
        if self.weights != "none":
            raise ConfigError("weights", self.weights, "the LeNet has no pretrained weights: none "
                              "(use pretrain=autoencoder)")


def initialise(module: nn.Module, rule: str) -> None:
    """Apply the `init` rule (module docstring) to every (transposed) convolution of `module`."""
    if rule == "torch":
        return
    gain = nn.init.calculate_gain("leaky_relu")
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(layer.weight, gain=gain)


def gcn_l1(x: torch.Tensor) -> torch.Tensor:
    """Global contrast normalisation per image with the l1 norm: (x - mean) / mean |x - mean|."""
    flat = x.flatten(1)
    centred = flat - flat.mean(dim=1, keepdim=True)
    scale = centred.abs().mean(dim=1, keepdim=True)
    # a constant image (rounding leaves ~1e-8 of deviation) has no contrast to normalise: zeros
    return torch.where(scale > 1e-6, centred / scale.clamp_min(1e-6), 0.0).view_as(x)


class GCNMinMax(nn.Module):
    """uint8 images -> GCN (l1) -> min-max scaled with the fitted training range."""

    def __init__(self):
        super().__init__()
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.ones(()))

    @torch.no_grad()
    def fit(self, batches: Iterable[torch.Tensor]) -> dict:
        """The range of the normalised images of `batches` (uint8 [B, 3, H, W] each)."""
        device = self.low.device
        low, high = torch.tensor(float("inf")), torch.tensor(float("-inf"))
        n_images = 0
        for images in batches:
            x = gcn_l1(images.to(device).float() / 255.0)
            low, high = torch.minimum(low, x.min().cpu()), torch.maximum(high, x.max().cpu())
            n_images += len(images)
        self.low.fill_(float(low))
        self.high.fill_(float(high))
        return {"gcn_min": float(low), "gcn_max": float(high), "fitted_on": n_images}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = gcn_l1(images.float() / 255.0)
        return (x - self.low) / (self.high - self.low).clamp_min(1e-12)


class LeNetCIFAR10(nn.Module):
    """phi: uint8 [B, 3, 32, 32] -> float [B, rep_dim] (module docstring)."""

    def __init__(self, bias: bool, rep_dim: int, weights: str, init: str):
        super().__init__()
        self.bias, self.rep_dim, self.init = bias, rep_dim, init
        self.weights_info = {"weights": "none", "init": init,
                             "note": "random initialisation (autoencoder pretraining if asked)"}
        self.inputs = GCNMinMax()
        channels = (3, 32, 64, 128)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, padding=2, bias=bias) for a, b in zip(channels, channels[1:], strict=False))
        self.norms = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-4, affine=bias) for b in channels[1:])
        self.fc = nn.Linear(128 * 4 * 4, rep_dim, bias=bias)
        initialise(self, init)

    def fit_inputs(self, batches: Iterable[torch.Tensor]) -> dict:
        """Fit the min-max range of the preprocessing on the training images, in `batches` (uint8
        tensors [B, 3, 32, 32])."""
        return self.inputs.fit(batches)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"LeNetCIFAR10 takes uint8 images (it preprocesses them itself), got {images.dtype}; "
                            "encode() takes preprocessed inputs")
        return self.encode(self.inputs(images))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """phi on inputs already preprocessed by `self.inputs` (float [B, 3, 32, 32])."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.max_pool2d(F.leaky_relu(norm(conv(x))), 2)
        return self.fc(x.flatten(1))

    def feature_dim(self, image_size: int) -> int:
        return self.rep_dim

    def decoder(self) -> LeNetDecoder:
        return LeNetDecoder(self.rep_dim, self.bias, self.init)


class LeNetDecoder(nn.Module):
    """features [B, rep_dim] -> reconstruction in [0, 1] of the preprocessed image [B, 3, 32, 32]."""

    def __init__(self, rep_dim: int, bias: bool, init: str):
        super().__init__()
        self.rep_dim = rep_dim
        self.norm_in = nn.BatchNorm1d(rep_dim, eps=1e-4, affine=bias)
        channels = (rep_dim // 16, 128, 64, 32)
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 5, padding=2, bias=bias)
                                     for a, b in zip(channels, channels[1:], strict=False))
        self.norms = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-4, affine=bias) for b in channels[1:])
        self.out = nn.ConvTranspose2d(32, 3, 5, padding=2, bias=bias)
        initialise(self, init)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm_in(features).view(len(features), self.rep_dim // 16, 4, 4))
        for deconv, norm in zip(self.deconvs, self.norms, strict=True):
            x = F.interpolate(F.leaky_relu(norm(deconv(x))), scale_factor=2)
        return torch.sigmoid(self.out(x))
