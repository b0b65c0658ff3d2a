"""The same runs in two precisions side by side: test AUC and run time per (normal class, seed).

Precision is an execution key (dsvdd_repro/runs/config.py), so a bf16 sweep lands in its own runs folder
and finds its float32 twin by run folder name. Reads each finished run's metrics.json and checks the
precision it really used (`execution.precision`).

    python scripts/compare_precision.py runs/ruff2018_ten_classes runs/ruff2018_ten_classes_bf16 \
        [--out results/ruff2018_ten_classes/bf16.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def finished(root: Path) -> dict[str, dict]:
    """Run folder (relative to root) -> metrics of each finished run below root."""
    runs = {}
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        if metrics.get("status") == "done":
            runs[path.parent.relative_to(root).as_posix()] = metrics
    return runs


def compare(reference: Path, other: Path) -> str:
    ref_runs, other_runs = finished(reference), finished(other)
    pairs = [(folder, ref_runs[folder], other_runs[folder]) for folder in sorted(ref_runs.keys() & other_runs.keys())]
    if not pairs:
        sys.exit(f"error: no finished run of {other} has a finished twin in {reference}")
    ref_precision = {m["execution"]["precision"] for _, m, _ in pairs}
    other_precision = {m["execution"]["precision"] for _, _, m in pairs}
    a, b = "/".join(sorted(ref_precision)), "/".join(sorted(other_precision))
    lines = [f"# {a} vs {b}: the same runs, test AUC in % and run time", "",
             f"`{reference}` ({a}) beside `{other}` ({b}); each run's own metrics.json. Seconds: the whole run "
             "(pretraining, deep SVDD, scoring).", "",
             f"| normal class | seed | AUC {a} | AUC {b} | {b} - {a} | s {a} | s {b} | speed-up |", "|---|---|---|---|---|---|---|---|"]
    diffs, speedups = [], []
    for _, ref, oth in pairs:
        ref_auc, oth_auc = 100 * ref["test_auc"], 100 * oth["test_auc"]
        diffs.append(oth_auc - ref_auc)
        speedups.append(ref["seconds"] / oth["seconds"])
        c = ref["normal_class"]
        lines.append(f"| {c} {CLASSES[c]} | {ref['seed']} | {ref_auc:.1f} | {oth_auc:.1f} | {diffs[-1]:+.1f} | "
                     f"{ref['seconds']:.0f} | {oth['seconds']:.0f} | {speedups[-1]:.2f} |")
    lines += ["", f"{len(pairs)} pairs: mean difference {statistics.mean(diffs):+.2f} points, mean |difference| "
              f"{statistics.mean(abs(d) for d in diffs):.2f}, largest {max(diffs, key=abs):+.1f}; run time "
              f"speed-up {statistics.median(speedups):.2f}x (median)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = compare(args.reference, args.other)
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
