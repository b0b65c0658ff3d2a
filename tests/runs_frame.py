"""Hand-built runs frames (runs.csv's rows, `collect.run_columns`) for the report's tests that need
only the frame, not run folders: `frame(run("dsvdd_bias_var", reg_active=False), ...)`."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from dsvdd_repro.report.collect import _typed, run_columns

REGULARIZERS = {"dsvdd_bias_noise": "noise", "dsvdd_bias_var": "variance"}
_folders = itertools.count()


def run(variant: str = "dsvdd_bias", **columns) -> dict:
    """One finished run of `variant`: a 3-epoch quick-profile run on WikiArt strokes 5 (one-class,
    lr 1e-3, the paper's scheme) for a deep variant, a baseline's columns otherwise; `columns` override."""
    deep = variant.startswith("dsvdd")
    regularizer = REGULARIZERS.get(variant, "none") if deep else None
    row = dict.fromkeys(run_columns())
    row.update(
        status="done", variant=variant, method="dsvdd" if deep else variant.split("_")[0], dataset="wikiart",
        setup="alteration", semi_supervised=False, train_anomaly="", val_anomaly="strokes:5",
        test_anomaly="strokes:5", objective="one_class" if deep else "", lr=0.001 if deep else np.nan,
        backbone_lr_factor=0.1 if deep else None, regularizer=regularizer,
        weighting="adaptive" if regularizer not in (None, "none") else "",
        k=5.0 if regularizer == "noise" else None, bias=variant != "dsvdd", pooling="max", image_size=32,
        epochs=3.0 if deep else None, seed=0, profile="quick", test_auc=0.7, val_auc=0.6,
        reg_active=True if regularizer not in (None, "none") else None, seconds=10.0, n_train=1000,
        data_layout="style-folders: wikiart-subset", run_dir=f"{variant}/run{next(_folders)}",
    )
    row.update(columns)
    return row


def frame(*runs: dict) -> pd.DataFrame:
    """The runs as `collect_runs` types them."""
    return _typed(pd.DataFrame(list(runs), columns=list(run_columns())))
