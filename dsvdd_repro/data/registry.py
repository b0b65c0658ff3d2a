"""Dataset name -> natural images. Each source decodes once and caches (see data/cache.py)."""

from __future__ import annotations

from omegaconf import DictConfig

from .errors import DatasetRootError
from .images import NaturalImages


def load_natural_images(dataset: DictConfig) -> NaturalImages:
    if dataset.name == "fake":
        from .fake import make_fake

        return make_fake(
            n_classes=dataset.n_classes,
            n_train_per_class=dataset.n_train_per_class,
            n_test_per_class=dataset.n_test_per_class,
            image_size=dataset.image_size,
        )
    if dataset.name == "cifar10":
        from .cifar10 import load_cifar10

        if not dataset.root:
            raise DatasetRootError(
                "dataset.root is not set: pass dataset.root=<folder> (torchvision's cifar-10-batches-py/ "
                "or train/ and test/ class folders), or set DSVDD_CIFAR10_ROOT; add dataset.download=true "
                "to download it there"
            )
        return load_cifar10(
            dataset.root, download=dataset.download, image_size=dataset.image_size, cache_dir=dataset.cache_dir
        )
    if dataset.name == "voc2012":
        from .voc2012 import load_voc2012

        if not dataset.root:
            raise DatasetRootError(
                "dataset.root is not set: pass dataset.root=<folder holding VOCdevkit/VOC2012> or set "
                "DSVDD_VOC2012_ROOT; add dataset.download=true to download VOC2012 there with torchvision "
                "(~2 GB)"
            )
        return load_voc2012(
            dataset.root, download=dataset.download, image_size=dataset.image_size, cache_dir=dataset.cache_dir
        )
    if dataset.name == "wikiart":
        from .wikiart import ARTGAN_URL, load_wikiart

        if not dataset.root:
            raise DatasetRootError(
                "dataset.root is not set: pass dataset.root=<folder holding the WikiArt style folders> or "
                f"set DSVDD_WIKIART_ROOT (WikiArt cannot be downloaded automatically: see {ARTGAN_URL})"
            )
        return load_wikiart(
            dataset.root, styles=list(dataset.styles), require_all_styles=dataset.require_all_styles,
            image_size=dataset.image_size, cache_dir=dataset.cache_dir, download=dataset.download,
        )
    raise DatasetRootError(f"dataset={dataset.name!r} has no loader")
