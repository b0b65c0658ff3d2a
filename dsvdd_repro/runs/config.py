"""The shared schema of a run's config and the checks that span several nodes.

Each option of `dataset`, `setup`, `method`, `model`, `objective`, `regularizer`, `features`,
`optim`, `lr_schedule` and `pretrain` is its own node, defined beside the class it builds (see
dsvdd_repro/core/schema.py). This module holds what every run shares: the root (which groups exist,
`seed`, `data_seed`, `variant`), the `trainer` and `profile` nodes, the keys that say where and how
a run executes, and `validate`, which refuses keys that no schema has (`+trainer.epoch=3`), converts
every node to its dataclass (running its own checks) and then checks what no single node can see (a
block count against the image size, a class index against the dataset's classes, a method's required
groups, a weights file against the backbone), all before any data is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from dsvdd_repro.core.anomaly import AnomalyConfig
from dsvdd_repro.core.evaluation import COLLAPSE_RATIO
from dsvdd_repro.core.execution import PRECISIONS
from dsvdd_repro.core.schema import (
    NODE_GROUPS,
    ConfigError,
    at_least,
    declared,
    in_range,
    non_negative,
    one_of,
    positive,
    shorten,
    target_owner,
)
from dsvdd_repro.models.weights import check_weights
from dsvdd_repro.runs.folders import register_resolvers

# Packages whose modules define nodes (imported once, so that their options are in the ConfigStore).
NODE_PACKAGES = ("dsvdd_repro.data", "dsvdd_repro.models", "dsvdd_repro.methods")
DEVICES = ("auto", "cpu", "cuda")
# `seed` and `data_seed` seed numpy's legacy generator (np.random.seed), which takes 0..2**32 - 1
SEED_MAX = 2**32 - 1
# the model nodes whose `weights` may be a file, checked against ResNet-18's backbone before any work
WEIGHTS_FILE_TARGETS = ("dsvdd_repro.models.resnet.ResNet18Features",)


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 50
    # the GPU fast path (dsvdd_repro/core/execution.py): null/auto = right for the device (a CPU: 500
    # rows per evaluation batch, float32, default memory format, data on the host)
    eval_batch_size: int | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    cudnn_benchmark: bool = True
    data_on_device: bool | None = None
    device: str = "auto"
    num_threads: int | None = None
    # an epoch counts as collapsed when the validation features' variance falls below
    # collapse_ratio x their mean second moment (measured threshold: dsvdd_repro/core/evaluation.py)
    collapse_ratio: float = COLLAPSE_RATIO
    # a training loss above divergence_factor x the first step's ends the run as diverged
    divergence_factor: float = 1e6
    progress: bool = True
    # seconds between checkpoints, written at the end of an epoch (0: every epoch); a scheduler's stop
    # signal writes one at once (dsvdd_repro/storage/checkpoint.py)
    checkpoint_every_s: float = 300.0

    def __post_init__(self) -> None:
        at_least("epochs", self.epochs, 1)
        if self.batch_size < 2:
            raise ConfigError("batch_size", self.batch_size, "must be >= 2 (batch statistics)")
        if self.eval_batch_size is not None:
            positive("eval_batch_size", self.eval_batch_size)
        one_of("precision", self.precision, PRECISIONS)
        one_of("device", self.device, DEVICES)
        at_least("num_threads", self.num_threads, 1, nullable=True)
        in_range("collapse_ratio", self.collapse_ratio, 0.0, 1.0, low_open=True)
        at_least("divergence_factor", self.divergence_factor, 1.0)
        non_negative("checkpoint_every_s", self.checkpoint_every_s)


@dataclass
class ProfileConfig:
    """A scale of the protocol (conf/profile/*.yaml): seeded subsamples of the splits (null = the
    protocol's full split); `weights` is what `reproduce` passes as model.weights (auto = ImageNet
    when it can be had, else random initialisation)."""

    name: str = "paper"
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    weights: str = "imagenet"

    def __post_init__(self) -> None:
        for key in ("max_train", "max_val", "max_test"):
            at_least(key, getattr(self, key), 2, nullable=True)


@dataclass
class Config:
    dataset: Any = MISSING
    setup: Any = MISSING
    anomaly: AnomalyConfig | None = None
    method: Any = MISSING
    model: Any = None
    objective: Any = None
    regularizer: Any = None
    features: Any = None
    optim: Any = None
    lr_schedule: Any = None  # null: a constant learning rate (the paper)
    pretrain: Any = None  # null: no pretraining (the paper fine-tunes ImageNet weights)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    # the paper's table row, named by conf/variant/<name>.yaml; null = named after method/regularizer
    variant: str | None = None
    # the model: initialisation, batch order, the noise labels, GEO's pairs, the Isolation Forest
    seed: int = 0
    # the data: the split, the altered images, the labeled subset and the baselines' subsamples, so
    # that runs of several seeds share one test set (the paper's OC-SVM cells are +-0.0 over 5 runs)
    data_seed: int = 0


_registered = False


def register_configs() -> None:
    """Import every module that defines nodes, and store the root as `base_config`."""
    global _registered
    for package_name in NODE_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, package_name + "."):
            importlib.import_module(module.name)
    ConfigStore.instance().store(name="base_config", node=Config)
    register_resolvers()
    _registered = True


def swept_axes(group: str | None = None) -> tuple[str, ...]:
    """The hyper-parameters the options of `group` (of every group: None) declare as swept: axes
    of every run (`SWEPT`, dsvdd_repro/core/schema.py), the package's nodes and any registered since."""
    if not _registered:
        register_configs()
    return declared("SWEPT", group)


def selected_axes() -> tuple[str, ...]:
    """The swept hyper-parameters the nodes declare as chosen per cell on validation AUC
    (`SELECTED`, dsvdd_repro/core/schema.py), e.g. the noise regularizer's k."""
    if not _registered:
        register_configs()
    return declared("SELECTED")


def check_keys(node: DictConfig, path: str = "") -> None:
    """Refuse a key that the node's dataclass does not have (added with `+`, e.g. `+trainer.epoch=3`,
    which Hydra accepts and the run would silently ignore), in this node and the nodes below it.
    Nodes without a dataclass (a user's YAML option) are left to their class's own arguments."""
    node_type = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(node_type):
        fields = [f.name for f in dataclasses.fields(node_type)]
        for key in node.keys():
            if key not in fields and not (path == "" and key == "hydra"):
                value = OmegaConf.to_container(node, resolve=False)[key]
                raise ConfigError(f"{path}{key}", value, "unknown key; allowed: "
                                  + shorten(name for name in fields if not name.startswith("_")))
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            check_keys(child, f"{path}{key}.")


def check_node(cfg: DictConfig, group: str) -> object | None:
    """Run the node's own checks (its dataclass's __post_init__), naming the key with its group;
    return the node as its dataclass (None when the group is null or its node has no dataclass)."""
    node = cfg.get(group)
    if isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None):
        try:
            return OmegaConf.to_object(node)
        except ConfigError as error:
            raise error.within(group) from None
    return None


def check_classes(cfg: DictConfig, dataset: object | None) -> None:
    """One-vs-all class indices against the dataset's classes, when its node knows how many there are
    (`n_classes`: a key of dataset=fake, a constant of dataset=cifar10); the other datasets' are
    checked when their folders are read (dsvdd_repro/data/protocols.py)."""
    n_classes = getattr(dataset, "n_classes", None)
    if cfg.setup.name != "one_vs_all" or not isinstance(n_classes, int):
        return
    name = cfg.dataset.name
    if n_classes < 2:
        raise ConfigError("setup", "one_vs_all", f"{name} has a single class: there is no other class to be "
                          "anomalous; use setup=alteration")
    keys = ["normal_class"] + (["labeled_anomaly_class"] if cfg.setup.get("semi_supervised") else [])
    for key in keys:
        value = cfg.setup.get(key)
        if value is not None and not 0 <= value < n_classes:
            raise ConfigError(f"setup.{key}", value, f"not a class of {name}; allowed: 0..{n_classes - 1}")


def validate(cfg: DictConfig) -> None:
    """Check every value before any work; raise one ConfigError (WeightsError for a weights file)
    naming the key, value and rule."""
    check_keys(cfg)
    nodes = {group: check_node(cfg, group) for group in (*NODE_GROUPS, "trainer", "profile")}
    for key in ("seed", "data_seed"):
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SEED_MAX:
            raise ConfigError(key, value, f"must be an integer in 0..{SEED_MAX}, numpy's seed range")
    for group in getattr(target_owner(cfg.method._target_), "REQUIRES", ()):
        if cfg.get(group) is None:
            raise ConfigError(group, None, f"method={cfg.method.name} needs a {group} node")
    if cfg.setup.name == "alteration":
        if cfg.get("anomaly") is None:
            raise ConfigError("anomaly", None, "setup=alteration needs anomaly=block_perm|strokes (or a semi_* preset)")
        try:
            anomaly(cfg).check(int(cfg.dataset.image_size))
        except ConfigError as error:
            raise error.within("anomaly") from None
    if cfg.setup.name == "one_vs_all" and not getattr(OmegaConf.get_type(cfg.dataset), "CLASS_LABELS", True):
        raise ConfigError("setup", "one_vs_all", f"{cfg.dataset.name} images have no single class label; "
                          "use setup=alteration")
    check_classes(cfg, nodes["dataset"])
    model = cfg.get("model")
    if model is not None and model.get("_target_") in WEIGHTS_FILE_TARGETS and model.get("weights") is not None:
        check_weights(str(model.weights))  # a file: loads, holds finite tensors that fit (WeightsError)


def anomaly(cfg: DictConfig) -> AnomalyConfig | None:
    """The run's anomaly node as its dataclass (None when the setup has none)."""
    return None if cfg.get("anomaly") is None else OmegaConf.to_object(cfg.anomaly)
