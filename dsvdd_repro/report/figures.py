"""Figures 1 and 2 of the paper, drawn from our runs through the tables' cells.

- Figure 1: Table V's cells (soft-boundary; learning rates 1e-3, 1e-2, 1e-1 of the head) as the
  test AUC of each variant minus the standard D. SVDD's; top row with the backbone at 0.1 x the
  head's rate (exactly Table V's numbers), bottom row with one rate for all layers
  (`optim.backbone_lr_factor=1`).
- Figure 2: Table II's cells (one-class) with and without ResNet-18's pooling layer for the models
  A-E (OC-SVM and IF on CNN features, D. SVDD, D. SVDD w/ bias, D. SVDD w/ bias & noise reg.).
Both go through `tables.table_cells`, so k is chosen on validation per cell exactly as in the
tables (`dsvdd_repro.report.selection`), and both have the paper's panels, VOC2012 and WikiArt x block
permutation 2x2 and 8x8 (unsupervised alteration runs), whatever other runs exist. Cells without
finished runs are left empty, never invented: a cell whose runs all diverged (`tables`: status
`diverged`) is labelled "diverged" where its bar would be (Figure 1: "D. SVDD diverged" when the
reference did), a panel without any bar "no runs" or "diverged". Every bar shows its cell's
spread over seeds (an error bar) and its number of runs; the y-range fits the bars; a panel says
in one line when it cannot show a difference: Figure 2 at image sizes where ResNet-18's last
feature map is 1 x 1 (no pooling = pooling), Figure 1 where the variance regularizer never switched
on (its hinge was 0 in every epoch of every run, so the variant trained as D. SVDD w/ bias).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dsvdd_repro.report.protocol import paper_backbone_lr_factor, paper_pooling  # noqa: E402
from dsvdd_repro.report.tables import table_cells  # noqa: E402
from dsvdd_repro.runs.config import selected_axes  # noqa: E402

# Where the paper's figures name its rows: the reference and the legend of Figure 1, the letters of
# Figure 2 (the tables take their row names from the published CSV).
FIG1_TABLE, FIG1_REFERENCE = "V", "dsvdd"
FIG1_VARIANTS = {"dsvdd_bias": "w/ bias", "dsvdd_bias_noise": "w/ bias & noise reg.",
                 "dsvdd_bias_var": "w/ bias & σ² reg."}
FIG2_TABLE = "II"
FIG2_MODELS = {"ocsvm_cnn": "A", "iforest_cnn": "B", "dsvdd": "C", "dsvdd_bias": "D", "dsvdd_bias_noise": "E"}


def fig1_schemes() -> dict[float, str]:
    """Figure 1's rows: the paper's backbone learning-rate factor, and one rate for all layers."""
    factor = paper_backbone_lr_factor()
    return {factor: f"backbone lr = {factor:g} x head lr", 1.0: "one lr for all layers"}


def fig2_pooling() -> dict[str, str]:
    """Figure 2's bars: the paper's pooling layer, and none."""
    return {paper_pooling(): "with pooling", "none": "without pooling"}


# The figures' data columns, with the values chosen for each validation-selected parameter (k):
# `status` is the cell's (tables.table_cells); `note` what is drawn instead of a bar that has no
# value ("diverged", Figure 1 also "D. SVDD diverged" when only the reference diverged), else "".
def fig1_columns() -> tuple[str, ...]:
    return ("scheme", "dataset", "test_anomaly", "variant", "lr", *selected_axes(), "difference", "spread", "n",
            "status", "note")


def fig2_columns() -> tuple[str, ...]:
    return ("dataset", "test_anomaly", "model", "variant", "pooling", *selected_axes(), "auc", "spread", "n",
            "status", "note")


DIVERGED = "diverged"
# ResNet-18 downsamples by 32: below 64 px its last feature map is 1 x 1
POOLING_MIN_SIZE = 64

# (dataset, test anomaly) of the paper's panels, in its order
PANELS = (("voc2012", "block_perm:2"), ("voc2012", "block_perm:8"),
          ("wikiart", "block_perm:2"), ("wikiart", "block_perm:8"))


def _in_panels(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells of the paper's panels (the figures draw no others)."""
    panel = pd.Series(list(zip(cells["dataset"], cells["test_anomaly"], strict=True)), index=cells.index,
                      dtype=object)
    return cells[panel.isin(PANELS)]


def figure1_data(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per (scheme, panel, variant, lr): the variant's Table V cell minus D. SVDD's at the
    same lr (AUC points; NaN where either has no finished run), with the k chosen for it."""
    params = selected_axes()
    rows = []
    for factor, scheme in fig1_schemes().items():
        cells = _in_panels(table_cells(runs, published, FIG1_TABLE, backbone_lr_factor=factor))
        where = ["dataset", "test_anomaly", "lr"]
        references = cells[cells["variant"] == FIG1_REFERENCE].set_index(where)
        reference, reference_status = references["ours_mean"], references["status"]
        for cell in cells[cells["variant"].isin(list(FIG1_VARIANTS))].itertuples():
            at = (cell.dataset, cell.test_anomaly, cell.lr)
            difference = cell.ours_mean - reference.get(at, np.nan)
            note = DIVERGED if cell.status == DIVERGED else ""
            if cell.status == "ok" and reference_status.get(at) == DIVERGED:
                note = "D. SVDD diverged"
            rows.append({"scheme": scheme, "dataset": cell.dataset, "test_anomaly": cell.test_anomaly,
                         "variant": cell.variant, "lr": cell.lr, **{p: getattr(cell, p) for p in params},
                         "difference": difference,
                         "spread": cell.ours_std, "n": cell.n_runs, "status": cell.status, "note": note})
    return pd.DataFrame(rows, columns=list(fig1_columns()))


def figure2_data(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per (panel, model, pooling): the model's Table II cell under that pooling (test AUC
    in percent, NaN without a finished run), with the k chosen for it."""
    params = selected_axes()
    rows = []
    for pooling in fig2_pooling():
        cells = _in_panels(table_cells(runs, published, FIG2_TABLE, pooling=pooling))
        for cell in cells[cells["variant"].isin(list(FIG2_MODELS))].itertuples():
            rows.append({"dataset": cell.dataset, "test_anomaly": cell.test_anomaly,
                         "model": FIG2_MODELS[cell.variant], "variant": cell.variant, "pooling": pooling,
                         **{p: getattr(cell, p) for p in params}, "auc": cell.ours_mean, "spread": cell.ours_std, "n": cell.n_runs,
                         "status": cell.status, "note": DIVERGED if cell.status == DIVERGED else ""})
    return pd.DataFrame(rows, columns=list(fig2_columns()))


def _panel_runs(runs: pd.DataFrame, dataset: str, anomaly: str) -> pd.DataFrame:
    return runs[(runs["status"] == "done") & (runs["dataset"] == dataset) & (runs["test_anomaly"] == anomaly)
                & ~runs["semi_supervised"].astype(bool)]


def figure_caveats(runs: pd.DataFrame) -> dict[str, dict[tuple[str, str], str]]:
    """Per figure and panel, the one line saying why a comparison cannot differ (see module docstring)."""
    caveats: dict[str, dict[tuple[str, str], str]] = {"fig1": {}, "fig2": {}}
    for dataset, anomaly in PANELS:
        panel = _panel_runs(runs, dataset, anomaly)
        unpooled = panel[panel["pooling"] == "none"]
        if len(unpooled) and (unpooled["image_size"].astype(float) < POOLING_MIN_SIZE).all():
            size = int(unpooled["image_size"].max())
            caveats["fig2"][(dataset, anomaly)] = f"at {size} px the last map is 1x1: no pooling = pooling"
        variance = panel[(panel["variant"] == "dsvdd_bias_var") & (panel["objective"] == "soft_boundary")]
        if len(variance) and not variance["reg_active"].fillna(False).astype(bool).any():
            caveats["fig1"][(dataset, anomaly)] = "σ² reg. never switched on (hinge 0): = w/ bias"
    return caveats


def _caveat(ax, text: str | None) -> None:
    if text:
        ax.text(0.5, -0.3, text, ha="center", va="top", transform=ax.transAxes, fontsize=7, color="dimgray")


def _note(rows: pd.DataFrame) -> str:
    """What stands in for the bar of `rows` (one cell) when it has no value: its note, or ""."""
    notes = [note for note in rows["note"] if note]
    return notes[0] if notes else ""


def _bars(ax, x, values, spreads, counts, width, label, notes=None):
    """Bars with their spread over seeds as error bars and their number of runs above them; where
    a bar has no value, its note (e.g. "diverged") is written upright in its place instead."""
    bars = ax.bar(x, values, width, yerr=spreads, capsize=2, label=label, error_kw={"linewidth": 0.8})
    for bar, count, note in zip(bars, counts, notes or [""] * len(bars), strict=True):
        middle = bar.get_x() + bar.get_width() / 2
        if count and np.isfinite(bar.get_height()):
            top = bar.get_height() if bar.get_height() >= 0 else 0.0
            ax.annotate(f"{int(count)}", (middle, top), fontsize=6, ha="center",
                        va="bottom", xytext=(0, 1), textcoords="offset points")
        elif note and not np.isfinite(bar.get_height()):
            ax.text(middle, 0.03, note, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                    va="bottom", fontsize=6, color=bar.get_facecolor())


def _fit_ylim(ax, values, spreads, floor: float | None = None, ceiling: float | None = None) -> None:
    """A y-range around the bars (with their spreads), so that their differences show."""
    values, spreads = np.asarray(values, dtype=float), np.nan_to_num(np.asarray(spreads, dtype=float))
    finite = np.isfinite(values)
    if not finite.any():
        return
    low = float(np.min(np.minimum(values, values - spreads)[finite]))
    high = float(np.max((values + spreads)[finite]))
    margin = max(2.0, 0.1 * (high - low))
    low, high = low - margin, high + margin
    ax.set_ylim(low if floor is None else max(floor, low), high if ceiling is None else min(ceiling, high))


def _legend(axes) -> tuple[list, list]:
    """The legend entries of the first panel that drew bars (none when every panel is empty)."""
    return next(((h, lab) for ax in axes.flat for h, lab in [ax.get_legend_handles_labels()] if h), ([], []))


def _empty_text(notes: pd.Series) -> str:
    """A panel without any bar: "no runs", or its notes ("diverged") when every cell has one, or
    "no runs" with how many of its cells diverged."""
    noted = notes[notes != ""]
    if noted.empty:
        return "no runs"
    if len(noted) == len(notes):
        return "\n".join(dict.fromkeys(noted))
    return f"no runs\n({len(noted)} of {len(notes)} cells: {', '.join(dict.fromkeys(noted))})"


def _empty(ax, title: str, text: str = "no runs") -> None:
    ax.set_title(title, fontsize=9)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_figure1(data: pd.DataFrame, caveats: dict[tuple[str, str], str] | None = None):
    """Figure 1 from `figure1_data`: a row of panels per scheme, bars per variant and lr (error bars:
    the variant's spread over seeds; numbers: its runs); `caveats` per panel (`figure_caveats`)."""
    caveats = caveats or {}
    panels = PANELS
    schemes = list(fig1_schemes().values())
    learning_rates = sorted(data["lr"].unique())
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 5.5), squeeze=False)
    width = 0.8 / len(FIG1_VARIANTS)
    for row, scheme in enumerate(schemes):
        for col, (dataset, anomaly) in enumerate(panels):
            ax = axes[row][col]
            title = f"{dataset} {anomaly}\n{scheme}"
            panel = (data["dataset"] == dataset) & (data["test_anomaly"] == anomaly)
            cell = data[(data["scheme"] == scheme) & panel]
            if cell["difference"].notna().sum() == 0:
                _empty(ax, title, _empty_text(cell["note"]))
                continue
            drawn, spreads = [], []
            for i, (variant, label) in enumerate(FIG1_VARIANTS.items()):
                at = [cell[(cell["variant"] == variant) & np.isclose(cell["lr"], lr)] for lr in learning_rates]
                values = [row["difference"].mean() for row in at]
                spread = [row["spread"].mean() for row in at]
                offset = (i - (len(FIG1_VARIANTS) - 1) / 2) * width
                _bars(ax, np.arange(len(learning_rates)) + offset, values, spread, [row["n"].sum() for row in at],
                      width, label, [_note(row) for row in at])
                drawn += values
                spreads += spread
            _fit_ylim(ax, [*drawn, 0.0], [*spreads, 0.0])
            ax.axhline(0.0, color="black", linewidth=0.8)
            if row == len(schemes) - 1:
                _caveat(ax, caveats.get((dataset, anomaly)))
            ax.set_xticks(range(len(learning_rates)), [f"{lr:g}" for lr in learning_rates])
            ax.set_xlim(-0.5, len(learning_rates) - 0.5)  # every bar's place, drawn or labelled
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("AUC difference to D. SVDD (points)", fontsize=8)
    handles, labels = _legend(axes)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Figure 1: performance difference to the standard D. SVDD (soft-boundary)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def draw_figure2(data: pd.DataFrame, caveats: dict[tuple[str, str], str] | None = None):
    """Figure 2 from `figure2_data`: per panel, bars per model with and without pooling (error bars:
    spread over seeds; numbers: runs); `caveats` per panel (`figure_caveats`)."""
    caveats = caveats or {}
    panels = PANELS
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    letters = list(FIG2_MODELS.values())
    for col, (dataset, anomaly) in enumerate(panels):
        ax = axes[0][col]
        cell = data[(data["dataset"] == dataset) & (data["test_anomaly"] == anomaly)]
        if cell["auc"].notna().sum() == 0:
            _empty(ax, f"{dataset} {anomaly}", _empty_text(cell["note"]))
            continue
        drawn, spreads = [], []
        for i, (pooling, label) in enumerate(fig2_pooling().items()):
            at = [cell[(cell["model"] == letter) & (cell["pooling"] == pooling)] for letter in letters]
            values, spread = [row["auc"].mean() for row in at], [row["spread"].mean() for row in at]
            _bars(ax, np.arange(len(letters)) + (i - 0.5) * 0.4, values, spread, [row["n"].sum() for row in at],
                  0.4, label, [_note(row) for row in at])
            drawn += values
            spreads += spread
        ax.set_xticks(range(len(letters)), letters)
        _fit_ylim(ax, drawn, spreads, floor=0.0, ceiling=100.0)
        _caveat(ax, caveats.get((dataset, anomaly)))
        ax.set_title(f"{dataset} {anomaly}", fontsize=9)
        ax.set_ylabel("test AUC (%)", fontsize=8)
    handles, labels = _legend(axes)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle("Figure 2: with and without the pooling layer "
                 "(A OC-SVM, B IF, C D. SVDD, D w/ bias, E noise reg.)", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.92))
    return fig
