"""Cheap evaluation: AUROC of anomaly scores and the feature statistics that reveal collapse."""

from __future__ import annotations

import numpy as np
import torch


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve with label 1 = anomaly and higher score = more anomalous.

    Constant scores give 0.5; a split with one class only raises (an AUC would be meaningless).
    """
    from sklearn.metrics import roc_auc_score  # here: scikit-learn takes ~1 s to import

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


# The collapse threshold on `relative_variance`, from what collapsed and healthy networks measure
# (validation features, eval mode; CIFAR-10 one-vs-all, 32 px, random initialisation):
# - collapsed, phi = const within float32 tolerance (every batch-norm scale x 1e-3; scale 0 gives
#   exactly 0): 6.4e-17 on the LeNet with bias terms, 3.6e-17 on ResNet-18;
# - healthy, the lowest value any trained run measured: 6.8e-5 (LeNet with bias terms, lr 1e-3,
#   40 epochs on 1,000 airplanes, validation AUC still 0.56: its features contract like 1/epoch
#   but keep ranking). In the collapse study (results/quick/collapse.md) ResNet-18 with bias terms
#   dipped to 7.6e-5 (lr 1e-2) and rose again; no run came near a collapsed network.
# The threshold is the geometric mean of the two, 6.6e-11 (features equal to about 1e-5 of their
# magnitude): eleven orders of magnitude separate them, and it sits 5.5 orders from either side.
# The former round 1e-3 flagged healthy LeNets at their first epoch (~1e-3) and a ResNet-18 epoch
# that recovered the next (6.6e-4). The collapse study (experiment `collapse`, collapse.md) reports
# the lowest relative variance its runs reached, to check the gap on every new run.
COLLAPSED_RELATIVE_VARIANCE = 6.4e-17
HEALTHY_RELATIVE_VARIANCE = 6.8e-5
COLLAPSE_RATIO = float(f"{(COLLAPSED_RELATIVE_VARIANCE * HEALTHY_RELATIVE_VARIANCE) ** 0.5:.2g}")


def is_collapsed(relative_var: float, ratio: float = COLLAPSE_RATIO) -> bool:
    """Hypersphere collapse (phi = const for all inputs): the validation features' relative variance
    (see `relative_variance`) is below `ratio` (`trainer.collapse_ratio`, default `COLLAPSE_RATIO`)."""
    return relative_var < ratio
