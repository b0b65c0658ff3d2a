"""Shared machinery of the image-file datasets (VOC2012, WikiArt; CIFAR-10's image folders).

- `map_chunks`: run a function over chunks of work in a fork-based worker pool (or serially for
  small jobs), yielding the results in order behind one tqdm progress bar.
- `iter_decoded`: decode image files (JPEG, PNG, ...) to RGB uint8 and resize them to a square
  `size x size` with PIL's antialiased bilinear filter (the aspect ratio is not kept: "resized to
  224 x 224", Section V-A). JPEGs are decoded with PIL's `draft` at the largest power-of-two
  reduction that stays >= `size` on both sides, which is faster and, after the antialiased resize,
  visually the same. An image that already has the target size is kept pixel for pixel.
- `cached_image_arrays`: the decode-once cache for large datasets, in `cache.cached_arrays`' entry
  format. On a miss the decoded chunks are streamed straight into the entry's `.npy` files, so the
  decoded dataset is never held in memory (nor mapped into the process) while it is built. Every
  load returns the images as *copy-on-write* memory maps of those files: torch tensors wrap them
  without a copy or a read-only warning, only the rows a batch touches are read, and several runs
  on one machine share one copy in the page cache."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .cache import META_FILE, _atomic_write, cached_arrays, fingerprint
from .errors import DatasetRootError
from .images import NaturalImages

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Decoding a full-size JPEG costs milliseconds: a pool pays off from a few hundred images on.
POOL_MIN_IMAGES = 256
MAX_WORKERS = 8
CHUNK = 64
# Cached arrays at least this large are memory-mapped; smaller ones (labels) are read into memory.
MMAP_MIN_BYTES = 1 << 20


def locate_root(
    root,
    find: Callable[[pathlib.Path], object | None],
    download: Callable[[pathlib.Path], None] | None,
    error: Callable[[object, str], DatasetRootError],
    expected: str,
    name: str,
) -> tuple[pathlib.Path, object]:
    """Resolve `dataset.root` and find the dataset's layout under it (`find` returns None when it
    is not there), downloading into it first when `download` is given; otherwise one clear error
    line saying what is wrong and what was expected. Returns (resolved root, what `find` found)."""
    if root is None or str(root).strip() == "":
        raise error(root, f"not set; {expected}")
    root_path = pathlib.Path(root).expanduser().resolve()
    if root_path.exists() and not root_path.is_dir():
        raise error(root_path, f"is not a folder; {expected}")
    found = find(root_path) if root_path.is_dir() else None
    if found is not None:
        return root_path, found
    if download is not None:
        log.info("%s not found under %s; downloading with torchvision", name, root_path)
        root_path.mkdir(parents=True, exist_ok=True)
        download(root_path)
        found = find(root_path)
        if found is None:
            raise error(root_path, f"download finished but no {name} layout appeared; {expected}")
        return root_path, found
    problem = "does not exist" if not root_path.exists() else f"holds no {name} layout"
    raise error(root_path, f"{problem}; {expected}; set dataset.download=true to download")


def pool_source(pools: dict, image_size: int, info: dict, seconds: float) -> dict:
    """The provenance fields every image-file dataset records about its decoded pools."""
    return {
        "n_train": len(pools["train"]),
        "n_test": len(pools["test"]),
        "image_size": image_size,
        "resize": "square, PIL bilinear (antialiased), aspect ratio not kept",
        "cache_path": info["cache_path"],
        "cache_hit": info["cache_hit"],
        "load_seconds": round(seconds, 3),
    }


def pooled_natural_images(
    name: str, class_names: list[str], arrays: dict, source: dict, val_from: str, val_fraction: float,
    cache_root: pathlib.Path,
) -> NaturalImages:
    """The NaturalImages of an image-file dataset from its cached pools (`load_pools`' arrays)."""
    return NaturalImages(
        name=name,
        class_names=class_names,
        train_images=torch.from_numpy(arrays["train_images"]),
        train_labels=torch.from_numpy(arrays["train_labels"]).long(),
        test_images=torch.from_numpy(arrays["test_images"]),
        test_labels=torch.from_numpy(arrays["test_labels"]).long(),
        source=source,
        val_from=val_from,
        default_val_fraction=val_fraction,
        mmap_dir=str(cache_root),
    )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_chunks(
    func: Callable, chunks: Sequence, sizes: Sequence[int], desc: str, workers: int = 1
) -> Iterator:
    """`func(chunk)` for every chunk, in order; a pool of `workers` processes when > 1.

    The pool uses `fork` where available: workers need no re-import and only run PIL/numpy code.
    An exception raised in a worker is re-raised here.
    """
    workers = max(1, min(int(workers), len(chunks)))
    with tqdm(total=int(sum(sizes)), desc=desc, unit="img", leave=False) as bar:
        if workers > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ctx.Pool(workers) as pool:
                for result, size in zip(pool.imap(func, chunks), sizes, strict=True):
                    bar.update(size)
                    yield result
        else:
            for chunk, size in zip(chunks, sizes, strict=True):
                result = func(chunk)
                bar.update(size)
                yield result


def decode_one(path: str, size: int) -> np.ndarray:
    """One image file as RGB uint8 [3, size, size] (see the module docstring)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.format == "JPEG" and im.size != (size, size):
            im.draft("RGB", (size, size))
        rgb = im.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def _decode_chunk(args: tuple[str, list[str], int]) -> np.ndarray:
    folder, rel_paths, size = args
    out = np.empty((len(rel_paths), 3, size, size), dtype=np.uint8)
    for i, rel in enumerate(rel_paths):
        try:
            out[i] = decode_one(os.path.join(folder, rel), size)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            raise DatasetRootError(
                f"dataset.root={folder}: cannot decode {rel} ({type(exc).__name__}: {exc})"
            ) from exc
    return out


def iter_decoded(
    folder: pathlib.Path, rel_paths: Sequence[str], size: int, desc: str = "decoding"
) -> Iterator[np.ndarray]:
    """`folder/rel_paths` decoded and resized, in order, as uint8 chunks [n, 3, size, size]."""
    rel_paths = list(rel_paths)
    chunks = [(str(folder), rel_paths[i : i + CHUNK], size) for i in range(0, len(rel_paths), CHUNK)]
    sizes = [len(c[1]) for c in chunks]
    workers = min(MAX_WORKERS, available_cpus()) if len(rel_paths) >= POOL_MIN_IMAGES else 1
    yield from map_chunks(_decode_chunk, chunks, sizes, desc, workers)


def file_listing(folder: pathlib.Path, rel_paths: Iterable[str]) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of each file, for cache keys; a missing file is an error."""
    listing = []
    for rel in rel_paths:
        try:
            st = os.stat(os.path.join(folder, rel))
        except OSError as exc:
            raise DatasetRootError(f"dataset.root={folder}: cannot read {rel} ({exc.strerror})") from exc
        listing.append((rel, st.st_size, st.st_mtime_ns))
    return listing


# ---------------------------------------------------------------------------------------------------
# decode-once cache, memory-mapped


class _Miss(Exception):
    pass


def _raise_miss() -> dict:
    raise _Miss


def _lookup(cache_root: pathlib.Path, name: str, key: dict) -> tuple[dict, dict] | None:
    try:
        return cached_arrays(cache_root, name, key, _raise_miss, mmap=True)
    except _Miss:
        return None


def _copy_on_write(arrays: dict[str, np.ndarray], cache_path: str) -> dict[str, np.ndarray]:
    """Big arrays as copy-on-write maps of the entry's files (writable for torch, never written back);
    small ones as ordinary in-memory arrays."""
    out = {}
    for name, arr in arrays.items():
        if arr.nbytes >= MMAP_MIN_BYTES:
            out[name] = np.load(pathlib.Path(cache_path) / f"{name}.npy", mmap_mode="c", allow_pickle=False)
        else:
            out[name] = np.array(arr)
    return out


def _write_npy(fh, shape: tuple[int, ...], chunks: Iterable[np.ndarray]) -> None:
    """A uint8 .npy file of `shape` written chunk by chunk (never the whole array in memory)."""
    np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    rows = 0
    for chunk in chunks:
        if chunk.dtype != np.uint8 or chunk.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"chunk of {chunk.dtype} {chunk.shape} does not fit uint8 {shape}")
        fh.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
        rows += len(chunk)
    if rows != shape[0]:
        raise ValueError(f"wrote {rows} rows, expected {shape[0]}")


def _store_entry(folder: pathlib.Path, key: dict, image_shapes, decode, small_arrays) -> None:
    """Write an entry in `cache.cached_arrays`' format: each array atomically, meta.json last."""
    folder.mkdir(parents=True, exist_ok=True)
    for arr, shape in image_shapes.items():
        _atomic_write(folder, f"{arr}.npy", lambda fh, a=arr, s=shape: _write_npy(fh, s, decode(a)))
    for arr, value in small_arrays.items():
        _atomic_write(folder, f"{arr}.npy", lambda fh, v=value: np.save(fh, v, allow_pickle=False))
    shapes = {
        **{a: (list(s), "uint8") for a, s in image_shapes.items()},
        **{a: (list(v.shape), str(v.dtype)) for a, v in small_arrays.items()},
    }
    meta = {
        "key": json.loads(json.dumps(key, sort_keys=True, default=str)),
        "arrays": {a: {"shape": shape, "dtype": dtype} for a, (shape, dtype) in shapes.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_unix": time.time(),
    }
    _atomic_write(folder, META_FILE, lambda fh: fh.write(json.dumps(meta, indent=1).encode("utf-8")))


def cached_image_arrays(
    cache_root: pathlib.Path,
    name: str,
    key: dict,
    image_shapes: dict[str, tuple[int, ...]],
    decode: Callable[[str], Iterable[np.ndarray]],
    small_arrays: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict]:
    """The cache entry (`name`, `key`) holding uint8 arrays of `image_shapes` plus `small_arrays`.

    On a miss, `decode(array_name)` yields that array's rows in chunks, which are streamed into the
    entry's `.npy` files (written to temporary names and renamed, meta.json last, as
    `cache.cached_arrays` does, which then reads the entry). Returns `(arrays, info)`: the images as
    copy-on-write memory maps, `info` as `cached_arrays`' plus `build_seconds` on a miss. If the
    entry cannot be written, the images are decoded into memory instead (with a warning) and the
    next run decodes again.
    """
    cache_root = pathlib.Path(cache_root).expanduser()
    found = _lookup(cache_root, name, key)
    if found is not None:
        arrays, info = found
        return _copy_on_write(arrays, info["cache_path"]), info

    start = time.perf_counter()
    folder = cache_root / f"{name}-{fingerprint(key)}"
    small_arrays = {k: np.ascontiguousarray(v) for k, v in small_arrays.items()}
    try:
        _store_entry(folder, key, image_shapes, decode, small_arrays)
    except OSError as exc:
        log.warning(
            "could not write cache entry %s (%s); decoding into memory without the cache", folder, exc
        )
        arrays = dict(small_arrays)
        for arr, shape in image_shapes.items():
            arrays[arr] = np.concatenate(list(decode(arr))) if shape[0] else np.empty(shape, dtype=np.uint8)
        return arrays, {
            "cache_path": str(folder),
            "cache_hit": False,
            "build_seconds": round(time.perf_counter() - start, 3),
        }
    found = _lookup(cache_root, name, key)
    if found is None:
        raise RuntimeError(f"the cache entry {folder} was written but cannot be read back")
    arrays, info = found
    info = {**info, "cache_hit": False, "build_seconds": round(time.perf_counter() - start, 3)}
    return _copy_on_write(arrays, info["cache_path"]), info


def load_pools(
    dataset: str,
    folder: pathlib.Path,
    pools: dict[str, Sequence[str]],
    labels: dict[str, np.ndarray],
    image_size: int,
    cache_root: pathlib.Path,
    key: dict,
) -> tuple[dict[str, np.ndarray], dict]:
    """Decode-once the `train` and `test` pools (files relative to `folder`) at `image_size`.

    Returns the arrays `{split}_images` (copy-on-write memory maps) and `{split}_labels`, and the
    cache info (`cache_path`, `cache_hit`, `build_seconds` on a miss).
    """
    shapes = {
        f"{split}_images": (len(pools[split]), 3, image_size, image_size) for split in ("train", "test")
    }

    def decode(array: str) -> Iterator[np.ndarray]:
        split = array.split("_")[0]
        return iter_decoded(folder, pools[split], image_size, desc=f"{dataset} {split}")

    small = {f"{split}_labels": np.asarray(labels[split], dtype=np.int64) for split in ("train", "test")}
    return cached_image_arrays(cache_root, f"{dataset}-{image_size}", key, shapes, decode, small)
