"""Collect run folders into one table (`runs.csv`), one row per run, keyed like the published CSV.

Every `metrics.json` below a root becomes a row, finished, failed or diverged (`diverged_epoch`,
`diverged_step`: where the loss stopped being finite), so that the report can say which cells are
missing, failed or diverged instead of silently dropping them. Jobs that stopped before training
leave no metrics.json: `collect_unstarted` reads their reason from the log and their axes from the
configuration Hydra saved beside it, keyed like the runs, so each missing cell names its own jobs. The columns named in
`report.published.KEY_COLUMNS` are derived here with the published CSV's conventions:
anomaly specs as `strokes:5` / `block_perm:8`, empty where a setting has none (one-vs-all; the
training set of unsupervised runs), objective / lr / weighting empty for the baselines. So in the
collected table a run is a deep SVDD run exactly when its `objective` is not empty.

The columns besides those fixed here follow from the config nodes: every hyper-parameter a node
declares as chosen on validation (`SELECTED`, dsvdd_repro/core/schema.py: the noise regularizer's k) is a
column of both tables, so the report's selection (`tables`) finds it.

Which runs are baselines is read from the published rows (`published.variant_is_deep`: a row
without an objective), and for a variant the paper does not print, from the run itself (a
baseline records no objective); no list of method names is kept here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dsvdd_repro.core.anomaly import AnomalyConfig, AnomalySplit
from dsvdd_repro.core.schema import NODE_GROUPS
from dsvdd_repro.report.published import KEY_COLUMNS, load_published, variant_is_deep
from dsvdd_repro.runs.config import selected_axes, swept_axes
from dsvdd_repro.runs.folders import METRICS_FILE, collect_metrics


def run_columns() -> tuple[str, ...]:
    """runs.csv's columns: the fixed ones, with the validation-selected hyper-parameters the nodes
    declare after `regularizer`."""
    return (
        "status", "variant", "method", "dataset", "setup", "semi_supervised", "normal_class",
        "labeled_anomaly_class", "train_anomaly", "val_anomaly", "test_anomaly", "objective", "lr",
        "backbone_lr_factor", "weighting", "regularizer", *selected_axes(), "bias", "pooling", "weights",
        "weights_used", "features", "image_size", "epochs", "seed", "profile", "test_auc", "val_auc", "best_epoch",
        "collapsed", "collapse_epoch", "reg_active", "seconds", "n_train", "n_val", "n_test", "data_layout",
        "styles_used", "diverged_epoch", "diverged_step", "error", "run_dir",
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
    record = {column: metrics.get(column) for column in run_columns()}
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
    diverged = metrics.get("diverged_at") or {}
    record["diverged_epoch"], record["diverged_step"] = diverged.get("epoch"), diverged.get("step")
    return record


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The key columns with the published CSV's types: text ("" for none), bool, float lr."""
    for column in ("train_anomaly", "val_anomaly", "test_anomaly", "objective", "weighting", "features"):
        if column in frame:
            frame[column] = frame[column].astype(object).fillna("").astype(str)
    frame["semi_supervised"] = frame["semi_supervised"].astype(object).fillna(False).astype(bool)
    frame["lr"] = pd.to_numeric(frame["lr"], errors="coerce")
    return frame


def collect_runs(root: Path, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """All runs below `root` (see module docstring); an empty frame with the columns if none.
    `published`: the published rows that say which variants are baselines (default: the paper's)."""
    deep_variants = variant_is_deep(load_published() if published is None else published)
    records = [run_record(metrics, is_deep(metrics, deep_variants)) for metrics in collect_metrics(root)]
    for record in records:  # relative to the root: runs.csv is committed and read on other machines
        record["run_dir"] = Path(record["run_dir"]).relative_to(root).as_posix()
    return _typed(pd.DataFrame(records, columns=list(run_columns())))


# runs/<profile>/<variant>/<dataset>_<setup>[_c<k>][_semi]/<hash>_s<seed> (contract C2)
_GROUP_FOLDER = re.compile(r"^(?P<dataset>.+?)_(?P<setup>one_vs_all|alteration)(?:_c\d+)?(?P<semi>_semi)?$")
_ERROR_LINE = re.compile(r"\[ERROR\] - (?P<message>.*)$")
# Hydra saves a job's composed configuration here before the job runs (hydra.output_subdir)
HYDRA_CONFIG = Path(".hydra") / "config.yaml"


def unstarted_columns() -> tuple[str, ...]:
    """The columns of `collect_unstarted`, keyed like runs.csv. `configured`: whether the axes come
    from the job's saved configuration; without one only the folder names are known (variant,
    dataset, setup, semi-supervised) and the other columns are empty."""
    return (*KEY_COLUMNS, "backbone_lr_factor", "pooling", "normal_class", "labeled_anomaly_class",
            *selected_axes(), "seed", "configured", "reason", "run_dir")


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


def _number(value) -> float | None:
    """A configured number; None where the saved configuration holds none or an interpolation."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def config_axes(config: dict, variant: str) -> dict:
    """The axes of a job as its metrics.json would record them (`runs.run_axes`), read from its
    saved, unresolved configuration (`HYDRA_CONFIG`), so that `run_record` keys it like a run."""
    def node(name: str) -> dict | None:
        value = config.get(name)
        return value if isinstance(value, dict) else None

    setup, model, optim = node("setup") or {}, node("model"), node("optim")
    objective, regularizer, features = node("objective"), node("regularizer"), node("features")
    alteration, semi = setup.get("name") == "alteration", bool(setup.get("semi_supervised"))
    regularized = regularizer is not None and regularizer.get("name") != "none"
    anomaly = None
    if alteration and node("anomaly"):
        raw = node("anomaly")
        groups = {key: raw[key] for key in ("name", "n", "thickness") if raw.get(key) is not None}
        splits = {split: AnomalySplit(**(raw.get(split) or {})) for split in ("train", "val", "test")}
        spec = AnomalyConfig(**groups, **splits)
        anomaly = {split: spec.spec(split) for split in ("train", "val", "test")}
    axes = {
        "status": "unstarted",
        "variant": variant,
        "method": (node("method") or {}).get("name"),
        "dataset": (node("dataset") or {}).get("name"),
        "setup": setup.get("name"),
        "semi_supervised": semi,
        "normal_class": None if alteration else setup.get("normal_class"),
        "labeled_anomaly_class": setup.get("labeled_anomaly_class") if semi and not alteration else None,
        "anomaly": anomaly,
        "objective": None if objective is None else objective.get("name"),
        "regularizer": None if regularizer is None else regularizer.get("name"),
        **{key: regularizer.get(key) if regularized else None for key in swept_axes("regularizer")},
        "pooling": None if model is None else model.get("pooling"),
        "lr": None if optim is None else _number(optim.get("lr")),
        "backbone_lr_factor": None if optim is None else _number(optim.get("backbone_lr_factor")),
        "features": None if features is None else features.get("name"),
        "seed": config.get("seed"),
    }
    for group in NODE_GROUPS:  # the swept keys of the other groups' options, as `runs.run_axes` records them
        if group != "regularizer":
            for key in swept_axes(group):
                axes.setdefault(key, (node(group) or {}).get(key))
    return axes


def _saved_config(folder: Path) -> dict | None:
    """A job folder's saved configuration, None when it has none or it cannot be read."""
    try:
        config = yaml.safe_load((folder / HYDRA_CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) else None


def collect_unstarted(root: Path, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Jobs that left a run folder with a log but no metrics.json: stopped before training (bad
    input, data or weights not found) or killed. One row each (`unstarted_columns`), with the reason
    from the log and the key columns of `collect_runs` (from the job's saved configuration, else
    only what its folder names say), so the report can say why each cell is missing.
    `published`: as in `collect_runs`."""
    deep_variants = variant_is_deep(load_published() if published is None else published)
    records = []
    for log_file in sorted(Path(root).rglob("train.log")):
        folder = log_file.parent
        if (folder / METRICS_FILE).exists():
            continue
        match = _GROUP_FOLDER.match(folder.parent.name)
        config = _saved_config(folder)
        # runs/<profile>/<variant>/<group>/<hash>_s<seed>; an invalid job's folder names no variant
        variant = folder.parent.parent.name if match else str((config or {}).get("variant") or "")
        record = None
        if config is not None:
            try:
                axes = config_axes(config, variant)
                record = {**run_record(axes, is_deep(axes, deep_variants)), "configured": True}
            except (TypeError, ValueError, AttributeError, KeyError):
                record = None  # a configuration this version cannot read: key it by its folder
        if record is None:
            record = {"variant": variant, "dataset": match.group("dataset") if match else "",
                      "setup": match.group("setup") if match else "",
                      "semi_supervised": bool(match and match.group("semi")), "configured": False}
        record.update(reason=_last_error(log_file), run_dir=folder.relative_to(root).as_posix())
        records.append(record)
    frame = _typed(pd.DataFrame(records, columns=list(unstarted_columns())))
    frame["configured"] = frame["configured"].astype(object).fillna(False).astype(bool)
    return frame
