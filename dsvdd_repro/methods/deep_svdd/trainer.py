"""Deep SVDD training and scoring (Sections III and V-B of the paper).

Protocol, and the choices the paper leaves open:
- With random initialisation (`method.calibrate_bn`, on by default for model.weights=none) batch
  norm's running statistics are first re-estimated by a train-mode pass over the training set
  without gradients: torchvision's initial (0, 1) statistics would give eval-mode features on a
  different scale than training sees (initial losses ~10x the later ones). Pretrained weights
  bring their own statistics and are left alone, as the paper does.
- c is the mean feature of an eval-mode pass over the training set; coordinates with |c_j| < eps
  are pushed to +-eps (Ruff et al.'s reference implementation, eps = method.center_eps).
- Adam with a constant learning rate: the backbone at lr * backbone_lr_factor, any regularizer
  head at lr; weight decay lambda = 5e-4 as Adam's L2 term on every trainable parameter.
- soft-boundary: R starts at 0, each iteration's loss uses the current R, and R is then set to the
  (1 - nu) quantile of that minibatch's distances ||phi - c|| (the paper: "for every iteration").
  The anomaly score is ||phi - c||^2 - R^2 (the same ranking as the distance).
- After every epoch the validation AUC and the validation features' variance are measured; the
  model kept is the one with the best validation AUC among the epochs before the first collapsed
  epoch (Table V's "best performing model before the hypersphere collapses"); when the very first
  epoch has already collapsed, the best of all epochs is kept and `collapsed` says so. The test set
  is scored once, with that model.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ...data.protocols import SplitData
from ...evaluation import auroc, feature_variance, is_collapsed, relative_variance
from ..base import Detector
from .objectives import initial_center, one_class_loss, radius_quantile, soft_boundary_loss, squared_distances
from .regularizers import LossWeight, Regularizer, minibatch_variance

log = logging.getLogger(__name__)


@dataclass
class DeepSVDDSettings:
    objective: str = "one_class"
    nu: float = 0.1
    eta: float = 1.0
    center_eps: float = 0.1
    calibrate_bn: bool = False
    lr: float = 1e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 5e-4
    epochs: int = 30
    batch_size: int = 50
    eval_batch_size: int = 500
    collapse_ratio: float = 1e-3
    seed: int = 0
    progress: bool = True


class DeepSVDD(Detector):
    """Deep SVDD on a feature network `net` (uint8 images -> [B, p]), optionally regularized.

    `regularizer` (None, noise or variance) adds c_t * L_reg to the SVDD loss, with c_t from
    `weight` (adaptive by default). A regularizer's own parameters (the noise head g) train at the
    full learning rate; they never take part in scoring.
    """

    def __init__(
        self,
        net: nn.Module,
        settings: DeepSVDDSettings,
        device: torch.device,
        regularizer: Regularizer | None = None,
        weight: LossWeight | None = None,
    ):
        self.net = net.to(device)
        self.settings = settings
        self.device = device
        self.regularizer = regularizer.to(device) if regularizer is not None else None
        self.weight = weight if weight is not None else LossWeight("adaptive")
        self.center: torch.Tensor | None = None
        self.radius = torch.zeros((), device=device)
        self.best_state: dict | None = None
        self.best_radius = 0.0

    # -- features and scores -------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, split: SplitData, desc: str = "embed") -> torch.Tensor:
        """Eval-mode features of every row of `split`: float32 [N, p] on the device."""
        self.net.eval()
        chunks = []
        batches = split.iter_batches(self.settings.eval_batch_size)
        total = -(-len(split) // self.settings.eval_batch_size)
        for _, images in tqdm(batches, total=total, desc=desc, disable=not self.settings.progress, leave=False):
            chunks.append(self.net(images.to(self.device, non_blocking=True)))
        return torch.cat(chunks)

    @torch.no_grad()
    def calibrate_batch_norm(self, split: SplitData) -> int:
        """Running statistics of every batch norm layer := their average over training minibatches.

        Returns the number of layers recalibrated. Only the statistics change, no parameter does.
        """
        layers = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the pass, not an exponential one
        self.net.train()
        for rows, images in split.iter_batches(self.settings.batch_size):
            if len(rows) > 1:
                self.net(images.to(self.device, non_blocking=True))
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        return len(layers)

    def _scores(self, features: torch.Tensor, radius: float) -> np.ndarray:
        dist = squared_distances(features, self.center)
        if self.settings.objective == "soft_boundary":
            dist = dist - radius**2
        return dist.double().cpu().numpy()

    def describe(self) -> dict:
        return {
            "weights_used": getattr(self.net, "weights_info", None),
            "regularizer": None if self.regularizer is None else self.regularizer.name,
            "weighting": None if self.regularizer is None else self.weight.mode,
            "calibrate_bn": self.settings.calibrate_bn,
        }

    def score(self, split: SplitData) -> np.ndarray:
        if self.center is None:
            raise RuntimeError("score() called before fit()")
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        return self._scores(self.embed(split, desc=f"score {split.name}"), self.best_radius)

    # -- training -------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        s = self.settings
        groups = [
            {"params": [p for p in self.net.parameters() if p.requires_grad], "lr": s.lr * s.backbone_lr_factor}
        ]
        head = [] if self.regularizer is None else [p for p in self.regularizer.parameters() if p.requires_grad]
        if head:
            groups.append({"params": head, "lr": s.lr})
        return torch.optim.Adam(groups, weight_decay=s.weight_decay)

    def _loss(self, dist: torch.Tensor, semi: torch.Tensor | None) -> torch.Tensor:
        s = self.settings
        if s.objective == "soft_boundary":
            return soft_boundary_loss(dist, self.radius, s.nu, semi, s.eta)
        return one_class_loss(dist, semi, s.eta)

    def _train_epoch(self, train: SplitData, optimizer, rng: np.random.Generator, epoch: int) -> dict:
        s = self.settings
        self.net.train()
        if self.regularizer is not None:
            self.regularizer.train()
            self.regularizer.start_epoch(epoch - 1)
        order = rng.permutation(len(train))
        has_labels = bool(np.any(train.semi_targets != 0))
        # running sums of: L_svdd, minibatch feature variance, mean distance, L_reg, c_t
        sums = torch.zeros(5, dtype=torch.float64, device=self.device)
        zero = torch.zeros((), device=self.device)
        n_batches = 0
        total = -(-len(order) // s.batch_size)
        batches = train.iter_batches(s.batch_size, order)
        for rows, images in tqdm(batches, total=total, desc=f"epoch {epoch}", disable=not s.progress, leave=False):
            if len(rows) < 2:  # batch norm and the minibatch variance need two samples
                continue
            features = self.net(images.to(self.device, non_blocking=True))
            dist = squared_distances(features, self.center)
            semi = torch.from_numpy(train.semi_targets[rows]).to(self.device) if has_labels else None
            loss_svdd = self._loss(dist, semi)
            if self.regularizer is None:
                loss_reg, reg_weight, loss = zero, zero, loss_svdd
            else:
                loss_reg = self.regularizer(features)
                reg_weight = self.weight.update(loss_svdd, loss_reg)
                loss = loss_svdd + reg_weight * loss_reg
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if s.objective == "soft_boundary":
                self.radius = torch.tensor(radius_quantile(dist, s.nu), device=self.device)
            with torch.no_grad():
                stats = [loss_svdd, minibatch_variance(features), dist.mean(), loss_reg, reg_weight]
                sums += torch.stack([value.detach().double() for value in stats])
            n_batches += 1
        means = (sums / max(n_batches, 1)).tolist()
        entry = {"loss_svdd": means[0], "feature_var": means[1], "mean_dist": means[2]}
        if self.regularizer is None:
            entry.update(loss_reg=None, reg_weight=None)
        else:
            entry.update(loss_reg=means[3], reg_weight=means[4], **self.regularizer.diagnostics())
        return entry

    def fit(self, train: SplitData, val: SplitData) -> dict:
        s = self.settings
        torch.manual_seed(s.seed)
        rng = np.random.default_rng([s.seed, 3])
        start = time.perf_counter()

        if s.calibrate_bn:
            log.info("batch norm statistics re-estimated on the training set (%d layers)", self.calibrate_batch_norm(train))
        train_features = self.embed(train, desc="center c")
        self.center = initial_center(train_features.mean(dim=0), s.center_eps)
        initial_var = feature_variance(train_features)
        del train_features
        log.info("center c: |c| = %.4g, initial feature variance %.4g", float(self.center.norm()), initial_var)

        optimizer = self._optimizer()
        history: list[dict] = []
        best_auc, best_epoch, first_collapse = -np.inf, None, None
        epochs = tqdm(range(1, s.epochs + 1), desc="epochs", disable=not s.progress)
        for epoch in epochs:
            epoch_start = time.perf_counter()
            entry = {"epoch": epoch, **self._train_epoch(train, optimizer, rng, epoch)}
            val_features = self.embed(val, desc="validate")
            radius = float(self.radius)
            entry["val_auc"] = auroc(val.labels, self._scores(val_features, radius))
            entry["val_feature_var"] = feature_variance(val_features)
            entry["val_relative_var"] = relative_variance(val_features)
            entry["collapsed"] = is_collapsed(entry["val_relative_var"], s.collapse_ratio)
            if s.objective == "soft_boundary":
                entry["radius"] = radius
            entry["seconds"] = time.perf_counter() - epoch_start
            history.append(entry)
            if entry["collapsed"] and first_collapse is None:
                first_collapse = epoch
            eligible = first_collapse is None or first_collapse == 1
            if eligible and entry["val_auc"] > best_auc:
                best_auc, best_epoch = entry["val_auc"], epoch
                self.best_state = copy.deepcopy(self.net.state_dict())
                self.best_radius = radius
            epochs.set_postfix(val_auc=f"{entry['val_auc']:.4f}", loss=f"{entry['loss_svdd']:.4g}")
            reg = "" if entry["loss_reg"] is None else f", loss_reg {entry['loss_reg']:.4g} (c_t {entry['reg_weight']:.3g})"
            log.info(
                "epoch %d/%d: loss_svdd %.5g%s, feature var %.4g, val AUC %.4f%s (%.1fs)",
                epoch, s.epochs, entry["loss_svdd"], reg, entry["feature_var"], entry["val_auc"],
                ", COLLAPSED" if entry["collapsed"] else "", entry["seconds"],
            )
        return {
            "history": history,
            "best_epoch": best_epoch,
            "val_auc": best_auc,
            "collapsed": first_collapse is not None,
            "collapse_epoch": first_collapse,
            "initial_feature_var": initial_var,
            "center_norm": float(self.center.norm()),
            "radius": self.best_radius if s.objective == "soft_boundary" else None,
            "fit_seconds": time.perf_counter() - start,
        }
