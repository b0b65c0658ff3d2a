"""Hyperparameter selection on validation data only (Section V-B): the one selection layer.

The paper picks the number k of random-label tasks of the noise regularizer from
{5, 30, 50, 60, 70, 100, 130, 200} (conf/grid/paper.yaml) "via grid search using the validation
performance as a selection criterion". Which swept hyper-parameters are chosen this way the nodes
declare (`SELECTED`, dsvdd_repro/core/schema.py: k of the noise regularizer). The rule, in one place (`_best`):

1. the caller names the axes that make a cell (`cell`); runs that agree on them are one cell,
   and every axis not named (the seed, and anything else) is averaged over;
2. per cell, the value of `param` with the highest mean validation AUC wins; ties (within
   `TIE_TOLERANCE`) go to the smaller value;
3. that value's runs are reported (`select_by_validation`). Test AUCs are carried along for
   reporting and never looked at to choose.

The report's tables and figures call `select_by_validation` with their cell axes; the command line
uses `default_cell_axes()`, every recorded run axis except the seeds:
`python -m dsvdd_repro.report.selection runs/<profile> [--param k] [--cell AXIS ...] [--out selection.csv]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dsvdd_repro.runs.config import selected_axes, swept_axes
from dsvdd_repro.runs.folders import collect_metrics

# Mean validation AUCs closer than this are a tie (float noise of a mean over a few seeds is ~1e-16).
TIE_TOLERANCE = 1e-12


def default_cell_axes() -> tuple[str, ...]:
    """The axes a run records in metrics.json (contract C2) that make a cell for the command line:
    all of them but the seeds, which are averaged over, with every swept hyper-parameter the nodes
    declare (`runs.run_axes`). The chosen parameter itself is left out when chosen."""
    fixed = ("method", "variant", "dataset", "setup", "normal_class", "semi_supervised", "labeled_anomaly_class",
             "anomaly", "objective", *swept_axes("objective"), "regularizer", *swept_axes("regularizer"), "bias",
             "pooling", "weights", "lr", "backbone_lr_factor", "image_size", "epochs", "features", "profile")
    return (*fixed, *(axis for axis in swept_axes() if axis not in fixed))


CHOICE_COLUMNS = ("val_auc_mean", "n_seeds", "test_auc_mean", "candidates")


def _cell_keys(runs: pd.DataFrame, cell: Sequence[str]) -> list[pd.Series]:
    """The cell axes as text, so that mixed types group as one value (grouped with dropna=False:
    pandas keeps None and NaN missing even as text)."""
    missing = [axis for axis in cell if axis not in runs.columns]
    if missing:
        raise ValueError(f"runs have no axis {', '.join(map(repr, missing))}")
    return [runs[axis].astype(str) for axis in cell]


def _best(val_means: pd.Series) -> object:
    """The smallest value whose mean validation AUC is the highest (within TIE_TOLERANCE); the
    smallest value when no run has a validation AUC."""
    val_means = val_means.sort_index()
    if val_means.isna().all():
        return val_means.index[0]
    return val_means[val_means >= val_means.max() - TIE_TOLERANCE].index[0]


def _cells(runs: pd.DataFrame, param: str, cell: Sequence[str]) -> list[pd.DataFrame]:
    """The runs that have a value of `param`, one group per cell (all of them when no axis is named)."""
    swept = runs[runs[param].notna()]
    swept = swept.assign(val_auc=swept["val_auc"].astype(float), test_auc=swept["test_auc"].astype(float))
    if swept.empty or not cell:
        return [swept] if len(swept) else []
    return [group for _, group in swept.groupby(_cell_keys(swept, cell), sort=True, dropna=False)]


def select_by_validation(runs: pd.DataFrame, param: str, cell: Sequence[str]) -> pd.DataFrame:
    """The runs of the value of `param` chosen per cell (the axes in `cell`) by mean validation
    AUC; runs without a value of `param` (e.g. k for an unregularized model) are kept as they are.

    `runs` holds finished runs, one row each (unique index), with `val_auc`, `param` and the
    `cell` columns; the result keeps their order.
    """
    if runs.empty or param not in runs.columns:
        return runs
    keep = runs[param].isna()
    for group in _cells(runs, param, [axis for axis in cell if axis != param]):
        best = _best(group.groupby(param)["val_auc"].mean())
        keep.loc[group.index[group[param] == best]] = True
    return runs[keep]


def choose(runs: pd.DataFrame, param: str, cell: Sequence[str]) -> pd.DataFrame:
    """One row per cell: its axes, the chosen `param`, that value's `val_auc_mean`, `n_seeds`
    and `test_auc_mean` (reported, not used to choose), and `candidates` (value -> mean val AUC)."""
    cell = [axis for axis in cell if axis != param]
    rows = []
    for group in _cells(runs, param, cell):
        per_value = group.groupby(param).agg(val_auc_mean=("val_auc", "mean"), n_seeds=("seed", "nunique"),
                                             test_auc_mean=("test_auc", "mean"))
        best = _best(per_value["val_auc_mean"])
        rows.append({
            **group.iloc[0][cell].to_dict(),
            param: best,
            "val_auc_mean": per_value.loc[best, "val_auc_mean"],
            "n_seeds": int(per_value.loc[best, "n_seeds"]),
            "test_auc_mean": per_value.loc[best, "test_auc_mean"],
            "candidates": {value: round(float(auc), 6) for value, auc in per_value["val_auc_mean"].items()},
        })
    return pd.DataFrame(rows, columns=[*cell, param, *CHOICE_COLUMNS])


def _flat(value):
    return repr(value) if isinstance(value, (dict, list)) else value


def runs_frame(runs: list[dict], axes: Sequence[str] | None = None) -> pd.DataFrame:
    """Finished runs (metrics.json contents) as a table, one row per run, nested axes (e.g.
    `anomaly`) as text, and every axis in `axes` present (None where a run did not record it)."""
    axes = default_cell_axes() if axes is None else axes
    rows = [{key: _flat(value) for key, value in run.items() if key != "history"} for run in runs]
    frame = pd.DataFrame(rows)
    for column in ("status", "seed", "val_auc", "test_auc", *axes):
        if column not in frame.columns:
            frame[column] = None
    return frame[frame["status"] == "done"].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Choose a hyperparameter per cell by validation AUC.")
    parser.add_argument("root", type=Path, help="folder holding run folders (metrics.json)")
    parser.add_argument("--param", help="the run axis to choose (default: the first the nodes declare as "
                        "chosen on validation, k)")
    parser.add_argument("--cell", nargs="+", help="the run axes that make a cell (default: every recorded axis "
                        "but the seeds)")
    parser.add_argument("--out", type=Path, help="write the selection as CSV")
    args = parser.parse_args(argv)
    args.param = args.param or selected_axes()[0]
    args.cell = args.cell or list(default_cell_axes())
    frame = runs_frame(collect_metrics(args.root), args.cell)
    if args.param not in frame.columns or frame[args.param].isna().all():
        print(f"error: no finished run below {args.root} has a value of {args.param!r}", file=sys.stderr)
        return 2
    selection = choose(frame, args.param, args.cell)
    print(selection.to_string(index=False))
    if args.out:
        selection.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
