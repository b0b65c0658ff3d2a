"""The transcription of the paper's Tables I-VI in dsvdd_repro/published/tables.csv (package data)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

from dsvdd_repro.report.published import (
    COLUMNS,
    KEY_COLUMNS,
    PUBLISHED_CSV,
    load_published,
    table_names,
    variant_is_deep,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_MD = Path(
    os.environ.get("DSVDD_PAPER_MD", ROOT.parent / "shared" / "paper" / "mode-collapse-deep-svdd.md")
)
SPEC = re.compile(r"^(strokes|block_perm):[1-9][0-9]*$")


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return load_published()


def test_csv_is_package_data_found_from_any_folder(tmp_path):
    assert PUBLISHED_CSV == files("dsvdd_repro") / "published" / "tables.csv"
    assert PUBLISHED_CSV.is_file()
    code = "from dsvdd_repro.report.published import load_published; print(len(load_published()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "198", done.stderr


def _raw() -> pd.DataFrame:
    with PUBLISHED_CSV.open(encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def test_columns_and_dtypes(published):
    assert list(published.columns) == list(COLUMNS)
    assert published["bold"].dtype == bool
    assert published["semi_supervised"].dtype == bool
    for column in ("lr", "mean", "spread"):
        assert pd.api.types.is_float_dtype(published[column]), column
    for column in ("train_anomaly", "val_anomaly", "test_anomaly", "objective", "weighting", "note"):
        assert published[column].map(lambda value: isinstance(value, str)).all(), column


@pytest.mark.parametrize(
    "table, expected",
    [
        ("I", 4 * 4),  # 2 regularizers x (fixed, adaptive) rows, VOC2012/WikiArt x strokes 5/9
        ("II", 9 * 4),  # 5 baselines + 4 deep SVDD variants, VOC2012/WikiArt x block perm. 2/8
        ("III", 9 * 2),  # CIFAR10 one-vs-all and strokes 1
        ("IV", 5 * 4 + 2 * 4 * 4),  # baselines + (soft-boundary, one-class) x 4 variants
        ("V", 4 * 2 * 6),  # 4 variants x (VOC2012, WikiArt) x (block perm. 2/8 x 3 learning rates)
        ("VI", 4 * 7),  # 4 variants x (CIFAR10 one-vs-all + 3 VOC2012 + 3 WikiArt)
    ],
)
def test_cells_per_table(published, table, expected):
    assert (published["table"] == table).sum() == expected


def test_total_and_tables(published):
    assert len(published) == 198
    assert table_names(published) == ("I", "II", "III", "IV", "V", "VI")  # what the report writes, in order


def _key(row: pd.Series) -> tuple:
    return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in row[list(KEY_COLUMNS)])


def test_keys_unique_within_each_table(published):
    for table, sub in published.groupby("table"):
        keys = [_key(row) for _, row in sub.iterrows()]
        assert len(keys) == len(set(keys)), f"duplicate key in Table {table}"
        labels = sub[["row_label", "weighting", "objective", "dataset", "column_label"]]
        assert not labels.duplicated().any(), f"duplicate printed cell position in Table {table}"


def test_value_ranges_and_vocabularies(published):
    assert published["mean"].between(0, 100).all()
    assert (published["spread"] >= 0).all()
    deep = published["objective"] != ""
    # a variant is deep in every row or in none
    assert (deep.groupby(published["variant"]).nunique() == 1).all()
    assert set(published["dataset"]) <= {"cifar10", "voc2012", "wikiart"}
    assert set(published["setup"]) <= {"one_vs_all", "alteration"}
    assert set(published["objective"]) <= {"", "one_class", "soft_boundary"}
    assert set(published["weighting"]) <= {"", "adaptive", "fixed"}
    assert published["semi_supervised"].eq(published["table"] == "VI").all()
    for column in ("train_anomaly", "val_anomaly", "test_anomaly"):
        values = published.loc[published[column] != "", column]
        assert values.map(lambda spec: bool(SPEC.match(spec))).all(), column


def test_setup_consistency(published):
    ova = published[published["setup"] == "one_vs_all"]
    assert (ova[["train_anomaly", "val_anomaly", "test_anomaly"]] == "").all().all()
    assert (ova["dataset"] == "cifar10").all()
    alteration = published[published["setup"] == "alteration"]
    assert (alteration["test_anomaly"] != "").all() and (alteration["val_anomaly"] != "").all()
    unsupervised = alteration[~alteration["semi_supervised"]]
    assert (unsupervised["train_anomaly"] == "").all()
    assert (unsupervised["val_anomaly"] == unsupervised["test_anomaly"]).all()
    semi = alteration[alteration["semi_supervised"]]
    assert (semi["train_anomaly"] != "").all()


def test_baselines_and_deep_models(published):
    assert variant_is_deep(published) == {
        "dsvdd": True, "dsvdd_bias": True, "dsvdd_bias_noise": True, "dsvdd_bias_var": True,
        "ocsvm_pca": False, "ocsvm_cnn": False, "iforest_pca": False, "iforest_cnn": False, "geo": False,
    }
    baselines = published[published["objective"] == ""]
    assert (baselines["weighting"] == "").all()
    assert baselines["lr"].isna().all()
    deep = published[published["objective"] != ""]
    assert deep["lr"].notna().all()
    assert set(deep.loc[deep["table"] != "V", "lr"]) == {0.001}
    assert set(deep.loc[deep["table"] == "V", "lr"]) == {0.001, 0.01, 0.1}
    regularized = deep["variant"].isin(["dsvdd_bias_noise", "dsvdd_bias_var"])
    assert (deep.loc[~regularized, "weighting"] == "").all()
    assert (deep.loc[regularized & (deep["table"] != "I"), "weighting"] == "adaptive").all()
    table1 = published[published["table"] == "I"]
    assert (table1["weighting"] == "fixed").sum() == 8 and (table1["weighting"] == "adaptive").sum() == 8
    objectives = published.groupby("table")["objective"].agg(lambda s: set(s) - {""})
    assert objectives.to_dict() == {
        "I": {"one_class"},
        "II": {"one_class"},
        "III": {"one_class"},
        "IV": {"one_class", "soft_boundary"},
        "V": {"soft_boundary"},
        "VI": {"one_class"},
    }


def test_table1_adaptive_rows_equal_table4_one_class_rows(published):
    """The paper prints the adaptive regularized rows of Table I again in Table IV (one-class)."""
    cols = ["variant", "dataset", "test_anomaly", "mean", "spread"]
    table1 = published[(published["table"] == "I") & (published["weighting"] == "adaptive")][cols]
    table4 = published[
        (published["table"] == "IV")
        & (published["objective"] == "one_class")
        & published["variant"].isin(["dsvdd_bias_noise", "dsvdd_bias_var"])
    ][cols]
    merged = table1.merge(table4, on=cols[:3], suffixes=("_i", "_iv"), validate="one_to_one")
    assert len(merged) == 8
    assert (merged["mean_i"] == merged["mean_iv"]).all() and (merged["spread_i"] == merged["spread_iv"]).all()


# (table, selection, mean, spread, bold) as printed in the paper.
SAMPLES = [
    ("I", dict(variant="dsvdd_bias_noise", dataset="voc2012", test_anomaly="strokes:5", weighting="fixed"),
     75.0, 1.1, False),
    ("I", dict(variant="dsvdd_bias_var", dataset="wikiart", test_anomaly="strokes:5", weighting="fixed"),
     78.1, 6.1, True),
    ("I", dict(variant="dsvdd_bias_var", dataset="wikiart", test_anomaly="strokes:9", weighting="adaptive"),
     78.5, 1.5, False),
    ("II", dict(variant="geo", dataset="voc2012", test_anomaly="block_perm:8"), 87.4, 1.1, True),
    ("II", dict(variant="iforest_cnn", dataset="voc2012", test_anomaly="block_perm:8"), 30.8, 3.8, False),
    ("II", dict(variant="dsvdd_bias_var", dataset="wikiart", test_anomaly="block_perm:8"), 80.7, 3.9, False),
    ("III", dict(variant="iforest_pca", setup="one_vs_all"), 54.5, 12.6, False),
    ("III", dict(variant="geo", setup="one_vs_all"), 87.2, 7.2, True),
    ("III", dict(variant="dsvdd_bias_noise", test_anomaly="strokes:1"), 91.3, 3.6, True),
    ("IV", dict(variant="dsvdd", objective="soft_boundary", dataset="wikiart", test_anomaly="strokes:5"),
     80.4, 0.5, True),
    # bold in Table I, not bold in Table IV
    ("IV", dict(variant="dsvdd_bias_noise", objective="one_class", dataset="voc2012",
                test_anomaly="strokes:5"), 76.6, 1.8, False),
    ("IV", dict(variant="iforest_pca", dataset="wikiart", test_anomaly="strokes:5"), 68.5, 0.2, False),
    ("V", dict(variant="dsvdd_bias_noise", dataset="wikiart", lr=0.01, test_anomaly="block_perm:8"),
     73.0, 6, True),
    ("V", dict(variant="dsvdd_bias_var", dataset="wikiart", lr=0.01, test_anomaly="block_perm:8"),
     64.7, 10, False),
    ("V", dict(variant="dsvdd", dataset="voc2012", lr=0.01, test_anomaly="block_perm:2"), 65.9, 4, True),
    ("V", dict(variant="dsvdd_bias", dataset="voc2012", lr=0.1, test_anomaly="block_perm:8"), 64.3, 4, False),
    ("VI", dict(variant="dsvdd_bias_noise", dataset="voc2012", train_anomaly="block_perm:8",
                val_anomaly="strokes:9", test_anomaly="strokes:5"), 96.3, 1, True),
    ("VI", dict(variant="dsvdd_bias", dataset="wikiart", train_anomaly="block_perm:8",
                val_anomaly="strokes:9", test_anomaly="strokes:5"), 94.6, 2, True),
    ("VI", dict(variant="dsvdd_bias_var", dataset="wikiart", train_anomaly="strokes:9",
                val_anomaly="strokes:5", test_anomaly="block_perm:2"), 88.6, 4, True),
    ("VI", dict(variant="dsvdd", dataset="voc2012", train_anomaly="strokes:9",
                val_anomaly="block_perm:8", test_anomaly="block_perm:2"), 87.4, 5, False),
    ("VI", dict(variant="dsvdd_bias_var", dataset="cifar10", setup="one_vs_all"), 80.0, 6, False),
]


@pytest.mark.parametrize("table, selection, mean, spread, bold", SAMPLES)
def test_sample_cells_as_printed(published, table, selection, mean, spread, bold):
    mask = published["table"] == table
    for column, value in selection.items():
        mask &= published[column] == value
    hits = published[mask]
    assert len(hits) == 1, f"Table {table} {selection}: {len(hits)} rows"
    row = hits.iloc[0]
    assert (row["mean"], row["spread"], bool(row["bold"])) == (mean, spread, bold)


def test_specific_labels(published):
    row = published[(published["table"] == "VI") & (published["dataset"] == "voc2012")
                    & (published["test_anomaly"] == "strokes:5") & (published["variant"] == "dsvdd")].iloc[0]
    assert row["column_label"] == "◇Bp.8 □St.9 △St.5"
    assert row["row_label"] == "D. SVDD [14]"
    labels = set(published.loc[published["table"] == "V", "column_label"])
    assert "1e-2 / Block perm. 8x8" in labels and len(labels) == 6


def test_missing_column_is_named(tmp_path):
    frame = _raw().drop(columns=["spread"])
    path = tmp_path / "tables.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="spread"):
        load_published(path)


def test_bad_bool_is_rejected(tmp_path):
    frame = _raw()
    frame.loc[0, "bold"] = "maybe"
    path = tmp_path / "tables.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="bold"):
        load_published(path)


# ---- Against the paper's Markdown, where this machine has it: every "mean ± spread" cell, row-major.
_CELL = re.compile(
    r"^(<b>)?\s*(\d+(?:\.\d+)?)\s*(?:\$\\pm\$|<math>\\pm</math>|±)\s*(\d+(?:\.\d+)?)\s*(</b>)?$"
)


def _markdown_cells(text: str) -> dict[str, list[tuple[float, float, bool]]]:
    lines = text.splitlines()
    cells: dict[str, list[tuple[float, float, bool]]] = {}
    table = None
    for line in lines:
        heading = re.match(r"^TABLE ([IVX]+)\s*$", line.strip())
        if heading:
            table = heading.group(1)
            cells[table] = []
        elif table and line.startswith("|"):
            for cell in line.strip().strip("|").split("|"):
                match = _CELL.match(cell.strip().replace("**", ""))
                bold = "**" in cell or (match is not None and match.group(1) is not None)
                if match:
                    cells[table].append((float(match.group(2)), float(match.group(3)), bold))
        elif table and cells[table] and not line.startswith("|"):
            table = None  # the table ended
    return cells


@pytest.mark.skipif(not PAPER_MD.is_file(), reason=f"paper Markdown not found at {PAPER_MD}")
def test_every_cell_matches_the_paper_markdown(published):
    printed = _markdown_cells(PAPER_MD.read_text(encoding="utf-8"))
    assert set(printed) == set(table_names(published))
    for table in table_names(published):
        sub = published[published["table"] == table]  # the CSV keeps the paper's row-major order
        ours = list(zip(sub["mean"], sub["spread"], sub["bold"].astype(bool), strict=True))
        assert ours == printed[table], f"Table {table} differs from the paper"
