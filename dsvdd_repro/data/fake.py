"""A small generated dataset for tests and smoke runs (no files, no download): `dataset=fake`.

Each class has its own base colour, stripe orientation and stripe frequency; each image adds a
random phase, a jittered orientation, a few soft blobs, random brightness and pixel noise. So the
classes are separable (a detector can beat chance) while images have texture and structure that
block permutations and strokes visibly change. Fully determined by `seed`.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch

from dsvdd_repro.core.schema import at_least, config_node
from dsvdd_repro.data.images import NaturalImages, PoolCounts


@config_node("dataset", "fake")
class FakeConfig:
    """A small generated dataset (dsvdd_repro/data/fake.py) for tests and smoke runs: no files needed."""

    _target_: str = "dsvdd_repro.data.fake.FakeImages"
    name: str = "fake"
    image_size: int = 32
    n_classes: int = 3
    n_train_per_class: int = 40
    n_test_per_class: int = 20

    def __post_init__(self) -> None:
        at_least("image_size", self.image_size, 2)
        at_least("n_classes", self.n_classes, 1)
        at_least("n_train_per_class", self.n_train_per_class, 1)
        at_least("n_test_per_class", self.n_test_per_class, 1)


def _class_params(c: int, n_classes: int) -> dict:
    # Fixed per class index (not drawn from the seed) so class identity is stable across seeds.
    hue = c / max(n_classes, 1)
    base = np.array(colorsys.hsv_to_rgb(hue, 0.75, 0.85), dtype=np.float32)
    accent = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.6, 0.6), dtype=np.float32)
    angle = np.pi * ((c * 0.38) % 1.0)
    freq = 1.5 + 1.25 * (c % 4)  # cycles per image
    return {"base": base, "accent": accent, "angle": angle, "freq": freq}


def _render(rng: np.random.Generator, params: dict, n: int, size: int) -> np.ndarray:
    """n images of one class as uint8 [n, 3, size, size]."""
    yy, xx = np.meshgrid(np.linspace(0, 1, size, dtype=np.float32),
                         np.linspace(0, 1, size, dtype=np.float32), indexing="ij")
    angle = params["angle"] + rng.normal(0, 0.15, n).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    proj = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * params["freq"] * proj + phase[:, None, None])  # [n,S,S]

    # Soft blobs give each image local structure beyond the global stripe pattern.
    blobs = np.zeros((n, size, size), dtype=np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(0, 1, (2, n)).astype(np.float32)
        radius = rng.uniform(0.08, 0.25, n).astype(np.float32)
        d2 = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2
        blobs += np.exp(-d2 / (2 * radius[:, None, None] ** 2)) * rng.uniform(-0.6, 0.6, n)[:, None, None]

    mix = np.clip(0.65 * stripes + blobs, 0, 1)[:, None]  # [n,1,S,S]
    img = (1 - mix) * params["base"][None, :, None, None] + mix * params["accent"][None, :, None, None]
    img = img * rng.uniform(0.7, 1.2, (n, 1, 1, 1)).astype(np.float32)  # brightness
    img = img + rng.normal(0, 0.04, img.shape).astype(np.float32)  # sensor-like noise
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_fake(
    n_classes: int = 3,
    n_train_per_class: int = 40,
    n_test_per_class: int = 20,
    image_size: int = 32,
    seed: int = 0,
) -> NaturalImages:
    """A deterministic generated dataset; images are grouped by class (class 0 first)."""
    if n_classes < 1 or n_train_per_class < 0 or n_test_per_class < 0 or image_size < 2:
        raise ValueError("make_fake needs n_classes >= 1, non-negative counts and image_size >= 2")
    rng = np.random.default_rng(seed)
    splits = {}
    for split, per_class in (("train", n_train_per_class), ("test", n_test_per_class)):
        images, labels = [], []
        for c in range(n_classes):
            images.append(_render(rng, _class_params(c, n_classes), per_class, image_size))
            labels.append(np.full(per_class, c, dtype=np.int64))
        splits[split] = (np.concatenate(images), np.concatenate(labels))
    return NaturalImages(
        name="fake",
        class_names=[f"class{c}" for c in range(n_classes)],
        train_images=torch.from_numpy(splits["train"][0]),
        train_labels=torch.from_numpy(splits["train"][1]),
        test_images=torch.from_numpy(splits["test"][0]),
        test_labels=torch.from_numpy(splits["test"][1]),
        source={
            "dataset": "fake",
            "layout": "generated",
            "seed": seed,
            "n_classes": n_classes,
            "n_train": n_classes * n_train_per_class,
            "n_test": n_classes * n_test_per_class,
            "image_size": image_size,
            "cache_path": None,
            "cache_hit": False,
        },
    )


class FakeImages:
    """The source `dataset=fake` builds: `make_fake` with the node's keys (seed 0)."""

    def __init__(self, image_size: int, n_classes: int, n_train_per_class: int, n_test_per_class: int):
        self.kwargs = {"n_classes": n_classes, "n_train_per_class": n_train_per_class,
                       "n_test_per_class": n_test_per_class, "image_size": image_size}

    def load(self, progress: bool = True) -> NaturalImages:
        return make_fake(**self.kwargs)

    def planned_counts(self) -> PoolCounts:
        n_classes = self.kwargs["n_classes"]
        return PoolCounts((self.kwargs["n_train_per_class"],) * n_classes, (self.kwargs["n_test_per_class"],) * n_classes)
