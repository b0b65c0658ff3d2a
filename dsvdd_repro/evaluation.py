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


def relative_variance(features: torch.Tensor) -> float:
    """Feature variance relative to the features' second moment: mean_q Var(phi_q) / mean_q E[phi_q^2].

    Scale-free (a network that merely shrinks or grows its features keeps its value) and 0 exactly
    when every input maps to the same point, whether that point is c or not.
    """
    features = features.double()
    second_moment = float((features**2).mean())
    if second_moment == 0.0:
        return 0.0
    return feature_variance(features) / second_moment


def is_collapsed(relative_var: float, ratio: float) -> bool:
    """Hypersphere collapse (phi = const for all inputs): the validation features' relative variance
    (see `relative_variance`) is below `ratio`, `trainer.collapse_ratio` (default 1e-3: the spread
    is under 0.1% of the features' own magnitude)."""
    return relative_var < ratio
