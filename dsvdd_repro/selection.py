"""Hyperparameter selection on validation data only (Section V-B).

The paper picks the number k of random-label tasks of the noise regularizer from
K_GRID = {5, 30, 50, 60, 70, 100, 130, 200} "via grid search using the validation performance as a
selection criterion". The step, as the table sweeps call it:

1. run every k of the grid for every cell and seed (a Hydra multirun over `regularizer.k`);
2. `select_by_validation(runs, "k")`: for every cell (all run axes except k and the seed), the k
   with the highest mean validation AUC over seeds; ties go to the smaller k;
3. report that k's runs. Test AUCs are carried along for reporting and never looked at to choose.

Command line: `python -m dsvdd_repro.selection runs/<profile> [--param k] [--out selection.csv]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .runs import collect_metrics

K_GRID = (5, 30, 50, 60, 70, 100, 130, 200)
# Run fields that never define a cell: outcomes, bookkeeping, and the seed that is averaged over.
NON_CELL_FIELDS = {
    "status", "seed", "test_auc", "val_auc", "best_epoch", "collapsed", "collapse_epoch", "history", "seconds",
    "provenance", "config_hash", "config", "data", "model", "run_dir", "radius", "center_norm", "initial_feature_var",
    "fit_seconds", "error",
}


def _flat(value) -> str:
    return repr(value) if isinstance(value, (dict, list)) else value


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """Finished runs as a table, one row per run, nested axes (e.g. `anomaly`) as strings."""
    rows = [{key: _flat(value) for key, value in run.items() if key != "history"} for run in runs]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame[frame["status"] == "done"].reset_index(drop=True)


def select_by_validation(runs: list[dict], param: str = "k") -> pd.DataFrame:
    """Per cell, the value of `param` with the best mean validation AUC (over seeds).

    Returns one row per cell: the cell's axes, `param` (the chosen value), `val_auc_mean`,
    `n_seeds`, `candidates` (value -> mean val AUC) and the chosen runs' `test_auc_mean` (reported,
    not used to choose).
    """
    frame = runs_frame(runs)
    if frame.empty:
        raise ValueError("no finished runs to select from")
    if param not in frame.columns:
        raise ValueError(f"runs have no axis {param!r}")
    frame = frame[frame[param].notna()]
    cell_keys = [c for c in frame.columns if c not in NON_CELL_FIELDS and c != param]
    frame = frame.assign(**{c: frame[c].astype(str) for c in cell_keys})
    rows = []
    for cell, group in frame.groupby(cell_keys, dropna=False, sort=True):
        per_value = group.groupby(param).agg(val_auc_mean=("val_auc", "mean"), n_seeds=("seed", "nunique"),
                                             test_auc_mean=("test_auc", "mean"))
        best = per_value.sort_index().val_auc_mean.idxmax()  # first maximum = the smallest value
        rows.append({
            **dict(zip(cell_keys, cell if isinstance(cell, tuple) else (cell,), strict=True)),
            param: best,
            "val_auc_mean": per_value.loc[best, "val_auc_mean"],
            "n_seeds": int(per_value.loc[best, "n_seeds"]),
            "test_auc_mean": per_value.loc[best, "test_auc_mean"],
            "candidates": {value: round(float(auc), 6) for value, auc in per_value.val_auc_mean.items()},
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Choose a hyperparameter per cell by validation AUC.")
    parser.add_argument("root", type=Path, help="folder holding run folders (metrics.json)")
    parser.add_argument("--param", default="k", help="the run axis to choose (default: k)")
    parser.add_argument("--out", type=Path, help="write the selection as CSV")
    args = parser.parse_args(argv)
    try:
        selection = select_by_validation(collect_metrics(args.root), args.param)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(selection.to_string(index=False))
    if args.out:
        selection.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
