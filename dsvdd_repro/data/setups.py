"""The `setup` and `anomaly` nodes: which protocol of Section V-A splits the images, and which
anomaly generator alters them. Each node checks its own values and calls the protocol
(dsvdd_repro/data/protocols.py) with plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsvdd_repro.core.anomaly import SPLITS, AnomalyConfig
from dsvdd_repro.core.schema import ConfigError, at_least, config_node, in_range
from dsvdd_repro.data import protocols
from dsvdd_repro.data.images import NaturalImages, PoolCounts


@dataclass
class SemiSupervised:
    # Semi-supervised deep SVDD (Eq. 3, Table VI): labeled anomalies join the training set
    semi_supervised: bool = False
    labeled_anomaly_fraction: float = 0.1

    def _check_fraction(self) -> None:
        if self.semi_supervised:
            in_range("labeled_anomaly_fraction", self.labeled_anomaly_fraction, 0.0, 1.0, low_open=True)


@config_node("setup", "one_vs_all")
class OneVsAllSetup(SemiSupervised):
    """One class is normal; `train_fraction` of its train images train, every other train image
    validates, the official test set tests. Semi-supervised: `labeled_anomaly_fraction` of ONE
    anomaly class's train images (`labeled_anomaly_class`) join training as labeled anomalies."""

    name: str = "one_vs_all"
    normal_class: int = 0
    train_fraction: float = 0.8
    labeled_anomaly_class: int | None = None

    def __post_init__(self) -> None:
        at_least("normal_class", self.normal_class, 0)
        in_range("train_fraction", self.train_fraction, 0.0, 1.0, low_open=True)
        self._check_fraction()
        if self.semi_supervised and self.labeled_anomaly_class is not None:
            at_least("labeled_anomaly_class", self.labeled_anomaly_class, 0)
        if self.semi_supervised and (self.labeled_anomaly_class is None
                                     or self.labeled_anomaly_class == self.normal_class):
            raise ConfigError("labeled_anomaly_class", self.labeled_anomaly_class,
                              f"semi-supervised one_vs_all needs a class other than normal_class={self.normal_class}")

    def planned_sizes(self, counts: PoolCounts, limits: dict) -> dict:
        """`splits`' rows per split counted without images (the cost plan)."""
        return protocols.one_vs_all_sizes(
            counts, self.normal_class, self.train_fraction, limits,
            labeled_anomaly_class=self.labeled_anomaly_class if self.semi_supervised else None,
            labeled_anomaly_fraction=self.labeled_anomaly_fraction,
        )

    def splits(self, images: NaturalImages, seed: int, limits: dict, anomaly: AnomalyConfig | None,
               progress: bool) -> protocols.ProtocolSplits:
        return protocols.one_vs_all(
            images, self.normal_class, seed, self.train_fraction, limits,
            labeled_anomaly_class=self.labeled_anomaly_class if self.semi_supervised else None,
            labeled_anomaly_fraction=self.labeled_anomaly_fraction,
        )


@config_node("setup", "alteration")
class AlterationSetup(SemiSupervised):
    """All classes pooled as normal; a share of one pool validates; every validation and test
    image gets one altered counterpart. `val_fraction` null = the dataset's rule (CIFAR-10,
    WikiArt: 20% of the given train set; VOC2012: 40% of the given val set, the rest tests).
    Semi-supervised: altered training images (anomaly.train) make up `labeled_anomaly_fraction`
    of the training set."""

    name: str = "alteration"
    val_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.val_fraction is not None:
            in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        self._check_fraction()
        if self.semi_supervised:
            in_range("labeled_anomaly_fraction", self.labeled_anomaly_fraction, 0.0, 1.0, low_open=True,
                     high_open=True)

    def planned_sizes(self, counts: PoolCounts, limits: dict) -> dict:
        """`splits`' rows per split (and altered images generated) counted without images (the cost plan)."""
        return protocols.alteration_sizes(
            counts, self.val_fraction, limits,
            labeled_anomaly_fraction=self.labeled_anomaly_fraction if self.semi_supervised else None,
        )

    def splits(self, images: NaturalImages, seed: int, limits: dict, anomaly: AnomalyConfig | None,
               progress: bool) -> protocols.ProtocolSplits:
        specs = {split: anomaly.spec(split) for split in SPLITS}
        return protocols.alteration(
            images, specs, seed, self.val_fraction, limits, progress,
            labeled_anomaly_fraction=self.labeled_anomaly_fraction if self.semi_supervised else None,
        )
