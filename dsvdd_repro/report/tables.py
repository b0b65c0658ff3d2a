"""Tables I-VI: our runs aggregated per published cell, beside the paper's number.

For every cell of `results/published/tables.csv`, the finished runs with the same key
(`published.KEY_COLUMNS`; global max pooling; backbone at 0.1 x the head's learning rate) are
aggregated:
- noise regularizer: when runs of several k exist, k is chosen per cell (and per normal / labeled
  class) by mean validation AUC over seeds (`dsvdd_repro.selection`), never by test AUC;
- one-vs-all (Table III, Table VI's CIFAR-10 column): the mean over seeds (and labeled anomaly
  classes) per normal class, then mean +- std over the normal classes, as the paper averages 10
  classes; everything else: mean +- std over seeds.
AUCs in percent. A cell with no finished run is `missing` (failed runs are counted), never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .published import KEY_COLUMNS

CELL_COLUMNS = (
    "table", "variant", "row_label", "objective", "column_label", "dataset", "setup", "test_anomaly", "lr",
    "weighting", "paper_mean", "paper_spread", "ours_mean", "ours_std", "n_runs", "n_failed", "n_classes",
    "k", "diff", "beyond_spread", "status",
)


def _matches(runs: pd.DataFrame, cell: pd.Series) -> pd.Series:
    mask = pd.Series(True, index=runs.index)
    for key in KEY_COLUMNS:
        if key == "lr":
            mask &= np.isclose(runs["lr"], cell["lr"], equal_nan=True) if not np.isnan(cell["lr"]) else runs["lr"].isna()
        else:
            mask &= runs[key] == cell[key]
    if cell["variant"].startswith("dsvdd"):
        mask &= np.isclose(runs["backbone_lr_factor"].astype(float), 0.1)
    return mask & (runs["pooling"] == "max")


def _select_k(done: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Keep, per (normal class, labeled class), the runs of the k with the best mean val AUC
    (ties: the smaller k); returns the kept runs and the chosen k values."""
    if done.empty:
        return done, ""
    classes = done[["normal_class", "labeled_anomaly_class"]].astype(float).fillna(-1)
    kept, chosen = [], set()
    for _, group in done.groupby([classes["normal_class"], classes["labeled_anomaly_class"]]):
        best = group.groupby("k")["val_auc"].mean().sort_index().idxmax()
        chosen.add(int(best))
        kept.append(group[group["k"] == best])
    return pd.concat(kept), ",".join(str(k) for k in sorted(chosen))


def aggregate(done: pd.DataFrame, one_vs_all: bool) -> tuple[float, float, int]:
    """(mean, std, n_classes) in percent; std is the sample std (0 for a single value)."""
    auc = done["test_auc"].astype(float) * 100.0
    if one_vs_all:
        values = auc.groupby(done["normal_class"]).mean()
    else:
        values = auc
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std, int(done["normal_class"].nunique()) if one_vs_all else 0


def table_cells(runs: pd.DataFrame, published: pd.DataFrame, table: str) -> pd.DataFrame:
    rows = []
    for _, cell in published[published["table"] == table].iterrows():
        matched = runs[_matches(runs, cell)]
        done = matched[matched["status"] == "done"]
        n_failed = int((matched["status"] == "failed").sum())
        k = ""
        if cell["variant"] == "dsvdd_bias_noise":
            done, k = _select_k(done)
        row = {
            "table": table, "variant": cell["variant"], "row_label": cell["row_label"],
            "objective": cell["objective"], "column_label": cell["column_label"], "dataset": cell["dataset"],
            "setup": cell["setup"], "test_anomaly": cell["test_anomaly"], "lr": cell["lr"],
            "weighting": cell["weighting"], "paper_mean": cell["mean"], "paper_spread": cell["spread"],
            "n_runs": len(done), "n_failed": n_failed, "k": k,
        }
        if done.empty:
            row.update(ours_mean=np.nan, ours_std=np.nan, n_classes=0, diff=np.nan, beyond_spread=False,
                       status="failed" if n_failed else "missing")
        else:
            mean, std, n_classes = aggregate(done, cell["setup"] == "one_vs_all")
            diff = mean - cell["mean"]
            row.update(ours_mean=mean, ours_std=std, n_classes=n_classes, diff=diff,
                       beyond_spread=bool(abs(diff) > cell["spread"]), status="ok")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CELL_COLUMNS))


def format_cell(cell: pd.Series) -> str:
    paper = f"{cell['paper_mean']:.1f}±{cell['paper_spread']:g}"
    if cell["status"] != "ok":
        failed = f", {cell['n_failed']} failed" if cell["n_failed"] else ""
        return f"{cell['status']}{failed} / {paper}"
    mark = " †" if cell["beyond_spread"] else ""
    # one run has no spread to show (one-vs-all cells average classes, so n counts runs there too)
    spread = f"±{cell['ours_std']:.1f}" if cell["n_runs"] > 1 else ""
    return f"{cell['ours_mean']:.1f}{spread} (n={cell['n_runs']}){mark} / {paper}"


def _row_name(cell: pd.Series) -> str:
    prefix = {"soft_boundary": "Soft-bound. ", "one_class": "One-class "}.get(cell["objective"], "")
    weighting = {"fixed": " [fixed c_t]", "adaptive": " [adaptive c_t]"}.get(cell["weighting"], "") if cell["table"] == "I" else ""
    return f"{prefix}{cell['row_label']}{weighting}"


def pivot(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows as printed in the paper, columns = dataset / column label, text cells."""
    frame = cells.assign(row=cells.apply(_row_name, axis=1),
                         column=cells["dataset"] + " / " + cells["column_label"],
                         text=cells.apply(format_cell, axis=1))
    rows = list(dict.fromkeys(frame["row"]))
    columns = list(dict.fromkeys(frame["column"]))
    return frame.pivot(index="row", columns="column", values="text").reindex(index=rows, columns=columns)


def to_markdown(table: pd.DataFrame) -> str:
    header = ["Model", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in table.iterrows():
        lines.append("| " + " | ".join([name, *("" if pd.isna(v) else v for v in values)]) + " |")
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text.replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("σ²", r"$\sigma^2$")


def to_latex(table: pd.DataFrame) -> str:
    spec = "l" + "c" * len(table.columns)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(["Model", *(_latex_escape(c) for c in table.columns)]) + r" \\", r"\midrule"]
    for name, values in table.iterrows():
        cells = [_latex_escape(name), *("" if pd.isna(v) else _latex_escape(v) for v in values)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
