"""The in-memory form every dataset source produces: decoded uint8 images, never re-decoded."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class NaturalImages:
    """A dataset's natural (unaltered) images, decoded once.

    `*_images` are uint8 tensors of shape [N, 3, H, W] (H = W = the dataset's image size);
    `*_labels` are int64 class indices into `class_names`. `source` records what was really
    read (layout, root, cache file), so that a run's provenance can say it.
    """

    name: str
    class_names: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"{split}_images must be uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"{split}_labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])
