"""The `setup` and `anomaly` nodes: which protocol of Section V-A splits the images, and which
anomaly generator alters them. Each node checks its own values and calls the protocol
(dsvdd_repro/data/protocols.py) with plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import protocols
from .data.images import NaturalImages, PoolCounts
from .schema import ConfigError, at_least, config_node, in_range, one_of

ANOMALIES = ("block_perm", "strokes")
SPLITS = ("train", "val", "test")


@dataclass
class AnomalySplit:
    """Per-split anomaly settings; a key left null takes the group's own value."""

    name: str | None = None
    n: int | None = None
    thickness: int | None = None


@dataclass
class AnomalyConfig:
    """`block_perm`: the image cut into n x n blocks that are permuted (never the identity);
    `strokes`: random strokes of `thickness` px, one random colour per image. Table VI trains,
    validates and tests on different types: e.g. anomaly.train.name=block_perm anomaly.train.n=8.

    What fits an image of side S (`check`): n must divide S (2 <= n <= S); thickness must be in
    1..S/2. Strokes are 0.1-0.6 S long (dsvdd_repro/data/anomalies.py), so the painted share of an
    image grows with thickness / S: at S/2, 54% on average and no image painted whole (measured on
    400 images); at S, 86% and a quarter of the anomalies one solid colour, i.e. no longer a
    natural image altered by strokes. The paper's largest, 9 px, is allowed from S = 18 up (the
    quick and smoke profiles' 32 px runs of Tables I-VI included)."""

    name: str = "strokes"
    n: int = 2
    thickness: int = 5
    train: AnomalySplit = field(default_factory=AnomalySplit)
    val: AnomalySplit = field(default_factory=AnomalySplit)
    test: AnomalySplit = field(default_factory=AnomalySplit)

    def spec(self, split: str) -> dict:
        """The generator a split uses: each per-split key that is set, else the group's own."""
        override = getattr(self, split)
        spec = {key: getattr(self, key) if getattr(override, key) is None else getattr(override, key)
                for key in ("name", "n", "thickness")}
        return {"name": spec["name"], "n": int(spec["n"]), "thickness": int(spec["thickness"])}

    def check(self, image_size: int) -> None:
        """Every split's generator must fit `image_size` images (keys named as the user set them)."""
        for split in SPLITS:
            spec, override = self.spec(split), getattr(self, split)

            def key(name: str, split: str = split, override: AnomalySplit = override) -> str:
                return f"{split}.{name}" if getattr(override, name) is not None else name

            one_of(key("name"), spec["name"], ANOMALIES)
            if spec["name"] == "block_perm":
                if spec["n"] < 2:
                    raise ConfigError(key("n"), spec["n"], "blocks per side must be >= 2")
                if image_size % spec["n"]:
                    divisors = [d for d in range(2, image_size + 1) if image_size % d == 0]
                    raise ConfigError(key("n"), spec["n"], f"must divide dataset.image_size={image_size}; "
                                      f"allowed: {divisors}")
            elif not 1 <= spec["thickness"] <= image_size // 2:
                raise ConfigError(key("thickness"), spec["thickness"],
                                  f"stroke thickness in pixels must be in 1..{image_size // 2}: at most half of "
                                  f"dataset.image_size={image_size}, thicker strokes paint most of the image")


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
