"""The `anomaly` node: which alteration each split of the alteration protocol uses. Plain schema,
shared by the data stage (data/setups.py calls the generators of data/anomalies.py with it), the
run's recorded axes and the report, which names a run's anomalies without the data layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from dsvdd_repro.core.schema import ConfigError, one_of

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
