"""The single entrypoint: `python -m dsvdd_repro.train [overrides]` (also `dsvdd-train`).

One run = one Hydra job = one cell-sample of a paper table (contracts C1, C2 in the README):
compose + validate the config -> natural images -> protocol splits and anomalies -> fit on
train/val -> score test -> metrics.json + scores.npz in the run folder. A folder whose
metrics.json says `done` for the same configuration is skipped.
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

from .config import ConfigError, run_axes, semantic_config, split_anomaly, validate
from .data import protocols
from .data.errors import DatasetRootError
from .data.registry import load_natural_images
from .evaluation import auroc
from .runs import (
    METRICS_FILE,
    SCORES_FILE,
    config_hash,
    conflicting_keys,
    provenance,
    read_metrics,
    write_json,
    write_scores,
)
from .methods.registry import build_detector
from .models.weights import WeightsError

log = logging.getLogger("dsvdd_repro")

# Bad input: reported in one line, exit code 2, and no metrics.json is written.
INPUT_ERRORS = (ConfigError, DatasetRootError, WeightsError)


class RunDirError(ValueError):
    """The run folder already holds a finished run of another configuration."""


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


def build_splits(cfg: DictConfig, images) -> protocols.ProtocolSplits:
    limits = {key: cfg.profile[key] for key in ("max_train", "max_val", "max_test")}
    semi = cfg.setup.semi_supervised
    fraction = cfg.setup.labeled_anomaly_fraction
    if cfg.setup.name == "one_vs_all":
        return protocols.one_vs_all(
            images, cfg.setup.normal_class, cfg.seed, cfg.setup.train_fraction, limits,
            labeled_anomaly_class=cfg.setup.labeled_anomaly_class if semi else None,
            labeled_anomaly_fraction=fraction,
        )
    specs = {split: split_anomaly(cfg, split) for split in ("train", "val", "test")}
    return protocols.alteration(
        images, specs, cfg.seed, cfg.setup.val_fraction, limits, cfg.trainer.progress,
        labeled_anomaly_fraction=fraction if semi else None,
    )


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Execute one run into `run_dir`; return its metrics (the existing ones if already done)."""
    validate(cfg)
    run_dir = Path(run_dir)
    semantic = semantic_config(cfg)
    identity = config_hash(semantic)
    existing = read_metrics(run_dir)
    if existing and existing.get("status") == "done":
        conflicts = conflicting_keys(existing.get("config", {}), semantic)
        if conflicts or "config" not in existing:
            shown = ", ".join(conflicts[:5]) or "no recorded config"
            raise RunDirError(
                f"{run_dir / METRICS_FILE} is a finished run of a different configuration ({shown}); "
                "choose another hydra.run.dir or remove that folder"
            )
        log.info("already done, skipping: %s (test AUC %.4f)", run_dir, existing.get("test_auc", float("nan")))
        return existing

    start = time.perf_counter()
    seed_everything(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = resolve_device(cfg.trainer.device)
    images = load_natural_images(cfg.dataset)
    splits = build_splits(cfg, images)
    log.info("splits: %s", splits.sizes())
    # loads weights: fails here, before any training, if they cannot be had
    detector = build_detector(cfg, images.image_size, device)

    metrics = {
        "status": "running",
        **run_axes(cfg),
        "config_hash": identity,
        "config": semantic,
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
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
