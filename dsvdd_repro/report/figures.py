"""Figures 1 and 2 of the paper, drawn from our runs.

- Figure 1: test AUC of each variant minus the standard D. SVDD's, per learning rate (1e-3, 1e-2,
  1e-1), soft-boundary objective; top row with the backbone at 0.1 x the head's rate, bottom row
  with one rate for all layers (`optim.backbone_lr_factor=1`).
- Figure 2: test AUC with and without ResNet-18's pooling layer for the models A-E (OC-SVM and IF
  on CNN features, D. SVDD, D. SVDD w/ bias, D. SVDD w/ bias & noise reg.), one-class objective,
  compared with Table II.
Both figures have the paper's panels, VOC2012 and WikiArt x block permutation 2x2 and 8x8
(unsupervised alteration runs; Tables II and V), whatever other runs exist. Cells without finished
runs are left empty and labelled "no runs", never invented.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LEARNING_RATES = (1e-3, 1e-2, 1e-1)
FIG1_VARIANTS = {"dsvdd_bias": "w/ bias", "dsvdd_bias_noise": "w/ bias & noise reg.", "dsvdd_bias_var": "w/ bias & σ² reg."}
FIG2_MODELS = {"ocsvm_cnn": "A", "iforest_cnn": "B", "dsvdd": "C", "dsvdd_bias": "D", "dsvdd_bias_noise": "E"}


# (dataset, test anomaly) of the paper's panels, in its order
PANELS = (("voc2012", "block_perm:2"), ("voc2012", "block_perm:8"), ("wikiart", "block_perm:2"), ("wikiart", "block_perm:8"))


def _unsupervised_alteration(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs["status"] == "done") & (runs["setup"] == "alteration") & ~runs["semi_supervised"].astype(bool)]


def _mean_auc(frame: pd.DataFrame) -> float:
    return float(frame["test_auc"].mean() * 100.0) if len(frame) else np.nan


def figure1_data(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (row scheme, panel, variant, lr): the AUC difference to D. SVDD (points)."""
    done = _unsupervised_alteration(runs)
    done = done[(done["objective"] == "soft_boundary") & (done["pooling"] == "max")]
    rows = []
    for factor, scheme in ((0.1, "backbone lr = 0.1 x head lr"), (1.0, "one lr for all layers")):
        scoped = done[np.isclose(done["backbone_lr_factor"].astype(float), factor)]
        for dataset, anomaly in PANELS:
            panel = scoped[(scoped["dataset"] == dataset) & (scoped["test_anomaly"] == anomaly)]
            for lr in LEARNING_RATES:
                at_lr = panel[np.isclose(panel["lr"], lr)]
                reference = _mean_auc(at_lr[at_lr["variant"] == "dsvdd"])
                for variant in FIG1_VARIANTS:
                    ours = _mean_auc(at_lr[at_lr["variant"] == variant])
                    rows.append({"scheme": scheme, "dataset": dataset, "test_anomaly": anomaly, "variant": variant,
                                 "lr": lr, "difference": ours - reference})
    return pd.DataFrame(rows, columns=["scheme", "dataset", "test_anomaly", "variant", "lr", "difference"])


def figure2_data(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (panel, model, pooling): mean test AUC (percent)."""
    done = _unsupervised_alteration(runs)
    done = done[done["variant"].isin(list(FIG2_MODELS))]
    done = done[(done["objective"].isin(["one_class", ""])) & np.isclose(done["lr"].fillna(1e-3), 1e-3)]
    rows = []
    for dataset, anomaly in PANELS:
        panel = done[(done["dataset"] == dataset) & (done["test_anomaly"] == anomaly)]
        for variant, letter in FIG2_MODELS.items():
            for pooling in ("max", "none"):
                chosen = panel[(panel["variant"] == variant) & (panel["pooling"] == pooling)]
                rows.append({"dataset": dataset, "test_anomaly": anomaly, "model": letter, "variant": variant,
                             "pooling": pooling, "auc": _mean_auc(chosen)})
    return pd.DataFrame(rows, columns=["dataset", "test_anomaly", "model", "variant", "pooling", "auc"])


def _empty(ax, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_figure1(runs: pd.DataFrame):
    data = figure1_data(runs)
    panels = PANELS
    schemes = ["backbone lr = 0.1 x head lr", "one lr for all layers"]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 5.5), squeeze=False)
    width = 0.8 / len(FIG1_VARIANTS)
    for row, scheme in enumerate(schemes):
        for col, (dataset, anomaly) in enumerate(panels):
            ax = axes[row][col]
            title = f"{dataset} {anomaly}\n{scheme}"
            cell = data[(data["scheme"] == scheme) & (data["dataset"] == dataset) & (data["test_anomaly"] == anomaly)]
            if cell["difference"].notna().sum() == 0:
                _empty(ax, title)
                continue
            for i, (variant, label) in enumerate(FIG1_VARIANTS.items()):
                values = [cell[(cell["variant"] == variant) & np.isclose(cell["lr"], lr)]["difference"].mean()
                          for lr in LEARNING_RATES]
                ax.bar(np.arange(len(LEARNING_RATES)) + (i - 1) * width, values, width, label=label)
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(LEARNING_RATES)), [f"{lr:g}" for lr in LEARNING_RATES])
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("AUC difference to D. SVDD (points)", fontsize=8)
    handles, labels = next(((h, lab) for ax in axes.flat for h, lab in [ax.get_legend_handles_labels()] if h), ([], []))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Figure 1: performance difference to the standard D. SVDD (soft-boundary)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def draw_figure2(runs: pd.DataFrame):
    data = figure2_data(runs)
    panels = PANELS
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    letters = list(FIG2_MODELS.values())
    for col, (dataset, anomaly) in enumerate(panels):
        ax = axes[0][col]
        cell = data[(data["dataset"] == dataset) & (data["test_anomaly"] == anomaly)]
        if cell["auc"].notna().sum() == 0:
            _empty(ax, f"{dataset} {anomaly}")
            continue
        for i, pooling in enumerate(("max", "none")):
            values = [cell[(cell["model"] == letter) & (cell["pooling"] == pooling)]["auc"].mean() for letter in letters]
            label = "with pooling" if pooling == "max" else "without pooling"
            ax.bar(np.arange(len(letters)) + (i - 0.5) * 0.4, values, 0.4, label=label)
        ax.set_xticks(range(len(letters)), letters)
        ax.set_ylim(0, 100)
        ax.set_title(f"{dataset} {anomaly}", fontsize=9)
        ax.set_ylabel("test AUC (%)", fontsize=8)
    handles, labels = next(((h, lab) for ax in axes.flat for h, lab in [ax.get_legend_handles_labels()] if h), ([], []))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle("Figure 2: with and without the pooling layer (A OC-SVM, B IF, C D. SVDD, D w/ bias, E noise reg.)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.92))
    return fig
