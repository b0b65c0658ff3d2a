"""method name -> a ready Detector built from the composed config (one builder per method)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig

from .base import Detector


def _build_dsvdd(cfg: DictConfig, image_size: int, device: torch.device) -> Detector:
    from ..models.resnet import build_model
    from .deep_svdd.regularizers import LossWeight, build_regularizer
    from .deep_svdd.trainer import DeepSVDD, DeepSVDDSettings

    net = build_model(cfg.model.name, cfg.model.pooling, cfg.model.bias, cfg.model.weights)
    reg = cfg.regularizer
    regularizer = build_regularizer(reg.name, net.feature_dim(image_size), reg.k, reg.d0, reg.r, cfg.seed)
    settings = DeepSVDDSettings(
        objective=cfg.objective.name,
        nu=cfg.objective.nu,
        eta=cfg.objective.eta,
        center_eps=cfg.method.center_eps,
        lr=cfg.optim.lr,
        backbone_lr_factor=cfg.optim.backbone_lr_factor,
        weight_decay=cfg.optim.weight_decay,
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        eval_batch_size=cfg.trainer.eval_batch_size,
        collapse_ratio=cfg.trainer.collapse_ratio,
        seed=cfg.seed,
        progress=cfg.trainer.progress,
    )
    weight = LossWeight(reg.weighting, reg.alpha, reg.beta, reg.c0)
    return DeepSVDD(net, settings, device, regularizer, weight)


BUILDERS: dict[str, Callable[[DictConfig, int, torch.device], Detector]] = {
    "dsvdd": _build_dsvdd,
}


def build_detector(cfg: DictConfig, image_size: int, device: torch.device) -> Detector:
    """Build the detector of `cfg.method.name`; fails (e.g. missing weights) before any training."""
    try:
        builder = BUILDERS[cfg.method.name]
    except KeyError:
        raise ValueError(f"method={cfg.method.name!r}; allowed: {', '.join(BUILDERS)}") from None
    return builder(cfg, image_size, device)
