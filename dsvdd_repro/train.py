"""The single entrypoint: `python -m dsvdd_repro.train [overrides]` (also `dsvdd-train`).

One run = one Hydra job = one cell-sample of a paper table (contracts C1, C2 in the README). The
walk, each step in one place: config nodes (validated) -> source (`dataset` node) -> protocol
(`setup`, `anomaly`) -> detector (`method` node) fit on train/val, scored on test -> run folder
(dsvdd_repro/runs.py). A folder whose metrics.json says `done` for the same identity is skipped.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .config import anomaly, register_configs, validate
from .data.cache import default_cache_root
from .data.errors import DatasetRootError
from .data.protocols import ProtocolSplits
from .evaluation import auroc
from .methods.base import RunContext
from .models.weights import WeightsError
from .runs import (
    METRICS_FILE,
    SCORES_FILE,
    RunDirError,
    config_hash,
    finished_run,
    identity,
    provenance,
    run_axes,
    write_json,
    write_scores,
)
from .schema import ConfigError, build

log = logging.getLogger("dsvdd_repro")

# Bad input: reported in one line, exit code 2, and no metrics.json is written.
INPUT_ERRORS = (ConfigError, DatasetRootError, WeightsError)

register_configs()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device", name, "no CUDA device is available here; use auto or cpu")
    return torch.device(name)


def make_splits(cfg: DictConfig, images) -> ProtocolSplits:
    """The run's train / val / test splits of `images`: its setup's protocol, its anomalies, its profile's caps."""
    limits = {key: cfg.profile[key] for key in ("max_train", "max_val", "max_test")}
    return OmegaConf.to_object(cfg.setup).splits(images, cfg.data_seed, limits, anomaly(cfg), cfg.trainer.progress)


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Execute one run into `run_dir`; return its metrics (the existing ones if already done)."""
    validate(cfg)
    run_dir = Path(run_dir)
    run_identity = identity(cfg)
    existing = finished_run(run_dir, run_identity)
    if existing:
        log.info("already done, skipping: %s (test AUC %.4f)", run_dir, existing.get("test_auc", float("nan")))
        return existing

    start = time.perf_counter()
    seed_everything(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = resolve_device(cfg.trainer.device)
    images = build(cfg.dataset).load(progress=cfg.trainer.progress)
    splits = make_splits(cfg, images)
    log.info("splits: %s", splits.sizes())
    context = RunContext(cfg, images.image_size, device, default_cache_root(cfg.dataset.get("cache_dir")))
    # loads weights: fails here, before any training, if they cannot be had
    detector = build(cfg.method, context=context)

    metrics = {
        "status": "running",
        **run_axes(cfg),
        "config_hash": config_hash(run_identity),
        "config": run_identity,
        "data": {"source": images.source, "splits": splits.sizes()},
        "model": detector.describe(),
    }
    try:
        summary = detector.fit(splits.train, splits.val)
        scores = detector.score(splits.test)
        test_auc = auroc(splits.test.labels, scores)
        write_scores(
            run_dir / SCORES_FILE,
            score=scores,
            label=splits.test.labels,
            index=splits.test.keys,
            altered=splits.test.altered_slot >= 0,
        )
        metrics.update({"val_auc": None, "best_epoch": None, "collapsed": None, "history": []})
        metrics.update(summary)
        metrics.update(status="done", test_auc=test_auc)
    except Exception as error:
        metrics.update(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        metrics["seconds"] = time.perf_counter() - start
        metrics["provenance"] = provenance(device)
        if metrics["status"] != "running":
            write_json(run_dir / METRICS_FILE, metrics)
    log.info("done: test AUC %.4f (best epoch %s, val AUC %s) in %.1fs -> %s",
             test_auc, metrics["best_epoch"], metrics["val_auc"], metrics["seconds"], run_dir)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        metrics = run(cfg, run_dir)
    except (*INPUT_ERRORS, RunDirError) as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return None  # one bad job of a sweep must not stop the others; the report marks it missing
        sys.exit(2)
    return metrics.get("test_auc")


if __name__ == "__main__":
    main()
