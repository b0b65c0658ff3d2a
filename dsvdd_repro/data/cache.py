"""On-disk cache of decoded arrays, so that a dataset is decoded once per machine.

An entry is the folder `<cache_root>/<name>-<fingerprint(key)>/` holding one `<array>.npy` per array
and a `meta.json` (the key, each array's shape and dtype, the creation time). The key is whatever
identifies the content (format version, layout, resolved root, image size, a fingerprint of the
source files, ...): a changed key is a different folder, so stale entries are never read, only left
behind.

Every file is written with `dsvdd_repro.atomic.atomic_write` (a unique temporary name, then renamed)
and `meta.json` last: a folder without `meta.json` is incomplete and is rebuilt, so a killed build
never looks complete, and two processes building the same entry at once both end with the same
complete files.

Two ways to fill an entry:

- `cached_arrays`: `build()` returns the arrays in memory (small results, e.g. extracted features).
- `cached_image_arrays`: `build()` says the image arrays' shapes and yields their rows in chunks,
  which are streamed into the `.npy` files, so a decoded dataset is never held in memory while it is
  built. Every load returns the large arrays as *copy-on-write* memory maps of the entry's files:
  torch tensors wrap them without a copy or a read-only warning, only the rows a batch touches are
  read, and several runs on one machine share one copy in the page cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ..atomic import atomic_write

log = logging.getLogger(__name__)

META_FILE = "meta.json"
# Cached arrays at least this large are memory-mapped by cached_image_arrays; smaller ones (labels)
# are read into memory.
MMAP_MIN_BYTES = 1 << 20
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def default_cache_root(configured: str | None = None) -> pathlib.Path:
    """`configured` if given, else $DSVDD_CACHE_DIR, else ~/.cache/dsvdd_repro."""
    if configured:
        return pathlib.Path(configured).expanduser()
    env = os.environ.get("DSVDD_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "dsvdd_repro"


def fingerprint(*parts) -> str:
    """First 16 hex chars of the sha256 of the parts serialised as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _as_json(key: dict):
    # Compare and store through JSON so tuples/lists and non-JSON values compare as they were stored.
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def _entry_folder(cache_root, name: str, key: dict) -> pathlib.Path:
    if not _NAME_RE.match(name):
        raise ValueError(f"cache entry name must match {_NAME_RE.pattern}, got {name!r}")
    return pathlib.Path(cache_root).expanduser() / f"{name}-{fingerprint(key)}"


def _load_entry(folder: pathlib.Path, key: dict, mmap_mode: str | None) -> dict[str, np.ndarray] | None:
    """The entry's arrays if it is complete and matches `key`, else None."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if _as_json(key) != meta["key"]:
            log.warning("cache entry %s holds a different key (fingerprint collision?); rebuilding", folder)
            return None
        arrays = {}
        for name, spec in meta["arrays"].items():
            arr = np.load(folder / f"{name}.npy", mmap_mode=mmap_mode, allow_pickle=False)
            if list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
                log.warning("cache entry %s: %s.npy does not match meta.json; rebuilding", folder, name)
                return None
            arrays[name] = arr
        return arrays
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cache entry %s is unreadable (%s); rebuilding", folder, exc)
        return None


@dataclass(frozen=True)
class _Array:
    """One array of an entry as it is written: its shape, dtype and how its .npy file is written."""

    shape: tuple[int, ...]
    dtype: str
    write: Callable[[BinaryIO], object]


def _store_entry(folder: pathlib.Path, key: dict, arrays: dict[str, _Array]) -> None:
    """Write every array atomically, then meta.json (see the module docstring)."""
    for name in arrays:
        if not _NAME_RE.match(name) or name == "meta":
            raise ValueError(f"array name {name!r} cannot be a cache file name")
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in arrays.items():
        atomic_write(folder / f"{name}.npy", spec.write)
    meta = {
        "key": _as_json(key),
        "arrays": {name: {"shape": list(spec.shape), "dtype": spec.dtype} for name, spec in arrays.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_unix": time.time(),
    }
    atomic_write(folder / META_FILE, lambda fh: fh.write(json.dumps(meta, indent=1).encode("utf-8")))


def _in_memory(arr: np.ndarray) -> _Array:
    return _Array(tuple(arr.shape), str(arr.dtype), lambda fh: np.save(fh, arr, allow_pickle=False))


def cached_arrays(
    cache_root,
    name: str,
    key: dict,
    build: Callable[[], dict[str, np.ndarray]],
    mmap: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Load the arrays cached under (`name`, `key`), or `build()` them and cache them.

    Returns `(arrays, info)` with `info = {"cache_path": str, "cache_hit": bool}`. With `mmap=True`
    a cache hit returns read-only memory maps. If the cache folder cannot be written, the built
    arrays are still returned (with a warning) so a read-only cache never blocks a run.
    """
    folder = _entry_folder(cache_root, name, key)
    info = {"cache_path": str(folder), "cache_hit": False}
    arrays = _load_entry(folder, key, "r" if mmap else None)
    if arrays is not None:
        return arrays, {**info, "cache_hit": True}

    arrays = build()
    if not isinstance(arrays, dict) or not arrays:
        raise TypeError("build() must return a non-empty dict of numpy arrays")
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    try:
        _store_entry(folder, key, {k: _in_memory(v) for k, v in arrays.items()})
    except OSError as exc:
        log.warning("could not write cache entry %s (%s); continuing without the cache", folder, exc)
    return arrays, info


@dataclass
class ImageArrays:
    """What `cached_image_arrays` builds on a miss: uint8 arrays of `shapes` whose rows `chunks(name)`
    yields in order (in chunks [n, ...]), and small arrays (labels) given whole."""

    shapes: dict[str, tuple[int, ...]]
    chunks: Callable[[str], Iterable[np.ndarray]]
    small: dict[str, np.ndarray] = field(default_factory=dict)


def _write_npy(fh: BinaryIO, shape: tuple[int, ...], chunks: Iterable[np.ndarray]) -> None:
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


def _streamed(shape: tuple[int, ...], chunks: Callable[[], Iterable[np.ndarray]]) -> _Array:
    return _Array(tuple(shape), "uint8", lambda fh: _write_npy(fh, shape, chunks()))


def _copy_on_write(folder: pathlib.Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Big arrays as copy-on-write maps of the entry's files (writable for torch, never written back);
    small ones as ordinary in-memory arrays."""
    out = {}
    for name, arr in arrays.items():
        if arr.nbytes >= MMAP_MIN_BYTES:
            out[name] = np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False)
        else:
            out[name] = np.array(arr)
    return out


def cached_image_arrays(
    cache_root, name: str, key: dict, build: Callable[[], ImageArrays]
) -> tuple[dict[str, np.ndarray], dict]:
    """The cache entry (`name`, `key`), built from `build()` (see `ImageArrays`) on a miss.

    Returns `(arrays, info)`: large arrays as copy-on-write memory maps, `info` as `cached_arrays`'
    plus `build_seconds` on a miss. If the entry cannot be written, the images are decoded into
    memory instead (with a warning) and the next run decodes again.
    """
    folder = _entry_folder(cache_root, name, key)
    found = _load_entry(folder, key, "r")
    if found is not None:
        return _copy_on_write(folder, found), {"cache_path": str(folder), "cache_hit": True}

    start = time.perf_counter()
    built = build()
    small = {k: np.ascontiguousarray(v) for k, v in built.small.items()}
    try:
        _store_entry(folder, key, {
            **{a: _streamed(shape, lambda a=a: built.chunks(a)) for a, shape in built.shapes.items()},
            **{a: _in_memory(v) for a, v in small.items()},
        })
        found = _load_entry(folder, key, "r")
        if found is None:
            raise RuntimeError(f"the cache entry {folder} was written but cannot be read back")
        arrays = _copy_on_write(folder, found)
    except OSError as exc:
        log.warning("could not write cache entry %s (%s); decoding into memory without the cache",
                    folder, exc)
        arrays = dict(small)
        for a, shape in built.shapes.items():
            arrays[a] = np.concatenate(list(built.chunks(a))) if shape[0] else np.empty(shape, dtype=np.uint8)
    seconds = round(time.perf_counter() - start, 3)
    return arrays, {"cache_path": str(folder), "cache_hit": False, "build_seconds": seconds}
