"""The work one run implies, read from its resolved config alone (no image is read, nothing is built
but the dataset's source object, which only stores its keys): the cost plan's unit (dsvdd_repro/plan.py).

Image-passes are counted per network:
- train: a forward + backward + optimiser step of one image (deep SVDD epochs; GEO's transformed
  training samples; the autoencoder's pretraining epochs, counted apart as `pretrain`).
- eval: a forward pass of one image without gradients: batch-norm calibration (random
  initialisation), the centre c, every epoch's validation, the test set; GEO's 72 transformed passes
  of the Dirichlet fit, the validation subset and the test set; the CNN features of the shallow
  baselines (once per distinct feature set: the feature cache shares them between methods).
- altered: alteration anomalies generated for the run's splits.
- fits: the shallow models fitted (OC-SVM: one per grid point) and the rows each is fitted on.
- checkpoints: the epochs that could write one (dsvdd_repro/checkpoint.py), with the network's
  parameter count; the plan prices those written at the run's trainer.checkpoint_every_s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from .data.images import PoolCounts
from .methods.geo import N_TRANSFORMS
from .schema import build

DSVDD_METHODS = ("dsvdd",)


@dataclass
class RunWork:
    """A run's work; `network` = (model name, image size), what the calibration times."""

    method: str
    network: tuple[str, int] | None
    train: int = 0
    eval: int = 0
    geo: int = 0  # of train + eval: GEO's transformed image-passes
    pretrain: int = 0
    altered: int = 0
    fits: int = 0
    fit_rows: int = 0
    shallow: str | None = None  # ocsvm | iforest
    checkpoints: int = 0
    features_key: str | None = None  # the CNN features' identity (shared through the feature cache)
    feature_eval: int = 0  # eval passes of the CNN features, counted once per features_key


def _key(node) -> str:
    return json.dumps(node, sort_keys=True, default=str)


@cache
def _counts(dataset: str) -> PoolCounts | None:
    node = json.loads(dataset)
    source = build({k: v for k, v in node.items() if k != "cache_dir"})
    planned = getattr(source, "planned_counts", None)
    return planned() if planned else None


@cache
def _sizes(setup: str, dataset: str, profile: str) -> dict | None:
    counts = _counts(dataset)
    if counts is None:
        return None
    setup_node = json.loads(setup)
    schema = ConfigStore.instance().repo["setup"][f"{setup_node['name']}.yaml"].node
    setup_object = OmegaConf.to_object(OmegaConf.merge(schema, setup_node))
    limits = {key: json.loads(profile).get(key) for key in ("max_train", "max_val", "max_test")}
    return setup_object.planned_sizes(counts, limits)


def data_here(c: dict) -> bool:
    """Whether the run's dataset is on this machine (its `root` an existing folder; a generated
    dataset always is): runs without it fail fast, as missing cells, and cost nothing."""
    root = c["dataset"].get("root", "generated")
    return bool(root) and Path(str(root)).expanduser().is_dir() if root != "generated" else True


def run_work(c: dict) -> RunWork:
    """The work of the run whose resolved config (plain dicts, as the sweeper's `job.container()`) is `c`."""
    method = c["method"]["name"]
    image_size = int(c["dataset"]["image_size"])
    model = c.get("model")
    network = (model["name"], image_size) if model else None
    sizes = _sizes(_key(c["setup"]), _key(c["dataset"]), _key(c["profile"]))
    work = RunWork(method=method, network=network)
    if sizes is None:  # a dataset whose size the plan cannot know without reading it (a user's folder)
        return work
    n_train, n_val, n_test = sizes["train"], sizes["val"], sizes["test"]
    work.altered = sizes["altered"]
    epochs = int(c["trainer"]["epochs"])
    if method in DSVDD_METHODS:
        calibrate_bn = c["method"].get("calibrate_bn")
        if calibrate_bn is None:
            calibrate_bn = model.get("weights") == "none" and c.get("pretrain") is None
        validated = sizes["val_labels"] == 2  # else no model selection: no validation pass (trainer.py)
        work.train = epochs * n_train
        work.eval = (n_train if calibrate_bn else 0) + n_train + (epochs * n_val if validated else 0) + n_test
        work.checkpoints = epochs + 1
        if c.get("pretrain"):
            work.pretrain = int(c["pretrain"]["epochs"]) * n_train
            work.checkpoints += int(c["pretrain"]["epochs"])
    elif method == "geo":
        node = c["method"]
        n_unlabeled = n_train - sizes["labeled"]
        per_epoch = n_unlabeled * N_TRANSFORMS
        if node.get("max_samples_per_epoch"):
            per_epoch = min(per_epoch, int(node["max_samples_per_epoch"]))
        fit_rows = min(n_unlabeled, int(node["fit_max_samples"] or n_unlabeled))
        val_rows = min(n_val, int(node["val_max_samples"] or n_val))
        work.train = epochs * per_epoch
        work.eval = N_TRANSFORMS * (fit_rows + val_rows + n_test)
        work.geo = work.train + work.eval
        work.checkpoints = epochs
    else:  # a shallow baseline on PCA or CNN features
        node = c["method"]
        work.shallow = "ocsvm" if "nus" in node else "iforest"
        n_fit = n_train - sizes["labeled"]
        if node.get("max_train"):
            n_fit = min(n_fit, int(node["max_train"]))
        work.fits = len(node["nus"]) * len(node["gamma_exponents"]) if work.shallow == "ocsvm" else 1
        work.fit_rows = n_fit
        if (c.get("features") or {}).get("name") == "cnn":
            shared = {k: c.get(k) for k in ("dataset", "setup", "anomaly", "profile", "model", "data_seed", "seed")}
            work.features_key = _key(shared)
            work.feature_eval = n_train + n_val + n_test
        else:
            work.network = None  # PCA: no network
    return work
