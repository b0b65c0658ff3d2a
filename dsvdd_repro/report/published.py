"""The published numbers of Tables I-VI, one row per cell (see results/published/README.md).

``load_published()`` reads ``results/published/tables.csv`` with proper dtypes: ``semi_supervised``
and ``bold`` as bool, ``lr``, ``mean`` and ``spread`` as float (``lr`` NaN for the baselines), every
other column as str with ``""`` for empty.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED_CSV = Path(__file__).resolve().parents[2] / "results" / "published" / "tables.csv"

COLUMNS: tuple[str, ...] = (
    "table",
    "variant",
    "row_label",
    "dataset",
    "setup",
    "semi_supervised",
    "train_anomaly",
    "val_anomaly",
    "test_anomaly",
    "objective",
    "lr",
    "weighting",
    "column_label",
    "mean",
    "spread",
    "bold",
    "note",
)
# Within one table these identify a cell (what a run of ours is joined on).
KEY_COLUMNS: tuple[str, ...] = (
    "variant",
    "dataset",
    "setup",
    "semi_supervised",
    "train_anomaly",
    "val_anomaly",
    "test_anomaly",
    "objective",
    "lr",
    "weighting",
)
TABLES: tuple[str, ...] = ("I", "II", "III", "IV", "V", "VI")
VARIANTS: tuple[str, ...] = (
    "dsvdd",
    "dsvdd_bias",
    "dsvdd_bias_noise",
    "dsvdd_bias_var",
    "ocsvm_pca",
    "ocsvm_cnn",
    "iforest_pca",
    "iforest_cnn",
    "geo",
)
BASELINES: tuple[str, ...] = ("ocsvm_pca", "ocsvm_cnn", "iforest_pca", "iforest_cnn", "geo")

BOOL_COLUMNS = ("semi_supervised", "bold")
FLOAT_COLUMNS = ("lr", "mean", "spread")
_BOOLS = {"true": True, "false": False}


def _to_bool(series: pd.Series) -> pd.Series:
    lowered = series.str.strip().str.lower()
    bad = sorted(set(lowered[~lowered.isin(_BOOLS)]))
    if bad:
        raise ValueError(f"column {series.name!r}: expected true/false, got {bad}")
    return lowered.map(_BOOLS).astype(bool)


def _to_float(series: pd.Series, *, allow_empty: bool) -> pd.Series:
    stripped = series.str.strip()
    if not allow_empty and (stripped == "").any():
        raise ValueError(f"column {series.name!r} has empty cells")
    try:
        return pd.to_numeric(stripped.replace("", float("nan")), errors="raise").astype(float)
    except ValueError as err:
        raise ValueError(f"column {series.name!r}: {err}") from err


def load_published(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """Read the published-numbers CSV; raise ValueError naming any missing column."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in BOOL_COLUMNS:
        frame[column] = _to_bool(frame[column])
    for column in FLOAT_COLUMNS:
        frame[column] = _to_float(frame[column], allow_empty=column == "lr")
    extra = [column for column in frame.columns if column not in COLUMNS]
    return frame[list(COLUMNS) + extra]
