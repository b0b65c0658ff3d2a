"""The one loader of every file-based source (source.ImageSource): root -> NaturalImages.

Steps, the same for every dataset: check `dataset.root` (unset, missing, not a folder, no dataset
under it: one line each, naming the root and what is expected) and download into it when the source
can and `dataset.download=true`; ask the source for its pools; key the cache entry by the format
version, the layout, the resolved dataset folder, the image size, the class names, the source's own
key parts and a fingerprint of every file's (path, size, mtime_ns), so an edited folder is decoded
again; on a miss decode (or read) the pools into the cache (cache.cached_image_arrays); record the
provenance (`NaturalImages.source`) and log one line.
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
import torch

from dsvdd_repro.data import decode
from dsvdd_repro.data.cache import ImageArrays, cached_image_arrays, fingerprint
from dsvdd_repro.data.errors import DatasetRootError, root_error
from dsvdd_repro.data.images import NaturalImages
from dsvdd_repro.storage.locations import default_cache_root

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
PIL_RESIZE = "square, PIL bilinear (antialiased), aspect ratio not kept"
# Rows resized at once by array sources (decode.resize_uint8).
_RESIZE_CHUNK = 2048


@dataclass
class Pools:
    """What a source found in its dataset folder: the given train and test pools.

    A file source sets `files` (per split "train"/"test", paths relative to the folder, in load
    order) and `labels` (int64 class indices, one per file). A source whose files hold decoded
    arrays (CIFAR-10's pickles) sets `read` instead: it returns, per split, (uint8 [N, 3, h, w]
    images, labels), and is only called when the cache has no entry. `key_files` are further files
    whose size and mtime identify the content (list files, split files, pickles); `key` and `source`
    are the source's own cache key parts and provenance fields; `log` is appended to the log line.
    """

    layout: str
    class_names: list[str]
    files: dict[str, list[str]] | None = None
    labels: dict[str, np.ndarray] | None = None
    read: Callable[[], dict[str, tuple[np.ndarray, np.ndarray]]] | None = None
    key_files: list[str] = field(default_factory=list)
    key: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    log: str = ""

    def __post_init__(self) -> None:
        if (self.files is None) == (self.read is None):
            raise ValueError("Pools needs either files (with labels) or read")
        if self.files is not None:
            splits = {"train", "test"}
            if self.labels is None or set(self.files) != splits or set(self.labels) != splits:
                raise ValueError("Pools.files and Pools.labels must both give the splits train and test")
            for split, files in self.files.items():
                if len(self.labels[split]) != len(files):
                    raise ValueError(f"{split}: {len(files)} files but {len(self.labels[split])} labels")


class ImageSource(Protocol):
    """What the loader asks of a source (implemented by source.ImageSource, which calls the loader)."""

    name: ClassVar[str]
    title: ClassVar[str]
    unset_root: ClassVar[str]
    can_download: ClassVar[bool]
    val_from: ClassVar[str]
    default_val_fraction: float
    native_size: ClassVar[int | None]
    format_version: ClassVar[int]
    root: str | None
    image_size: int
    cache_dir: str | None
    download: bool

    def expected(self) -> str: ...
    def locate(self, root: pathlib.Path) -> pathlib.Path | None: ...
    def pools(self, folder: pathlib.Path) -> Pools: ...
    def no_layout(self, root: pathlib.Path) -> str: ...
    def fetch(self, root: pathlib.Path) -> None: ...


def locate(source: ImageSource) -> tuple[pathlib.Path, pathlib.Path]:
    """(resolved root, dataset folder) of a source, downloading first when asked and possible."""
    if source.root is None or str(source.root).strip() == "":
        raise DatasetRootError(source.unset_root)
    root = pathlib.Path(source.root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise root_error(root, f"is not a folder; {source.expected()}")
    if source.download and not source.can_download:
        log.warning("%s: dataset.download=true has no effect (no automatic download); reading %s",
                    source.title, root)
    found = source.locate(root) if root.is_dir() else None
    if found is None and source.download and source.can_download:
        log.info("%s not found under %s; downloading with torchvision", source.title, root)
        root.mkdir(parents=True, exist_ok=True)
        source.fetch(root)
        found = source.locate(root)
        if found is None:
            raise root_error(
                root, f"download finished but no {source.title} layout appeared; {source.expected()}"
            )
    if found is None:
        problem = "does not exist" if not root.exists() else source.no_layout(root)
        hint = "; set dataset.download=true to download" if source.can_download else ""
        raise root_error(root, f"{problem}; {source.expected()}{hint}")
    return root, found.resolve()


def file_listing(folder: pathlib.Path, rel_paths: Iterable[str]) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of each file, for cache keys; a missing file is an error."""
    listing = []
    for rel in rel_paths:
        try:
            st = os.stat(os.path.join(folder, rel))
        except OSError as exc:
            raise root_error(folder, f"cannot read {rel} ({exc.strerror})") from exc
        listing.append((rel, st.st_size, st.st_mtime_ns))
    return listing


def _cache_key(source: ImageSource, folder: pathlib.Path, pools: Pools) -> dict:
    files = pools.files or {}
    listing = {
        **{split: file_listing(folder, files[split]) for split in files},
        "other": file_listing(folder, pools.key_files),
    }
    return {
        "format_version": source.format_version,
        "dataset": source.name,
        "layout": pools.layout,
        "root": str(folder),
        "image_size": source.image_size,
        "class_names": list(pools.class_names),
        **pools.key,
        "listing": fingerprint(listing),
    }


def _resized(images: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK]
        yield chunk if chunk.shape[-2:] == (size, size) else decode.resize_uint8(chunk, size)


def _to_build(source: ImageSource, folder: pathlib.Path, pools: Pools, progress: bool) -> ImageArrays:
    """How the cache entry is filled on a miss: decode the files, or read the arrays and resize them."""
    size = source.image_size
    if pools.read is not None:
        arrays = pools.read()

        def chunks(name: str) -> Iterator[np.ndarray]:
            return _resized(arrays[name.split("_")[0]][0], size)

        shapes = {f"{split}_images": (len(arrays[split][0]), 3, size, size) for split in SPLITS}
        labels = {split: arrays[split][1] for split in SPLITS}
        small = {f"{s}_labels": np.asarray(labels[s], dtype=np.int64) for s in SPLITS}
        return ImageArrays(shapes, chunks, small)

    native = source.native_size

    def chunks(name: str) -> Iterator[np.ndarray]:
        split = name.split("_")[0]
        desc = f"{source.title} {split}"
        if native is None:
            return decode.iter_decoded(folder, pools.files[split], size, desc, progress)
        decoded = decode.iter_decoded(
            folder, pools.files[split], native, desc, progress, exact_name=source.title
        )
        return (c if native == size else decode.resize_uint8(c, size) for c in decoded)

    shapes = {f"{split}_images": (len(pools.files[split]), 3, size, size) for split in SPLITS}
    small = {f"{split}_labels": np.asarray(pools.labels[split], dtype=np.int64) for split in SPLITS}
    return ImageArrays(shapes, chunks, small)


def _resize_rule(source: ImageSource) -> str:
    native = source.native_size
    if native is None:
        return PIL_RESIZE
    if native == source.image_size:
        return f"none (native {native} px)"
    return f"torch bilinear (antialiased) from the native {native} px"


def load_images(source: ImageSource, progress: bool = True) -> NaturalImages:
    """The source's pools decoded at its image size, through the cache (see the module docstring)."""
    t0 = time.perf_counter()
    root, folder = locate(source)
    pools = source.pools(folder)
    key = _cache_key(source, folder, pools)
    cache_root = default_cache_root(source.cache_dir)
    entry = f"{source.name}-{source.image_size}"
    arrays, info = cached_image_arrays(
        cache_root, entry, key, lambda: _to_build(source, folder, pools, progress)
    )
    seconds = time.perf_counter() - t0
    provenance = {
        "dataset": source.name,
        "layout": pools.layout,
        "root": str(folder),
        "requested_root": str(root),
        **pools.source,
        "n_train": int(len(arrays["train_labels"])),
        "n_test": int(len(arrays["test_labels"])),
        "image_size": source.image_size,
        "resize": _resize_rule(source),
        "cache_path": info["cache_path"],
        "cache_hit": info["cache_hit"],
        "load_seconds": round(seconds, 3),
    }
    log.info(
        "%s: layout=%s root=%s%s image_size=%d cache=%s (%s) train=%d test=%d in %.1fs",
        source.title, pools.layout, folder, f" {pools.log}" if pools.log else "", source.image_size,
        info["cache_path"], "hit" if info["cache_hit"] else "miss",
        provenance["n_train"], provenance["n_test"], seconds,
    )
    return NaturalImages(
        name=source.name,
        class_names=list(pools.class_names),
        train_images=torch.from_numpy(arrays["train_images"]),
        train_labels=torch.from_numpy(arrays["train_labels"]).long(),
        test_images=torch.from_numpy(arrays["test_images"]),
        test_labels=torch.from_numpy(arrays["test_labels"]).long(),
        source=provenance,
        val_from=source.val_from,
        default_val_fraction=source.default_val_fraction,
        mmap_dir=str(cache_root),
    )
