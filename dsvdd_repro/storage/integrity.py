"""Whether a finished run's files are the ones it wrote: their sha256 against metrics.json's record.

metrics.json names every file the run wrote under `files`, with its size and sha256
(`file_record`). `changed_files` compares both: the size first (free), then the hash (about 33 ms
for a 45 MB ResNet-18 model.pt on one Zen 4 core with SHA extensions, 1.4 GB/s; a scores.npz of
10,000 scores is about 0.1 ms).

Checking a sweep's finished runs before relaunching it (skip-if-done) would hash every model each
time: Table VI's 4,950 ResNet runs are ~220 GB, ~3 minutes warm and more from a cold disk. So that
check may pass `memo=`, a folder of verified files: a file hashed once is not hashed again while
its identity (device, inode), size, mtime and ctime are the same as when it was hashed. The ctime
cannot be set back by a user process (unlike the mtime), so any write to the file after it was
verified makes it hashed again. The scorer hashes every time (a received folder is new anyway).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from dsvdd_repro.storage.atomic import atomic_write_bytes

_BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """What metrics.json records of a file it names: its size and sha256."""
    return {"bytes": Path(path).stat().st_size, "sha256": sha256_of(path)}


def _stat_key(stat: os.stat_result, sha256: str) -> dict:
    return {"dev": stat.st_dev, "ino": stat.st_ino, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns, "sha256": sha256}


def _memo_path(memo: Path, path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    return Path(memo) / name[:2] / f"{name}.json"


def _remembered(memo: Path, path: Path, key: dict) -> bool:
    try:
        return json.loads(_memo_path(memo, path).read_text()) == key
    except (OSError, ValueError):
        return False


def _remember(memo: Path, path: Path, key: dict) -> None:
    try:
        atomic_write_bytes(_memo_path(memo, path), json.dumps(key).encode(), durable=False)
    except OSError:  # a read-only cache only costs time: the file is hashed again next time
        pass


def file_matches(path: Path, record: dict | None, memo: Path | None = None) -> bool:
    """`path` exists and has the recorded size and sha256 (`record` None: exists, for runs written
    before files were recorded)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if not path.is_file():
        return False
    if record is None:
        return True
    if stat.st_size != record.get("bytes"):
        return False
    key = _stat_key(stat, str(record.get("sha256")))
    if memo is not None and _remembered(memo, path, key):
        return True
    if sha256_of(path) != record.get("sha256"):
        return False
    if memo is not None and _stat_key(path.stat(), key["sha256"]) == key:  # not written while hashed
        _remember(memo, path, key)
    return True


def changed_files(run_dir: Path, named: dict, memo: Path | None = None) -> list[str]:
    """The files of `named` ({name: record or None}) in `run_dir` that are absent or differ from
    their record, in order."""
    return [name for name, record in named.items() if not file_matches(Path(run_dir) / name, record, memo)]
