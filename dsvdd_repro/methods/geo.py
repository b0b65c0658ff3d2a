"""GEO w/ Dirichlet: Golan & El-Yaniv (2018), "Deep anomaly detection using geometric transformations".

As in their reference implementation, and as the paper configures it (Section V-B):
- 72 transformations, in Golan's order: horizontal flip {no, yes} x translation tx {0, -t, +t}
  x translation ty {0, -t, +t} x rotation by k * 90 degrees, k in {0, 1, 2, 3}; applied in that
  order (flip, translate, rotate). t scales with the image as 8 px does with 32 px
  (round(8 * size / 32): 8 at 32 px, 56 at 224 px). Translations fill with the reflection of the
  image (scipy/Keras `reflect`, the edge pixel repeated: d c b a | a b c d), as Golan's Keras code.
  Each transformation is a fixed pixel-index map, so a batch is transformed by one `gather`.
- A ResNet-18 (`model.weights`, `model.pooling`, `model.bias`) with a linear 72-way head, trained
  with cross-entropy to recognise the transformation: Adam, lr `optim.lr` (1e-4), weight decay
  `optim.weight_decay` (5e-4, Adam's L2 term), batch `trainer.batch_size` (35) for
  `trainer.epochs` = ceil(200 / 72) = 3 epochs (GEO's values of these shared keys are set by
  conf/method_settings/geo.yaml). An epoch is the dataset of all 72 transforms of
  every training image, shuffled (Golan's n_train x 72 samples); `method.max_samples_per_epoch`
  draws a seeded random subset of it per epoch instead (for CPU runs and tests; null = all).
  Golan used a Wide ResNet; the paper swaps in ResNet-18 (with Keras); we use PyTorch.
- Normality score: for every transformation T_i, a Dirichlet with parameters alpha_i is fitted by
  maximum likelihood to the softmax vectors y(T_i(x)) of the training set (all of it, or a seeded
  subsample of `method.fit_max_samples` images: the fit needs only the mean of y and of log y
  per transformation, and scoring 72 transforms of every training image is a CPU run's main cost;
  Minka's fixed point iteration from Golan's initial guess), and score(x) = sum_i sum_j (alpha_ij - 1) log y_j(T_i(x)).
  That is the sum of the Dirichlet log-densities up to a constant (the normalisers log B(alpha_i)
  do not depend on x), so the ranking is that of the full log-likelihood. Softmax outputs are
  clipped at 1e-15 as Golan's code does. The anomaly score is minus the normality score.
- The model after the last epoch is used (no model selection). The validation AUC is measured once,
  after training, on a seeded subsample of at most `method.val_max_samples` validation rows (each
  costs 72 forward passes), and reported in the summary and the last history entry.
- Cost (the cost plan): `GEO.planned_work` counts a run's transformed image-passes with the caps
  training and scoring apply (`capped`).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import polygamma, psi
from torch import nn
from tqdm.auto import tqdm

from dsvdd_repro.core.evaluation import auroc
from dsvdd_repro.core.schema import at_least, build, config_node
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.methods.base import Detector, PlannedWork, RunContext
from dsvdd_repro.methods.features import selection_rows, subset, unlabeled_train
from dsvdd_repro.storage import checkpoint as checkpoints

log = logging.getLogger(__name__)

N_TRANSFORMS = 72
PAPER_EPOCHS = math.ceil(200 / N_TRANSFORMS)
EPS = 1e-15
_LOG_EPS = math.log(EPS)
# seed stream of the training order
_ORDER_STREAM = 21
# seed stream of the Dirichlet fit's subsample
_FIT_STREAM = 22


def capped(n: int, cap: int | None) -> int:
    """How many of `n` GEO uses under a `method` cap (null: all): the (image, transformation) pairs
    of an epoch (`max_samples_per_epoch`), the Dirichlet fit's images (`fit_max_samples`) and, at
    most, the validation rows scored (`val_max_samples`, `selection_rows`)."""
    return n if cap is None else min(n, cap)


# -- transformations -----------------------------------------------------------------------------


def translation(image_size: int) -> int:
    """The translation t in pixels: 8 px at 32 px, scaled with the image side."""
    return max(1, round(8 * image_size / 32))


def transform_params(image_size: int) -> list[tuple[bool, int, int, int]]:
    """(flip, tx, ty, k_rot90) of the 72 transformations, in Golan's order."""
    t = translation(image_size)
    return [
        (flip, tx, ty, k)
        for flip in (False, True)
        for tx in (0, -t, t)
        for ty in (0, -t, t)
        for k in range(4)
    ]


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Half-sample symmetric reflection into [0, n) (scipy.ndimage mode 'reflect')."""
    index = np.mod(index, 2 * n)
    return np.where(index >= n, 2 * n - 1 - index, index)


def index_maps(image_size: int) -> torch.Tensor:
    """[72, H*W] long: transformation i maps a flattened image x to x[..., maps[i]].

    Built by applying each transformation to the image of pixel indices, so the maps are the
    transformations themselves: flip the columns, move the content by (tx, ty) with reflected
    borders, then rotate by k * 90 degrees (np.rot90).
    """
    size = image_size
    base = np.arange(size * size).reshape(size, size)
    maps = []
    for flip, tx, ty, k in transform_params(image_size):
        m = base[:, ::-1] if flip else base
        rows, cols = _reflect(np.arange(size) - ty, size), _reflect(np.arange(size) - tx, size)
        m = m[np.ix_(rows, cols)]
        maps.append(np.rot90(m, k).reshape(-1))
    return torch.from_numpy(np.stack(maps).astype(np.int64))


def apply_transforms(images: torch.Tensor, which: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """images [B, C, H, W] (any dtype), which [B] transformation indices -> transformed images."""
    b, c, h, w = images.shape
    if h != w:
        raise ValueError(f"GEO's rotations need square images, got {h}x{w}")
    index = maps[which].unsqueeze(1).expand(b, c, h * w)
    return images.reshape(b, c, h * w).gather(2, index).reshape(b, c, h, w)


# -- Dirichlet maximum likelihood ----------------------------------------------------------------


def inv_psi(y: np.ndarray, iters: int = 5) -> np.ndarray:
    """The inverse digamma function (Minka's initial guess and Newton steps)."""
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1.0 / (y - psi(1)))
    for _ in range(iters):
        x = x - (psi(x) - y) / polygamma(1, x)
    return x


def fit_dirichlet(mean_p: np.ndarray, mean_log_p: np.ndarray, max_iter: int = 1000, tol: float = 1e-9) -> np.ndarray:
    """MLE of Dirichlet parameters from the sufficient statistics of N samples p_n in the simplex:
    mean_p = mean of p_n, mean_log_p = mean of log p_n ([K], or [..., K] for independent fits at
    once). Initial guess as Golan et al. (mean_p times an approximate precision), then Minka's fixed
    point alpha = psi^-1(psi(sum alpha) + mean_log_p) until every fit moves less than `tol`."""
    f = np.clip(np.asarray(mean_p, dtype=np.float64), EPS, 1 - EPS)
    mean_log_p = np.asarray(mean_log_p, dtype=np.float64)
    k = f.shape[-1]
    # >= 0 by Jensen's inequality; 0 only if every sample is the same point (then a huge precision)
    denominator = np.sum(f * np.log(f), axis=-1) - np.sum(f * mean_log_p, axis=-1)
    precision = (k - 1) * (-psi(1)) / np.maximum(denominator, 1e-12)
    alpha = f * precision[..., None]
    for _ in range(max_iter):
        new = inv_psi(psi(alpha.sum(axis=-1, keepdims=True)) + mean_log_p)
        done = np.sqrt(np.sum((new - alpha) ** 2, axis=-1)).max() < tol
        alpha = new
        if done:
            break
    return alpha


def fit_dirichlet_samples(p: np.ndarray) -> np.ndarray:
    """MLE of Dirichlet parameters from samples p [N, K] (rows in the simplex)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return fit_dirichlet(p.mean(axis=0), np.log(p).mean(axis=0))


# -- the detector --------------------------------------------------------------------------------


class TransformClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, N_TRANSFORMS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


@config_node("method", "geo")
class GEOConfig:
    """GEO w/ Dirichlet on the `model` node, trained with the `optim` and `trainer` nodes."""

    _target_: str = "dsvdd_repro.methods.geo.GEO"
    name: str = "geo"
    # validation rows scored once after training (each costs 72 forward passes); null = all
    val_max_samples: int | None = 2000
    # a seeded random subset of the n_train x 72 (image, transform) pairs per epoch; null = all
    max_samples_per_epoch: int | None = None
    # the Dirichlets are fitted on a seeded subsample of at most this many training images; null = all
    fit_max_samples: int | None = None

    def __post_init__(self) -> None:
        for key in ("val_max_samples", "max_samples_per_epoch", "fit_max_samples"):
            at_least(key, getattr(self, key), 2, nullable=True)


class GEO(Detector):
    REQUIRES = ("model", "optim")

    def __init__(self, context: RunContext, val_max_samples: int | None, max_samples_per_epoch: int | None,
                 fit_max_samples: int | None):
        cfg, device = context.cfg, context.device
        # the initialisation (head; backbone too with weights=none) depends on the seed only
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            net = build(cfg.model)
            model = TransformClassifier(net, net.feature_dim(context.image_size))
        self.execution = context.execution  # precision, memory format, evaluation batch
        self.model = self.execution.module(model)
        self.device = device
        self.image_size = context.image_size
        self.maps = index_maps(context.image_size).to(device)
        self.alpha: torch.Tensor | None = None  # [72 transforms, 72 classes]
        self.epochs, self.batch_size = int(cfg.trainer.epochs), int(cfg.trainer.batch_size)
        self.eval_batch_size, self.progress = self.execution.eval_batch_size, context.progress
        self.lr, self.weight_decay, self.seed = float(cfg.optim.lr), float(cfg.optim.weight_decay), context.seed
        self.data_seed = context.data_seed  # the Dirichlet fit's and validation's subsamples
        self.val_max_samples, self.max_samples_per_epoch = val_max_samples, max_samples_per_epoch
        self.fit_max_samples = fit_max_samples
        self.checkpoint = checkpoints.Checkpoint.of_run(context.run_dir, context.trainer)  # a killed run resumes

    @staticmethod
    def planned_work(config: dict, sizes: dict) -> PlannedWork:
        """Trained: each epoch's (image, transformation) pairs of the unlabeled training images;
        evaluated: 72 transformed passes of the Dirichlet fit's images, the validation rows and the
        test set; a checkpoint after each epoch."""
        node, epochs = config["method"], int(config["trainer"]["epochs"])
        n_train = sizes["train"] - sizes["labeled"]  # unlabeled_train: the labeled anomalies are left out
        train = epochs * capped(n_train * N_TRANSFORMS, node.get("max_samples_per_epoch"))
        scored = capped(n_train, node.get("fit_max_samples")) + capped(sizes["val"], node.get("val_max_samples"))
        evaluated = N_TRANSFORMS * (scored + sizes["test"])
        return PlannedWork(train=train, eval=evaluated, geo=train + evaluated, checkpoints=epochs)

    def describe(self) -> dict:
        return {
            "weights_used": getattr(self.model.backbone, "weights_info", None),
            "n_transforms": N_TRANSFORMS,
            "translation_px": translation(self.image_size),
            "head": f"linear {self.model.head.in_features} -> {N_TRANSFORMS}",
        }

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _log_probs(self, split: SplitData, desc: str):
        """Yield (rows, clipped log-softmax [B, 72 transforms, 72 classes]) over image batches."""
        self.model.eval()
        per_batch = max(1, self.eval_batch_size // N_TRANSFORMS)
        which = torch.arange(N_TRANSFORMS, device=self.device)
        total = -(-len(split) // per_batch)
        batches = split.iter_batches(per_batch)
        for rows, images in tqdm(batches, total=total, desc=desc, disable=not self.progress, leave=False):
            images = images.to(self.device, non_blocking=True)
            b = len(images)
            x = apply_transforms(images.repeat_interleave(N_TRANSFORMS, 0), which.repeat(b), self.maps)
            with self.execution.autocast():
                logits = self.model(self.execution.inputs(x))
            logp = F.log_softmax(logits.float(), dim=1).clamp_min(_LOG_EPS)
            yield rows, logp.view(b, N_TRANSFORMS, N_TRANSFORMS)

    def _normality(self, split: SplitData, desc: str) -> np.ndarray:
        weights = (self.alpha - 1).to(self.device)
        out = np.empty(len(split), dtype=np.float64)
        for rows, logp in self._log_probs(split, desc):
            out[rows] = torch.einsum("btk,tk->b", logp.double(), weights).cpu().numpy()
        return out

    def export(self) -> dict:
        """The trained transformation classifier and the fitted Dirichlet parameters."""
        return {"model": self.model.state_dict(), "alpha": self.alpha.cpu()}

    def load_export(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.alpha = state["alpha"]

    def score(self, split: SplitData) -> np.ndarray:
        if self.alpha is None:
            raise RuntimeError("score() called before fit()")
        return -self._normality(split, f"score {split.name} (x72)")

    def _fit_dirichlets(self, train: SplitData) -> dict:
        sum_p = torch.zeros(N_TRANSFORMS, N_TRANSFORMS, dtype=torch.float64, device=self.device)
        sum_log_p = torch.zeros_like(sum_p)
        for _, logp in self._log_probs(train, "Dirichlet fit (x72)"):
            logp = logp.double()
            sum_p += logp.exp().sum(0)
            sum_log_p += logp.sum(0)
        n = len(train)
        mean_p, mean_log_p = (sum_p / n).cpu().numpy(), (sum_log_p / n).cpu().numpy()
        alpha = fit_dirichlet(mean_p, mean_log_p)  # one Dirichlet per transformation (row)
        self.alpha = torch.from_numpy(alpha)
        # how often the classifier recognises each transformation on the training set (on average)
        return {
            "train_mean_p_correct": float(np.mean(np.diag(mean_p))),
            "alpha_sum_median": float(np.median(alpha.sum(axis=1))),
        }

    # -- training ---------------------------------------------------------------------------------
    def _train_epoch(self, train: SplitData, optimizer, rng: np.random.Generator, epoch: int) -> dict:
        self.model.train()
        total = len(train) * N_TRANSFORMS
        n_pairs = capped(total, self.max_samples_per_epoch)
        pairs = rng.choice(total, size=n_pairs, replace=False) if n_pairs < total else rng.permutation(total)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        starts = range(0, len(pairs), self.batch_size)
        for start in tqdm(starts, desc=f"epoch {epoch}", disable=not self.progress, leave=False):
            chunk = pairs[start : start + self.batch_size]
            if len(chunk) < 2:  # batch norm needs two samples
                continue
            which = torch.from_numpy(chunk % N_TRANSFORMS).to(self.device)
            images = train.batch(chunk // N_TRANSFORMS).to(self.device, non_blocking=True)
            with self.execution.autocast():  # the network only: the loss stays float32
                logits = self.model(self.execution.inputs(apply_transforms(images, which, self.maps))).float()
            loss = F.cross_entropy(logits, which)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(chunk)
                correct += (logits.argmax(1) == which).sum()
            seen += len(chunk)
        return {"loss": float(loss_sum) / max(seen, 1), "train_acc": int(correct) / max(seen, 1), "n_samples": seen}

    def fit(self, train: SplitData, val: SplitData) -> dict:
        start = time.perf_counter()
        train = unlabeled_train(train)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng([self.seed, _ORDER_STREAM])
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        history = []
        saved = self.checkpoint.load("geo")
        if saved is not None:  # a relaunch of a killed run: go on after its last complete epoch
            self.model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            checkpoints.restore_rng(rng, saved["rng"])
            checkpoints.restore_torch_rng(saved["torch_rng"])
            history = saved["history"]
            log.info("resumed from the checkpoint after epoch %d of %d", len(history), self.epochs)
        for epoch in tqdm(range(len(history) + 1, self.epochs + 1), desc="epochs", disable=not self.progress,
                          initial=len(history), total=self.epochs):
            tic = time.perf_counter()
            entry = {"epoch": epoch, **self._train_epoch(train, optimizer, rng, epoch), "val_auc": None}
            entry["seconds"] = time.perf_counter() - tic
            history.append(entry)
            log.info("epoch %d/%d: loss %.4f, transformation accuracy %.4f on %d samples (%.1fs)",
                     epoch, self.epochs, entry["loss"], entry["train_acc"], entry["n_samples"], entry["seconds"])
            if self.checkpoint.due():
                self.checkpoint.save("geo", {"model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "rng": checkpoints.rng_state(rng), "torch_rng": checkpoints.torch_rng_state(),
                                             "history": history})
        tic = time.perf_counter()
        fit_rows = np.arange(len(train))
        n_fit = capped(len(train), self.fit_max_samples)
        if n_fit < len(train):
            fit_rng = np.random.default_rng([self.data_seed, _FIT_STREAM])
            fit_rows = np.sort(fit_rng.choice(len(train), n_fit, replace=False))
        dirichlet = self._fit_dirichlets(subset(train, fit_rows))
        dirichlet.update(seconds=time.perf_counter() - tic, n_images=len(fit_rows))
        rows = selection_rows(val.labels, self.val_max_samples, self.data_seed)
        val_subset = subset(val, rows)
        val_auc = auroc(val_subset.labels, -self._normality(val_subset, "validate (x72)"))
        history[-1]["val_auc"] = val_auc
        log.info("Dirichlet fit on %d of %d training images; val AUC %.4f on %d rows",
                 len(fit_rows), len(train), val_auc, len(rows))
        return {
            "history": history,
            "best_epoch": self.epochs,
            "val_auc": val_auc,
            "collapsed": None,
            "dirichlet": dirichlet,
            "val_subsample": {"n": len(rows), "n_anomalous": int(val_subset.labels.sum()), "of": len(val)},
            "samples_per_epoch": history[-1]["n_samples"],
            "fit_seconds": time.perf_counter() - start,
            "checkpoints": self.checkpoint.summary(),
        }
