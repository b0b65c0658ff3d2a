"""Run directories (contract C2): atomic writes, skip-if-done, provenance.

A run writes `metrics.json` and `scores.npz` via a temporary file and `os.replace`, so a killed run
leaves either nothing or a complete file, never half of one. Only `metrics.json` with
`status: done` marks a finished run; anything else (nothing, `failed`) runs again on relaunch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

METRICS_FILE = "metrics.json"
SCORES_FILE = "scores.npz"
_UMASK = os.umask(0)
os.umask(_UMASK)
PACKAGES = ("torch", "torchvision", "hydra-core", "omegaconf", "numpy", "scikit-learn", "pandas", "pillow")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from collaborators
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: Path, payload: dict) -> None:
    text = json.dumps(payload, indent=2, default=_json_default, allow_nan=True)
    atomic_write_bytes(path, (text + "\n").encode())


def write_scores(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_metrics(run_dir: Path) -> dict | None:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # unreadable counts as not done: the run is simply redone


def collect_metrics(root: Path) -> list[dict]:
    """Every readable metrics.json below `root`, each with its folder under `run_dir`."""
    runs = []
    for path in sorted(Path(root).rglob(METRICS_FILE)):
        metrics = read_metrics(path.parent)
        if metrics is not None:
            runs.append({**metrics, "run_dir": str(path.parent)})
    return runs


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def conflicting_keys(recorded: dict, current: dict) -> list[str]:
    """Keys present in both configurations whose values differ. Keys that only one side has are
    ignored, so that a newer version of the code (with more config keys) still recognises runs
    that finished before it."""
    old, new = flatten(recorded), flatten(current)
    return sorted(key for key in old.keys() & new.keys() if old[key] != new[key])


def config_hash(semantic_config: dict) -> str:
    text = json.dumps(semantic_config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "packages": versions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }
