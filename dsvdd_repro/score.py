"""Score new images with a finished run's saved model: `python -m dsvdd_repro.score <run folder>
<image or folder> [...] [--out scores.csv]` (also `dsvdd-score`).

The run's detector is rebuilt from the configuration recorded in its metrics.json (with
`model.weights=none`: no download, the saved weights replace them), its fitted state is restored
from `model.pt` (`Detector.load_export`), and every image is decoded as the run's data was: RGB,
resized to the run's `dataset.image_size` square (bilinear), uint8, then the network's own
preprocessing. Writes `path,score` lines (higher = more anomalous) to --out or standard output.
Folders are searched recursively for .jpg, .jpeg, .png, .bmp, .gif, .webp files.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from .config import TrainerConfig
from .data.cache import default_cache_root
from .data.decode import decode_one
from .data.protocols import SplitData
from .methods.base import RunContext
from .runs import METRICS_FILE, MODEL_FILE, missing_files, read_metrics
from .schema import build

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class ScoreError(ValueError):
    """A run folder or image that cannot be scored (one line)."""


def image_paths(inputs: list[str]) -> list[Path]:
    paths = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ScoreError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise ScoreError(f"{path}: no such file or folder")
    return paths


def load_detector(run_dir: Path, device: torch.device):
    """The run's detector with its saved state, and its config."""
    metrics = read_metrics(run_dir)
    if not metrics or metrics.get("status") not in ("done", "diverged"):
        raise ScoreError(f"{run_dir / METRICS_FILE}: not a finished run")
    if MODEL_FILE not in (metrics.get("files") or {}):
        why = metrics.get("model_not_saved", "it was made before models were saved")
        raise ScoreError(f"{run_dir}: the run saved no model ({why})")
    if missing_files(run_dir, metrics):
        raise ScoreError(f"{run_dir / MODEL_FILE}: missing or changed since the run wrote it")
    cfg = OmegaConf.create(metrics["config"])
    # the identity leaves out how a run executes (dsvdd_repro.config.EXECUTION_KEYS): defaults here
    cfg.trainer = OmegaConf.merge(OmegaConf.structured(TrainerConfig), cfg.trainer)
    cfg.trainer.progress = False
    if cfg.get("model") is not None and "weights" in cfg.model:
        cfg.model.weights = "none"  # the saved state replaces them
    cfg.trainer.device = str(device)
    context = RunContext(cfg, int(cfg.dataset.image_size), device, default_cache_root(None))
    detector = build(cfg.method, context=context)
    detector.load_export(torch.load(run_dir / MODEL_FILE, map_location=device, weights_only=False))
    return detector, cfg


def as_split(images: np.ndarray) -> SplitData:
    """New images as a split of their own (labels unknown: all 0)."""
    n = len(images)
    return SplitData(name="new", pool=torch.from_numpy(images), keys=np.arange(n), labels=np.zeros(n, dtype=np.int64),
                     altered_slot=np.full(n, -1), altered_images=torch.empty((0, *images.shape[1:]), dtype=torch.uint8))


def score_images(run_dir: Path, inputs: list[str], device: str = "cpu") -> list[tuple[str, float]]:
    detector, cfg = load_detector(Path(run_dir), torch.device(device))
    paths = image_paths(inputs)
    size = int(cfg.dataset.image_size)
    try:
        images = np.stack([decode_one(str(path), size) for path in paths])
    except OSError as error:
        raise ScoreError(f"cannot decode an image: {error}") from error
    scores = detector.score(as_split(images))
    return [(str(path), float(score)) for path, score in zip(paths, scores, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Anomaly scores of new images from a finished run's saved model.")
    parser.add_argument("run", type=Path, help="a finished run's folder (holding metrics.json and model.pt)")
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        rows = score_images(args.run, args.images, args.device)
    except ScoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    handle = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(["path", "score"])
        writer.writerows(rows)
    finally:
        if args.out:
            handle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
