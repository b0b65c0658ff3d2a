"""Run folders (contract C2): identity, the one hash, the folder name, skip-if-done, conflicts,
the files a run writes, and reading them back.

A run's identity is its composed config minus `EXECUTION_KEYS` (where and how it executes) and the
anomaly node of a setup that has none (one-vs-all). Its hash (`HASH_LENGTH` hex characters) names
the folder and is recorded in metrics.json as `config_hash`. A run writes `scores.npz`, `model.pt`
and last `metrics.json` atomically (dsvdd_repro/storage/atomic.py): a killed run leaves either nothing or a
complete file. A run is finished when its `metrics.json` says `status: done` (or `diverged`: a
final outcome too) and every file it names under `files` exists with the recorded size and sha256
(dsvdd_repro/storage/integrity.py); anything else (nothing, `failed`, a missing or changed file) runs again
on relaunch. A finished run's folder is never written again: the check happens before anything is
written, and a run holds `.dsvdd_repro.lock` (an exclusive flock) while it works, so a second launch of the
same run skips it instead of training it twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from omegaconf import Container, DictConfig, OmegaConf

from dsvdd_repro.core.execution import EXECUTION_KEYS, device_name
from dsvdd_repro.core.schema import NODE_GROUPS, declared
from dsvdd_repro.storage.atomic import atomic_write_bytes, is_temporary_of
from dsvdd_repro.storage.checkpoint import CHECKPOINT_FILE
from dsvdd_repro.storage.integrity import changed_files
from dsvdd_repro.storage.locations import default_cache_root

# Keys added to a node after runs were made, with the value every earlier run had: a run at that
# value keeps the identity it had before the key existed (its finished folder is still found).
INTRODUCED_KEYS = {"model.init": "torch"}

METRICS_FILE = "metrics.json"
SCORES_FILE = "scores.npz"
MODEL_FILE = "model.pt"
LOCK_FILE = ".dsvdd_repro.lock"  # a name of its own: a user's `.lock` in the folder is not ours
LOG_FILE = "train.log"
HASH_LENGTH = 12
log = logging.getLogger(__name__)
PACKAGES = ("torch", "torchvision", "hydra-core", "omegaconf", "numpy", "scikit-learn", "pandas", "pillow")


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


# model.pt's format: 2 holds tensors and plain values only (a shallow model as skops bytes); the
# unnumbered format before it pickled a shallow baseline's scikit-learn objects (dsvdd_repro/storage/received.py)
MODEL_FORMAT = 2


def model_bytes(state: dict) -> bytes:
    """model.pt's content: what `dsvdd_repro.score` needs of a fitted detector (its `export()`), with its format."""
    buffer = io.BytesIO()
    torch.save({**state, "format": MODEL_FORMAT}, buffer)
    return buffer.getvalue()


def write_model(path: Path, state: dict) -> None:
    atomic_write_bytes(path, model_bytes(state))


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


def identity(cfg: DictConfig) -> dict:
    """What determines a run's result: the composed config (resolved, without `hydra` and without
    the groups it does not have) minus EXECUTION_KEYS, minus INTRODUCED_KEYS at their earlier value,
    and without the anomaly node when the setup alters no image (one-vs-all)."""
    return identity_of(OmegaConf.to_container(cfg, resolve=True))


def identity_of(container: dict) -> dict:
    """`identity` of a config given as resolved plain containers (the sweep filter's fast path);
    shared subtrees of `container` are not modified."""
    # a group the run does not have (null) is left out, so new optional groups change no identity
    job = {key: value for key, value in container.items() if key != "hydra" and value is not None}
    # execution keys always; a key added later only at the value every earlier run had
    dropped = [(dotted, None) for dotted in EXECUTION_KEYS] + [(d, [v]) for d, v in INTRODUCED_KEYS.items()]
    for dotted, only_at in dropped:
        group, key = dotted.split(".")
        node = job.get(group)
        if isinstance(node, dict) and key in node and (only_at is None or node[key] == only_at[0]):
            job[group] = {k: v for k, v in node.items() if k != key}
    if job["setup"]["name"] == "one_vs_all":
        job.pop("anomaly", None)
    return job


def config_hash(identity: dict) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def variant_name(cfg: DictConfig | dict) -> str:
    """The run's table row: the variant's own name (conf/variant/<name>.yaml), else
    `custom_<method>[_<regularizer>]`, a name no paper row has (the report places it in no table)."""
    if cfg.get("variant"):
        return cfg["variant"]
    regularizer = cfg.get("regularizer")
    suffix = f"_{regularizer['name']}" if regularizer is not None and regularizer["name"] != "none" else ""
    return f"custom_{cfg['method']['name']}{suffix}"


def run_folder(cfg: DictConfig) -> str:
    """The run's folder below the sweep/profile folder, readable and bounded, e.g.
    `dsvdd_bias_noise/wikiart_alteration/3f2a9c81d0e4_s0` (resolver `${run_id:}`)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    return run_folder_of(container, identity_of(container))


def run_folder_of(container: dict, run_identity: dict) -> str:
    """`run_folder` of a config given as resolved plain containers, with its identity."""
    setup_node = container["setup"]
    setup = setup_node["name"] + (f"_c{setup_node['normal_class']}" if setup_node["name"] == "one_vs_all" else "")
    semi = "_semi" if setup_node.get("semi_supervised") else ""
    return (f"{variant_name(container)}/{container['dataset']['name']}_{setup}{semi}/"
            f"{config_hash(run_identity)}_s{container['seed']}")


def _run_id(*, _root_: DictConfig) -> str:
    job = OmegaConf.masked_copy(_root_, [key for key in _root_.keys() if key != "hydra"])
    try:
        return run_folder(job)
    except Exception:  # an invalid config is reported by validate(); it still needs a folder
        text = json.dumps(OmegaConf.to_container(job, resolve=False), sort_keys=True, default=str)
        return f"invalid/{hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]}"


def register_resolvers() -> None:
    from dsvdd_repro.models.weights import resolve_weights

    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _run_id)
    if not OmegaConf.has_resolver("resolve_weights"):
        OmegaConf.register_new_resolver("resolve_weights", resolve_weights)


class RunDirError(ValueError):
    """The run folder already holds a finished run of another configuration."""


FINAL_STATUSES = ("done", "diverged")


def recorded_files(metrics: dict) -> dict:
    """{name: record} of the files metrics.json names (runs written before files were recorded name
    none: their scores file must exist, with no record to check)."""
    return metrics.get("files") or {SCORES_FILE: None}


def verified_memo() -> Path:
    """Where skip-if-done remembers the files it hashed (dsvdd_repro/storage/integrity.py)."""
    return default_cache_root(None) / "verified"


def finished_run(run_dir: Path, run_identity: dict, memo: Path | None = None) -> dict | None:
    """The metrics of the finished run in `run_dir`, or None; a finished run of another identity
    there is an error (it is never overwritten). Its files are checked by sha256 (`memo`: a folder
    of files already verified, see dsvdd_repro/storage/integrity.py)."""
    existing = read_metrics(run_dir)
    if not existing or existing.get("status") not in FINAL_STATUSES:
        return None
    bad = changed_files(run_dir, recorded_files(existing), memo)
    if bad:
        log.warning("%s says %s but %s missing or changed: the run is done again", Path(run_dir) / METRICS_FILE,
                    existing["status"], ", ".join(bad) + (" is" if len(bad) == 1 else " are"))
        return None
    conflicts = conflicting_keys(existing.get("config", {}), run_identity)
    if conflicts or "config" not in existing:
        shown = ", ".join(conflicts[:5]) or "no recorded config"
        raise RunDirError(f"{Path(run_dir) / METRICS_FILE} is a finished run of a different configuration "
                          f"({shown}); choose another hydra.run.dir or remove that folder")
    return existing


@contextmanager
def run_lock(run_dir: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the run folder's exclusive lock (True), or learn that another process holds it (False),
    after waiting up to `wait_s` seconds for it. The kernel releases it when its holder dies, so a
    killed run never blocks its relaunch."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path, deadline = run_dir / LOCK_FILE, time.monotonic() + wait_s
    while True:
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                yield False
                return
            if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                continue  # locked the file its last holder removed on leaving: lock the current one
            try:
                yield True
            finally:
                path.unlink(missing_ok=True)  # while still held: the next holder creates a new one
                fcntl.flock(handle, fcntl.LOCK_UN)
            return


# the files a run writes atomically, below its folder: the only temporary files it may remove
RUN_FILES = (METRICS_FILE, SCORES_FILE, MODEL_FILE, CHECKPOINT_FILE, ".hydra/config.yaml", ".hydra/overrides.yaml")


def remove_stale_temporaries(run_dir: Path) -> list[str]:
    """Temporary files of killed writers of this run's own files (called under the run's lock, so
    no live writer owns one). Only the exact names `atomic.temporary_path` gives RUN_FILES: a
    user's own `.*.tmp` files in a folder a run is launched into are never touched."""
    removed = []
    for name in RUN_FILES:
        target = Path(run_dir) / name
        if not target.parent.is_dir():
            continue
        for path in target.parent.glob(f".{target.name}.*.tmp"):
            if is_temporary_of(path, target):
                path.unlink(missing_ok=True)
                removed.append(str(path.relative_to(run_dir)))
    return sorted(removed)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


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
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }


def swept_values(group: str, node: DictConfig | None) -> dict:
    """{key: value} of every hyper-parameter the options of `group` declare as swept (`SWEPT`,
    dsvdd_repro/core/schema.py), for a run whose `group` node is `node`: None where its option has no
    such key or the run has no such node."""
    values = {key: None if node is None else node.get(key) for key in declared("SWEPT", group)}
    return {key: OmegaConf.to_container(value) if isinstance(value, Container) else value
            for key, value in values.items()}


def run_axes(cfg: DictConfig) -> dict:
    """The experimental axes of a run, as recorded in metrics.json (contract C2); a group the run
    does not have (e.g. `objective` for OC-SVM) records None. Besides the fixed ones, every
    hyper-parameter a node declares as swept (`SWEPT`: the soft-boundary nu, the regularizers' k,
    d0, r and weighting) is an axis, after its group's name for the objective and the regularizer."""
    alteration = cfg.setup.name == "alteration"
    semi = bool(cfg.setup.get("semi_supervised"))
    model, objective, regularizer, optim = (cfg.get(group) for group in ("model", "objective", "regularizer", "optim"))
    features = cfg.get("features")
    labeled = cfg.setup.get("labeled_anomaly_class")
    regularized = regularizer is not None and regularizer.name != "none"
    anomaly = OmegaConf.to_object(cfg.anomaly) if alteration else None
    axes = {
        "method": cfg.method.name,
        "variant": variant_name(cfg),
        "dataset": cfg.dataset.name,
        "setup": cfg.setup.name,
        "normal_class": None if alteration else int(cfg.setup.normal_class),
        "semi_supervised": semi,
        "labeled_anomaly_class": int(labeled) if semi and not alteration and labeled is not None else None,
        "anomaly": {split: anomaly.spec(split) for split in ("train", "val", "test")} if alteration else None,
        "objective": None if objective is None else objective.name,
        **swept_values("objective", objective),
        "regularizer": None if regularizer is None else regularizer.name,
        **swept_values("regularizer", regularizer if regularized else None),
        "bias": None if model is None else bool(model.bias),
        "pooling": None if model is None else model.get("pooling"),
        "weights": None if model is None else model.get("weights"),
        "lr": None if optim is None else float(optim.lr),
        "backbone_lr_factor": None if optim is None else float(optim.backbone_lr_factor),
        "image_size": int(cfg.dataset.image_size),
        "epochs": None if optim is None else int(cfg.trainer.epochs),
        "features": None if features is None else features.name,
        "seed": int(cfg.seed),
        "data_seed": int(cfg.data_seed),
        "profile": cfg.profile.name,
    }
    for group in NODE_GROUPS:  # the swept keys other groups' options declare (the package's own: none)
        if group not in ("objective", "regularizer"):
            for key, value in swept_values(group, cfg.get(group)).items():
                axes.setdefault(key, value)
    return axes
