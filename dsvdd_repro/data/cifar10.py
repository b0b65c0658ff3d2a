"""CIFAR-10 from a user-given `dataset.root`.

Two layouts are recognised, at `root` itself or one folder below it (e.g. `root/cifar10-jpeg/`):

* ``torchvision-pickle``: torchvision's `cifar-10-batches-py/` with `data_batch_1` ... `data_batch_5`,
  `test_batch` and `batches.meta` (python pickles). Read directly with pickle/numpy; with
  `download=True` and no layout present, torchvision downloads and extracts it into `root`.
* ``image-folder``: `{train,test}/<class name>/*.jpg|*.jpeg|*.png` with the ten class folders
  named as in `CIFAR10_CLASSES`. Decoded once with PIL to RGB uint8, in a fixed order (classes in
  `CIFAR10_CLASSES` order, files sorted by name), and cached with `cached_arrays`.

Cache key (image-folder, and torchvision-pickle when `image_size` != 32): the format version, the
layout, the resolved dataset folder, `image_size`, and a fingerprint of the source file listing
(relative paths, sizes, mtime_ns), so an edited folder is decoded again. Class index order is
torchvision's (airplane=0 ... truck=9) for both layouts.
"""

from __future__ import annotations

import logging
import os
import pathlib
import pickle
import time

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cached_arrays, default_cache_root, fingerprint
from .errors import DatasetRootError
from .imagefiles import locate_root, map_chunks
from .images import NaturalImages

log = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
NATIVE_SIZE = 32
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_BATCH = "batches.meta"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Bump when the decoded content for the same files would change (decoder, ordering, resizing).
FORMAT_VERSION = 1

_EXPECTED = (
    f"expected torchvision's {BATCHES_DIR}/ or train/ and test/ folders with one sub-folder per class: "
    + ", ".join(CIFAR10_CLASSES)
)
# Below this many images a worker pool costs more than it saves.
_POOL_MIN_IMAGES = 4000
_POOL_WORKERS = 2
_CHUNK = 1000


def _err(path, problem: str) -> DatasetRootError:
    return DatasetRootError(f"dataset.root={path}: {problem}")


# ---------------------------------------------------------------------------------------------------
# layout detection


def _layout_at(folder: pathlib.Path) -> tuple[str, pathlib.Path] | None:
    """(layout, dataset folder) if `folder` looks like one of the layouts (complete or not)."""
    if (folder / BATCHES_DIR).is_dir():
        return "torchvision-pickle", folder / BATCHES_DIR
    if folder.name == BATCHES_DIR or (folder / META_BATCH).is_file() or (folder / TEST_BATCH).is_file():
        return "torchvision-pickle", folder
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return "image-folder", folder
    return None


def _find_layout(root: pathlib.Path) -> tuple[str, pathlib.Path] | None:
    found = _layout_at(root)
    if found is not None:
        return found
    candidates = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        hit = _layout_at(sub)
        if hit is not None:
            candidates.append(hit)
    if len(candidates) > 1:
        log.warning("several CIFAR-10 copies under %s: %s; using the first", root,
                    ", ".join(str(c[1]) for c in candidates))
    return candidates[0] if candidates else None


def _download(root: pathlib.Path) -> None:
    import torchvision

    try:
        for train in (True, False):
            torchvision.datasets.CIFAR10(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - any failure (network, checksum, disk) means the same to the user
        raise _err(
            root,
            f"downloading CIFAR-10 failed ({type(exc).__name__}: {exc}); without internet, extract "
            f"cifar-10-python.tar.gz into {root} (giving {root / BATCHES_DIR}/), or point dataset.root "
            "at an image-folder copy with train/ and test/ class folders",
        ) from exc


# ---------------------------------------------------------------------------------------------------
# torchvision pickle layout


def _unpickle(path: pathlib.Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def _pickle_files(folder: pathlib.Path) -> list[pathlib.Path]:
    names = (*TRAIN_BATCHES, TEST_BATCH, META_BATCH)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise _err(
            folder,
            f"incomplete {BATCHES_DIR}: missing {', '.join(missing)} (expected {', '.join(names)}); "
            "re-extract cifar-10-python.tar.gz or set dataset.download=true",
        )
    return [folder / n for n in names]


def _read_pickle_layout(folder: pathlib.Path) -> dict[str, np.ndarray]:
    _pickle_files(folder)
    try:
        meta = _unpickle(folder / META_BATCH)
        names = tuple(n.decode() if isinstance(n, bytes) else n for n in meta[b"label_names"])
    except Exception as exc:  # noqa: BLE001
        raise _err(folder, f"cannot read {META_BATCH} ({type(exc).__name__}: {exc})") from exc
    if names != CIFAR10_CLASSES:
        raise _err(folder, f"{META_BATCH} lists classes {list(names)}, expected {list(CIFAR10_CLASSES)}")

    def read(batch_names) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for name in batch_names:
            try:
                batch = _unpickle(folder / name)
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                lab = np.asarray(batch[b"labels"], dtype=np.int64)
            except Exception as exc:  # noqa: BLE001
                raise _err(folder, f"cannot read {name} ({type(exc).__name__}: {exc})") from exc
            if data.ndim != 2 or data.shape[1] != 3 * NATIVE_SIZE * NATIVE_SIZE or len(lab) != len(data):
                raise _err(folder, f"{name} holds data of shape {data.shape} with {len(lab)} labels, "
                                   f"expected [N, {3 * NATIVE_SIZE * NATIVE_SIZE}] and N labels")
            if lab.size and (lab.min() < 0 or lab.max() >= len(CIFAR10_CLASSES)):
                raise _err(folder, f"{name} holds labels outside 0..{len(CIFAR10_CLASSES) - 1}")
            images.append(data.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE))
            labels.append(lab)
        return np.concatenate(images), np.concatenate(labels)

    train_x, train_y = read(TRAIN_BATCHES)
    test_x, test_y = read((TEST_BATCH,))
    return {"train_images": train_x, "train_labels": train_y, "test_images": test_x, "test_labels": test_y}


# ---------------------------------------------------------------------------------------------------
# image-folder layout


def _list_image_folder(folder: pathlib.Path) -> dict[str, list[tuple[str, int, int, int]]]:
    """Per split, the (relative path, class index, size, mtime_ns) of every image, in load order."""
    listing: dict[str, list[tuple[str, int, int, int]]] = {}
    for split in ("train", "test"):
        split_dir = folder / split
        if not split_dir.is_dir():
            raise _err(folder, f"missing {split}/ folder; {_EXPECTED}")
        present = {p.name for p in split_dir.iterdir() if p.is_dir()}
        missing = [c for c in CIFAR10_CLASSES if c not in present]
        if missing:
            raise _err(folder, f"{split}/ is missing class folder(s) {', '.join(missing)}; {_EXPECTED}")
        extra = sorted(n for n in present - set(CIFAR10_CLASSES) if not n.startswith("."))
        if extra:
            log.warning("ignoring non-CIFAR-10 folder(s) in %s: %s", split_dir, ", ".join(extra))
        entries = []
        for idx, cls in enumerate(CIFAR10_CLASSES):
            files = []
            with os.scandir(split_dir / cls) as it:
                for e in it:
                    if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file():
                        st = e.stat()
                        files.append((f"{split}/{cls}/{e.name}", idx, st.st_size, st.st_mtime_ns))
            if not files:
                raise _err(folder, f"class folder {split}/{cls}/ holds no images "
                                   f"(expected {', '.join('*' + x for x in IMAGE_EXTENSIONS)} files)")
            files.sort(key=lambda f: f[0])
            entries.extend(files)
        listing[split] = entries
    return listing


def _decode_chunk(args: tuple[str, list[str]]) -> np.ndarray:
    """Decode files (relative to a folder) to uint8 [n, 3, 32, 32]; runs in pool workers."""
    from PIL import Image

    folder, rel_paths = args
    out = np.empty((len(rel_paths), NATIVE_SIZE, NATIVE_SIZE, 3), dtype=np.uint8)
    for i, rel in enumerate(rel_paths):
        path = os.path.join(folder, rel)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as exc:  # noqa: BLE001
            raise _err(folder, f"cannot decode {rel} ({type(exc).__name__}: {exc})") from exc
        if arr.shape != (NATIVE_SIZE, NATIVE_SIZE, 3):
            raise _err(folder, f"{rel} is {arr.shape[1]}x{arr.shape[0]}, "
                               f"CIFAR-10 images must be {NATIVE_SIZE}x{NATIVE_SIZE}")
        out[i] = arr
    return out.transpose(0, 3, 1, 2)


def _decode_images(folder: pathlib.Path, rel_paths: list[str], desc: str = "decoding") -> np.ndarray:
    """Decode all files to uint8 [N, 3, 32, 32] in the given order, with a progress bar."""
    chunks = [(str(folder), rel_paths[i:i + _CHUNK]) for i in range(0, len(rel_paths), _CHUNK)]
    out = np.empty((len(rel_paths), 3, NATIVE_SIZE, NATIVE_SIZE), dtype=np.uint8)
    workers = min(_POOL_WORKERS, os.cpu_count() or 1) if len(rel_paths) >= _POOL_MIN_IMAGES else 1
    pos = 0
    for arr in map_chunks(_decode_chunk, chunks, [len(c[1]) for c in chunks], desc, workers):
        out[pos:pos + len(arr)] = arr
        pos += len(arr)
    return out


def _read_image_folder(folder: pathlib.Path, listing) -> dict[str, np.ndarray]:
    arrays = {}
    for split in ("train", "test"):
        entries = listing[split]
        arrays[f"{split}_images"] = _decode_images(folder, [e[0] for e in entries], desc=f"CIFAR-10 {split}")
        arrays[f"{split}_labels"] = np.array([e[1] for e in entries], dtype=np.int64)
    return arrays


# ---------------------------------------------------------------------------------------------------
# resizing


def resize_uint8(images: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """Antialiased bilinear resize of uint8 [N, 3, H, W] to [N, 3, size, size], in chunks."""
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for i in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + chunk])).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i:i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def _resized(arrays: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    if size == NATIVE_SIZE:
        return arrays
    return {k: resize_uint8(v, size) if k.endswith("_images") else v for k, v in arrays.items()}


# ---------------------------------------------------------------------------------------------------
# entry point


def load_cifar10(
    root: str,
    download: bool = False,
    image_size: int = 32,
    cache_dir: str | None = None,
) -> NaturalImages:
    """CIFAR-10 (50,000 train / 10,000 test) from `root` as uint8 tensors; see the module docstring."""
    if int(image_size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    image_size = int(image_size)
    root_path, found = locate_root(root, _find_layout, _download if download else None, _err, _EXPECTED, "CIFAR-10")
    layout, folder = found
    folder = folder.resolve()

    t0 = time.perf_counter()
    cache_path, cache_hit = None, False
    if layout == "torchvision-pickle" and image_size == NATIVE_SIZE:
        # Reading the pickles is as fast as reading a cache, so they are not cached.
        arrays = _read_pickle_layout(folder)
    else:
        if layout == "torchvision-pickle":
            files = _pickle_files(folder)
            listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]

            def build():
                return _resized(_read_pickle_layout(folder), image_size)
        else:
            split_listing = _list_image_folder(folder)
            listing = [e[:1] + e[2:] for split in ("train", "test") for e in split_listing[split]]

            def build():
                return _resized(_read_image_folder(folder, split_listing), image_size)

        key = {
            "format_version": FORMAT_VERSION,
            "dataset": "cifar10",
            "layout": layout,
            "root": str(folder),
            "image_size": image_size,
            "listing": fingerprint(listing),
        }
        arrays, info = cached_arrays(default_cache_root(cache_dir), f"cifar10-{image_size}", key, build)
        cache_path, cache_hit = info["cache_path"], info["cache_hit"]

    source = {
        "dataset": "cifar10",
        "layout": layout,
        "root": str(folder),
        "requested_root": str(root_path),
        "cache_path": cache_path,
        "cache_hit": cache_hit,
        "n_train": int(len(arrays["train_labels"])),
        "n_test": int(len(arrays["test_labels"])),
        "image_size": image_size,
    }
    log.info(
        "CIFAR-10: layout=%s root=%s image_size=%d cache=%s (%s) train=%d test=%d in %.1fs",
        layout, folder, image_size, cache_path, "hit" if cache_hit else ("miss" if cache_path else "not used"),
        source["n_train"], source["n_test"], time.perf_counter() - t0,
    )
    return NaturalImages(
        name="cifar10",
        class_names=list(CIFAR10_CLASSES),
        train_images=torch.from_numpy(np.ascontiguousarray(arrays["train_images"])),
        train_labels=torch.from_numpy(np.ascontiguousarray(arrays["train_labels"])).long(),
        test_images=torch.from_numpy(np.ascontiguousarray(arrays["test_images"])),
        test_labels=torch.from_numpy(np.ascontiguousarray(arrays["test_labels"])).long(),
        source=source,
    )
