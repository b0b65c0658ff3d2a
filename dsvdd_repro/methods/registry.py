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
        calibrate_bn=cfg.model.weights == "none" if cfg.method.calibrate_bn is None else cfg.method.calibrate_bn,
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


def _build_shallow(cfg: DictConfig, image_size: int, device: torch.device) -> Detector:
    from ..data.cache import default_cache_root
    from .features import CNNFeatures, FeatureCache, PCAFeatures
    from .shallow import DETECTORS, ShallowSettings

    f, m = cfg.features, cfg.method
    if f.name == "pca":
        extractor = PCAFeatures(f.pca_variance, f.gcn, progress=cfg.trainer.progress)
    else:  # loads the weights: fails here, before any work, if they cannot be had
        extractor = CNNFeatures(cfg.model.name, cfg.model.pooling, cfg.model.weights, image_size, cfg.seed, device,
                                cfg.trainer.eval_batch_size, cfg.trainer.progress)
    cache = FeatureCache(extractor, default_cache_root(cfg.dataset.cache_dir) / "features", enabled=f.cache)
    settings = ShallowSettings(
        val_max_samples=m.val_max_samples,
        ocsvm_nus=tuple(m.ocsvm_nus),
        ocsvm_gamma_exponents=tuple(m.ocsvm_gamma_exponents),
        ocsvm_max_train=m.ocsvm_max_train,
        iforest_trees=m.iforest_trees,
        iforest_max_samples=m.iforest_max_samples,
        seed=cfg.seed,
        progress=cfg.trainer.progress,
    )
    return DETECTORS[m.name](cache, settings)


def _build_geo(cfg: DictConfig, image_size: int, device: torch.device) -> Detector:
    from ..models.resnet import build_model
    from .geo import GEO, GeoSettings, TransformClassifier

    # the initialisation (head; backbone too with weights=none) depends on the seed only
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_model(cfg.model.name, cfg.model.pooling, cfg.model.bias, cfg.model.weights)
        model = TransformClassifier(net, net.feature_dim(image_size))
    m = cfg.method
    settings = GeoSettings(
        epochs=m.geo_epochs,
        batch_size=m.geo_batch_size,
        lr=m.geo_lr,
        weight_decay=m.geo_weight_decay,
        max_samples_per_epoch=m.geo_max_samples_per_epoch,
        fit_max_samples=m.geo_fit_max_samples,
        eval_batch_size=cfg.trainer.eval_batch_size,
        val_max_samples=m.val_max_samples,
        seed=cfg.seed,
        progress=cfg.trainer.progress,
    )
    return GEO(model, image_size, settings, device)


BUILDERS: dict[str, Callable[[DictConfig, int, torch.device], Detector]] = {
    "dsvdd": _build_dsvdd,
    "ocsvm": _build_shallow,
    "iforest": _build_shallow,
    "geo": _build_geo,
}


def build_detector(cfg: DictConfig, image_size: int, device: torch.device) -> Detector:
    """Build the detector of `cfg.method.name`; fails (e.g. missing weights) before any training."""
    try:
        builder = BUILDERS[cfg.method.name]
    except KeyError:
        raise ValueError(f"method={cfg.method.name!r}; allowed: {', '.join(BUILDERS)}") from None
    return builder(cfg, image_size, device)
