"""Shallow baselines: OC-SVM (RBF kernel) and Isolation Forest on PCA or ResNet-18 features.

The paper "selected the same set of hyperparameters as mentioned in [12], [13], [41]" without
listing them. Ours, fixed before looking at any test score:
- OC-SVM (Schölkopf et al.), scikit-learn `OneClassSVM(kernel="rbf")`, with Ruff et al.'s grid
  [13] (the paper's "as in [12], [13], [41]"): nu in `method.nus` = {0.01, 0.1} and gamma = 2^k for
  k in `method.gamma_exponents` = {-10, ..., -1} (`method.gamma_unit=absolute`). Every pair is
  fitted on the training features only; the pair with the highest AUC on the validation subsample
  is kept (ties: the first in grid order). Ruff et al. selected on 10% of the test set; we never
  look at test data. The wider grid relative to the data's scale that this suite used before is
  the option `method=ocsvm_scaled`: nu in {0.01, 0.05, 0.1, 0.2, 0.5}, gamma = 2^k * gamma_scale
  for k in {-8, -6, ..., 6}, where gamma_scale = 1 / (d * Var(X_train)) is scikit-learn's
  `gamma="scale"` (`method.gamma_unit=scale`): one grid that fits PCA and unstandardised CNN
  features alike.
- Training rows: all of them by default (`method.max_train=null`), as Ruff et al. Kernel SVMs
  scale quadratically, so `method.max_train=N` trains on a seeded subsample of N rows (drawn with
  `data_seed`); the quick and smoke profiles cap every split's rows instead (profile.max_train
  1000 and 200). The summary records how many rows were used.
- Validation subsample: selection scores a seeded subset of at most `method.val_max_samples` (2,000)
  validation rows, at most half of them per label (`features.selection_rows`), because one-vs-all
  validation sets have 46,000 CIFAR-10 images and OC-SVM scoring is kernel evaluations.
- Isolation Forest (Liu et al.), scikit-learn `IsolationForest`: `method.trees` (100) trees,
  `method.max_samples` (256) samples per tree (capped at the training size), all features,
  seeded with `seed`; nothing to select. Its val AUC is reported for information.
- Scores: OC-SVM -decision_function, IF -score_samples, so higher = more anomalous.
- Saved model (model.pt): the extractor's arrays or weights and the scikit-learn model as skops
  bytes, loaded with only the types the algorithm needs trusted: no pickle (dsvdd_repro/storage/received.py).
- Cost (the cost plan): `planned_work` counts the fits and their rows as `_fit` makes them
  (`planned_fits`), and the features' network passes as the `features` node's target states them.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from dsvdd_repro.core.evaluation import auroc
from dsvdd_repro.core.schema import ConfigError, at_least, build, config_node, in_range, one_of
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.methods.base import Detector, PlannedWork, RunContext, stated_cost
from dsvdd_repro.methods.features import (
    FeatureCache,
    FeatureExtractor,
    selection_rows,
    subset,
    unlabeled_train,
)
from dsvdd_repro.storage.received import UnsafeFileError, one_line

log = logging.getLogger(__name__)

# seed stream of the OC-SVM training subsample
_TRAIN_CAP_STREAM = 12


GAMMA_UNITS = ("absolute", "scale")


def gamma_scale(x: np.ndarray) -> float:
    """scikit-learn's gamma="scale": 1 / (n_features * Var(x)) (1.0 for constant data)."""
    var = float(np.asarray(x, dtype=np.float64).var())
    return 1.0 / (x.shape[1] * var) if var > 0 else 1.0


class ShallowDetector(Detector):
    """A shallow detector on cached features; subclasses implement `_fit` and `_score`."""

    algorithm = "shallow"
    REQUIRES = ("features",)
    fit_power = 1  # a fit's time grows as rows ** fit_power: the plan scales its calibrated fit so

    def __init__(self, features: FeatureCache | None, *, val_max_samples: int | None, seed: int, data_seed: int,
                 progress: bool):
        self.features = features
        self.val_max_samples, self.seed, self.progress = val_max_samples, seed, progress
        self.data_seed = data_seed  # the subsamples: the same for every model seed
        self.model = None

    @classmethod
    def from_context(cls, context: RunContext, **keys) -> ShallowDetector:
        """The `method` node's target: the detector on the run's `features` node."""
        features = build(context.cfg.features, context=context)  # CNN: loads the weights, or fails, here
        return cls(features, seed=context.seed, data_seed=context.data_seed, progress=context.progress, **keys)

    @classmethod
    def planned_fits(cls, node: dict, n_rows: int) -> tuple[int, int]:
        """(models fitted, rows each is fitted on) of a run on `n_rows` unlabeled training rows."""
        raise NotImplementedError(f"{cls.__module__}.{cls.__qualname__} states no planned_fits(node, n_rows)")

    @classmethod
    def planned_work(cls, config: dict, sizes: dict) -> PlannedWork:
        """The fits on the unlabeled training rows (`planned_fits`), after the features: the eval
        passes the `features` node's target states (`planned_eval`; None: no network, as PCA),
        computed once for every run that shares them through the feature cache."""
        fits, rows = cls.planned_fits(config["method"], sizes["train"] - sizes["labeled"])
        work = PlannedWork(shallow=cls.algorithm, fits=fits, fit_rows=rows, fit_power=cls.fit_power)
        passes = stated_cost("features", config["features"], "planned_eval", "planned_eval(sizes)")(sizes)
        if passes is None:
            work.uses_network = False
        else:  # the features' identity: what the cached features depend on
            shared = {key: config.get(key) for key in ("dataset", "setup", "anomaly", "profile", "model", "data_seed",
                                                       "seed")}
            work.features_key, work.feature_eval = json.dumps(shared, sort_keys=True, default=str), passes
        return work

    def describe(self) -> dict:
        return {"algorithm": self.algorithm, **self.features.extractor.describe()}

    def fit(self, train: SplitData, val: SplitData) -> dict:
        start = time.perf_counter()
        train = unlabeled_train(train)
        self.features.set_train(train)
        x_train = self.features.features(train, is_train=True)
        rows = selection_rows(val.labels, self.val_max_samples, self.data_seed)
        val_subset = subset(val, rows)
        x_val = self.features.features(val_subset)
        feature_seconds = time.perf_counter() - start
        log.info("features: train %s, val subsample %s (of %d rows) in %.1fs",
                 x_train.shape, x_val.shape, len(val), feature_seconds)
        summary = self._fit(x_train, x_val, val_subset.labels)
        return {
            "history": [],
            "best_epoch": None,
            "collapsed": None,
            **summary,
            # not "features": that key is the run's axis (contract C2)
            "features_info": {
                **self.features.extractor.describe(),
                "dim": int(x_train.shape[1]),
                **(self.features.fit_info or {}),
                "cache_hits": list(self.features.hits),
            },
            "val_subsample": {"n": len(rows), "n_anomalous": int(val_subset.labels.sum()), "of": len(val)},
            "feature_seconds": feature_seconds,
            "fit_seconds": time.perf_counter() - start,
        }

    def score(self, split: SplitData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("score() called before fit()")
        return np.asarray(self._score(self.features.features(split)), dtype=np.float64)

    def export(self) -> dict:
        """The fitted feature extractor's state (PCA's arrays, or the CNN's weights) and the fitted
        model as skops bytes: data only, no pickle (dsvdd_repro/storage/received.py). A PCA whose features
        all came from the cache was never fitted in this run: it is fitted now, so that the saved
        model can transform new images."""
        self.features.ensure_fit()
        import skops.io  # scikit-learn and skops are imported by the shallow runs alone (~2 s)

        return {"extractor": self.features.extractor.export_state(), "model": skops.io.dumps(self.model)}

    def load_export(self, state: dict) -> None:
        extractor, model = state["extractor"], state["model"]
        if isinstance(extractor, FeatureExtractor):  # the pickled format before MODEL_FORMAT 2 (--trust)
            if hasattr(extractor, "net"):  # a CNN: loaded onto the scoring device (torch.load's map_location)
                extractor.device = next(extractor.net.parameters()).device
            self.features = FeatureCache(extractor, None, enabled=False)
        else:
            self.features.extractor.load_state(extractor)
            self.features = FeatureCache(self.features.extractor, None, enabled=False)
            model = self._load_model(model)
        self.features._fitted = True  # fitted when the run saved it
        self.model = model

    # the fitted model's class (module.name), and the types skops must be told to trust to load it
    # (beyond its own defaults: scikit-learn estimators, numpy, builtins); nothing else in a received
    # file is loaded
    model_class: str = ""
    skops_trusted: tuple[str, ...] = ()

    def _load_model(self, data: bytes):
        import skops.io

        module, name = self.model_class.rsplit(".", 1)
        model_class = getattr(importlib.import_module(module), name)
        try:
            model = skops.io.loads(bytes(data), trusted=list(self.skops_trusted))
        except Exception as error:  # noqa: BLE001 - skops raises its own types for untrusted content
            raise UnsafeFileError(f"the saved {self.algorithm} model is not loaded ({one_line(error)})") from None
        if not isinstance(model, model_class):
            raise UnsafeFileError(f"the saved {self.algorithm} model is a {type(model).__name__}, "
                                  f"not a {name}")
        return model

    def _fit(self, x_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
        raise NotImplementedError

    def _score(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class ShallowConfig:
    # Seeded validation subsample (at most half per label) for OC-SVM's selection and the
    # baselines' val AUC; null = the whole split.
    val_max_samples: int | None = 2000

    def check_val_max_samples(self) -> None:
        at_least("val_max_samples", self.val_max_samples, 2, nullable=True)


@config_node("method", "ocsvm")
class OCSVMConfig(ShallowConfig):
    """OC-SVM, RBF kernel, on the `features` node, with Ruff et al.'s grid: nu x gamma = 2^k,
    chosen by validation AUC; fitted on all (or at most max_train) training rows only."""

    _target_: str = "dsvdd_repro.methods.shallow.OCSVMDetector.from_context"
    name: str = "ocsvm"
    nus: list[float] = field(default_factory=lambda: [0.01, 0.1])
    gamma_exponents: list[int] = field(default_factory=lambda: list(range(-10, 0)))
    # gamma = 2^k (absolute) or 2^k * scikit-learn's "scale" 1 / (d * Var(X_train)) (scale)
    gamma_unit: str = "absolute"
    # train on a seeded subsample of at most this many rows (kernel SVMs scale quadratically); null = all
    max_train: int | None = None

    def __post_init__(self) -> None:
        self.check_val_max_samples()
        for key in ("nus", "gamma_exponents"):
            if not getattr(self, key):
                raise ConfigError(key, list(getattr(self, key)), "must be a non-empty list")
        for nu in self.nus:
            in_range("nus", nu, 0.0, 1.0, low_open=True)
        one_of("gamma_unit", self.gamma_unit, GAMMA_UNITS)
        at_least("max_train", self.max_train, 2, nullable=True)


@config_node("method", "ocsvm_scaled")
class OCSVMScaledConfig(OCSVMConfig):
    """OC-SVM with a wider grid relative to the data's scale (this suite's grid before it followed
    Ruff et al.): nu in {0.01, 0.05, 0.1, 0.2, 0.5}, gamma = 2^k * gamma_scale, k in {-8, ..., 6}."""

    name: str = "ocsvm_scaled"
    nus: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.2, 0.5])
    gamma_exponents: list[int] = field(default_factory=lambda: [-8, -6, -4, -2, 0, 2, 4, 6])
    gamma_unit: str = "scale"


@config_node("method", "iforest")
class IForestConfig(ShallowConfig):
    """Isolation Forest on the `features` node: `trees` trees of `max_samples` samples (Liu et
    al.), seeded with `seed`; nothing is selected."""

    _target_: str = "dsvdd_repro.methods.shallow.IForestDetector.from_context"
    name: str = "iforest"
    trees: int = 100
    max_samples: int = 256

    def __post_init__(self) -> None:
        self.check_val_max_samples()
        at_least("trees", self.trees, 1)
        at_least("max_samples", self.max_samples, 2)


class OCSVMDetector(ShallowDetector):
    algorithm = "ocsvm"
    model_class = "sklearn.svm.OneClassSVM"
    fit_power = 2  # kernel SVMs scale quadratically

    def __init__(self, features: FeatureCache | None, *, nus: Sequence[float], gamma_exponents: Sequence[int],
                 gamma_unit: str, max_train: int | None, **common):
        super().__init__(features, **common)
        self.nus, self.gamma_exponents, self.max_train = tuple(nus), tuple(gamma_exponents), max_train
        self.gamma_unit = gamma_unit

    @staticmethod
    def train_rows(n: int, max_train: int | None) -> int:
        """The rows every grid point is fitted on: all n, or a seeded subsample of `max_train`."""
        return n if max_train is None else min(n, max_train)

    @classmethod
    def planned_fits(cls, node: dict, n_rows: int) -> tuple[int, int]:
        return len(node["nus"]) * len(node["gamma_exponents"]), cls.train_rows(n_rows, node.get("max_train"))

    def _fit(self, x_train, x_val, y_val) -> dict:
        from sklearn.svm import OneClassSVM

        n_total = len(x_train)
        n_used = self.train_rows(n_total, self.max_train)
        if n_used < n_total:
            rng = np.random.default_rng([self.data_seed, _TRAIN_CAP_STREAM])
            x_train = x_train[np.sort(rng.choice(n_total, n_used, replace=False))]
        scale = gamma_scale(x_train) if self.gamma_unit == "scale" else 1.0
        grid = [(nu, k) for nu in self.nus for k in self.gamma_exponents]
        table, best = [], None
        for nu, k in tqdm(grid, desc="OC-SVM grid", disable=not self.progress, leave=False):
            tic = time.perf_counter()
            gamma = scale * 2.0**k
            model = OneClassSVM(kernel="rbf", nu=nu, gamma=gamma, cache_size=500).fit(x_train)
            val_auc = auroc(y_val, -model.decision_function(x_val))
            table.append({
                "nu": nu, "gamma_exponent": k, "gamma": gamma, "val_auc": val_auc,
                "n_support": int(len(model.support_)), "seconds": time.perf_counter() - tic,
            })
            if best is None or val_auc > best[0]:
                best = (val_auc, model, table[-1])
        val_auc, self.model, chosen = best
        log.info("OC-SVM: nu=%g, gamma=2^%d x %.4g (%s; val AUC %.4f) of %d grid points on %d of %d train rows",
                 chosen["nu"], chosen["gamma_exponent"], scale, self.gamma_unit, val_auc, len(grid), len(x_train), n_total)
        return {
            "val_auc": val_auc,
            "selection": {
                "rule": f"max val AUC over nu x gamma = 2^k * unit ({self.gamma_unit}), fitted on train only",
                "gamma_unit": self.gamma_unit,
                "gamma_scale": scale,
                "chosen": {"nu": chosen["nu"], "gamma_exponent": chosen["gamma_exponent"], "gamma": chosen["gamma"]},
                "n_train_used": len(x_train),
                "n_train": n_total,
                "grid": table,
            },
        }

    def _score(self, x):
        return -self.model.decision_function(x)


class IForestDetector(ShallowDetector):
    algorithm = "iforest"
    model_class = "sklearn.ensemble.IsolationForest"
    skops_trusted = ("sklearn.tree._tree.Tree",)  # the trees' node arrays

    def __init__(self, features: FeatureCache | None, *, trees: int, max_samples: int, **common):
        super().__init__(features, **common)
        self.trees, self.max_samples = trees, max_samples

    @classmethod
    def planned_fits(cls, node: dict, n_rows: int) -> tuple[int, int]:
        return 1, n_rows  # one forest, on every row (each tree subsamples max_samples of them)

    def _fit(self, x_train, x_val, y_val) -> dict:
        from sklearn.ensemble import IsolationForest

        max_samples = min(self.max_samples, len(x_train))
        self.model = IsolationForest(
            n_estimators=self.trees, max_samples=max_samples, random_state=self.seed, n_jobs=1
        ).fit(x_train)
        val_auc = auroc(y_val, self._score(x_val))
        log.info("Isolation Forest: %d trees x %d samples, val AUC %.4f", self.trees, max_samples, val_auc)
        return {
            "val_auc": val_auc,
            "selection": {"n_estimators": self.trees, "max_samples": max_samples, "random_state": self.seed},
        }

    def _score(self, x):
        return -self.model.score_samples(x)

