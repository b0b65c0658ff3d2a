"""Objects built from their config nodes' values, for tests that construct classes directly.

A node's dataclass is the one home of its defaults: the classes take every value without defaults
of their own. `from_node` builds what a node names as a run does (`schema.build`), from the node's
defaults or the values given (`from_node(NoiseConfig(k=7), feature_dim=4, seed=0)`); `deep_svdd`
builds the detector with the optim, trainer and method nodes' defaults and the root's seed.
"""

from __future__ import annotations

import dataclasses

import torch

from dsvdd_repro.core.execution import Execution
from dsvdd_repro.core.schema import build
from dsvdd_repro.methods.deep_svdd.objectives import OneClassConfig, SoftBoundaryConfig
from dsvdd_repro.methods.deep_svdd.regularizers import (
    NoiseConfig,
    NoRegularizerConfig,
    VarianceConfig,
    WeightingKeys,
)
from dsvdd_repro.methods.deep_svdd.trainer import DeepSVDD, DeepSVDDConfig
from dsvdd_repro.methods.optim import AdamConfig
from dsvdd_repro.models.lenet import LeNetConfig
from dsvdd_repro.models.resnet import ResNet18Config
from dsvdd_repro.runs.config import Config, TrainerConfig

CPU = torch.device("cpu")


def node_values(node) -> dict:
    """A node's keys and values (a config dataclass instance), without `_target_` and `name`."""
    return {key: value for key, value in dataclasses.asdict(node).items() if key not in ("_target_", "name")}


def from_node(node, **kwargs):
    """What `node` (a config dataclass instance) names, built from its values and `kwargs`."""
    return build(dataclasses.asdict(node), **kwargs)


def resnet18(**keys):
    """ResNet-18 features, random initialisation unless `weights` is given (the node's default
    is the profile's request, an interpolation)."""
    return from_node(ResNet18Config(**{"weights": "none", **keys}))


def lenet(**keys):
    return from_node(LeNetConfig(**keys))


def one_class(**keys):
    return from_node(OneClassConfig(**keys))


def soft_boundary(**keys):
    return from_node(SoftBoundaryConfig(**keys))


def no_regularizer(feature_dim: int = 0, seed: int = 0):
    return from_node(NoRegularizerConfig(), feature_dim=feature_dim, seed=seed)


def noise(feature_dim: int, seed: int = 0, **keys):
    return from_node(NoiseConfig(**keys), feature_dim=feature_dim, seed=seed)


def variance(feature_dim: int = 0, seed: int = 0, **keys):
    return from_node(VarianceConfig(**keys), feature_dim=feature_dim, seed=seed)


def weighting(**keys) -> dict:
    """The loss weighting's values (`LossWeight(**weighting(...))` takes them as mode, alpha, ...)."""
    values = dataclasses.asdict(WeightingKeys(**keys))
    return {"mode": values.pop("weighting"), **values}


def deep_svdd(net, objective=None, regularizer=None, device: torch.device = CPU, **values) -> DeepSVDD:
    """DeepSVDD on `net` with the defaults of the optim (adam), trainer and method (dsvdd) nodes and
    the root's seed, overridden by `values`; one-class and no regularizer unless given. Batch norm is
    not recalibrated unless asked (`calibrate_bn=True`), and the execution is the plain CPU one."""
    trainer, optim, method = TrainerConfig(), AdamConfig(), DeepSVDDConfig()
    defaults = {
        "lr": optim.lr, "backbone_lr_factor": optim.backbone_lr_factor, "weight_decay": optim.weight_decay,
        "epochs": trainer.epochs, "batch_size": trainer.batch_size, "collapse_ratio": trainer.collapse_ratio,
        "divergence_factor": trainer.divergence_factor, "seed": Config().seed, "progress": trainer.progress,
        "center_eps": method.center_eps, "calibrate_bn": False, "lr_schedule": None, "pretrain": None,
        "execution": Execution(device),
    }
    objective = one_class() if objective is None else objective
    regularizer = no_regularizer() if regularizer is None else regularizer
    return DeepSVDD(net, objective, regularizer, device, **{**defaults, **values})


def shallow(detector_cls, node, **values):
    """A shallow detector (OCSVMDetector, IForestDetector) on no features with its method node's
    values (`node`, e.g. OCSVMConfig()) and the root's seeds, overridden by `values`."""
    root = Config()
    common = {"seed": root.seed, "data_seed": root.data_seed, "progress": TrainerConfig().progress}
    return detector_cls(None, **{**node_values(node), **common, **values})
