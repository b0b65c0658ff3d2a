"""CIFAR-10 from a user-given `dataset.root`: the `dataset=cifar10` config node and its source.

Two layouts are recognised, at `root` itself or one folder below it (e.g. `root/cifar10-jpeg/`):

* ``torchvision-pickle``: torchvision's `cifar-10-batches-py/` with `data_batch_1` ... `data_batch_5`,
  `test_batch` and `batches.meta` (python pickles), read with pickle/numpy (no image decoding); with
  `download=True` and no layout present, torchvision downloads and extracts it into `root`.
* ``image-folder``: `{train,test}/<class name>/*.jpg|*.jpeg|*.png` with the ten class folders
  named as in `CIFAR10_CLASSES`, decoded with PIL to RGB uint8 in a fixed order (classes in
  `CIFAR10_CLASSES` order, files sorted by name). Every image must be 32 x 32.

Class index order is torchvision's (airplane=0 ... truck=9) for both layouts. Another
`image_size` than the native 32 is an antialiased bilinear resize (torch) of the 32 px images.
Both layouts go through the common loader and cache (loader.py).
"""

from __future__ import annotations

import logging
import pathlib
import pickle
from typing import ClassVar

import numpy as np

from dsvdd_repro.core.schema import config_node
from dsvdd_repro.data.errors import root_error
from dsvdd_repro.data.images import PoolCounts
from dsvdd_repro.data.source import (
    IMAGE_EXTENSIONS,
    FilesConfig,
    ImageSource,
    Pools,
    image_files,
    sub_folders,
)

log = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
NATIVE_SIZE = 32
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_BATCH = "batches.meta"
PICKLE_LAYOUT, FOLDER_LAYOUT = "torchvision-pickle", "image-folder"


@config_node("dataset", "cifar10")
class CIFAR10Config(FilesConfig):
    """CIFAR-10: torchvision's cifar-10-batches-py/ or image folders {train,test}/<class>/*.jpg.
    The root defaults to $DSVDD_CIFAR10_ROOT so that CI and `make` can point at the offline copy."""

    # known before any file is read: config.validate checks the setup's class indices against it
    n_classes: ClassVar[int] = len(CIFAR10_CLASSES)

    _target_: str = "dsvdd_repro.data.cifar10.CIFAR10"
    name: str = "cifar10"
    root: str | None = "${oc.env:DSVDD_CIFAR10_ROOT,null}"  # download: cifar-10-python.tar.gz


def _layout_at(folder: pathlib.Path) -> pathlib.Path | None:
    """The dataset folder if `folder` looks like one of the layouts (complete or not)."""
    if (folder / BATCHES_DIR).is_dir():
        return folder / BATCHES_DIR
    if folder.name == BATCHES_DIR or (folder / META_BATCH).is_file() or (folder / TEST_BATCH).is_file():
        return folder
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return folder
    return None


def _layout_of(folder: pathlib.Path) -> str:
    return FOLDER_LAYOUT if (folder / "train").is_dir() or (folder / "test").is_dir() else PICKLE_LAYOUT


def _unpickle(path: pathlib.Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def read_batches(folder: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pickles' (uint8 [N, 3, 32, 32] images, int64 labels) per split "train", "test"."""
    try:
        meta = _unpickle(folder / META_BATCH)
        names = tuple(n.decode() if isinstance(n, bytes) else n for n in meta[b"label_names"])
    except Exception as exc:  # noqa: BLE001
        raise root_error(folder, f"cannot read {META_BATCH} ({type(exc).__name__}: {exc})") from exc
    if names != CIFAR10_CLASSES:
        raise root_error(
            folder, f"{META_BATCH} lists classes {list(names)}, expected {list(CIFAR10_CLASSES)}"
        )

    def read(batch_names) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for name in batch_names:
            try:
                batch = _unpickle(folder / name)
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                lab = np.asarray(batch[b"labels"], dtype=np.int64)
            except Exception as exc:  # noqa: BLE001
                raise root_error(folder, f"cannot read {name} ({type(exc).__name__}: {exc})") from exc
            if data.ndim != 2 or data.shape[1] != 3 * NATIVE_SIZE * NATIVE_SIZE or len(lab) != len(data):
                raise root_error(folder, f"{name} holds data of shape {data.shape} with {len(lab)} labels, "
                                         f"expected [N, {3 * NATIVE_SIZE * NATIVE_SIZE}] and N labels")
            if lab.size and (lab.min() < 0 or lab.max() >= len(CIFAR10_CLASSES)):
                raise root_error(folder, f"{name} holds labels outside 0..{len(CIFAR10_CLASSES) - 1}")
            images.append(data.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE))
            labels.append(lab)
        return np.concatenate(images), np.concatenate(labels)

    return {"train": read(TRAIN_BATCHES), "test": read((TEST_BATCH,))}


class CIFAR10(ImageSource):
    """CIFAR-10 (50,000 train / 10,000 test); see the module docstring."""

    name = "cifar10"
    title = "CIFAR-10"
    unset_root = (
        "dataset.root is not set: pass dataset.root=<folder> (torchvision's cifar-10-batches-py/ "
        "or train/ and test/ class folders), or set DSVDD_CIFAR10_ROOT; add dataset.download=true "
        "to download it there"
    )
    can_download = True
    native_size = NATIVE_SIZE
    format_version = 2

    def planned_counts(self) -> PoolCounts:
        return PoolCounts((5000,) * 10, (1000,) * 10, self.val_from, self.default_val_fraction)

    def expected(self) -> str:
        return (
            f"expected torchvision's {BATCHES_DIR}/ or train/ and test/ folders with one sub-folder per "
            "class: " + ", ".join(CIFAR10_CLASSES)
        )

    def locate(self, root: pathlib.Path) -> pathlib.Path | None:
        found = _layout_at(root)
        if found is not None:
            return found
        candidates = [hit for hit in map(_layout_at, sub_folders(root)) if hit is not None]
        if len(candidates) > 1:
            log.warning("several CIFAR-10 copies under %s: %s; using the first",
                        root, ", ".join(map(str, candidates)))
        return candidates[0] if candidates else None

    def fetch(self, root: pathlib.Path) -> None:
        import torchvision

        try:
            for train in (True, False):
                torchvision.datasets.CIFAR10(str(root), train=train, download=True)
        except Exception as exc:  # noqa: BLE001 - any failure (network, checksum, disk) means the same to the user
            raise root_error(
                root,
                f"downloading CIFAR-10 failed ({type(exc).__name__}: {exc}); without internet, extract "
                f"cifar-10-python.tar.gz into {root} (giving {root / BATCHES_DIR}/), or point dataset.root "
                "at an image-folder copy with train/ and test/ class folders",
            ) from exc

    def pools(self, folder: pathlib.Path) -> Pools:
        if _layout_of(folder) == PICKLE_LAYOUT:
            return self._pickle_pools(folder)
        return self._folder_pools(folder)

    def _pickle_pools(self, folder: pathlib.Path) -> Pools:
        names = (*TRAIN_BATCHES, TEST_BATCH, META_BATCH)
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise root_error(
                folder,
                f"incomplete {BATCHES_DIR}: missing {', '.join(missing)} (expected {', '.join(names)}); "
                "re-extract cifar-10-python.tar.gz or set dataset.download=true",
            )
        return Pools(
            PICKLE_LAYOUT, list(CIFAR10_CLASSES), read=lambda: read_batches(folder), key_files=list(names)
        )

    def _folder_pools(self, folder: pathlib.Path) -> Pools:
        files, labels = {}, {}
        for split in ("train", "test"):
            split_dir = folder / split
            if not split_dir.is_dir():
                raise root_error(folder, f"missing {split}/ folder; {self.expected()}")
            present = {p.name for p in sub_folders(split_dir)}
            missing = [c for c in CIFAR10_CLASSES if c not in present]
            if missing:
                raise root_error(
                    folder, f"{split}/ is missing class folder(s) {', '.join(missing)}; {self.expected()}"
                )
            extra = sorted(present - set(CIFAR10_CLASSES))
            if extra:
                log.warning("ignoring non-CIFAR-10 folder(s) in %s: %s", split_dir, ", ".join(extra))
            files[split], labels[split] = [], []
            for index, cls in enumerate(CIFAR10_CLASSES):
                found = image_files(split_dir / cls, prefix=f"{split}/{cls}/")
                if not found:
                    patterns = ", ".join("*" + x for x in IMAGE_EXTENSIONS)
                    raise root_error(
                        folder, f"class folder {split}/{cls}/ holds no images (expected {patterns} files)"
                    )
                files[split] += found
                labels[split] += [index] * len(found)
        return Pools(FOLDER_LAYOUT, list(CIFAR10_CLASSES), files=files,
                     labels={s: np.array(v, dtype=np.int64) for s, v in labels.items()})
