"""Collect run folders into one table (`runs.csv`), one row per run, keyed like the published CSV.

Every `metrics.json` below a root becomes a row, finished or failed, so that the report can say
which cells are missing or failed instead of silently dropping them. The columns named in
`report.published.KEY_COLUMNS` are derived here with the published CSV's conventions:
anomaly specs as `strokes:5` / `block_perm:8`, empty where a setting has none (one-vs-all; the
training set of unsupervised runs), objective / lr / weighting empty for the baselines. So in the
collected table a run is a deep SVDD run exactly when its `objective` is not empty.

Which runs are baselines is read from the published rows (`published.variant_is_deep`: a row
without an objective), and for a variant the paper does not print, from the run itself (a
baseline records no objective); no list of method names is kept here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..runs import METRICS_FILE, collect_metrics
from .published import load_published, variant_is_deep

RUN_COLUMNS = (
    "status", "variant", "method", "dataset", "setup", "semi_supervised", "normal_class",
    "labeled_anomaly_class", "train_anomaly", "val_anomaly", "test_anomaly", "objective", "lr",
    "backbone_lr_factor", "weighting", "regularizer", "k", "bias", "pooling", "weights", "weights_used",
    "features", "image_size", "epochs", "seed", "profile", "test_auc", "val_auc", "best_epoch", "collapsed",
    "collapse_epoch", "reg_active", "seconds", "n_train", "n_val", "n_test", "data_layout", "styles_used", "error",
    "run_dir",
)


def anomaly_key(spec: dict | None) -> str:
    """{"name": "strokes", "thickness": 5, ...} -> "strokes:5";
    {"name": "block_perm", "n": 8} -> "block_perm:8"."""
    if not spec:
        return ""
    value = spec.get("n") if spec["name"] == "block_perm" else spec.get("thickness")
    return f"{spec['name']}:{value}"


def is_deep(metrics: dict, deep_variants: dict[str, bool]) -> bool:
    """Whether a run is a deep SVDD run: as its variant's published rows say, else whether it
    records an objective."""
    return deep_variants.get(metrics.get("variant"), bool(metrics.get("objective")))


def regularizer_active(metrics: dict) -> bool | None:
    """Whether the run's regularizer ever contributed (L_reg > 0 in some epoch); None without one."""
    losses = [entry.get("loss_reg") for entry in metrics.get("history") or []]
    losses = [loss for loss in losses if loss is not None]
    return any(loss > 0 for loss in losses) if losses else None


def run_record(metrics: dict, deep: bool) -> dict:
    """One run's row: its axes, outcome and the published-table key columns (`deep`: see `is_deep`)."""
    record = {column: metrics.get(column) for column in RUN_COLUMNS}
    anomaly = metrics.get("anomaly") or {}
    alteration = metrics.get("setup") == "alteration"
    semi = bool(metrics.get("semi_supervised"))
    record["semi_supervised"] = semi
    record["train_anomaly"] = anomaly_key(anomaly.get("train")) if alteration and semi else ""
    record["val_anomaly"] = anomaly_key(anomaly.get("val")) if alteration else ""
    record["test_anomaly"] = anomaly_key(anomaly.get("test")) if alteration else ""
    record["objective"] = metrics.get("objective") if deep else ""
    record["lr"] = float(metrics["lr"]) if deep and metrics.get("lr") is not None else np.nan
    regularized = deep and metrics.get("regularizer") not in (None, "none")
    record["weighting"] = (metrics.get("weighting") or "") if regularized else ""
    record["reg_active"] = regularizer_active(metrics)
    used = (metrics.get("model") or {}).get("weights_used") or {}
    record["weights_used"] = used.get("weights") if isinstance(used, dict) else None
    record["features"] = metrics.get("features") or ""
    data = metrics.get("data") or {}
    for split in ("train", "val", "test"):
        record[f"n_{split}"] = (data.get("splits") or {}).get(split, {}).get("n")
    source = data.get("source") or {}
    # the layout and the data folder's name (e.g. image-folder: cifar10-jpeg), not this machine's path
    root = source.get("root")
    record["data_layout"] = f"{source.get('layout')}: {Path(root).name}" if root else source.get("layout")
    record["styles_used"] = "+".join(source["styles_used"]) if source.get("styles_used") else None
    return record


def collect_runs(root: Path, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """All runs below `root` (see module docstring); an empty frame with the columns if none.
    `published`: the published rows that say which variants are baselines (default: the paper's)."""
    deep_variants = variant_is_deep(load_published() if published is None else published)
    records = [run_record(metrics, is_deep(metrics, deep_variants)) for metrics in collect_metrics(root)]
    for record in records:  # relative to the root: runs.csv is committed and read on other machines
        record["run_dir"] = Path(record["run_dir"]).relative_to(root).as_posix()
    frame = pd.DataFrame(records, columns=list(RUN_COLUMNS))
    for column in ("train_anomaly", "val_anomaly", "test_anomaly", "objective", "weighting", "features"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["semi_supervised"] = frame["semi_supervised"].fillna(False).astype(bool)
    frame["lr"] = pd.to_numeric(frame["lr"], errors="coerce")
    return frame


# runs/<profile>/<variant>/<dataset>_<setup>[_c<k>][_semi]/<hash>_s<seed> (contract C2)
_GROUP_FOLDER = re.compile(r"^(?P<dataset>.+?)_(?P<setup>one_vs_all|alteration)(?:_c\d+)?(?:_semi)?$")
_ERROR_LINE = re.compile(r"\[ERROR\] - (?P<message>.*)$")
UNSTARTED_COLUMNS = ("variant", "dataset", "setup", "reason", "run_dir")


def _last_error(log_file: Path) -> str:
    """The last `[ERROR] - ...` message of a run's log, or a placeholder when there is none."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(log unreadable)"
    for line in reversed(lines):
        match = _ERROR_LINE.search(line)
        if match:
            return match.group("message").strip()
    return "(no error in the log: interrupted?)"


def collect_unstarted(root: Path) -> pd.DataFrame:
    """Jobs that left a run folder with a log but no metrics.json: stopped before training (bad
    input, data or weights not found) or killed. One row each, with the reason from the log, so the
    report can say why cells are missing."""
    records = []
    for log_file in sorted(Path(root).rglob("train.log")):
        folder = log_file.parent
        if (folder / METRICS_FILE).exists():
            continue
        match = _GROUP_FOLDER.match(folder.parent.name)
        records.append({
            "variant": folder.parent.parent.name,
            "dataset": match.group("dataset") if match else "",
            "setup": match.group("setup") if match else "",
            "reason": _last_error(log_file),
            "run_dir": folder.relative_to(root).as_posix(),
        })
    return pd.DataFrame(records, columns=list(UNSTARTED_COLUMNS))
