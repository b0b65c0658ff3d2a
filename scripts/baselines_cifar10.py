"""CIFAR-10 one-vs-all with the shallow baselines over all 10 normal classes, beside Table III.

Runs each (method, features, class, seed) sequentially through `dsvdd_repro.train.run` (so every
run writes its own C2 run folder and a finished one is skipped when relaunched), then prints the
mean +- std (over classes, numpy's population std) of the test AUCs next to the paper's values and
the wall time, and writes them to `<out>/summary.json`.

    DSVDD_CACHE_DIR=/tmp/dsvdd_cache python scripts/baselines_cifar10.py \\
        --root /tmp/dsvdd_data/cifar10-jpeg --out /tmp/b4/sweep --methods ocsvm iforest --features pca
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsvdd_repro import train  # noqa: E402

# Table III, CIFAR-10 one-vs-all column (mean +- std over the 10 normal classes, AUC in %)
PUBLISHED = {
    "ocsvm_pca": (61.6, 10.4),
    "ocsvm_cnn": (75.3, 8.0),
    "iforest_pca": (54.5, 12.6),
    "iforest_cnn": (69.2, 10.0),
    "geo": (87.2, 7.2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="CIFAR-10 dataset.root")
    parser.add_argument("--out", required=True, type=Path, help="folder for the run folders and summary.json")
    parser.add_argument("--methods", nargs="+", default=["ocsvm", "iforest"], choices=["ocsvm", "iforest"])
    parser.add_argument("--features", nargs="+", default=["pca"], choices=["pca", "cnn"])
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--weights", default="imagenet", help="model.weights for cnn features")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    summary = {}
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for method in args.methods:
            for features in args.features:
                variant = f"{method}_{features}"
                start = time.perf_counter()
                aucs, runs = [], []
                for seed in args.seeds:
                    for normal_class in args.classes:
                        overrides = [
                            f"method={method}", f"features={features}", f"dataset.root={args.root}",
                            "setup=one_vs_all", f"setup.normal_class={normal_class}", f"seed={seed}",
                            f"model.weights={args.weights}", "trainer.progress=false", *args.overrides,
                        ]
                        run_dir = args.out / variant / f"seed{seed}" / f"class{normal_class}"
                        tic = time.perf_counter()
                        metrics = train.run(compose(config_name="config", overrides=overrides), run_dir)
                        aucs.append(metrics["test_auc"])
                        runs.append({"class": normal_class, "seed": seed, "test_auc": metrics["test_auc"],
                                     "val_auc": metrics["val_auc"], "seconds": metrics["seconds"],
                                     "chosen": metrics.get("selection", {}).get("chosen")})
                        print(f"{variant} seed {seed} class {normal_class}: test AUC {100 * metrics['test_auc']:.1f} "
                              f"(val {100 * metrics['val_auc']:.1f}) in {time.perf_counter() - tic:.0f}s", flush=True)
                wall = time.perf_counter() - start
                mean, std = 100 * float(np.mean(aucs)), 100 * float(np.std(aucs))
                summary[variant] = {"mean": mean, "std": std, "n": len(aucs), "wall_seconds": wall,
                                    "published": PUBLISHED.get(variant), "runs": runs}

    print(f"\n{'variant':<14} {'ours (mean +- std, n)':<26} {'Table III':<14} wall")
    for variant, row in summary.items():
        published = row["published"]
        paper = f"{published[0]:.1f} +- {published[1]:.1f}" if published else "-"
        ours = f"{row['mean']:.1f} +- {row['std']:.1f} (n={row['n']})"
        print(f"{variant:<14} {ours:<26} {paper:<14} {row['wall_seconds']:.0f}s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
