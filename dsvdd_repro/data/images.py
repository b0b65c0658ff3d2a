"""The in-memory form every dataset source produces: decoded uint8 images, never re-decoded."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class NaturalImages:
    """A dataset's natural (unaltered) images, decoded once.

    `*_images` are uint8 tensors of shape [N, 3, H, W] (H = W = the dataset's image size); for
    VOC2012 and WikiArt they are zero-copy views of a copy-on-write memory map of the on-disk cache, so
    concurrent runs share the page cache and only the rows a batch indexes are read. `*_labels` are
    int64 class indices into `class_names`. `source` records what was really read (layout, root,
    cache file), so that a run's provenance can say it.

    The alteration protocol takes its validation set from the pool `val_from` names ("train": a
    share of the given train set, CIFAR-10 and WikiArt; "test": a share of the given val/test set,
    VOC2012) with `default_val_fraction` of that pool unless `setup.val_fraction` overrides it.
    `mmap_dir`, when set, is a folder where large per-run arrays (the altered counterparts) are kept
    in unlinked memory-mapped files instead of anonymous memory; None keeps them in RAM.
    """

    name: str
    class_names: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: dict = field(default_factory=dict)
    val_from: str = "train"
    default_val_fraction: float = 0.2
    mmap_dir: str | None = None

    def __post_init__(self) -> None:
        if self.val_from not in ("train", "test"):
            raise ValueError(f"val_from must be 'train' or 'test', got {self.val_from!r}")
        if not 0.0 < self.default_val_fraction < 1.0:
            raise ValueError(f"default_val_fraction must be in (0, 1), got {self.default_val_fraction}")
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            # torch tensors; numpy arrays (e.g. memory maps) are accepted too, protocols index both
            if images.dtype not in (torch.uint8, np.uint8) or images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(
                    f"{split}_images must be uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
                )
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"{split}_labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}"
                )

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])


@dataclass(frozen=True)
class PoolCounts:
    """How many images a dataset's given train and test pools hold per class, and its alteration
    validation rule: what the cost plan (dsvdd_repro/sweeps/plan.py) counts a protocol's splits from without
    reading any image. Each source states its full dataset's (`ImageSource.paper_counts`)."""

    train_per_class: tuple[int, ...]
    test_per_class: tuple[int, ...]
    val_from: str = "train"
    default_val_fraction: float = 0.2
