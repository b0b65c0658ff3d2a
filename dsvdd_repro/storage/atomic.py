"""Atomic file writes, the one helper for the data cache and the run folders.

The content goes to a temporary file in the target's folder (unique per process and call, so
concurrent writers never share one), is flushed and fsynced, then renamed over the target: a killed
writer leaves either the old file or the complete new one, never half of one, and removes its
temporary file when it can. A temporary name carries its writer's PID (`temporary_writer`), so that
the temporary file of a killed writer can be recognised and removed (the data cache does).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dsvdd_repro.core.faults import crash_point

_UMASK = os.umask(0)
os.umask(_UMASK)


_TEMPORARY_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{32}\.tmp$")


def temporary_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def is_temporary_of(path: Path, target: Path) -> bool:
    """`path` is a `temporary_path(target)`: in its folder, named after it exactly."""
    path, target = Path(path), Path(target)
    pattern = rf"\.{re.escape(target.name)}\.\d+\.[0-9a-f]{{32}}\.tmp"
    return path.parent == target.parent and re.fullmatch(pattern, path.name) is not None


def temporary_writer(path: Path) -> int | None:
    """The PID of the process that made the temporary file `path` (a `temporary_path`), else None."""
    match = _TEMPORARY_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def atomic_write(path: Path, write: Callable[[BinaryIO], object], durable: bool = True) -> None:
    """Write `path` through `write(handle)`, atomically (see the module docstring). `durable=False`
    skips the fsync: still atomic for a killed process (the page cache outlives it), not for a
    power cut, which a checkpoint (rewritten every epoch, verified on load) can afford."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        crash_point(f"atomic_write:{path.name}")  # fault-injection tests only (dsvdd_repro/core/faults.py)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    atomic_write(path, lambda handle: handle.write(data), durable)
