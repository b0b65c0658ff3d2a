"""On-disk cache of decoded uint8 arrays, so that a dataset is decoded once per machine.

An entry is the folder `<cache_root>/<name>-<fingerprint(key)>/` holding one `<array>.npy` per array
and a `meta.json` (the key, each array's shape and dtype, the creation time). The key is whatever
identifies the decoded content (format version, layout, resolved root, image size, a fingerprint
of the source file listing, ...): a changed key is a different folder, so stale entries are never
read, only left behind.

Every file is written to a unique temporary name in the entry folder and then moved into place with
`os.replace`, and `meta.json` is written last: a folder without `meta.json` is incomplete and is
rebuilt, so a killed build never looks complete, and two processes building the same entry at once
both end with the same complete files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import re
import time
import uuid
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

META_FILE = "meta.json"
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


def _tmp_path(folder: pathlib.Path, final_name: str) -> pathlib.Path:
    # Unique per process and call, so concurrent builders never write the same temp file.
    return folder / f".{final_name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def _atomic_write(folder: pathlib.Path, final_name: str, write: Callable[[object], None]) -> None:
    tmp = _tmp_path(folder, final_name)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / final_name)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_entry(folder: pathlib.Path, key: dict, mmap: bool) -> dict[str, np.ndarray] | None:
    """The entry's arrays if it is complete and matches `key`, else None."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        # Compare through JSON so tuples/lists and non-JSON values compare as they were stored.
        if json.loads(json.dumps(key, sort_keys=True, default=str)) != meta["key"]:
            log.warning("cache entry %s holds a different key (fingerprint collision?); rebuilding", folder)
            return None
        arrays = {}
        for name, spec in meta["arrays"].items():
            arr = np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            if list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
                log.warning("cache entry %s: %s.npy does not match meta.json; rebuilding", folder, name)
                return None
            arrays[name] = arr
        return arrays
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cache entry %s is unreadable (%s); rebuilding", folder, exc)
        return None


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
    if not _NAME_RE.match(name):
        raise ValueError(f"cache entry name must match {_NAME_RE.pattern}, got {name!r}")
    folder = pathlib.Path(cache_root).expanduser() / f"{name}-{fingerprint(key)}"
    info = {"cache_path": str(folder), "cache_hit": False}

    arrays = _load_entry(folder, key, mmap)
    if arrays is not None:
        info["cache_hit"] = True
        return arrays, info

    arrays = build()
    if not isinstance(arrays, dict) or not arrays:
        raise TypeError("build() must return a non-empty dict of numpy arrays")
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for arr_name in arrays:
        if not _NAME_RE.match(arr_name) or arr_name == "meta":
            raise ValueError(f"array name {arr_name!r} cannot be a cache file name")

    try:
        folder.mkdir(parents=True, exist_ok=True)
        for arr_name, arr in arrays.items():
            _atomic_write(folder, f"{arr_name}.npy", lambda fh, a=arr: np.save(fh, a, allow_pickle=False))
        meta = {
            "key": json.loads(json.dumps(key, sort_keys=True, default=str)),
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "created_unix": time.time(),
        }
        _atomic_write(folder, META_FILE, lambda fh: fh.write(json.dumps(meta, indent=1).encode("utf-8")))
    except OSError as exc:
        log.warning("could not write cache entry %s (%s); continuing without the cache", folder, exc)
    return arrays, info
