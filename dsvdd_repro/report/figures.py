"""Figures 1 and 2 of the paper, drawn from our runs through the tables' cells, beside the paper's
bars wherever its tables give them.

- Figure 1: Table V's cells (soft-boundary; learning rates 1e-3, 1e-2, 1e-1 of the head) as the
  test AUC of each variant minus the standard D. SVDD's; top row with the backbone at 0.1 x the
  head's rate (exactly Table V's numbers), bottom row with one rate for all layers
  (`optim.backbone_lr_factor=1`). The paper prints no numbers in Figure 1, but its top row follows
  from Table V's published cells, so the paper's differences are drawn beside ours there (the
  bottom row has no published numbers: ours only).
- Figure 2: Table II's cells (one-class) with and without ResNet-18's pooling layer for the models
  A-E (OC-SVM and IF on CNN features, D. SVDD, D. SVDD w/ bias, D. SVDD w/ bias & noise reg.).
  The paper's bars with pooling are Table II's cells and are drawn beside ours; its bars without
  pooling are printed nowhere (Fig. 2 is a chart without numbers), so those are ours only.
Both go through `tables.table_cells`, so k is chosen on validation per cell exactly as in the
tables (`dsvdd_repro.report.selection`), and both have the paper's panels, VOC2012 and WikiArt x block
permutation 2x2 and 8x8 (unsupervised alteration runs), whatever other runs exist.

Every bar's error bar is the spread of what it plots: for our AUCs the cell's spread over seeds,
for a difference sqrt(s1² + s2²) of its two independent cells (the paper's from Table V's printed
spreads alike). A bar resting on a single run has no spread: it is hatched and labelled "n=1" (for
a difference: when either cell has one run). Other bars carry their number of runs. Per bar, a
regularized variant whose runs' regularizer never switched on (L_reg = 0 in every epoch: the
variance hinge stayed 0, so it trained as D. SVDD w/ bias) is marked "∅" ("∅ 2/5": in 2 of its 5
runs; `caveats.regularizer_never_on`). Cells without finished runs are left empty, never invented:
a cell whose runs all diverged (`tables`: status `diverged`) is labelled "diverged" where its bar
would be (Figure 1: "D. SVDD diverged" when the reference did), a panel without any bar of ours
"no runs" or "diverged". The y-range fits the bars; a panel of Figure 2 says in one line when it
cannot show a difference: at image sizes where ResNet-18's last feature map is 1 x 1 (no pooling =
pooling).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from dsvdd_repro.report.caveats import cell_runs, regularizer_never_on  # noqa: E402
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
# `spread` the spread of the plotted value (NaN for a single run: `single_run`); `paper_*` the
# paper's bar where its tables give it (else NaN); `reg_off` how many of the bar's runs never
# switched their regularizer on and `caveat` the bar's mark for it; `status` is the cell's
# (tables.table_cells); `note` what is drawn instead of a bar that has no value ("diverged",
# Figure 1 also "D. SVDD diverged" when only the reference diverged), else "".
def fig1_columns() -> tuple[str, ...]:
    return ("scheme", "dataset", "test_anomaly", "variant", "lr", *selected_axes(), "difference", "spread", "n",
            "n_reference", "single_run", "paper_difference", "paper_spread", "reg_off", "status", "note", "caveat")


def fig2_columns() -> tuple[str, ...]:
    return ("dataset", "test_anomaly", "model", "variant", "pooling", *selected_axes(), "auc", "spread", "n",
            "single_run", "paper_auc", "paper_spread", "reg_off", "status", "note", "caveat")


DIVERGED = "diverged"
# ResNet-18 downsamples by 32: below 64 px its last feature map is 1 x 1
POOLING_MIN_SIZE = 64
# a bar whose runs' regularizer never switched on (module docstring)
REG_OFF_MARK = "∅"
REG_OFF_NOTE = (f"{REG_OFF_MARK}: the variant's regularizer never switched on in the bar's runs (L_reg = 0 in every "
                f"epoch: it trained as w/ bias); {REG_OFF_MARK} a/b: in a of its b runs")

# (dataset, test anomaly) of the paper's panels, in its order
PANELS = (("voc2012", "block_perm:2"), ("voc2012", "block_perm:8"),
          ("wikiart", "block_perm:2"), ("wikiart", "block_perm:8"))


def _in_panels(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells of the paper's panels (the figures draw no others)."""
    panel = pd.Series(list(zip(cells["dataset"], cells["test_anomaly"], strict=True)), index=cells.index,
                      dtype=object)
    return cells[panel.isin(PANELS)]


def combined_spread(*spreads: float) -> float:
    """The spread of a sum or difference of independent quantities: sqrt(s1² + s2² + ...)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(spreads, dtype=float)))))


def reg_off_caveat(off: int, n: int) -> str:
    """A bar's mark when `off` of its `n` runs never switched their regularizer on: "∅", "∅ 2/5" or ""."""
    if not off:
        return ""
    return REG_OFF_MARK if off == n else f"{REG_OFF_MARK} {off}/{n}"


def _bar_caveat(runs: pd.DataFrame, cell: pd.Series, **scheme) -> dict:
    """`reg_off` and `caveat` of the bar of one table cell (its runs as the cell chose them)."""
    chosen = cell_runs(runs, cell, **scheme)
    off = int(regularizer_never_on(chosen).sum())
    return {"reg_off": off, "caveat": reg_off_caveat(off, len(chosen))}


def _difference_row(cell: pd.Series, reference: pd.Series | None, paper_scheme: bool) -> dict:
    """Figure 1's values of one variant cell minus its reference cell (ours, and the paper's when
    Table V gives it): differences, their spreads and run counts, the note."""
    empty = pd.Series({"ours_mean": np.nan, "ours_std": np.nan, "n_runs": 0, "status": "missing",
                       "paper_mean": np.nan, "paper_spread": np.nan})
    reference = empty if reference is None else reference
    difference = cell["ours_mean"] - reference["ours_mean"]
    fewest = min(int(cell["n_runs"]), int(reference["n_runs"]))
    note = DIVERGED if cell["status"] == DIVERGED else ""
    if cell["status"] == "ok" and reference["status"] == DIVERGED:
        note = "D. SVDD diverged"
    return {"difference": difference, "n": cell["n_runs"], "n_reference": reference["n_runs"],
            "spread": combined_spread(cell["ours_std"], reference["ours_std"]) if fewest > 1 else np.nan,
            "single_run": bool(np.isfinite(difference) and fewest == 1),
            "paper_difference": cell["paper_mean"] - reference["paper_mean"] if paper_scheme else np.nan,
            "paper_spread": combined_spread(cell["paper_spread"], reference["paper_spread"]) if paper_scheme
            else np.nan, "status": cell["status"], "note": note}


def figure1_data(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per (scheme, panel, variant, lr): the variant's Table V cell minus D. SVDD's at the
    same lr (AUC points; NaN where either has no finished run) with the spread of that difference,
    the paper's difference under the paper's scheme, the k chosen for it and its caveat."""
    params = selected_axes()
    where = ("dataset", "test_anomaly", "lr")
    rows = []
    for factor, scheme in fig1_schemes().items():
        paper_scheme = bool(np.isclose(factor, paper_backbone_lr_factor()))
        cells = _in_panels(table_cells(runs, published, FIG1_TABLE, backbone_lr_factor=factor))
        references = {tuple(cell[key] for key in where): cell
                      for _, cell in cells[cells["variant"] == FIG1_REFERENCE].iterrows()}
        for _, cell in cells[cells["variant"].isin(list(FIG1_VARIANTS))].iterrows():
            reference = references.get(tuple(cell[key] for key in where))
            rows.append({"scheme": scheme, **{key: cell[key] for key in (*where, "variant", *params)},
                         **_difference_row(cell, reference, paper_scheme),
                         **_bar_caveat(runs, cell, backbone_lr_factor=factor)})
    return pd.DataFrame(rows, columns=list(fig1_columns()))


def figure2_data(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per (panel, model, pooling): the model's Table II cell under that pooling (test AUC
    in percent, NaN without a finished run, its spread over seeds), the paper's Table II cell under
    the paper's pooling, the k chosen for it and its caveat."""
    params = selected_axes()
    rows = []
    for pooling in fig2_pooling():
        published_pooling = pooling == paper_pooling()
        cells = _in_panels(table_cells(runs, published, FIG2_TABLE, pooling=pooling))
        for _, cell in cells[cells["variant"].isin(list(FIG2_MODELS))].iterrows():
            n = int(cell["n_runs"])
            rows.append({"dataset": cell["dataset"], "test_anomaly": cell["test_anomaly"],
                         "model": FIG2_MODELS[cell["variant"]], "variant": cell["variant"], "pooling": pooling,
                         **{p: cell[p] for p in params}, "auc": cell["ours_mean"],
                         "spread": cell["ours_std"] if n > 1 else np.nan, "n": n, "single_run": n == 1,
                         "paper_auc": cell["paper_mean"] if published_pooling else np.nan,
                         "paper_spread": cell["paper_spread"] if published_pooling else np.nan,
                         "status": cell["status"], "note": DIVERGED if cell["status"] == DIVERGED else "",
                         **_bar_caveat(runs, cell, pooling=pooling)})
    return pd.DataFrame(rows, columns=list(fig2_columns()))


def _panel_runs(runs: pd.DataFrame, dataset: str, anomaly: str) -> pd.DataFrame:
    return runs[(runs["status"] == "done") & (runs["dataset"] == dataset) & (runs["test_anomaly"] == anomaly)
                & ~runs["semi_supervised"].astype(bool)]


def figure_caveats(runs: pd.DataFrame) -> dict[str, dict[tuple[str, str], str]]:
    """Per figure and panel, the one line saying why a whole panel cannot differ: Figure 2 at image
    sizes where no pooling = pooling. Figure 1 has none: its caveats are per bar (`figure1_data`)."""
    caveats: dict[str, dict[tuple[str, str], str]] = {"fig1": {}, "fig2": {}}
    for dataset, anomaly in PANELS:
        unpooled = _panel_runs(runs, dataset, anomaly)
        unpooled = unpooled[unpooled["pooling"] == "none"]
        if len(unpooled) and (unpooled["image_size"].astype(float) < POOLING_MIN_SIZE).all():
            size = int(unpooled["image_size"].max())
            caveats["fig2"][(dataset, anomaly)] = f"at {size} px the last map is 1x1: no pooling = pooling"
    return caveats


# -- drawing ------------------------------------------------------------------------------------

PAPER_ALPHA = 0.35  # the paper's bars: the colour of ours, faded
SINGLE_HATCH = "////"
ERROR_KW = {"linewidth": 0.8}
PAPER_ERROR_KW = {"linewidth": 0.8, "ecolor": "gray"}


def _caveat(ax, text: str | None) -> None:
    if text:
        ax.text(0.5, -0.3, text, ha="center", va="top", transform=ax.transAxes, fontsize=7, color="dimgray")


def _first(rows: pd.DataFrame, column: str) -> str:
    """The first non-empty text of `column` in one bar's rows (a cell), else ""."""
    return next((text for text in rows[column] if isinstance(text, str) and text), "")


def _mark(ax, bar, rows: pd.DataFrame) -> None:
    """One of our bars' marks: hatched and "n=1" for a single run, else its number of runs, then its
    caveat mark; a bar without a value shows its note (e.g. "diverged") upright in its place."""
    middle, height = bar.get_x() + bar.get_width() / 2, bar.get_height()
    if not np.isfinite(height):
        note = _first(rows, "note")
        if note:
            ax.text(middle, 0.03, note, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                    va="bottom", fontsize=6, color=bar.get_facecolor())
        return
    single = bool(rows["single_run"].astype(bool).any())
    if single:
        bar.set_hatch(SINGLE_HATCH)
        bar.set_edgecolor("white")
    count = "n=1" if single else f"{int(rows['n'].sum())}"
    label = " ".join(part for part in (count, _first(rows, "caveat")) if part)
    ax.annotate(label, (middle, max(height, 0.0)), fontsize=6, ha="center", va="bottom", rotation=90,
                xytext=(0, 1), textcoords="offset points")


def _matches(column: pd.Series, value) -> pd.Series:
    """Rows whose `column` is `value` (learning rates compared as floats)."""
    return pd.Series(np.isclose(column.astype(float), value), index=column.index) if isinstance(value, float) \
        else column == value


def _panel_bars(ax, cell: pd.DataFrame, groups: tuple[str, list], series: tuple[str, dict[str, str]],
                value: str, with_paper: dict[str, bool]) -> tuple[list, list]:
    """Bars of one panel: per x group (`groups`: column, values) one bar per series (`series`:
    column, value -> legend label) of ours, followed by the paper's where `with_paper[series]`.
    Returns every drawn value and spread (for the y-range)."""
    (x_key, x_values), (series_key, labels) = groups, series
    slots = sum(1 + with_paper[name] for name in labels)
    width, slot, drawn, spreads = 0.8 / slots, 0, [], []
    for i, (name, label) in enumerate(labels.items()):
        at = [cell[(cell[series_key] == name) & _matches(cell[x_key], x)] for x in x_values]
        color = f"C{i}"
        for paper in (False, True)[: 1 + with_paper[name]]:
            column, spread = (f"paper_{value}", "paper_spread") if paper else (value, "spread")
            values, errors = [rows[column].mean() for rows in at], [rows[spread].mean() for rows in at]
            x = np.arange(len(x_values)) + (slot - (slots - 1) / 2) * width
            bars = ax.bar(x, values, width, yerr=errors, color=color, capsize=2, label=None if paper else label,
                          alpha=PAPER_ALPHA if paper else 1.0, error_kw=PAPER_ERROR_KW if paper else ERROR_KW)
            for bar, rows in zip(bars, at, strict=True):
                if not paper:
                    _mark(ax, bar, rows)
            drawn, spreads, slot = drawn + values, spreads + errors, slot + 1
    ax.set_xticks(range(len(x_values)), [f"{x:g}" if isinstance(x, float) else x for x in x_values])
    ax.set_xlim(-0.5, len(x_values) - 0.5)  # every bar's place, drawn or labelled
    return drawn, spreads


def _fit_ylim(ax, values, spreads, floor: float | None = None) -> None:
    """A y-range around the bars (with their spreads and marks), so that their differences show."""
    values, spreads = np.asarray(values, dtype=float), np.nan_to_num(np.asarray(spreads, dtype=float))
    finite = np.isfinite(values)
    if not finite.any():
        return
    low = float(np.min(np.minimum(values, values - spreads)[finite]))
    high = float(np.max((values + spreads)[finite]))
    margin = max(2.0, 0.1 * (high - low))
    low, high = low - margin, high + 2.5 * margin  # room above for the bars' run counts and marks
    ax.set_ylim(low if floor is None else max(floor, low), high)


def _empty_text(notes: pd.Series) -> str:
    """A panel without any bar of ours: "no runs", or its notes ("diverged") when every cell has one,
    or "no runs" with how many of its cells diverged."""
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


def _draw_panel(ax, cell: pd.DataFrame, title: str, value: str, layout: dict) -> bool:
    """One panel: our bars beside the paper's (`layout`: `groups`, `series`, `with_paper` for
    `_panel_bars`), or what stands in for them. Returns whether bars were drawn."""
    ours, paper = cell[value].notna().any(), cell[f"paper_{value}"].notna().any()
    if not ours and not paper:
        _empty(ax, title, _empty_text(cell["note"]))
        return False
    drawn, spreads = _panel_bars(ax, cell, layout["groups"], layout["series"], value, layout["with_paper"])
    if not ours:  # the paper's bars only: say why ours are absent
        ax.text(0.5, 0.95, f"ours: {_empty_text(cell['note'])}", ha="center", va="top", transform=ax.transAxes,
                fontsize=7, color="gray")
    if layout.get("zero_line"):  # a difference: its sign is what the panel shows
        drawn, spreads = [*drawn, 0.0], [*spreads, 0.0]
        ax.axhline(0.0, color="black", linewidth=0.8)
    _fit_ylim(ax, drawn, spreads, **layout.get("bounds", {}))
    ax.set_title(title, fontsize=9)
    return True


def _legend(fig, data: pd.DataFrame, series_handles: list, paper_label: str) -> None:
    """The series' colours, then what the bar styles mean (the paper's, a single run) and, when a
    bar has one, the caveat mark."""
    handles = [*series_handles, Patch(facecolor="gray", label="ours"),
               Patch(facecolor="gray", alpha=PAPER_ALPHA, label=paper_label),
               Patch(facecolor="gray", hatch=SINGLE_HATCH, edgecolor="white", label="single run (n=1: no spread)")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, 0.02))
    if (data["caveat"] != "").any():
        fig.text(0.5, 0.005, REG_OFF_NOTE, ha="center", va="bottom", fontsize=7, color="dimgray")


def _series_handles(axes) -> list:
    """Our series' legend entries, from the first panel that drew bars."""
    return next((handles for ax in axes.flat for handles in [ax.get_legend_handles_labels()[0]] if handles), [])


def draw_figure1(data: pd.DataFrame, caveats: dict[tuple[str, str], str] | None = None):
    """Figure 1 from `figure1_data`: a row of panels per scheme, per lr a bar per variant (ours, then
    the paper's where Table V gives it; error bars: the difference's spread; numbers: runs; marks:
    module docstring); `caveats`: a line per panel, if any."""
    caveats = caveats or {}
    learning_rates = sorted(data["lr"].unique())
    fig, axes = plt.subplots(2, len(PANELS), figsize=(4.0 * len(PANELS), 6.4), squeeze=False)
    for row, scheme in enumerate(fig1_schemes().values()):
        rows = data[data["scheme"] == scheme]
        layout = {"groups": ("lr", learning_rates), "series": ("variant", FIG1_VARIANTS),
                  "with_paper": {v: bool(rows.loc[rows["variant"] == v, "paper_difference"].notna().any())
                                 for v in FIG1_VARIANTS}, "zero_line": True}
        unpublished = "" if any(layout["with_paper"].values()) else " (paper: no numbers)"
        for col, (dataset, anomaly) in enumerate(PANELS):
            ax = axes[row][col]
            cell = rows[(rows["dataset"] == dataset) & (rows["test_anomaly"] == anomaly)]
            if _draw_panel(ax, cell, f"{dataset} {anomaly}\n{scheme}{unpublished}", "difference", layout):
                ax.set_ylabel("AUC difference to D. SVDD (points)", fontsize=8)
            _caveat(ax, caveats.get((dataset, anomaly)) if row == 1 else None)
    _legend(fig, data, _series_handles(axes), "paper (Table V's cells)")
    fig.suptitle("Figure 1: performance difference to the standard D. SVDD (soft-boundary); "
                 "error bars: spread of the difference", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig


def draw_figure2(data: pd.DataFrame, caveats: dict[tuple[str, str], str] | None = None):
    """Figure 2 from `figure2_data`: per panel, per model ours with and without pooling and the
    paper's with pooling (Table II; error bars: spread over seeds; numbers: runs; marks: module
    docstring); `caveats` per panel (`figure_caveats`)."""
    caveats = caveats or {}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.0 * len(PANELS), 4.0), squeeze=False)
    layout = {"groups": ("model", list(FIG2_MODELS.values())), "series": ("pooling", fig2_pooling()),
              "with_paper": {p: bool(data.loc[data["pooling"] == p, "paper_auc"].notna().any())
                             for p in fig2_pooling()},
              "bounds": {"floor": 0.0}}  # no ceiling at 100: the run counts above the bars need room
    for col, (dataset, anomaly) in enumerate(PANELS):
        ax = axes[0][col]
        cell = data[(data["dataset"] == dataset) & (data["test_anomaly"] == anomaly)]
        if _draw_panel(ax, cell, f"{dataset} {anomaly}", "auc", layout):
            ax.set_ylabel("test AUC (%)", fontsize=8)
        _caveat(ax, caveats.get((dataset, anomaly)))
    _legend(fig, data, _series_handles(axes), "paper with pooling (Table II's cells)")
    fig.suptitle("Figure 2: with and without the pooling layer "
                 "(A OC-SVM, B IF, C D. SVDD, D w/ bias, E noise reg.)", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.92))
    return fig
