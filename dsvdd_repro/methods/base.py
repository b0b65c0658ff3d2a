"""The small contract every method (deep SVDD, shallow baselines, GEO) follows.

A method is a config node in group `method` whose `_target_` is a `Detector` subclass (or a
classmethod of one), built as `build(cfg.method, context=RunContext(...))`: its own keys come from its node, everything it shares
with other methods (the model, objective, regularizer, features, optimiser and trainer nodes, the
seed, the device) from the context. A method reads only the nodes it needs and names the groups
it cannot run without in `REQUIRES`, which `dsvdd_repro.config.validate` checks before any work.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from omegaconf import DictConfig

from ..config import show_progress
from ..data.protocols import SplitData
from ..execution import Execution


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
        """The GPU fast path's settings for this run's device (dsvdd_repro/execution.py)."""
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
        return show_progress(self.cfg)

    def node(self, group: str) -> DictConfig | None:
        return self.cfg.get(group)


class Detector(ABC):
    """fit(train, val) learns from the training split (validation only for model selection);
    score(split) returns one float per sample, higher = more anomalous."""

    # groups of the composed config the method cannot run without (checked before any work)
    REQUIRES: ClassVar[tuple[str, ...]] = ()

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
