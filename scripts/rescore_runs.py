"""Check that finished runs still score: each run's saved model, loaded as `dsvdd-score` loads it
(hash checked, data only), scores the run's own test split again, compared with its scores.npz.

    python scripts/rescore_runs.py runs/quick [--methods ocsvm,iforest] [--every 5]

The test split is rebuilt from the run's config composed again from its `.hydra/overrides.yaml`
(its dataset roots from the environment, as the run read them). Prints one line per run and a summary; exit 1 if a run's scores
differ by more than `--tolerance` (relative to the scores' spread) or its model cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dsvdd_repro.core.schema import build
from dsvdd_repro.runs.config import register_configs
from dsvdd_repro.runs.folders import MODEL_FILE, SCORES_FILE, read_metrics
from dsvdd_repro.score import ScoreError, load_detector
from dsvdd_repro.train import make_splits


def rescore(run_dir: Path) -> float:
    """max |new - saved| / std(saved) of the run's test scores."""
    detector, _ = load_detector(run_dir, torch.device("cpu"))
    overrides = [str(o) for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml") if not str(o).startswith("launcher=")]
    with initialize_config_module("dsvdd_repro.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "trainer.progress=false"])
    images = build(cfg.dataset).load(progress=False)
    test = make_splits(cfg, images).test
    with np.load(run_dir / SCORES_FILE) as saved:
        expected, index = saved["score"], saved["index"]
    if not np.array_equal(index, test.keys):
        raise ScoreError(f"{run_dir}: the rebuilt test split is not the run's")
    scores = detector.score(test)
    return float(np.max(np.abs(scores - expected)) / max(float(np.std(expected)), 1e-12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--methods", help="comma-separated methods to check (default: all)")
    parser.add_argument("--every", type=int, default=1, help="check every n-th run of each method")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the runs of a joblib sweep
    register_configs()
    methods = None if args.methods is None else set(args.methods.split(","))
    seen: dict[str, int] = {}
    results = []
    for path in sorted(args.runs.rglob(MODEL_FILE)):
        metrics = read_metrics(path.parent) or {}
        method = metrics.get("method")
        if methods is not None and method not in methods:
            continue
        seen[method] = seen.get(method, 0) + 1
        if (seen[method] - 1) % args.every:
            continue
        try:
            diff = rescore(path.parent)
            line = f"{diff:.2e}"
        except ScoreError as error:
            diff, line = float("inf"), f"error: {error}"
        results.append((method, diff))
        print(f"{method:8s} {path.parent.relative_to(args.runs)}  max|diff|/std {line}", flush=True)
    bad = [r for r in results if not r[1] <= args.tolerance]
    by_method = {}
    for method, diff in results:
        by_method.setdefault(method, []).append(diff)
    summary = ", ".join(f"{m}: {len(d)} runs, max {max(d):.2e}, exact {sum(x == 0 for x in d)}" for m, d in by_method.items())
    print(f"{len(results)} runs rescored ({summary}); {len(bad)} beyond {args.tolerance:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
