"""Deep SVDD training and scoring (Sections III and V-B of the paper).

Protocol, and the choices the paper leaves open:
- With random initialisation (`method.calibrate_bn`, on by default for model.weights=none) batch
  norm's running statistics are first re-estimated by a train-mode pass over the training set
  without gradients: torchvision's initial (0, 1) statistics would give eval-mode features on a
  different scale than training sees (initial losses ~10x the later ones). Pretrained weights
  bring their own statistics and are left alone, as the paper does.
- c is the mean feature of an eval-mode pass over the training set; coordinates with |c_j| < eps
  are pushed to +-eps (Ruff et al.'s reference implementation, eps = method.center_eps).
- Adam: the backbone at optim.lr * optim.backbone_lr_factor, any regularizer head at optim.lr;
  optim.weight_decay as Adam's L2 term on every trainable parameter (the paper's lambda = 5e-4; the
  original protocol's 0.5e-6). The learning rate is constant (the paper) unless an `lr_schedule`
  is set (the original protocol's milestone), stepped after every epoch.
- soft-boundary: R starts at 0, each iteration's loss uses the current R, and R is then set to the
  (1 - nu) quantile of that minibatch's distances ||phi - c|| (the paper: "for every iteration").
  The anomaly score is ||phi - c||^2 - R^2 (the same ranking as the distance).
- After every epoch the validation AUC and the validation features' variance are measured; the
  model kept is the one with the best validation AUC among the epochs before the first collapsed
  epoch (Table V's "best performing model before the hypersphere collapses"); when the very first
  epoch has already collapsed, the best of all epochs is kept and `collapsed` says so. The test set
  is scored once, with that model.
- Checkpoints: after every epoch (and once before the first, after pretraining and c) the run's
  `checkpoint.pt` (dsvdd_repro/storage/checkpoint.py) holds the network, optimizer, schedule, regularizer
  (head, c_t, its label stream), c, R, the random generators, the history and the best state: a
  relaunch of a killed run resumes after its last complete epoch and ends bit-identical to an
  uninterrupted run (same machine, threads and versions).
- Divergence: a non-finite loss, or one above `trainer.divergence_factor` (1e6) x the very first
  step's (the optimiser has left the region it started in: e.g. lr=1 giving scores of 1e18), is
  recorded at its step (on the device, checked once per epoch, so
  no per-step synchronisation) and non-finite validation scores at their epoch; training stops,
  the summary says `diverged_at` {epoch, step}, and the best model before it (if any epoch
  finished) is the one scored.
- Execution (dsvdd_repro/core/execution.py, `trainer.precision` etc.): on a GPU the network's forward
  passes run under bf16 autocast in channels-last, on splits copied to the device once; its
  features are cast to float32 before the SVDD loss, the regularizer, c, R, the scores and the
  collapse diagnostics. A CPU run is float32 throughout (the defaults). The autoencoder pretraining
  of the original protocol stays float32 everywhere.
- Cost (the cost plan): `DeepSVDD.planned_work` counts a run's passes with the rules training
  follows, `calibrates_bn` (whether batch norm is calibrated) and `validates` (whether epochs are).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dsvdd_repro.core.evaluation import auroc, feature_variance, is_collapsed, relative_variance
from dsvdd_repro.core.execution import Execution
from dsvdd_repro.core.faults import crash_point
from dsvdd_repro.core.schema import build, config_node, positive
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.methods.base import Detector, PlannedWork, RunContext
from dsvdd_repro.methods.deep_svdd.objectives import OneClass, initial_center, squared_distances
from dsvdd_repro.methods.deep_svdd.regularizers import Regularizer, minibatch_variance
from dsvdd_repro.storage.checkpoint import (
    Checkpoint,
    restore_rng,
    restore_torch_rng,
    rng_state,
    torch_rng_state,
)

log = logging.getLogger(__name__)
# rows per batch when a network fits its own input preprocessing (the LeNet's GCN range)
INPUT_FIT_BATCH = 1000


@config_node("method", "dsvdd")
class DeepSVDDConfig:
    """Deep SVDD on `model`, with `objective`, `regularizer`, `optim` and `trainer` (their nodes)."""

    _target_: str = "dsvdd_repro.methods.deep_svdd.trainer.DeepSVDD.from_context"
    name: str = "dsvdd"
    # |c_j| < center_eps is pushed to +-center_eps (Ruff et al.'s reference implementation)
    center_eps: float = 0.1
    # Re-estimate batch norm's running statistics on the training set (a train-mode pass without
    # gradients) before c is computed: null = only for random initialisation (model.weights=none),
    # whose running statistics (0, 1) make the eval-mode features that fix c unlike the trained ones.
    calibrate_bn: bool | None = None

    def __post_init__(self) -> None:
        positive("center_eps", self.center_eps)


def _schedule(node, optimizer: torch.optim.Optimizer):
    """The `lr_schedule` node's scheduler on `optimizer` (e.g. torch's MultiStepLR)."""
    return build(node, optimizer=optimizer)


class DeepSVDD(Detector):
    """Deep SVDD on a feature network `net` (uint8 images -> [B, p]) with an `objective`
    (objectives.OneClass / SoftBoundary) and a `regularizer` (regularizers.Regularizer).

    The regularizer adds c_t * L_reg to the SVDD loss, c_t from its weighting (adaptive by
    default); its own parameters (the noise head g) train at the full learning rate and never take
    part in scoring. `from_context` builds it from a run's nodes (the `method=dsvdd` node's target).
    """

    REQUIRES = ("model", "objective", "regularizer", "optim")

    def __init__(
        self, net: nn.Module, objective: OneClass, regularizer: Regularizer, device: torch.device, *,
        lr: float, backbone_lr_factor: float, weight_decay: float, epochs: int, batch_size: int,
        collapse_ratio: float, divergence_factor: float, seed: int, progress: bool, center_eps: float,
        calibrate_bn: bool, lr_schedule: Callable[[torch.optim.Optimizer], object] | None,
        pretrain: Callable[..., dict] | None, execution: Execution,
    ):
        # The values of the run's optim, trainer and method nodes (`from_context`), which hold their
        # defaults. The device, precision, memory format and evaluation batch: dsvdd_repro/core/execution.py
        self.execution = execution
        self.net = self.execution.module(net)
        self.objective = objective
        self.regularizer = regularizer.to(device)
        self.weight = regularizer.weight
        self.device = device
        self.lr, self.backbone_lr_factor, self.weight_decay = lr, backbone_lr_factor, weight_decay
        self.epochs, self.batch_size, self.eval_batch_size = epochs, batch_size, self.execution.eval_batch_size
        self.collapse_ratio, self.seed, self.progress = collapse_ratio, seed, progress
        self.center_eps, self.calibrate_bn = center_eps, calibrate_bn
        self.lr_schedule, self.pretrain = lr_schedule, pretrain  # the schedule: stepped after every epoch
        self.center: torch.Tensor | None = None
        self.radius = torch.zeros((), device=device)
        self.best_state: dict | None = None
        self.checkpoint = Checkpoint(None)  # from_context: the run folder's (resume after a kill)
        self.divergence_factor = divergence_factor
        self.reference_loss: torch.Tensor | None = None
        self.best_radius = 0.0

    @classmethod
    def from_context(cls, context: RunContext, center_eps: float, calibrate_bn: bool | None) -> DeepSVDD:
        cfg, trainer = context.cfg, context.trainer
        net = build(cfg.model)  # loads weights: fails here, before any training, if they cannot be had
        regularizer = build(cfg.regularizer, feature_dim=net.feature_dim(context.image_size), seed=context.seed)
        pretrain = None if cfg.get("pretrain") is None else build(cfg.pretrain)
        schedule = cfg.get("lr_schedule")
        detector = cls(
            net, build(cfg.objective), regularizer, context.device,
            lr=float(cfg.optim.lr), backbone_lr_factor=float(cfg.optim.backbone_lr_factor),
            weight_decay=float(cfg.optim.weight_decay), epochs=int(trainer.epochs), batch_size=int(trainer.batch_size),
            collapse_ratio=float(trainer.collapse_ratio),
            divergence_factor=float(trainer.divergence_factor),
            seed=context.seed, progress=context.progress, center_eps=center_eps,
            calibrate_bn=cls.calibrates_bn(calibrate_bn, cfg.model.weights, pretrain),
            lr_schedule=None if schedule is None else partial(_schedule, schedule),
            pretrain=pretrain, execution=context.execution,
        )
        detector.checkpoint = Checkpoint.of_run(context.run_dir, trainer)
        return detector

    @staticmethod
    def calibrates_bn(calibrate_bn: bool | None, weights, pretrain) -> bool:
        """Whether batch norm's running statistics are re-estimated before c: `method.calibrate_bn`,
        null = for random initialisation (model.weights=none) without pretraining (`pretrain`: the
        node or object, None when there is none)."""
        return weights == "none" and pretrain is None if calibrate_bn is None else calibrate_bn

    @staticmethod
    def validates(val_labels: int) -> bool:
        """Whether every epoch is validated (and the model selected): only when the validation split
        holds both labels; else the last epoch is scored (the published protocol of Ruff et al.)."""
        return val_labels == 2

    @classmethod
    def planned_work(cls, config: dict, sizes: dict) -> PlannedWork:
        """Epochs x training rows trained (and the pretraining's epochs apart); evaluated: the
        batch-norm calibration pass (`calibrates_bn`), c, every epoch's validation (`validates`),
        the test set; a checkpoint before the first epoch, after each, and after each pretraining epoch."""
        epochs, n_train = int(config["trainer"]["epochs"]), sizes["train"]
        pretrain = config.get("pretrain")
        calibrated = cls.calibrates_bn(config["method"].get("calibrate_bn"), config["model"].get("weights"), pretrain)
        validation = epochs * sizes["val"] if cls.validates(sizes["val_labels"]) else 0
        work = PlannedWork(train=epochs * n_train, checkpoints=epochs + 1,
                           eval=(n_train if calibrated else 0) + n_train + validation + sizes["test"])
        if pretrain is not None:
            work.pretrain = int(pretrain["epochs"]) * n_train
            work.checkpoints += int(pretrain["epochs"])
        return work

    # -- features and scores -------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, split: SplitData, desc: str = "embed") -> torch.Tensor:
        """Eval-mode features of every row of `split`: float32 [N, p] on the device."""
        self.net.eval()
        chunks = []
        batches = split.iter_batches(self.eval_batch_size)
        total = -(-len(split) // self.eval_batch_size)
        for _, images in tqdm(batches, total=total, desc=desc, disable=not self.progress, leave=False):
            with self.execution.autocast():
                features = self.net(self.execution.inputs(images))
            chunks.append(features.float())
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
        for rows, images in split.iter_batches(self.batch_size):
            if len(rows) > 1:
                with self.execution.autocast():
                    self.net(self.execution.inputs(images))
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        return len(layers)

    def _scores(self, features: torch.Tensor, radius: float) -> np.ndarray:
        return self.objective.score(squared_distances(features, self.center), radius).double().cpu().numpy()

    def describe(self) -> dict:
        return {
            "weights_used": getattr(self.net, "weights_info", None),
            "regularizer": self.regularizer.name if self.regularizer.active else None,
            "weighting": self.weight.mode if self.regularizer.active else None,
            "calibrate_bn": self.calibrate_bn,
        }

    def score(self, split: SplitData) -> np.ndarray:
        if self.center is None:
            raise RuntimeError("score() called before fit()")
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        return self._scores(self.embed(split, desc=f"score {split.name}"), self.best_radius)

    def export(self) -> dict:
        """The selected model: the network's weights, c and R."""
        state = self.best_state if self.best_state is not None else self.net.state_dict()
        return {"net": state, "center": self.center.cpu(), "radius": float(self.best_radius)}

    def load_export(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.center = state["center"].to(self.device)
        self.best_state, self.best_radius = None, state["radius"]

    # -- training -------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        groups = [
            {"params": [p for p in self.net.parameters() if p.requires_grad], "lr": self.lr * self.backbone_lr_factor}
        ]
        head = [p for p in self.regularizer.parameters() if p.requires_grad]
        if head:
            groups.append({"params": head, "lr": self.lr})
        return torch.optim.Adam(groups, weight_decay=self.weight_decay)

    def _train_epoch(self, train: SplitData, optimizer, rng: np.random.Generator, epoch: int) -> dict:
        self.net.train()
        regularized = self.regularizer.active
        if regularized:
            self.regularizer.train()
            self.regularizer.start_epoch(epoch - 1)
        order = rng.permutation(len(train))
        has_labels = bool(np.any(train.semi_targets != 0))
        # running sums of: L_svdd, minibatch feature variance, mean distance, L_reg, c_t
        sums = torch.zeros(5, dtype=torch.float64, device=self.device)
        zero = torch.zeros((), device=self.device)
        # the first step whose loss was not finite (-1: none), kept on the device: no sync per step
        first_bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)
        n_batches = 0
        total = -(-len(order) // self.batch_size)
        batches = train.iter_batches(self.batch_size, order)
        for step, (rows, images) in enumerate(
                tqdm(batches, total=total, desc=f"epoch {epoch}", disable=not self.progress, leave=False), start=1):
            if len(rows) < 2:  # batch norm and the minibatch variance need two samples
                continue
            with self.execution.autocast():  # the network only: losses and diagnostics stay float32
                features = self.net(self.execution.inputs(images))
            features = features.float()
            dist = squared_distances(features, self.center)
            semi = torch.from_numpy(train.semi_targets[rows]).to(self.device) if has_labels else None
            loss_svdd = self.objective.loss(dist, self.radius, semi)
            if not regularized:
                loss_reg, reg_weight, loss = zero, zero, loss_svdd
            else:
                loss_reg = self.regularizer(features)
                reg_weight = self.weight.update(loss_svdd, loss_reg)
                loss = loss_svdd + reg_weight * loss_reg
            if self.reference_loss is None:  # the very first step's loss: the scale divergence is judged on
                self.reference_loss = loss.detach().abs().clamp_min(1e-12)
            exploded = ~torch.isfinite(loss.detach()) | (loss.detach().abs() > self.divergence_factor * self.reference_loss)
            first_bad_step = torch.where((first_bad_step < 0) & exploded, torch.full_like(first_bad_step, step),
                                         first_bad_step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.radius = self.objective.next_radius(dist, self.radius, epoch)
            with torch.no_grad():
                stats = [loss_svdd, minibatch_variance(features), dist.mean(), loss_reg, reg_weight]
                sums += torch.stack([value.detach().double() for value in stats])
            n_batches += 1
            crash_point("mid_epoch")  # fault-injection tests only (dsvdd_repro/core/faults.py)
        if int(first_bad_step) >= 0:
            raise Diverged(epoch, int(first_bad_step), f"the training loss is not finite or above "
                           f"{self.divergence_factor:g} x the first step's ({float(self.reference_loss):.4g})")
        means = (sums / max(n_batches, 1)).tolist()
        entry = {"loss_svdd": means[0], "feature_var": means[1], "mean_dist": means[2]}
        if not regularized:
            entry.update(loss_reg=None, reg_weight=None)
        else:
            entry.update(loss_reg=means[3], reg_weight=means[4], **self.regularizer.diagnostics())
        return entry

    def fit(self, train: SplitData, val: SplitData) -> dict:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng([self.seed, 3])
        start = time.perf_counter()
        validated = self.validates(len(np.unique(val.labels)))
        optimizer = self._optimizer()
        schedule = None if self.lr_schedule is None else self.lr_schedule(optimizer)
        saved = self.checkpoint.load("svdd")
        if saved is None:
            progress = self._begin(train)
            self._save(0, optimizer, schedule, rng, progress, force=True)  # a kill in epoch 1 keeps the pretraining
        else:
            progress = self._restore(saved, optimizer, schedule, rng)
            # the epoch now, not at the end: `progress` is the object training advances
            progress.setdefault("resumed_after", []).append(int(progress["epoch"]))
            log.info("resumed from the checkpoint after epoch %d of %d", progress["epoch"], self.epochs)
        if not validated:
            log.info("validation holds one label (%d rows): no model selection, the last epoch is scored "
                     "(the published protocol of Ruff et al.)", len(val))
        history = progress["history"]
        epochs = tqdm(range(progress["epoch"] + 1, self.epochs + 1), desc="epochs", disable=not self.progress,
                      initial=progress["epoch"], total=self.epochs)
        diverged = None
        for epoch in epochs:
            epoch_start = time.perf_counter()
            try:
                entry = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                         **self._train_epoch(train, optimizer, rng, epoch)}
                if schedule is not None:
                    schedule.step()
                radius = float(self.radius)
                if validated:
                    entry.update(self._validate(val, radius, epoch))
                else:
                    entry.update(val_auc=None, val_feature_var=None, val_relative_var=None, collapsed=None)
            except Diverged as error:
                diverged = error
                log.error("diverged: %s; the best model before it %s", error,
                          "is scored" if progress["best_epoch"] is not None else "does not exist: no test score")
                break
            if self.objective.has_radius:
                entry["radius"] = radius
            entry["seconds"] = time.perf_counter() - epoch_start
            history.append(entry)
            self._select(entry, validated, progress)
            shown = "-" if entry["val_auc"] is None else f"{entry['val_auc']:.4f}"
            epochs.set_postfix(val_auc=shown, loss=f"{entry['loss_svdd']:.4g}")
            reg = "" if entry["loss_reg"] is None else f", loss_reg {entry['loss_reg']:.4g} (c_t {entry['reg_weight']:.3g})"
            log.info(
                "epoch %d/%d: loss_svdd %.5g%s, feature var %.4g, val AUC %s%s (%.1fs)",
                epoch, self.epochs, entry["loss_svdd"], reg, entry["feature_var"], shown,
                ", COLLAPSED" if entry["collapsed"] else "", entry["seconds"],
            )
            self._save(epoch, optimizer, schedule, rng, progress)
        return {
            "history": history,
            "best_epoch": progress["best_epoch"],
            "val_auc": progress["best_auc"] if validated and progress["best_epoch"] is not None else None,
            "collapsed": None if not validated else progress["first_collapse"] is not None,
            "collapse_epoch": progress["first_collapse"],
            "initial_feature_var": progress["initial_var"],
            "center_norm": float(self.center.norm()),
            "radius": self.best_radius if self.objective.has_radius else None,
            "fit_seconds": time.perf_counter() - start,
            # the epoch this process resumed after, and every resumption of the run (preempted more than once)
            "resumed_after_epoch": progress["resumed_after"][-1] if saved is not None else None,
            "resumed_after_epochs": progress.get("resumed_after", []),
            "checkpoints": self.checkpoint.summary(),  # written by this process (pretraining included)
            **({} if diverged is None else {"diverged_at": {"epoch": diverged.epoch, "step": diverged.step},
                                            "error": str(diverged)}),
            **progress["prepared"],
        }

    def _begin(self, train: SplitData) -> dict:
        """Before the first epoch: inputs, pretraining, batch-norm statistics, c; the fresh progress."""
        prepared = self._prepare(train)
        if self.calibrate_bn:
            log.info("batch norm statistics re-estimated on the training set (%d layers)", self.calibrate_batch_norm(train))
        train_features = self.embed(train, desc="center c")
        self.center = initial_center(train_features.mean(dim=0), self.center_eps)
        initial_var = feature_variance(train_features)
        del train_features
        log.info("center c: |c| = %.4g, initial feature variance %.4g", float(self.center.norm()), initial_var)
        return {"epoch": 0, "history": [], "best_auc": -np.inf, "best_epoch": None, "first_collapse": None,
                "initial_var": initial_var, "prepared": prepared}

    def _validate(self, val: SplitData, radius: float, epoch: int) -> dict:
        features = self.embed(val, desc="validate")
        scores = self._scores(features, radius)
        if not np.isfinite(scores).all():
            raise Diverged(epoch, None, "the validation scores are not finite")
        relative = relative_variance(features)
        return {"val_auc": auroc(val.labels, scores), "val_feature_var": feature_variance(features),
                "val_relative_var": relative, "collapsed": is_collapsed(relative, self.collapse_ratio)}

    def _select(self, entry: dict, validated: bool, progress: dict) -> None:
        """Keep the epoch's model if it is the best so far before the first collapse (the last one
        without validation)."""
        epoch = entry["epoch"]
        if entry["collapsed"] and progress["first_collapse"] is None:
            progress["first_collapse"] = epoch
        eligible = progress["first_collapse"] is None or progress["first_collapse"] == 1
        if validated and eligible and entry["val_auc"] > progress["best_auc"]:
            progress["best_auc"], progress["best_epoch"] = entry["val_auc"], epoch
        elif not validated:  # the last epoch's model, scored as it stands
            progress["best_epoch"] = epoch
        else:
            return
        self.best_state = copy.deepcopy(self.net.state_dict())
        self.best_radius = float(self.radius)

    def _save(self, epoch: int, optimizer, schedule, rng: np.random.Generator, progress: dict,
              force: bool = False) -> None:
        progress["epoch"] = epoch
        if not (force or self.checkpoint.due()):
            return
        self.checkpoint.save("svdd", {
            "progress": progress, "net": self.net.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": None if schedule is None else schedule.state_dict(),
            "regularizer": self.regularizer.state_dict(), "center": self.center, "radius": self.radius,
            "best_state": self.best_state, "best_radius": self.best_radius,
            "rng": rng_state(rng), "torch_rng": torch_rng_state(), "reference_loss": self.reference_loss,
        })

    def _restore(self, saved: dict, optimizer, schedule, rng: np.random.Generator) -> dict:
        self.net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
        self.regularizer.load_state_dict(saved["regularizer"])
        self.center = saved["center"].to(self.device)
        self.radius = saved["radius"].to(self.device)
        self.best_state, self.best_radius = saved["best_state"], saved["best_radius"]
        restore_rng(rng, saved["rng"])
        restore_torch_rng(saved["torch_rng"])
        self.reference_loss = saved["reference_loss"]
        return saved["progress"]

    def _prepare(self, train: SplitData) -> dict:
        """Before c: fit the network's own input preprocessing (if it has one) on the training
        images, then pretrain it (if asked); returns their summaries for metrics.json."""
        summary = {}
        if hasattr(self.net, "fit_inputs"):  # the network gets the images, not the split (it knows no dataset)
            summary["inputs"] = self.net.fit_inputs(images for _, images in train.iter_batches(INPUT_FIT_BATCH))
        if self.pretrain is not None:
            summary["pretrain"] = self.pretrain(self.net, train, self.batch_size, self.device, self.seed, self.progress,
                                                checkpoint=self.checkpoint, execution=self.execution)
        return summary


class Diverged(RuntimeError):
    """A non-finite loss (at `step` of `epoch`) or non-finite validation scores (step None)."""

    def __init__(self, epoch: int, step: int | None, what: str):
        self.epoch, self.step = epoch, step
        where = f"epoch {epoch}" + ("" if step is None else f", step {step}")
        super().__init__(f"{what} at {where}")
