"""The small estimator contract every method (deep SVDD, shallow baselines, GEO) follows."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..data.protocols import SplitData


class Detector(ABC):
    """fit(train, val) learns from the training split (validation only for model selection);
    score(split) returns one float per sample, higher = more anomalous."""

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
