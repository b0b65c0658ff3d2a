"""Tables I-VI: our runs aggregated per published cell, beside the paper's number.

For every cell of the published CSV (`published.load_published`), the finished runs with the same
key (`published.KEY_COLUMNS`) under the paper's scheme (`report.protocol`: global max pooling; deep
models with the backbone at 0.1 x the head's learning rate) are aggregated:
- every swept hyper-parameter the nodes declare as chosen on validation (`SELECTED`,
  dsvdd_repro/core/schema.py: the noise regularizer's k) is chosen per `CELL_AXES` (the published key,
  and the normal / labeled class) by mean validation AUC over seeds through
  `dsvdd_repro.report.selection.select_by_validation`, never by test AUC (several of one node jointly: the
  best combination); the cell names the chosen values in a column of the parameter's name;
- one-vs-all (Table III, Table VI's CIFAR-10 column): the mean over seeds (and labeled anomaly
  classes) per normal class, then mean +- std over the normal classes, as the paper averages 10
  classes; everything else: mean +- std over seeds.
AUCs in percent. A cell is never dropped; its status says what it holds:
- `ok`: at least one finished run. Finished are the runs with status `done` and the runs with status
  `diverged` (a non-finite loss during training) that were scored on the model from before the
  divergence (they record a `test_auc`): those count in the mean and n, and the cell names them
  (`n_pre_divergence`, "n=3, 1 pre-divergence").
- `failed`: runs, none finished, at least one of them failed;
- `diverged`: runs, none finished, every one diverged without a score;
- `missing`: no run at all.
Besides the finished runs, every cell counts its runs that failed (`n_failed`) and that diverged
without a score (`n_diverged`), over all values of the selected parameter, so that "n=1" never hides
the cell's other runs: `61.2±1.3 (n=4; 1 failed)`, `61.2±1.3 (n=3; 2 diverged)`, `diverged (2 diverged)`.
Every cell has a verdict against the paper (`significance.add_verdicts`, the table's cells the family
of its Holm correction): `consistent`, `differs` (printed `differs (p=0.003) †`, p Holm-adjusted) or
`too few runs` (no test: no finished run, or nothing to test against); the test's n is `ours_n` (our
seeds; one-vs-all: our normal classes) against the paper's `paper_n` (its seeds, or its classes).
The figures reuse `table_cells` with another pooling or learning-rate scheme, so they choose and
aggregate exactly as the tables do.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from dsvdd_repro.core.schema import NODE_CLASSES
from dsvdd_repro.report.protocol import paper_backbone_lr_factor, paper_pooling, paper_seeds
from dsvdd_repro.report.published import KEY_COLUMNS
from dsvdd_repro.report.selection import select_by_validation
from dsvdd_repro.report.significance import DIFFERS, TEST_COLUMNS, add_verdicts
from dsvdd_repro.runs.config import selected_axes

# What makes one cell for the selection of a parameter: the published key, the scheme, the classes.
CELL_AXES = (*KEY_COLUMNS, "backbone_lr_factor", "pooling", "normal_class", "labeled_anomaly_class")
# The CSV columns in AUC percent, rounded as the Markdown prints them.
PERCENT_COLUMNS = ("paper_mean", "paper_spread", "ours_mean", "ours_std", "diff")


def cell_columns() -> tuple[str, ...]:
    """The columns of a table's cells (its CSV): the published key, ours beside the paper's, and the
    values chosen for each validation-selected parameter (`selected_axes`: k)."""
    return (
        "table", "variant", "row_label", "objective", "column_label", "dataset", "setup", "semi_supervised",
        "train_anomaly", "val_anomaly", "test_anomaly", "lr", "weighting", "paper_mean", "paper_spread",
        "ours_mean", "ours_std", "n_runs", "n_pre_divergence", "n_failed", "n_diverged", "n_classes",
        *selected_axes(), "diff", "ours_n", "paper_n", *TEST_COLUMNS, "status",
    )


def finished(runs: pd.DataFrame) -> pd.Series:
    """Which runs count in a cell's mean: `done`, and `diverged` runs scored on the model from before
    the divergence (a finite `test_auc`); a diverged run without one is not finished."""
    scored = pd.to_numeric(runs["test_auc"], errors="coerce").notna()
    return (runs["status"] == "done") | ((runs["status"] == "diverged") & scored)


def cell_mask(runs: pd.DataFrame, cell: pd.Series, backbone_lr_factor: float | None = None,
              pooling: str | None = None) -> pd.Series:
    """The runs of one published cell (`cell`: any row with the KEY_COLUMNS, a published row or a
    table cell) under a pooling and learning-rate scheme, the paper's where not given (the factor
    applies to deep models only: a published row with an objective)."""
    backbone_lr_factor = paper_backbone_lr_factor() if backbone_lr_factor is None else backbone_lr_factor
    pooling = paper_pooling() if pooling is None else pooling
    mask = pd.Series(True, index=runs.index)
    for key in KEY_COLUMNS:
        if key == "lr":
            mask &= runs["lr"].isna() if np.isnan(cell["lr"]) else np.isclose(runs["lr"], cell["lr"])
        else:
            mask &= runs[key] == cell[key]
    if cell["objective"]:
        mask &= np.isclose(runs["backbone_lr_factor"].astype(float), backbone_lr_factor)
    # a run without a network (the PCA baselines) has no pooling layer to choose
    return mask & ((runs["pooling"] == pooling) | runs["pooling"].isna())


def _chosen(done: pd.DataFrame, param: str) -> str:
    """The chosen values of `param` among a cell's kept runs, as text ("5", "5,30", "")."""
    values = done[param].dropna().unique() if param in done else []
    return ",".join(f"{value:g}" if isinstance(value, Real) else str(value) for value in sorted(values))


def select(runs: pd.DataFrame, params: tuple[str, ...]) -> pd.DataFrame:
    """The finished runs of a cell with every parameter in `params` chosen by validation per
    CELL_AXES. One after the other, each within the values of those after it, so that parameters of
    one node are chosen jointly (the best combination) and those of different nodes apart."""
    for index, param in enumerate(params):
        later = [axis for axis in params[index + 1:] if axis in runs]
        runs = select_by_validation(runs, param, (*CELL_AXES, *later))
    return runs


def aggregate(done: pd.DataFrame, one_vs_all: bool) -> tuple[float, float, int]:
    """(mean, std, n_classes) in percent; std is the sample std (0 for a single value)."""
    auc = done["test_auc"].astype(float) * 100.0
    if one_vs_all:
        values = auc.groupby(done["normal_class"]).mean()
    else:
        values = auc
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std, int(done["normal_class"].nunique()) if one_vs_all else 0


def paper_n(cell: pd.Series) -> float:
    """How many values the paper's mean ± spread is over: its seeds per cell (`paper_seeds`), for
    one-vs-all the dataset's normal classes (its node's `n_classes`: the paper averages CIFAR-10's 10;
    the nodes are registered by `selected_axes`); NaN where the node does not know its classes."""
    if cell["setup"] != "one_vs_all":
        return float(paper_seeds())
    return float(getattr(NODE_CLASSES.get(("dataset", cell["dataset"])), "n_classes", np.nan))


def table_cells(runs: pd.DataFrame, published: pd.DataFrame, table: str, *,
                backbone_lr_factor: float | None = None, pooling: str | None = None) -> pd.DataFrame:
    """One row per published cell of `table` (`cell_columns`): ours beside the paper's, under the
    paper's pooling and learning-rate scheme unless others are given."""
    params = selected_axes()
    rows = []
    for _, cell in published[published["table"] == table].iterrows():
        matched = runs[cell_mask(runs, cell, backbone_lr_factor, pooling)]
        complete = finished(matched)
        n_failed = int((matched["status"] == "failed").sum())
        n_diverged = int(((matched["status"] == "diverged") & ~complete).sum())
        done = select(matched[complete], params)
        row = {
            "table": table, "variant": cell["variant"], "row_label": cell["row_label"],
            "objective": cell["objective"], "column_label": cell["column_label"], "dataset": cell["dataset"],
            "setup": cell["setup"], "semi_supervised": cell["semi_supervised"],
            "train_anomaly": cell["train_anomaly"], "val_anomaly": cell["val_anomaly"],
            "test_anomaly": cell["test_anomaly"], "lr": cell["lr"],
            "weighting": cell["weighting"], "paper_mean": cell["mean"], "paper_spread": cell["spread"],
            "paper_n": paper_n(cell), "n_runs": len(done),
            "n_pre_divergence": int((done["status"] == "diverged").sum()),
            "n_failed": n_failed, "n_diverged": n_diverged, **{param: _chosen(done, param) for param in params},
        }
        if done.empty:
            # a failure says more than a divergence (a bug, a crash): `diverged` only when no run failed
            status = "failed" if n_failed else "diverged" if n_diverged else "missing"
            row.update(ours_mean=np.nan, ours_std=np.nan, n_classes=0, diff=np.nan, ours_n=0, status=status)
        else:
            one_vs_all = cell["setup"] == "one_vs_all"
            mean, std, n_classes = aggregate(done, one_vs_all)
            # the test's n: the values ours_std is over (`aggregate`)
            row.update(ours_mean=mean, ours_std=std, n_classes=n_classes, diff=mean - cell["mean"],
                       ours_n=n_classes if one_vs_all else len(done), status="ok")
        rows.append(row)
    return add_verdicts(pd.DataFrame(rows, columns=list(cell_columns())))


def _one_decimal(value: float) -> float:
    """A number as the Markdown prints it (`:.1f`), so the CSV and the Markdown never disagree."""
    return float(f"{value:.1f}")


def rounded(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells for the CSV: AUC columns in percent to one decimal (full precision stays in runs.csv)."""
    return cells.assign(**{column: cells[column].astype(float).map(_one_decimal)
                           for column in PERCENT_COLUMNS})


def _count(cell: pd.Series, column: str) -> int:
    value = cell.get(column, 0)
    return 0 if pd.isna(value) else int(value)


def _unfinished(cell: pd.Series) -> str:
    """The cell's runs outside its mean: "1 failed", "2 diverged", "1 failed, 2 diverged" or ""."""
    counts = ((_count(cell, "n_failed"), "failed"), (_count(cell, "n_diverged"), "diverged"))
    return ", ".join(f"{count} {what}" for count, what in counts if count)


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _verdict_text(cell: pd.Series) -> str:
    """`differs (p=0.003) †` (p Holm-adjusted), `consistent` or `too few runs`."""
    if cell["verdict"] == DIFFERS:
        return f"differs ({_p_text(cell['p_adjusted'])}) †"
    return cell["verdict"]


def format_cell(cell: pd.Series) -> str:
    """`61.2±1.3 (n=4; 1 failed) differs (p=0.003) † / 65.9±1.0`, `61.2±1.3 (n=3, 1 pre-divergence;
    2 diverged) consistent / ...`, `diverged (2 diverged) / ...`, `failed (1 failed) / ...`,
    `missing / ...` (a cell without a finished run has no test: its status says why)."""
    paper = f"{cell['paper_mean']:.1f}±{cell['paper_spread']:g}"
    unfinished = _unfinished(cell)
    if cell["status"] != "ok":
        return f"{cell['status']} ({unfinished}) / {paper}" if unfinished else f"{cell['status']} / {paper}"
    # one run has no spread to show (one-vs-all cells average classes, so n counts runs there too)
    spread = f"±{cell['ours_std']:.1f}" if cell["n_runs"] > 1 else ""
    pre = _count(cell, "n_pre_divergence")
    counts = f"n={cell['n_runs']}" + (f", {pre} pre-divergence" if pre else "")
    counts += f"; {unfinished}" if unfinished else ""
    return f"{cell['ours_mean']:.1f}{spread} ({counts}) {_verdict_text(cell)} / {paper}"


def row_name(cell: pd.Series) -> str:
    """A cell's row as the tables print it, e.g. "Soft-bound. D. SVDD w/ bias"."""
    prefix = {"soft_boundary": "Soft-bound. ", "one_class": "One-class "}.get(cell["objective"], "")
    weightings = {"fixed": " [fixed c_t]", "adaptive": " [adaptive c_t]"} if cell["table"] == "I" else {}
    weighting = weightings.get(cell["weighting"], "")
    return f"{prefix}{cell['row_label']}{weighting}"


def pivot(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows as printed in the paper, columns = dataset / column label, text cells."""
    frame = cells.assign(row=cells.apply(row_name, axis=1),
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
    escapes = (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
               ("<", r"$<$"))
    for char, escaped in escapes:
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
