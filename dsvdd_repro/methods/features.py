"""Inputs of the shallow baselines (`features=pca|cnn`), and their on-disk cache.

`pca` follows the baseline protocol of Deep SVDD (Ruff et al. 2018, their reference code), which the
paper cites for its shallow baselines:
  pixels / 255 -> global contrast normalisation per image (subtract the image's mean, divide by its
  l1 norm) -> min-max scaling to [0, 1] with the training set's global min and max -> flatten ->
  PCA fitted on the training set only, keeping the fewest components whose explained variance
  exceeds `features.pca_variance` (0.95, as Ruff et al.). `features.gcn=false` skips the contrast
  normalisation (then plain [0, 1] pixels). The PCA is exact: an eigendecomposition of the
  covariance (D <= N) or of the Gram matrix (D > N, e.g. 224 px images), in float64.
`cnn`: the ResNet-18 of `model.weights` (pretrained, intact: bias terms kept whatever `model.bias`
  says, eval mode) after its global pooling layer (`model.pooling=max`, 512 features), or the
  flattened last feature map (`model.pooling=none`, Figure 2's "without pooling"). Features are
  not standardised: OC-SVM's gamma grid is relative to the data's scale and Isolation Forest is
  invariant to per-feature scaling. With `model.weights=none` the random initialisation is seeded
  by `seed`, and the seed is part of the cache key.

Cache: one entry per (extractor, split content) under `<cache root>/features/`. The key holds a
content hash of the exact uint8 images the split feeds in (natural and altered rows, in order), the
extractor's parameters (weights spec and the weights file's sha256, pooling, image size, PCA
settings, and for PCA the content hash of the training split it is fitted on) and
`FEATURES_VERSION`. Any change to the images, the split, the weights or the settings is a new key,
so stale features are never served. Hashing a CIFAR-10 split costs well under a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from dsvdd_repro.core.execution import Execution
from dsvdd_repro.core.schema import ConfigError, build, config_node, in_range
from dsvdd_repro.data.cache import cached_arrays
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.methods.base import RunContext

log = logging.getLogger(__name__)

# Bump when the features computed for the same inputs and settings would change.
FEATURES_VERSION = 1
_HASH_BATCH = 2048
# rows per batch when PCA reads pixels
_PCA_BATCH = 2048
# seed stream of the validation subsample (distinct from the protocol's streams 1 and 2)
_SELECTION_STREAM = 11


def content_hash(split: SplitData, batch_size: int = _HASH_BATCH) -> str:
    """blake2b of the split's images in row order (what every extractor actually sees)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((len(split), tuple(split.pool.shape[1:]))).encode())
    for _, images in split.iter_batches(batch_size):
        digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


def subset(split: SplitData, rows: np.ndarray) -> SplitData:
    """The rows `rows` of `split` as a split of their own (no image is copied)."""
    rows = np.asarray(rows, dtype=np.int64)
    return dataclasses.replace(
        split,
        keys=split.keys[rows],
        labels=split.labels[rows],
        altered_slot=split.altered_slot[rows],
        semi_targets=split.semi_targets[rows],
        pool_rows=None if split.pool_rows is None else split.pool_rows[rows],
        info=dict(split.info),
    )


def unlabeled_train(train: SplitData) -> SplitData:
    """The training split without its labeled anomalies (semi target -1): the baselines are
    unsupervised, so in the semi-supervised setups they see only the rest, as deep SVDD's
    unsupervised variants would."""
    keep = train.semi_targets != -1
    return train if keep.all() else subset(train, np.flatnonzero(keep))


def selection_rows(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """A seeded subset of at most `cap` rows for model selection: at most cap // 2 rows per label.

    Balanced rather than stratified: an AUC's noise is set by its rarer class, and one-vs-all
    validation sets are 98% anomalies. `cap=None` keeps every row.
    """
    labels = np.asarray(labels)
    if cap is None or len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, _SELECTION_STREAM])
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, size=min(len(members), max(1, cap // 2)), replace=False))
    return np.sort(np.concatenate(chosen))


class FeatureExtractor(ABC):
    """uint8 image split -> float32 feature matrix [N, d]."""

    name: str
    needs_fit: bool = False

    @property
    def fitted(self) -> bool:
        """Ready to transform (an extractor that needs a fit has had it)."""
        return not self.needs_fit

    @abstractmethod
    def params(self) -> dict:
        """Everything besides the input images that determines the features (the cache key)."""

    def fit(self, train: SplitData) -> dict:
        """Learn from the training split (PCA); return what was learned, for the summary."""
        return {}

    @abstractmethod
    def transform(self, split: SplitData) -> np.ndarray:
        """Features of every row of `split`."""

    def describe(self) -> dict:
        return {"features": self.name, **self.params()}

    def export_state(self) -> dict:
        """The fitted state as tensors and plain values (model.pt holds data only)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Restore `export_state()` on an extractor built from the same config."""
        del state  # an extractor that fits nothing has nothing to restore


# -- PCA of raw pixels ---------------------------------------------------------------------------


def pixels(images: torch.Tensor, gcn: bool) -> np.ndarray:
    """uint8 [B, C, H, W] -> float32 [B, C*H*W] in [0, 1], contrast-normalised per image if `gcn`."""
    x = images.reshape(len(images), -1).float().div_(255.0)
    if gcn:
        x = x - x.mean(dim=1, keepdim=True)
        # l1 norm as Ruff et al.; a constant image has norm 0 and stays all zeros
        x = x / x.abs().sum(dim=1, keepdim=True).clamp_min(1e-12)
    return x.numpy()


def fit_pca(x: np.ndarray, variance: float, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact PCA of x [N, D]: (mean [D], components [k, D], explained variance ratio of all ranks).

    k is the fewest components whose cumulative explained variance ratio exceeds `variance`
    (scikit-learn's rule for a fractional n_components). Signs are fixed so that each component's
    largest-magnitude coefficient is positive, so the result does not depend on the solver.
    """
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64)
    centered = (x - mean.astype(x.dtype)).astype(np.float32)
    if d <= n:
        cov = np.zeros((d, d))
        for start in range(0, n, chunk):
            block = centered[start : start + chunk].astype(np.float64)
            cov += block.T @ block
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, components = np.clip(eigval[order], 0, None), eigvec[:, order].T
    else:
        gram = np.zeros((n, n))
        for start in range(0, d, chunk):
            block = centered[:, start : start + chunk].astype(np.float64)
            gram += block @ block.T
        eigval, eigvec = np.linalg.eigh(gram)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
        keep = eigval > eigval[0] * 1e-12
        eigval, eigvec = eigval[keep], eigvec[:, keep]
        # right singular vectors from left ones: v_i = X^T u_i / s_i
        components = np.zeros((len(eigval), d))
        for start in range(0, d, chunk):
            block = centered[:, start : start + chunk].astype(np.float64)
            components[:, start : start + chunk] = (block.T @ eigvec / np.sqrt(eigval)).T
    ratio = eigval / max(eigval.sum(), 1e-300)
    k = min(int(np.searchsorted(np.cumsum(ratio), variance, side="right")) + 1, len(ratio))
    components = components[:k]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return mean, components, ratio


class PCAFeatures(FeatureExtractor):
    name = "pca"
    needs_fit = True

    def __init__(self, variance: float, gcn: bool, *, progress: bool, batch_size: int = _PCA_BATCH):
        self.variance, self.gcn = float(variance), bool(gcn)
        self.batch_size, self.progress = batch_size, progress
        self.state: dict | None = None

    @property
    def fitted(self) -> bool:
        return self.state is not None

    def params(self) -> dict:
        return {"pca_variance": self.variance, "gcn": self.gcn}

    def _raw(self, split: SplitData) -> np.ndarray:
        out = []
        for _, images in split.iter_batches(self.batch_size):
            out.append(pixels(images, self.gcn))
        return np.concatenate(out)

    def fit(self, train: SplitData) -> dict:
        x = self._raw(train)
        low, high = float(x.min()), float(x.max())
        x -= low
        x /= max(high - low, 1e-12)
        mean, components, ratio = fit_pca(x, self.variance)
        k = len(components)
        self.state = {"low": low, "high": high, "mean": mean, "components": components.astype(np.float32)}
        info = {
            "n_components": k,
            "input_dim": int(x.shape[1]),
            "retained_variance": float(ratio[:k].sum()),
            "n_fit": int(x.shape[0]),
        }
        log.info("PCA: %d of %d dimensions keep %.4f of the variance", k, x.shape[1], info["retained_variance"])
        return info

    def export_state(self) -> dict:
        s = self.state
        return {"low": s["low"], "high": s["high"], "mean": torch.from_numpy(s["mean"]),
                "components": torch.from_numpy(s["components"])}

    def load_state(self, state: dict) -> None:
        self.state = {"low": float(state["low"]), "high": float(state["high"]), "mean": state["mean"].numpy(),
                      "components": state["components"].numpy()}

    def transform(self, split: SplitData) -> np.ndarray:
        if self.state is None:
            raise RuntimeError("PCAFeatures.transform() before fit()")
        s = self.state
        mean = s["mean"].astype(np.float32)
        scale = np.float32(1.0 / max(s["high"] - s["low"], 1e-12))
        out = []
        batches = split.iter_batches(self.batch_size)
        total = -(-len(split) // self.batch_size)
        for _, images in tqdm(batches, total=total, desc=f"pca {split.name}", disable=not self.progress, leave=False):
            x = (pixels(images, self.gcn) - np.float32(s["low"])) * scale
            out.append((x - mean) @ s["components"].T)
        return np.concatenate(out).astype(np.float32)


# -- ResNet-18 features --------------------------------------------------------------------------


class CNNFeatures(FeatureExtractor):
    name = "cnn"

    def __init__(self, model: DictConfig, image_size: int, seed: int, device: torch.device, batch_size: int,
                 progress: bool, execution: Execution):
        # The network intact (bias terms kept whatever model.bias says), in eval mode. Fork the RNG
        # so a random initialisation depends on `seed` only, not on what ran before. Always float32
        # (no autocast): the features are cached on disk and shared by every device's runs.
        self.execution = execution
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = self.execution.module(build(model, bias=True)).eval()
        self.model_name, self.pooling, self.weights, self.image_size = model.name, model.pooling, model.weights, image_size
        self.seed, self.device, self.batch_size, self.progress = seed, device, batch_size, progress

    def params(self) -> dict:
        info = self.net.weights_info
        return {
            "model": self.model_name,
            "pooling": self.pooling,
            "weights": self.weights,
            "weights_sha256": info.get("sha256"),
            # a random initialisation is a function of the seed
            "init_seed": self.seed if info.get("weights") == "none" else None,
            "image_size": self.image_size,
        }

    def describe(self) -> dict:
        return {**super().describe(), "weights_used": self.net.weights_info}

    def export_state(self) -> dict:
        return {"net": self.net.state_dict()}

    def load_state(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])

    @torch.no_grad()
    def transform(self, split: SplitData) -> np.ndarray:
        out = []
        batches = split.iter_batches(self.batch_size)
        total = -(-len(split) // self.batch_size)
        for _, images in tqdm(batches, total=total, desc=f"cnn {split.name}", disable=not self.progress, leave=False):
            out.append(self.net(self.execution.inputs(images)).float().cpu().numpy())
        return np.concatenate(out)


# -- cache ---------------------------------------------------------------------------------------


class FeatureCache:
    """Features of splits through `extractor`, cached on disk (see the module docstring).

    `fit` is lazy: a fitted extractor (PCA) is fitted on the training split only when some split's
    features are not in the cache, and the fitted state's summary is cached with the train entry.
    """

    def __init__(self, extractor: FeatureExtractor, cache_root: Path | str | None, enabled: bool = True):
        self.extractor = extractor
        self.root = None if cache_root is None else Path(cache_root)
        self.enabled = enabled and cache_root is not None
        self.train: SplitData | None = None
        self.train_hash: str | None = None
        self.fit_info: dict | None = None
        self._fitted = False
        self.hits: list[bool] = []

    def set_train(self, train: SplitData) -> None:
        self.train = train
        self.train_hash = content_hash(train) if self.extractor.needs_fit else None

    def ensure_fit(self) -> None:
        if self.extractor.needs_fit and not self._fitted:
            if self.train is None:
                raise RuntimeError("FeatureCache: set_train() first")
            self.fit_info = self.extractor.fit(self.train)
            self._fitted = True

    def _build(self, split: SplitData, is_train: bool) -> dict[str, np.ndarray]:
        self.ensure_fit()
        arrays = {"features": np.ascontiguousarray(self.extractor.transform(split), dtype=np.float32)}
        if is_train and self.fit_info is not None:
            # the fit's summary travels with the cached train features, as JSON bytes
            arrays["fit_info"] = np.frombuffer(json.dumps(self.fit_info).encode(), dtype=np.uint8)
        return arrays

    def features(self, split: SplitData, is_train: bool = False) -> np.ndarray:
        if not self.enabled:
            self.hits.append(False)
            return self._build(split, is_train)["features"]
        key = {
            "version": FEATURES_VERSION,
            "extractor": self.extractor.name,
            "params": self.extractor.params(),
            "images": content_hash(split),
            "fitted_on": self.train_hash,
            # train entries of a fitted extractor also carry the fit's summary
            "role": "train" if is_train and self.extractor.needs_fit else None,
        }
        arrays, info = cached_arrays(self.root, f"features-{self.extractor.name}", key, lambda: self._build(split, is_train))
        self.hits.append(info["cache_hit"])
        log.info("%s features of %s (%d rows): %s %s", self.extractor.name, split.name, len(split),
                 "cache hit" if info["cache_hit"] else "computed", info["cache_path"])
        if is_train and "fit_info" in arrays and self.fit_info is None:
            self.fit_info = json.loads(np.asarray(arrays["fit_info"]).tobytes().decode())
        return np.asarray(arrays["features"])


# -- the `features` nodes -------------------------------------------------------------------------


@config_node("features", "pca")
class PCAFeaturesConfig:
    """Raw pixels (Deep SVDD's protocol): l1 global contrast normalisation per image, [0, 1]
    min-max with the training set's range, then PCA fitted on the training set keeping the fewest
    components that explain more than `variance`. Cached on disk (`cache`)."""

    _target_: str = "dsvdd_repro.methods.features.pca_features"
    name: str = "pca"
    variance: float = 0.95
    gcn: bool = True
    cache: bool = True

    def __post_init__(self) -> None:
        in_range("variance", self.variance, 0.0, 1.0, low_open=True)


@config_node("features", "cnn")
class CNNFeaturesConfig:
    """ResNet-18 features of the `model` node (its weights and pooling; intact, eval mode) after the
    global pooling layer (model.pooling=max: 512) or the flattened last feature map (none)."""

    _target_: str = "dsvdd_repro.methods.features.cnn_features"
    name: str = "cnn"
    cache: bool = True


def _cached(extractor: FeatureExtractor, context: RunContext, cache: bool) -> FeatureCache:
    return FeatureCache(extractor, context.cache_root / "features", enabled=cache)


def pca_features(context: RunContext, variance: float, gcn: bool, cache: bool) -> FeatureCache:
    return _cached(PCAFeatures(variance, gcn, progress=context.progress), context, cache)


def cnn_features(context: RunContext, cache: bool) -> FeatureCache:
    """Loads the weights: fails here, before any work, if they cannot be had."""
    model = context.node("model")
    if model is None:
        raise ConfigError("model", None, "features=cnn reads the model node (weights, pooling)")
    extractor = CNNFeatures(model, context.image_size, context.seed, context.device,
                            context.execution.eval_batch_size, context.progress, context.execution)
    return _cached(extractor, context, cache)


# What a run's features cost (the shallow detectors' `planned_work`), stated by each `features`
# node's target: `planned_eval(sizes)`, the eval passes of the `model` network over the run's splits
# (the setup's planned rows), or None when no network runs (PCA). CNN features embed every row
# once; the feature cache shares them between the runs that feed the same network the same splits.
pca_features.planned_eval = lambda sizes: None
cnn_features.planned_eval = lambda sizes: sizes["train"] + sizes["val"] + sizes["test"]
