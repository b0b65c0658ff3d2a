"""On-disk cache of decoded arrays, so that a dataset is decoded once per machine.

An entry is the folder `<cache_root>/<name>-<fingerprint(key)>/` holding one `<array>.npy` per array
and a `meta.json` (the key; each array's shape, dtype, file size and CRC-32; the creation time). The
key is whatever identifies the content (format version, layout, resolved root, image size, a
fingerprint of the source files, ...): a changed key is a different folder, so stale entries are
never read, only left behind.

Fault tolerance:

- Integrity: a load checks every array file's size and CRC-32 against `meta.json`. A file changed on
  disk (zeroed, truncated, missing), an unreadable `meta.json`, or an entry of an older version
  (no checksums, so unverifiable) is logged as one warning and rebuilt. CRC-32 (zlib) because it
  detects accidental corruption at memory speed (blake2b: 4-6x slower); it is computed from the
  bytes as they are written (`cached_image_arrays` then checks the new entry as a load does).
  Cost: checking a CIFAR-10 32 px entry (185 MB, page cache) takes 0.057 s (3.2 GB/s, busy 2-core CPU).
- Killed writers: every file is written with `dsvdd_repro.storage.atomic.atomic_write` (a temporary name
  carrying the writer's PID, then renamed) and `meta.json` last, so a killed build never looks
  complete. Each call removes the stale temporary files of its entry folder and of the cache root:
  those whose writer is no longer running on this machine, or older than `STALE_TEMPORARY_SECONDS`
  (a reused PID, a writer on another machine sharing the cache).
- Concurrency: a miss takes an exclusive lock (`fcntl.flock` on `<entry folder>.lock`, kept after
  use since deleting a lock file races with its next user) around check, build and write; a second
  process waits (and logs that it does), then finds the complete entry and loads it. So concurrent
  cold starts build an entry once. Hits take no lock; a hit racing a rebuild of the same entry
  reads a mixed entry, fails the check, and waits for the lock.

Two ways to fill an entry:

- `cached_arrays`: `build()` returns the arrays in memory (small results, e.g. extracted features).
- `cached_image_arrays`: `build()` says the image arrays' shapes and yields their rows in chunks,
  which are streamed into the `.npy` files, so a decoded dataset is never held in memory while it is
  built. Every load returns the large arrays as *copy-on-write* memory maps of the entry's files:
  torch tensors wrap them without a copy or a read-only warning, and several runs on one machine
  share one copy in the page cache (the check reads each file once per load).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from dsvdd_repro.storage.atomic import atomic_write, temporary_writer

log = logging.getLogger(__name__)

META_FILE = "meta.json"
# Cached arrays at least this large are memory-mapped by cached_image_arrays; smaller ones (labels)
# are read into memory.
MMAP_MIN_BYTES = 1 << 20
# A temporary file this old is stale even if a process with its writer's PID runs.
STALE_TEMPORARY_SECONDS = 6 * 3600
_READ_BLOCK = 1 << 20  # the checksum reads files in blocks this large
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


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


# -- integrity -------------------------------------------------------------------------------------


class _Checksum:
    """Size and CRC-32 of a file's bytes, as recorded per array in meta.json (see the docstring)."""

    NAME = "crc32"  # the meta.json field; an entry without it predates the checksums

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0

    def update(self, data) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += memoryview(data).nbytes

    def fields(self) -> dict:
        return {"bytes": self.size, self.NAME: f"{self.crc:08x}"}


class _ChecksummingWriter:
    """A file handle that checksums what is written through it (so a file is not read back for it)."""

    def __init__(self, handle: BinaryIO, checksum: _Checksum) -> None:
        self.handle = handle
        self.checksum = checksum

    def write(self, data) -> int:
        self.checksum.update(data)
        return self.handle.write(data)


def _file_checksum(path: pathlib.Path) -> _Checksum:
    checksum, block = _Checksum(), bytearray(_READ_BLOCK)
    view = memoryview(block)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(block):
            checksum.update(view[:n])
    return checksum


def _damage(folder: pathlib.Path, specs: dict) -> str | None:
    """What is wrong with the entry's array files, or None: sizes first (no reading), then CRCs."""
    if any(_Checksum.NAME not in spec for spec in specs.values()):
        return f"{META_FILE} has no checksums (written by an older version), its files are unverified"
    for name, spec in specs.items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            return f"{path.name} is missing"
        size = path.stat().st_size
        if size != spec["bytes"]:
            return f"{path.name} has {size} bytes, {META_FILE} says {spec['bytes']}"
    for name, spec in specs.items():
        if _file_checksum(folder / f"{name}.npy").fields()[_Checksum.NAME] != spec[_Checksum.NAME]:
            return f"{name}.npy does not match its checksum (changed on disk)"
    return None


def _load_entry(
    folder: pathlib.Path, key: dict, mmap_mode: str | None
) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """(arrays, None) if the entry is complete, matches `key` and is intact; else (None, what is wrong
    with it), where nothing is wrong with an absent or unfinished entry (a plain miss)."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None, None
    try:
        meta = json.loads(meta_path.read_text())
        if _as_json(key) != meta["key"]:
            return None, f"{META_FILE} holds a different key (fingerprint collision?)"
        problem = _damage(folder, meta["arrays"])
        if problem:
            return None, problem
        arrays = {}
        for name, spec in meta["arrays"].items():
            arr = np.load(folder / f"{name}.npy", mmap_mode=mmap_mode, allow_pickle=False)
            if list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
                return None, f"{name}.npy does not match {META_FILE}"
            arrays[name] = arr
        return arrays, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"unreadable ({exc})"


# -- stale temporary files, lock -------------------------------------------------------------------


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _stale_reason(path: pathlib.Path, pid: int) -> str | None:
    if not _running(pid):
        return f"its writer, PID {pid}, is gone"
    if time.time() - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
        return f"older than {STALE_TEMPORARY_SECONDS // 3600} h"
    return None


def _remove_stale_temporaries(folder: pathlib.Path) -> None:
    """Remove the temporary files of killed writers in `folder` (see the module docstring)."""
    try:
        paths = [pathlib.Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:  # no folder yet, or unreadable: nothing to clean
        return
    for path in paths:
        pid = temporary_writer(path)
        if pid is None:
            continue
        try:
            reason = _stale_reason(path, pid)
            if reason:
                path.unlink()
                log.info("removed the stale temporary file %s (%s)", path, reason)
        except OSError:  # renamed by its writer meanwhile, or a read-only cache
            continue


@contextlib.contextmanager
def _entry_lock(folder: pathlib.Path) -> Iterator[None]:
    """Hold the exclusive lock of the entry `folder` (see the module docstring)."""
    fd = _acquire(folder)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _acquire(folder: pathlib.Path) -> int | None:
    """A descriptor holding the entry's lock, waiting for it if another process holds it; None where
    no lock can be had (a read-only cache, a file system without locks): then the build goes on
    unlocked, and its write fails or races as atomic writes do, safely."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder.with_name(folder.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        log.debug("cannot lock cache entry %s (%s); going on unlocked", folder, exc)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("cache entry %s is being built by another process; waiting for it", folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        log.debug("cannot lock cache entry %s (%s); going on unlocked", folder, exc)
        return None
    except BaseException:  # interrupted while waiting
        os.close(fd)
        raise
    return fd


def _load_or_build(
    folder: pathlib.Path, key: dict, mmap_mode: str | None, build: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], float | None]:
    """(the entry's arrays, None) on a hit, else (build()'s arrays, the seconds it took), `build`
    writing the entry under the entry's lock (see the module docstring)."""
    for stale in (folder, folder.parent):
        _remove_stale_temporaries(stale)
    arrays, _ = _load_entry(folder, key, mmap_mode)
    if arrays is not None:
        return arrays, None
    with _entry_lock(folder):
        # checked again under the lock: another process may have built the entry meanwhile
        arrays, problem = _load_entry(folder, key, mmap_mode)
        if arrays is not None:
            return arrays, None
        if problem:
            log.warning("cache entry %s: %s; rebuilding it", folder, problem)
        start = time.perf_counter()
        arrays = build()
        return arrays, round(time.perf_counter() - start, 3)


# -- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Array:
    """One array of an entry as it is written: its shape, dtype and how its .npy file is written."""

    shape: tuple[int, ...]
    dtype: str
    write: Callable[[BinaryIO], object]


def _write_checksummed(path: pathlib.Path, write: Callable[[BinaryIO], object]) -> _Checksum:
    checksum = _Checksum()
    atomic_write(path, lambda handle: write(_ChecksummingWriter(handle, checksum)))
    return checksum


def _store_entry(folder: pathlib.Path, key: dict, arrays: dict[str, _Array]) -> None:
    """Write every array atomically, then meta.json (see the module docstring)."""
    for name in arrays:
        if not _NAME_RE.match(name) or name == "meta":
            raise ValueError(f"array name {name!r} cannot be a cache file name")
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {name: _write_checksummed(folder / f"{name}.npy", spec.write) for name, spec in arrays.items()}
    meta = {
        "key": _as_json(key),
        "arrays": {
            name: {"shape": list(spec.shape), "dtype": spec.dtype, **checksums[name].fields()}
            for name, spec in arrays.items()
        },
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

    def build_and_store() -> dict[str, np.ndarray]:
        arrays = build()
        if not isinstance(arrays, dict) or not arrays:
            raise TypeError("build() must return a non-empty dict of numpy arrays")
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        try:
            _store_entry(folder, key, {k: _in_memory(v) for k, v in arrays.items()})
        except OSError as exc:
            log.warning("could not write cache entry %s (%s); continuing without the cache", folder, exc)
        return arrays

    arrays, seconds = _load_or_build(folder, key, "r" if mmap else None, build_and_store)
    return arrays, {"cache_path": str(folder), "cache_hit": seconds is None}


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


def _build_images(folder: pathlib.Path, key: dict, build: Callable[[], ImageArrays]) -> dict[str, np.ndarray]:
    """`build()`'s arrays written to the entry and mapped from it; decoded into memory if the entry
    cannot be written."""
    built = build()
    small = {k: np.ascontiguousarray(v) for k, v in built.small.items()}
    try:
        _store_entry(folder, key, {
            **{a: _streamed(shape, lambda a=a: built.chunks(a)) for a, shape in built.shapes.items()},
            **{a: _in_memory(v) for a, v in small.items()},
        })
        found, problem = _load_entry(folder, key, "r")
        if found is None:
            raise RuntimeError(f"the cache entry {folder} was written but cannot be read back ({problem})")
        return _copy_on_write(folder, found)
    except OSError as exc:
        log.warning("could not write cache entry %s (%s); decoding into memory without the cache",
                    folder, exc)
        arrays = dict(small)
        for a, shape in built.shapes.items():
            arrays[a] = np.concatenate(list(built.chunks(a))) if shape[0] else np.empty(shape, dtype=np.uint8)
        return arrays


def cached_image_arrays(
    cache_root, name: str, key: dict, build: Callable[[], ImageArrays]
) -> tuple[dict[str, np.ndarray], dict]:
    """The cache entry (`name`, `key`), built from `build()` (see `ImageArrays`) on a miss.

    Returns `(arrays, info)`: large arrays as copy-on-write memory maps, `info` as `cached_arrays`'
    plus `build_seconds` on a miss. If the entry cannot be written, the images are decoded into
    memory instead (with a warning) and the next run decodes again.
    """
    folder = _entry_folder(cache_root, name, key)
    arrays, seconds = _load_or_build(folder, key, "r", lambda: _build_images(folder, key, build))
    info = {"cache_path": str(folder), "cache_hit": seconds is None}
    if seconds is None:
        return _copy_on_write(folder, arrays), info
    return arrays, {**info, "build_seconds": seconds}
