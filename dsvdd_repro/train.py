"""The single entrypoint: `python -m dsvdd_repro.train [overrides]` (also `dsvdd-train`).

One run = one Hydra job = one cell-sample of a paper table (contracts C1, C2 in the README). The
walk, each step in one place: config nodes (validated) -> source (`dataset` node) -> protocol
(`setup`, `anomaly`) -> detector (`method` node) fit on train/val, scored on test -> run folder
(dsvdd_repro/runs/folders.py). A folder whose metrics.json says `done` for the same identity is skipped.
"""

from __future__ import annotations

import contextlib
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
from tqdm.contrib.logging import logging_redirect_tqdm

from dsvdd_repro.core.evaluation import auroc
from dsvdd_repro.core.execution import show_progress
from dsvdd_repro.core.schema import ConfigError, build
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.data.protocols import ProtocolSplits
from dsvdd_repro.methods.base import RunContext
from dsvdd_repro.models.weights import WeightsError, imagenet_weights_path, load_imagenet_state
from dsvdd_repro.runs.config import anomaly, register_configs, validate
from dsvdd_repro.runs.folders import (
    LOG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SCORES_FILE,
    RunDirError,
    config_hash,
    finished_run,
    identity,
    provenance,
    remove_stale_temporaries,
    run_axes,
    run_lock,
    verified_memo,
    write_json,
    write_model,
    write_scores,
)
from dsvdd_repro.storage import preemption
from dsvdd_repro.storage.atomic import atomic_write_bytes
from dsvdd_repro.storage.checkpoint import Checkpoint
from dsvdd_repro.storage.integrity import file_record
from dsvdd_repro.storage.locations import default_cache_root

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
    return OmegaConf.to_object(cfg.setup).splits(images, cfg.data_seed, limits, anomaly(cfg), show_progress(cfg.trainer))


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> dict:
    """Execute one run into `run_dir`; return its metrics with `status` done | diverged | failed, or
    skipped without writing anything: finished before (its metrics, `finished_as` its status), or
    running in another process."""
    validate(cfg)
    model = cfg.get("model")
    if model is not None and model.get("weights") == "imagenet" and not imagenet_weights_path().is_file():
        load_imagenet_state()  # downloads them, or fails in one line before any work
    run_dir = Path(run_dir)
    run_identity = identity(cfg)
    existing = finished_run(run_dir, run_identity, verified_memo())
    if existing:  # checked before anything is written: a finished folder is never touched
        log.info("already %s, skipping: %s (test AUC %s)", existing["status"], run_dir, existing.get("test_auc"))
        return {**existing, "status": "skipped", "finished_as": existing["status"]}
    with run_lock(run_dir, preemption.lock_wait_s()) as held:
        if not held:
            log.info("running in another process, skipping: %s", run_dir)
            return {"status": "skipped", "error": "running in another process"}
        existing = finished_run(run_dir, run_identity, verified_memo())  # it may have finished while we waited
        if existing:
            return {**existing, "status": "skipped", "finished_as": existing["status"]}
        stale = remove_stale_temporaries(run_dir)
        handler = _log_to(run_dir / LOG_FILE)
        try:
            if stale:
                log.warning("removed temporary files of a killed attempt: %s", ", ".join(stale))
            write_run_config(run_dir, cfg, overrides or [])
            return _execute(cfg, run_dir, run_identity)
        except INPUT_ERRORS as error:  # e.g. data not found: its reason in train.log, for the report
            log.error("%s", error)
            error.logged = True
            raise
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def write_run_config(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> None:
    """`.hydra/config.yaml` and `overrides.yaml`, as Hydra writes them, but only for a run that
    really starts (Hydra's own output_subdir is off: it would rewrite a finished run's)."""
    job = OmegaConf.masked_copy(cfg, [key for key in cfg.keys() if key != "hydra"])
    atomic_write_bytes(run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(job).encode())
    atomic_write_bytes(run_dir / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(list(overrides)).encode())


def _execute(cfg: DictConfig, run_dir: Path, run_identity: dict) -> dict:
    start = time.perf_counter()
    seed_everything(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = resolve_device(cfg.trainer.device)
    progress = show_progress(cfg.trainer)
    images = build(cfg.dataset).load(progress=progress)
    splits = make_splits(cfg, images)
    log.info("splits: %s", splits.sizes())
    context = RunContext(cfg, images.image_size, device, default_cache_root(cfg.dataset.get("cache_dir")), run_dir)
    context.execution.apply()
    if context.execution.data_on_device:  # copied once; every minibatch is then gathered on the device
        splits = splits.to(device)
    # loads weights: fails here, before any training, if they cannot be had
    detector = build(cfg.method, context=context)

    metrics = {
        "status": "running",
        **run_axes(cfg),
        "config_hash": config_hash(run_identity),
        "config": run_identity,
        "data": {"source": images.source, "splits": splits.sizes()},
        "model": detector.describe(),
        "execution": context.execution.describe(),
        "val_auc": None, "best_epoch": None, "collapsed": None, "history": [],
    }
    try:
        metrics.update(detector.fit(splits.train, splits.val))
        diverged = "diverged_at" in metrics
        scored = not diverged or metrics["best_epoch"] is not None
        scores = detector.score(splits.test) if scored else None
        if scores is not None and not np.isfinite(scores).all():
            metrics.update(diverged_at={"epoch": metrics["best_epoch"], "step": None},
                           error="the test scores are not finite")
            diverged, scores = True, None
        metrics["status"] = "diverged" if diverged else "done"
        metrics["test_auc"] = None if scores is None else auroc(splits.test.labels, scores)
    except Exception as error:
        metrics.update(status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
        metrics["seconds"] = time.perf_counter() - start
        metrics["provenance"] = provenance(device)
        write_json(run_dir / METRICS_FILE, metrics)
        raise
    metrics["seconds"] = time.perf_counter() - start
    metrics["provenance"] = provenance(device)
    if metrics["test_auc"] is not None:  # logged before the final writes, so a failing disk loses no result
        log.info("test AUC %.6f (best epoch %s, val AUC %s)", metrics["test_auc"], metrics["best_epoch"],
                 metrics["val_auc"])
    _write_results(run_dir, metrics, detector, splits.test, scores)
    Checkpoint(run_dir).remove()  # a finished run keeps its selected model (model.pt) only
    log.info("%s in %.1fs -> %s", metrics["status"], metrics["seconds"], run_dir)
    return metrics


def _write_results(run_dir: Path, metrics: dict, detector, test, scores: np.ndarray | None) -> None:
    """scores.npz and model.pt, then metrics.json naming them (with sizes and hashes) last; a
    failing write is one line naming the path."""
    files = {}
    path = run_dir / SCORES_FILE
    try:
        if scores is not None:
            write_scores(path, score=scores, label=test.labels, index=test.keys, altered=test.altered_slot >= 0)
            files[SCORES_FILE] = file_record(path)
        exported = detector.export()
        if exported is not None:
            path = run_dir / MODEL_FILE
            write_model(path, exported)
            files[MODEL_FILE] = file_record(path)
        else:
            metrics["model_not_saved"] = detector.export_note
        metrics["files"] = files
        path = run_dir / METRICS_FILE
        write_json(path, metrics)
    except OSError as error:
        raise ResultWriteError(f"could not write {path}: {error.strerror or error}") from error


class ResultWriteError(OSError):
    """The run finished but its results could not be written (the message names the path)."""


# what a sweep's job returns to the sweeper (hydra_plugins/dsvdd_repro_sweeper: job_outcome)
STATUS_KEYS = ("status", "test_auc", "error", "finished_as")


def _refused(error: Exception, status: str, exit_code: int, sweeping: bool, run_dir: Path) -> dict:
    """One line on stderr (and in the log, once); a sweep's job returns `status`, a single run exits."""
    if not getattr(error, "logged", False):
        log.error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    if sweeping:
        return {"status": status, "run_dir": str(run_dir), "test_auc": None, "error": str(error)}
    sys.exit(exit_code)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    """One job. Bad input: one line, exit code 2 (a sweep's job returns status invalid instead).
    In a sweep a job's own failure is returned as its status (the sweeper counts them); a single
    run re-raises it."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        # on a terminal, log lines are printed above the progress bars instead of through them
        with logging_redirect_tqdm() if show_progress(cfg.trainer) else contextlib.nullcontext():
            metrics = run(cfg, run_dir, list(hydra_cfg.overrides.task))
    except (*INPUT_ERRORS, RunDirError) as error:
        return _refused(error, "invalid", 2, sweeping, run_dir)
    except ResultWriteError as error:
        return _refused(error, "failed", 1, sweeping, run_dir)
    except Exception as error:
        if not sweeping:
            raise
        log.exception("run failed: %s", run_dir)
        return {"status": "failed", "run_dir": str(run_dir), "test_auc": None,
                "error": f"{type(error).__name__}: {error}".splitlines()[0]}
    return job_result(run_dir, metrics)


def job_result(run_dir: Path, metrics: dict) -> dict:
    """What a sweep's job returns to the sweeper: its run folder and STATUS_KEYS of `run`'s metrics."""
    return {"run_dir": str(run_dir), **{key: metrics.get(key) for key in STATUS_KEYS}}


if __name__ == "__main__":
    main()
