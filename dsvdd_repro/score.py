"""Score new images with a finished run's saved model: `python -m dsvdd_repro.score <run folder>
<image or folder> [...] [--out scores.csv]` (also `dsvdd-score`).

The run folder may come from someone else: nothing in it runs code (dsvdd_repro/storage/received.py). Its
recorded config (metrics.json) is checked to build only the package's own nodes, model.pt is
checked against the sha256 the run recorded and loaded as tensors and plain values only, and the
detector is rebuilt from the config (with `model.weights=none`: no download, the saved weights
replace them) and restored from model.pt (`Detector.load_export`).

Every input is checked before any scoring: the device, the `--out` path (its folder exists and is
writable, it is not a folder), every image (decoded up front; a file Pillow cannot read or one over
its decompression-bomb limit is named). A bad image refuses the whole call unless
`--skip-bad-images`, which scores the others and names the skipped ones on standard error. Images
are decoded as the run's data was (dsvdd_repro/data/decode.py: RGB by scaling, resized to the run's
`dataset.image_size` square, uint8), then go through the network's own preprocessing. Folders are
searched recursively for the extensions `dataset=folder` reads, skipping hidden files and folders
(dsvdd_repro/data/source.py). Writes `path,score` lines (higher = more anomalous) to standard output
or atomically to `--out` (a failed write leaves an existing file as it was).

Every failure is one line on standard error and exit status 2. `--trust` loads a run folder's files
as they are (a model.pt of the pickled format earlier versions wrote); only for a copy you made or
got from someone you trust. `--re-export` rewrites such a model.pt of a trusted copy in the current
format (checked to give the same scores) and records the new file's hash in metrics.json; given a
folder of runs (`runs/quick`), it does so for every run below it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from dsvdd_repro.core.anomaly import AnomalyConfig
from dsvdd_repro.core.schema import NODE_GROUPS, build, with_node_defaults
from dsvdd_repro.data.decode import decode_one
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.data.source import find_images
from dsvdd_repro.methods.base import RunContext
from dsvdd_repro.methods.features import unlabeled_train
from dsvdd_repro.runs.config import TrainerConfig, register_configs
from dsvdd_repro.runs.folders import (
    FINAL_STATUSES,
    METRICS_FILE,
    MODEL_FILE,
    MODEL_FORMAT,
    SCORES_FILE,
    model_bytes,
    read_metrics,
    write_json,
    write_model,
)
from dsvdd_repro.storage.atomic import atomic_write_bytes
from dsvdd_repro.storage.integrity import changed_files, file_record
from dsvdd_repro.storage.locations import default_cache_root
from dsvdd_repro.storage.received import UnsafeFileError, check_recorded_config, load_data, one_line

PROBE_IMAGES = 32  # random images both formats must score alike before a re-export is written


class ScoreError(ValueError):
    """A run folder, image, device or output that cannot be used (one line)."""


# -- checks before any work ------------------------------------------------------------------------


def check_device(text: str) -> torch.device:
    allowed = "allowed: cpu, cuda, cuda:N (N < the number of visible GPUs), mps"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ScoreError(f"--device {text!r} is not a device ({allowed})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ScoreError(f"--device {text!r}: no CUDA GPU is visible here ({allowed}; use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ScoreError(f"--device {text!r}: {torch.cuda.device_count()} GPU(s) visible ({allowed})")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ScoreError(f"--device {text!r}: MPS is not available here ({allowed})")
    elif device.type != "cpu":
        raise ScoreError(f"--device {text!r} ({allowed})")
    return device


def check_out(path: Path) -> None:
    """`--out` can be written (checked before scoring; the write itself may still fail, atomically)."""
    if path.is_dir():
        raise ScoreError(f"--out {path}: is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise ScoreError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScoreError(f"--out {path}: the folder {parent} is not writable")


def image_paths(inputs: list[str]) -> list[Path]:
    paths = []
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise ScoreError(f"{path}: no such file or folder")
        found = find_images(path)
        if not found:
            raise ScoreError(f"{path}: no image files in this folder (hidden files and folders are skipped)")
        paths += found
    return paths


# -- the run's detector ----------------------------------------------------------------------------


def _finished_metrics(run_dir: Path) -> dict:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise ScoreError(f"{path}: no such file; give a finished run's folder")
    metrics = read_metrics(run_dir)
    if metrics is None:
        raise ScoreError(f"{path}: not valid JSON")
    if metrics.get("status") not in FINAL_STATUSES:
        raise ScoreError(f"{path}: not a finished run (status {metrics.get('status')!r})")
    if MODEL_FILE not in (metrics.get("files") or {}):
        why = metrics.get("model_not_saved", "it was made before models were saved")
        raise ScoreError(f"{run_dir}: the run saved no model ({why})")
    if not isinstance(metrics.get("config"), dict):
        raise ScoreError(f"{path}: records no config; the detector cannot be rebuilt")
    return metrics


def _load_model_file(run_dir: Path, metrics: dict, device: torch.device, trust: bool) -> dict:
    if changed_files(run_dir, {MODEL_FILE: metrics["files"][MODEL_FILE]}):
        raise ScoreError(f"{run_dir / MODEL_FILE}: missing, or its sha256 differs from the one the run recorded "
                         "in metrics.json (changed since the run wrote it)")
    try:
        state = load_data(run_dir / MODEL_FILE, device, trust=trust)
    except UnsafeFileError as error:
        raise ScoreError(f"{error}. Saved before model format {MODEL_FORMAT}? Re-export it from a copy you "
                         f"trust (dsvdd-score --re-export {run_dir}), or pass --trust to load it as it is") from None
    except ValueError as error:
        raise ScoreError(str(error)) from None
    if not isinstance(state, dict):
        raise ScoreError(f"{run_dir / MODEL_FILE}: holds a {type(state).__name__}, not a saved model")
    return state


def recorded_config(metrics: dict):
    """The run's recorded config, with the trainer's defaults for how a run executes (the identity
    leaves them out: dsvdd_repro.core.execution.EXECUTION_KEYS) and no progress bars."""
    cfg = OmegaConf.create(metrics["config"])
    for group in NODE_GROUPS:  # the keys the identity leaves out take their node's defaults
        if isinstance(cfg.get(group), DictConfig):
            cfg[group] = with_node_defaults(group, cfg[group])
    cfg.trainer = OmegaConf.merge(OmegaConf.structured(TrainerConfig), cfg.get("trainer") or {})
    cfg.trainer.progress = False
    return cfg


def _rebuild(run_dir: Path, metrics: dict, device: torch.device):
    """The detector the run's recorded config builds (not yet restored), and that config."""
    cfg = recorded_config(metrics)
    if cfg.get("model") is not None and "weights" in cfg.model:
        cfg.model.weights = "none"  # the saved state replaces them
    cfg.trainer.device = str(device)
    context = RunContext(cfg, int(cfg.dataset.image_size), device, default_cache_root(None))
    return build(cfg.method, context=context), cfg


def load_detector(run_dir: Path, device: torch.device, trust: bool = False):
    """The run's detector with its saved state, and its config; ScoreError (one line) otherwise."""
    run_dir = Path(run_dir)
    metrics = _finished_metrics(run_dir)
    register_configs()  # the package's nodes: the only targets a received config may build
    if not trust:
        try:
            check_recorded_config(metrics["config"], str(run_dir / METRICS_FILE))
        except UnsafeFileError as error:
            raise ScoreError(str(error)) from None
    state = _load_model_file(run_dir, metrics, device, trust)
    try:
        detector, cfg = _rebuild(run_dir, metrics, device)
    except Exception as error:  # noqa: BLE001 - a recorded config this version cannot build
        raise ScoreError(f"{run_dir / METRICS_FILE}: its config does not build a detector here ({one_line(error)})") \
            from None
    try:
        detector.load_export(state)
    except UnsafeFileError as error:
        raise ScoreError(f"{run_dir / MODEL_FILE}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a model.pt that does not fit the run's network
        raise ScoreError(f"{run_dir / MODEL_FILE}: does not fit the run's detector ({one_line(error)})") from None
    return detector, cfg


# -- images and scores -----------------------------------------------------------------------------


def decode_images(paths: list[Path], size: int) -> tuple[list[Path], np.ndarray, list[str]]:
    """(decodable paths, their uint8 images [n, 3, size, size], `path: reason` of the others)."""
    kept, images, bad = [], [], []
    for path in paths:
        try:
            with warnings.catch_warnings():  # over Pillow's pixel limit: refused as a decompression bomb
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                images.append(decode_one(str(path), size))
            kept.append(path)
        except Exception as error:  # noqa: BLE001 - any unreadable image is named the same way
            bad.append(f"{path}: {one_line(error)}")
    stacked = np.stack(images) if images else np.empty((0, 3, size, size), dtype=np.uint8)
    return kept, stacked, bad


def as_split(images: np.ndarray) -> SplitData:
    """New images as a split of their own (labels unknown: all 0)."""
    n = len(images)
    return SplitData(name="new", pool=torch.from_numpy(images), keys=np.arange(n), labels=np.zeros(n, dtype=np.int64),
                     altered_slot=np.full(n, -1), altered_images=torch.empty((0, *images.shape[1:]), dtype=torch.uint8))


def score_images(run_dir: Path, inputs: list[str], device: str = "cpu", skip_bad: bool = False,
                 trust: bool = False) -> tuple[list[tuple[str, float]], list[str]]:
    """([(path, score)], ["path: reason" of each skipped image]); ScoreError (one line) otherwise."""
    torch_device = check_device(device)
    paths = image_paths(inputs)
    detector, cfg = load_detector(Path(run_dir), torch_device, trust)
    kept, images, bad = decode_images(paths, int(cfg.dataset.image_size))
    if bad and not skip_bad:
        raise ScoreError(f"{len(bad)} of {len(paths)} images cannot be decoded; first {bad[0]} "
                         "(--skip-bad-images scores the others)")
    if not kept:
        raise ScoreError(f"none of the {len(paths)} images can be decoded; first {bad[0]}")
    try:
        scores = detector.score(as_split(images))
    except Exception as error:  # noqa: BLE001 - e.g. out of memory on the device
        raise ScoreError(f"scoring failed ({one_line(error)})") from None
    return [(str(path), float(score)) for path, score in zip(kept, scores, strict=True)], bad


def csv_text(rows: list[tuple[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "score"])
    writer.writerows(rows)
    return buffer.getvalue()


def write_out(path: Path, text: str) -> None:
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as error:
        raise ScoreError(f"--out {path}: cannot be written ({one_line(error)}); an existing file is unchanged") \
            from None


# -- re-export -------------------------------------------------------------------------------------


def re_export(run_dir: Path) -> str:
    """Rewrite a trusted copy's model.pt in MODEL_FORMAT if it is in an earlier one, after checking that
    both score PROBE_IMAGES random images alike; record the new file in metrics.json. Returns what it did."""
    run_dir, device = Path(run_dir), torch.device("cpu")
    metrics = _finished_metrics(run_dir)
    try:
        load_data(run_dir / MODEL_FILE)
        return f"{run_dir / MODEL_FILE}: already data only; nothing to do"
    except UnsafeFileError:
        pass
    except ValueError as error:
        raise ScoreError(str(error)) from None
    old, cfg = load_detector(run_dir, device, trust=True)
    refitted = _refit_if_unfitted(run_dir, metrics, old)
    size = int(cfg.dataset.image_size)
    probe = as_split(np.random.default_rng(0).integers(0, 256, (PROBE_IMAGES, 3, size, size), dtype=np.uint8))
    before = old.score(probe)
    state = old.export()
    new, _ = _rebuild(run_dir, metrics, device)
    new.load_export(load_data(io.BytesIO(model_bytes(state))))  # as model.pt will hold it
    after = new.score(probe)
    if not np.array_equal(before, after):
        raise ScoreError(f"{run_dir / MODEL_FILE}: the re-exported model scores differently "
                         f"(max difference {np.max(np.abs(before - after)):.3g}); nothing written")
    write_model(run_dir / MODEL_FILE, state)
    metrics["files"][MODEL_FILE] = file_record(run_dir / MODEL_FILE)
    metrics["model_re_exported"] = {"format": MODEL_FORMAT, "at": datetime.datetime.now().isoformat(timespec="seconds"),
                                    "probe_images": PROBE_IMAGES, "same_scores": True, "refitted": refitted}
    write_json(run_dir / METRICS_FILE, metrics)
    return (f"{run_dir / MODEL_FILE}: re-exported in model format {MODEL_FORMAT} (same scores on {PROBE_IMAGES} "
            f"probe images{'; ' + refitted if refitted else ''})")


def _refit_if_unfitted(run_dir: Path, metrics: dict, detector) -> str | None:
    """A shallow run of an earlier version whose features all came from the cache saved its PCA
    unfitted: fit it again on the run's own training split (the fit is deterministic) and accept it
    only if the run's test split then scores as scores.npz says. What was done, or None."""
    features = getattr(detector, "features", None)
    if features is None or features.extractor.fitted:
        return None
    splits = run_splits(metrics)
    features.set_train(unlabeled_train(splits.train))
    features._fitted = False
    features.ensure_fit()
    with np.load(run_dir / SCORES_FILE) as saved:
        expected, index = saved["score"], saved["index"]
    scores = detector.score(splits.test)
    spread = max(float(np.std(expected)), 1e-12)
    if not np.array_equal(index, splits.test.keys) or np.max(np.abs(scores - expected)) > 1e-5 * spread:
        raise ScoreError(f"{run_dir / MODEL_FILE}: its PCA was saved unfitted and fitting it again does not give "
                         "the run's test scores; re-run the run instead")
    return f"its PCA, saved unfitted, fitted again on the run's {len(splits.train)} training images gives its test scores"


def run_splits(metrics: dict):
    """The run's splits, rebuilt from its recorded config (dataset roots from the environment)."""
    from hydra.core.config_store import ConfigStore

    from dsvdd_repro.train import make_splits

    cfg = recorded_config(metrics)
    for group in ("dataset", "setup"):  # their dataclasses: the protocol's own objects
        node = ConfigStore.instance().load(f"{group}/{cfg[group].name}.yaml").node
        cfg[group] = OmegaConf.merge(node, cfg[group])
    if cfg.get("anomaly") is not None:
        cfg.anomaly = OmegaConf.merge(OmegaConf.structured(AnomalyConfig), cfg.anomaly)
    return make_splits(cfg, build(cfg.dataset).load(progress=False))


def re_export_all(folder: Path) -> int:
    """`re_export` of the run `folder`, or of every finished run with a model below it (a sweep's or
    profile's runs folder); one line per run changed and a summary, on standard error. A run that
    cannot be re-exported is named and the others go on (exit 2 at the end)."""
    folder = Path(folder)
    if (folder / METRICS_FILE).is_file():
        runs = [folder]
    else:
        runs = sorted(path.parent for path in folder.rglob(METRICS_FILE) if (path.parent / MODEL_FILE).is_file())
        if not runs:
            raise ScoreError(f"{folder}: no run folder with a {MODEL_FILE} here or below")
    changed, failed = 0, 0
    for run_dir in runs:
        try:
            message = re_export(run_dir)
        except ScoreError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        if "nothing to do" not in message or len(runs) == 1:
            print(message, file=sys.stderr)
        changed += "nothing to do" not in message
    if len(runs) > 1:
        print(f"{len(runs)} runs: {changed} re-exported, {len(runs) - changed - failed} already data only, "
              f"{failed} failed", file=sys.stderr)
    return 2 if failed else 0


# -- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Anomaly scores of new images from a finished run's saved model.")
    parser.add_argument("run", type=Path, help="a finished run's folder (holding metrics.json and model.pt)")
    parser.add_argument("images", nargs="*", help="image files or folders")
    parser.add_argument("--out", type=Path, help="CSV file to write, atomically (default: standard output)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="score the images that decode and name the others (default: refuse them all)")
    parser.add_argument("--trust", action="store_true",
                        help="load the run folder's files as they are, pickles included: only for a copy you trust")
    parser.add_argument("--re-export", action="store_true",
                        help="rewrite a trusted copy's model.pt of an earlier format as data only (RUN may be "
                             "a folder of runs: each one below it), then stop")
    args = parser.parse_args(argv)
    try:
        if args.re_export:
            return re_export_all(args.run)
        if not args.images:
            raise ScoreError("give at least one image file or folder to score")
        if args.out is not None:
            check_out(args.out)
        rows, skipped = score_images(args.run, args.images, args.device, args.skip_bad_images, args.trust)
        text = csv_text(rows)
        if args.out is not None:
            write_out(args.out, text)
        else:
            sys.stdout.write(text)
    except ScoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if skipped:
        print(f"skipped {len(skipped)} image(s) that cannot be decoded: {'; '.join(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
