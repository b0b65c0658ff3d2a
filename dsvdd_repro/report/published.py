"""The published numbers of Tables I-VI, one row per cell (see dsvdd_repro/published/README.md).

``load_published()`` reads the package data file ``dsvdd_repro/published/tables.csv`` (found through
``importlib.resources``, so an installed package finds it from any folder) with proper dtypes:
``semi_supervised`` and ``bold`` as bool, ``lr``, ``mean`` and ``spread`` as float (``lr`` NaN for the
baselines), every other column as str with ``""`` for empty.

The CSV is the one place where the paper's rows are named: a new method enters the tables by its
rows there, a new table by rows with its name in `table` (`table_names`: the report writes every
table the rows name), and whether a variant is a deep SVDD model is read from them (`variant_is_deep`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # importlib.resources.abc is Python >= 3.11
    from importlib.resources.abc import Traversable

PUBLISHED_CSV: Traversable = files("dsvdd_repro") / "published" / "tables.csv"

# Within one table these identify a cell (what a run of ours is joined on).
KEY_COLUMNS: tuple[str, ...] = (
    "variant", "dataset", "setup", "semi_supervised", "train_anomaly", "val_anomaly", "test_anomaly", "objective",
    "lr", "weighting",
)
COLUMNS: tuple[str, ...] = ("table", *KEY_COLUMNS[:1], "row_label", *KEY_COLUMNS[1:], "column_label", "mean", "spread",
                            "bold", "note")

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


def load_published(path: str | Path | Traversable = PUBLISHED_CSV) -> pd.DataFrame:
    """Read the published-numbers CSV; raise ValueError naming any missing column."""
    source = Path(path) if isinstance(path, str) else path
    with source.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in BOOL_COLUMNS:
        frame[column] = _to_bool(frame[column])
    for column in FLOAT_COLUMNS:
        frame[column] = _to_float(frame[column], allow_empty=column == "lr")
    extra = [column for column in frame.columns if column not in COLUMNS]
    return frame[list(COLUMNS) + extra]


def table_names(published: pd.DataFrame) -> tuple[str, ...]:
    """The tables the published rows fill, in the order the rows list them (the paper's: I-VI)."""
    return tuple(dict.fromkeys(published["table"]))


def variant_is_deep(published: pd.DataFrame) -> dict[str, bool]:
    """Per published variant, whether it is a deep SVDD model: its rows name an objective (the
    baselines' rows leave it empty), so no list of method names has to be kept in step."""
    named = published["objective"] != ""
    return {variant: bool(deep.any()) for variant, deep in named.groupby(published["variant"])}
