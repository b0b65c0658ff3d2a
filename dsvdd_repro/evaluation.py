"""Cheap evaluation: AUROC of anomaly scores and the feature statistics that reveal collapse."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve with label 1 = anomaly and higher score = more anomalous.

    Constant scores give 0.5; a split with one class only raises (an AUC would be meaningless).
    """
    labels = np.asarray(labels)
    if np.unique(labels).size < 2:
        raise ValueError("AUROC needs both normal (0) and anomalous (1) samples")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def feature_variance(features: torch.Tensor) -> float:
    """The sample variance (n - 1) of each feature over the samples, averaged over features
    (the quantity of the paper's Eq. 5)."""
    if features.shape[0] < 2:
        return 0.0
    return float(features.double().var(dim=0, unbiased=True).mean())


def is_collapsed(variance: float, initial_variance: float, ratio: float) -> bool:
    """Hypersphere collapse (phi = c for all inputs): the features' variance has shrunk below
    `ratio` times what it was when c was computed. Relative, so it does not depend on the scale of
    a given network's features; the default ratio 1e-3 is `trainer.collapse_ratio`."""
    return variance < ratio * initial_variance
