"""The shared schema of a run's config and the checks that span several nodes.

Each option of `dataset`, `setup`, `method`, `model`, `objective`, `regularizer`, `features`,
`optim`, `lr_schedule` and `pretrain` is its own node, defined beside the class it builds (see
dsvdd_repro/schema.py). This module holds what every run shares: the root (which groups exist,
`seed`, `data_seed`, `variant`), the `trainer` and `profile` nodes, the keys that say where and how
a run executes, and `validate`, which converts every node to its dataclass (running its own checks)
and then checks what no single node can see (a block count against the image size, a method's
required groups).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_method
from omegaconf import MISSING, DictConfig, OmegaConf

from .evaluation import COLLAPSE_RATIO
from .schema import ConfigError, at_least, in_range, one_of, positive
from .setups import AnomalyConfig

# The groups whose options are nodes; a group left null is not part of the run.
NODE_GROUPS = ("dataset", "setup", "anomaly", "method", "model", "objective", "regularizer", "features", "optim",
               "lr_schedule", "pretrain")
# Packages whose modules define nodes (imported once, so that their options are in the ConfigStore).
NODE_PACKAGES = ("dsvdd_repro.data", "dsvdd_repro.models", "dsvdd_repro.methods")
# Keys that say where and how a run executes, not what it computes: left out of its identity, so
# moving the data or switching the device does not re-run finished work (dsvdd_repro/runs.py).
EXECUTION_KEYS = (
    "dataset.root", "dataset.download", "dataset.cache_dir", "trainer.device", "trainer.num_threads",
    "trainer.progress", "trainer.eval_batch_size", "features.cache", "profile.weights",
)
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 50
    eval_batch_size: int = 500
    device: str = "auto"
    num_threads: int | None = None
    # an epoch counts as collapsed when the validation features' variance falls below
    # collapse_ratio x their mean second moment (measured threshold: dsvdd_repro/evaluation.py)
    collapse_ratio: float = COLLAPSE_RATIO
    progress: bool = True

    def __post_init__(self) -> None:
        at_least("epochs", self.epochs, 1)
        if self.batch_size < 2:
            raise ConfigError("batch_size", self.batch_size, "must be >= 2 (batch statistics)")
        positive("eval_batch_size", self.eval_batch_size)
        one_of("device", self.device, DEVICES)
        at_least("num_threads", self.num_threads, 1, nullable=True)
        in_range("collapse_ratio", self.collapse_ratio, 0.0, 1.0, low_open=True)


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


def register_configs() -> None:
    """Import every module that defines nodes, and store the root as `base_config`."""
    for package_name in NODE_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, package_name + "."):
            importlib.import_module(module.name)
    ConfigStore.instance().store(name="base_config", node=Config)
    from .runs import register_resolvers

    register_resolvers()


def check_node(cfg: DictConfig, group: str) -> None:
    """Run the node's own checks (its dataclass's __post_init__), naming the key with its group."""
    node = cfg.get(group)
    if isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None):
        try:
            OmegaConf.to_object(node)
        except ConfigError as error:
            raise error.within(group) from None


def validate(cfg: DictConfig) -> None:
    """Check every value before any work; raise one ConfigError naming the key, value and rule."""
    for group in (*NODE_GROUPS, "trainer", "profile"):
        check_node(cfg, group)
    target = get_method(cfg.method._target_)
    for group in getattr(getattr(target, "__self__", target), "REQUIRES", ()):  # a class or its factory
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


def anomaly(cfg: DictConfig) -> AnomalyConfig | None:
    """The run's anomaly node as its dataclass (None when the setup has none)."""
    return None if cfg.get("anomaly") is None else OmegaConf.to_object(cfg.anomaly)
