"""The small contract every method (deep SVDD, shallow baselines, GEO) follows.

A method is a config node in group `method` whose `_target_` is a `Detector` subclass (or a
classmethod of one), built as `build(cfg.method, context=RunContext(...))`: its own keys come from its node, everything it shares
with other methods (the model, objective, regularizer, features, optimiser and trainer nodes, the
seed, the device) from the context. A method reads only the nodes it needs and names the groups
it cannot run without in `REQUIRES`, which `dsvdd_repro.runs.config.validate` checks before any work.

A method states what a run of it costs beside the code that does the work: its class's
`planned_work(config, sizes)` counts it (a `PlannedWork`) from the run's resolved config and its
splits' planned sizes, without building anything; the cost plan (dsvdd_repro/sweeps/cost.py) adds these up
and refuses a method whose class states none.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from omegaconf import DictConfig

from dsvdd_repro.core.execution import Execution, show_progress
from dsvdd_repro.core.schema import target_owner
from dsvdd_repro.data.protocols import SplitData


@dataclass
class RunContext:
    """What a method may read besides its own node."""

    cfg: DictConfig  # the composed config (nodes of groups the run does not have are None)
    image_size: int
    device: torch.device
    cache_root: Path  # where cached features go
    run_dir: Path | None = None  # the run's folder (checkpoints); None: no checkpoints

    @functools.cached_property
    def execution(self) -> Execution:
        """The GPU fast path's settings for this run's device (dsvdd_repro/core/execution.py)."""
        return Execution.resolve(self.cfg.trainer, self.device)

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    @property
    def data_seed(self) -> int:
        return int(self.cfg.data_seed)

    @property
    def trainer(self) -> DictConfig:
        return self.cfg.trainer

    @property
    def progress(self) -> bool:
        return show_progress(self.trainer)

    def node(self, group: str) -> DictConfig | None:
        return self.cfg.get(group)


@dataclass
class PlannedWork:
    """The work of one run of a method, counted without running it. Image-passes are per network:
    `train` a forward + backward + optimiser step of one image, `eval` a forward pass without
    gradients (`geo`: the part of both that is GEO's transformed images; `pretrain`: the
    autoencoder's steps, counted apart); `fits` shallow models fitted on `fit_rows` rows each, whose
    time grows as rows ** `fit_power`; `checkpoints` the points that could write one
    (dsvdd_repro/storage/checkpoint.py); `feature_eval` the eval passes of features shared between runs
    through the feature cache, counted once per `features_key`; `uses_network` False: the run's
    `model` network does none of the work (PCA features)."""

    train: int = 0
    eval: int = 0
    geo: int = 0
    pretrain: int = 0
    fits: int = 0
    fit_rows: int = 0
    fit_power: int = 1
    shallow: str | None = None  # the shallow model fitted (the calibration's `fit` task): ocsvm | iforest
    checkpoints: int = 0
    features_key: str | None = None
    feature_eval: int = 0
    uses_network: bool = True


class CostNotStated(ValueError):
    """A part whose `_target_` does not state what a run of it costs; the message is one line."""


def stated_cost(group: str, node: dict, attribute: str, implement: str) -> Callable:
    """The cost statement `attribute` of the class (or function) the node's `_target_` names; a
    CostNotStated naming the option and what it must implement when it has none."""
    owner = target_owner(node["_target_"])
    stated = getattr(owner, attribute, None)
    if stated is None:
        where = f"{owner.__module__}.{getattr(owner, '__qualname__', node['_target_'])}"
        raise CostNotStated(f"{group}={node.get('name')}: {where} states no run cost (implement {implement})")
    return stated


class Detector(ABC):
    """fit(train, val) learns from the training split (validation only for model selection);
    score(split) returns one float per sample, higher = more anomalous."""

    # groups of the composed config the method cannot run without (checked before any work)
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    # What a run costs: a classmethod or staticmethod `planned_work(config, sizes) -> PlannedWork`
    # of the resolved config (plain dicts) and the setup's `planned_sizes` (train, val, test,
    # labeled, val_labels, altered). None: the method states no cost, and the cost plan refuses it.
    planned_work: ClassVar[Callable[[dict, dict], PlannedWork] | None] = None

    @abstractmethod
    def fit(self, train: SplitData, val: SplitData) -> dict:
        """Train; return a summary for metrics.json. Keys of contract C2 it should set where they
        apply: val_auc, best_epoch, collapsed, history (a list, one dict per epoch)."""

    @abstractmethod
    def score(self, split: SplitData) -> np.ndarray:
        """Anomaly scores, shape [len(split)], float64, higher = more anomalous."""

    def describe(self) -> dict:
        """What the detector really is (weights used, features, ...), for metrics.json's `model`."""
        return {}

    # Why a method saves no model (metrics.json's `model_not_saved`), when `export` returns None.
    export_note = "this method does not save its fitted model"

    def export(self) -> dict | None:
        """What model.pt keeps of the fitted detector, so that `dsvdd_repro.score` can score new
        images after `load_export` on a detector built from the run's config; None: not supported."""
        return None

    def load_export(self, state: dict) -> None:
        raise NotImplementedError(self.export_note)
