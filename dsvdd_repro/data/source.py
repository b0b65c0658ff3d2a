"""The contract of a dataset source read from a user's folder, and the helpers sources share.

A source (CIFAR-10, VOC2012, WikiArt, a user's image folder) says only what is particular to its
dataset: how to get the data when `dataset.root` is not set, where its files are under the root, the
given train and test pools of (file, label) (or, for files that hold arrays, how to read them), the
class names, and how validation is drawn (`val_from`, `default_val_fraction`). Everything else,
the same for every source (root checks, download, cache key, decoding, the decode-once cache,
provenance, the log line), is done once by `loader.load_images`.
"""

from __future__ import annotations

import abc
import os
import pathlib
import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dsvdd_repro.core.schema import positive
from dsvdd_repro.data.images import NaturalImages, PoolCounts
from dsvdd_repro.data.loader import Pools, load_images
from dsvdd_repro.data.protocols import share_count

# The one list of image files, for every file source (`image_files`) and the scorer (`find_images`):
# the formats Pillow decodes without plugins (decode.decode_one), matched in any case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclass
class FilesConfig:
    """The keys of a `dataset` node whose source reads files from `root` (subclassed by each such
    node, which sets `_target_`, `name` and its own defaults)."""

    root: str | None = None
    # fetch the dataset into root with torchvision when no layout is there (where it can be had)
    download: bool = False
    image_size: int = 32
    # the decoded-image cache; null = $DSVDD_CACHE_DIR, else ~/.cache/dsvdd_repro
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        positive("image_size", self.image_size)

class ImageSource(abc.ABC):
    """A dataset under `root`, decoded at `image_size` into the cache under `cache_dir`.

    The arguments come from the dataset's config node, whose dataclass checks them. Subclasses set
    the class attributes and implement `expected`, `locate` and `pools`; `fetch` when they can
    download (`can_download`).
    """

    name: ClassVar[str]  # the dataset option, e.g. "cifar10": NaturalImages.name and cache entry names
    title: ClassVar[str]  # the dataset's name in messages, e.g. "CIFAR-10"
    unset_root: ClassVar[str]  # the one-line error when dataset.root is not set: the env var, how to get it
    can_download: ClassVar[bool] = False
    # The alteration protocol's validation pool and share (see NaturalImages).
    val_from: ClassVar[str] = "train"
    default_val_fraction: float = 0.2
    # Set for datasets whose images all have one size (CIFAR-10: 32): files must have it, and other
    # image sizes are resized from it with torch (decode.resize_uint8) instead of PIL.
    native_size: ClassVar[int | None] = None
    # Bump when the decoded content for the same files would change (decoder, ordering, resizing, split).
    format_version: ClassVar[int] = 1

    def __init__(self, root: str | None, image_size: int, cache_dir: str | None, download: bool):
        self.root, self.image_size = root, int(image_size)
        self.cache_dir, self.download = cache_dir, bool(download)

    @abc.abstractmethod
    def expected(self) -> str:
        """What the root must hold and how to get it, for the error messages."""

    @abc.abstractmethod
    def locate(self, root: pathlib.Path) -> pathlib.Path | None:
        """The dataset folder under the existing folder `root`, or None when it is not there."""

    @abc.abstractmethod
    def pools(self, folder: pathlib.Path) -> Pools:
        """The given pools in `folder` (what `locate` found); DatasetRootError when incomplete."""

    def no_layout(self, root: pathlib.Path) -> str:
        """Why `root` (an existing folder) holds no dataset, for the error message."""
        return f"holds no {self.title} layout"

    def planned_counts(self) -> PoolCounts | None:
        """The full dataset's pool sizes, for the cost plan (None: unknown without reading the folder)."""
        return None

    def fetch(self, root: pathlib.Path) -> None:
        """Download the dataset into `root` (only called when `can_download`)."""
        raise NotImplementedError

    def load(self, progress: bool = True) -> NaturalImages:
        """The decoded natural images (decoded once, then read from the cache)."""
        return load_images(self, progress)


def is_hidden(name: str) -> bool:
    """A hidden file or folder name (a leading dot: .git, .DS_Store, ._x.jpg), never read as data."""
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    """A visible file name with one of IMAGE_EXTENSIONS, in any case (x.JPG is an image)."""
    return not is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: pathlib.Path, prefix: str = "") -> list[str]:
    """The image files directly in `folder` (`is_image_name`) as sorted `prefix + name`."""
    with os.scandir(folder) as it:
        names = [e.name for e in it if is_image_name(e.name) and e.is_file()]
    return sorted(prefix + n for n in names)


def sub_folders(folder: pathlib.Path) -> list[pathlib.Path]:
    """The visible sub-folders of `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p.name))


def find_images(path: pathlib.Path) -> list[pathlib.Path]:
    """The images a user named (the scorer's inputs), sorted.

    A path that is not a folder is returned as given, whatever its extension: the user named that
    file (whether it exists and decodes is the caller's to report). A folder is searched
    recursively for `is_image_name` files, skipping every hidden file and folder below it (the
    given folder itself may be hidden: the user named it); symbolic links to folders are not followed.
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        return [path]
    found = []
    for parent, folders, names in os.walk(path):
        folders[:] = [name for name in folders if not is_hidden(name)]  # os.walk descends only into these
        found += [pathlib.Path(parent, name) for name in names
                  if is_image_name(name) and os.path.isfile(os.path.join(parent, name))]
    return sorted(found)


def seeded_split(files: list[str], test_share: float, seed: int, stream: str) -> tuple[list[str], list[str]]:
    """(train, test) of one class's files: a fixed share `test_share` (rounded) to test, drawn by a
    numpy generator seeded with (seed, crc32(stream)), so the split is the same on every run and
    machine and does not depend on the other classes or the run's seed."""
    order = np.random.default_rng([seed, zlib.crc32(stream.encode("utf-8"))]).permutation(len(files))
    n_test = share_count(test_share, len(files))
    return [files[i] for i in order[n_test:]], [files[i] for i in order[:n_test]]
