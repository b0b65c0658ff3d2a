"""The collapse study (experiment `collapse`, beyond the paper): collapse.{md,csv} and fig_collapse.png.

A run belongs to the study when its axes say so, whatever sweep made it: one of the four deep
variants, CIFAR-10 one-vs-all, one-class objective, random initialisation (weights none), one
learning rate for the whole network (backbone_lr_factor 1), no pretraining and no schedule. Its
history gives, per epoch, the training features' variance (Eq. 5's quantity), the mean distance to
c, c_t, d_t, the validation AUC and the validation features' relative variance (the collapse
measure of `dsvdd_repro.core.evaluation`). Per run the table gives the epoch at which it collapsed
(first epoch below its `trainer.collapse_ratio`) or "-", and the lowest relative variance it
reached; the figure draws, per network and learning rate, the relative variance and the validation
AUC over epochs, one line per variant (the geometric / arithmetic mean over the cell's runs).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dsvdd_repro.core.evaluation import COLLAPSE_RATIO, HEALTHY_RELATIVE_VARIANCE  # noqa: E402

VARIANTS = {"dsvdd": "D. SVDD (no bias)", "dsvdd_bias": "w/ bias", "dsvdd_bias_noise": "w/ bias & noise reg.",
            "dsvdd_bias_var": "w/ bias & σ² reg."}
NETS = {"lenet_cifar10": "LeNet (Ruff et al.)", "resnet18": "ResNet-18"}
COLUMNS = ("net", "variant", "lr", "normal_class", "seed", "epochs", "collapse_epoch", "min_relative_var",
           "min_relative_var_epoch", "first_feature_var", "last_feature_var", "last_mean_dist", "first_val_auc",
           "best_val_auc", "last_val_auc", "test_auc", "collapse_ratio", "run_dir")


def is_study_run(metrics: dict) -> bool:
    """Whether a finished run has the collapse study's axes (module docstring)."""
    config = metrics.get("config") or {}
    return (metrics.get("status") == "done" and metrics.get("variant") in VARIANTS
            and (config.get("model") or {}).get("name") in NETS and metrics.get("dataset") == "cifar10"
            and metrics.get("setup") == "one_vs_all" and metrics.get("objective") == "one_class"
            and metrics.get("weights") == "none" and metrics.get("backbone_lr_factor") == 1.0
            and not config.get("pretrain") and not config.get("lr_schedule") and bool(metrics.get("history")))


def study_runs(metrics: list[dict]) -> pd.DataFrame:
    """One row per study run (COLUMNS), from the metrics of every run (`runs.collect_metrics`)."""
    rows = []
    for run in filter(is_study_run, metrics):
        history = run["history"]
        relative = np.array([np.nan if h.get("val_relative_var") is None else h["val_relative_var"] for h in history])
        lowest = int(np.nanargmin(relative)) if np.isfinite(relative).any() else None
        aucs = [h["val_auc"] for h in history if h.get("val_auc") is not None]
        rows.append({
            "net": run["config"]["model"]["name"], "variant": run["variant"], "lr": run["lr"],
            "normal_class": run["normal_class"], "seed": run["seed"], "epochs": len(history),
            "collapse_epoch": run.get("collapse_epoch"),
            "min_relative_var": None if lowest is None else float(relative[lowest]),
            "min_relative_var_epoch": None if lowest is None else history[lowest]["epoch"],
            "first_feature_var": history[0]["feature_var"], "last_feature_var": history[-1]["feature_var"],
            "last_mean_dist": history[-1]["mean_dist"],
            "first_val_auc": aucs[0] if aucs else None, "best_val_auc": max(aucs) if aucs else None,
            "last_val_auc": aucs[-1] if aucs else None, "test_auc": run.get("test_auc"),
            "collapse_ratio": run["config"]["trainer"]["collapse_ratio"], "run_dir": run["run_dir"],
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values(["net", "variant", "lr", "normal_class", "seed"], ignore_index=True)


def study_histories(metrics: list[dict]) -> pd.DataFrame:
    """One row per (study run, epoch): net, variant, lr, epoch, relative variance, val AUC."""
    rows = [
        {"net": run["config"]["model"]["name"], "variant": run["variant"], "lr": run["lr"], "epoch": h["epoch"],
         "relative_var": h.get("val_relative_var"), "val_auc": h.get("val_auc"), "feature_var": h["feature_var"]}
        for run in filter(is_study_run, metrics) for h in run["history"]
    ]
    return pd.DataFrame(rows, columns=["net", "variant", "lr", "epoch", "relative_var", "val_auc", "feature_var"])


def _cell(group: pd.DataFrame) -> str:
    """A table cell: the collapse epoch(s) or "-", and the lowest relative variance (its median)."""
    collapsed = group["collapse_epoch"].dropna().astype(int)
    lowest = f"min {group['min_relative_var'].median():.1e}"
    if len(group) == 1:
        return f"{collapsed.iloc[0]} ({lowest})" if len(collapsed) else f"- ({lowest})"
    when = f"{len(collapsed)}/{len(group)} at {int(collapsed.median())}" if len(collapsed) else f"0/{len(group)}"
    return f"{when} ({lowest})"


def to_markdown(runs: pd.DataFrame) -> str:
    """collapse.md: per network, variants x learning rates, the collapse epoch and the lowest
    relative variance; then the gap between collapsed and healthy measurements."""
    lines = [
        "# Collapse study: when does deep SVDD collapse (phi = c)?", "",
        "CIFAR-10 one-vs-all, random initialisation, one learning rate for the whole network (Adam, "
        "weight decay 5e-4), one-class objective. A cell: the epoch at which the run collapsed (its "
        "validation features' variance fell below collapse_ratio x their second moment), or `-` if it "
        f"never did, and the lowest relative variance it reached (collapse_ratio {_values(runs['collapse_ratio'])}). "
        f"Classes {_values(runs['normal_class'])}, seeds {_values(runs['seed'])}, "
        f"epochs {_values(runs['epochs'])}; with several runs a cell gives collapsed/runs at the median epoch.", "",
    ]
    for net, by_net in runs.groupby("net", sort=True):
        rates = sorted(by_net["lr"].unique())
        lines += [f"## {NETS.get(net, net)}", "",
                  "| variant | " + " | ".join(f"lr {lr:g}" for lr in rates) + " |",
                  "|---|" + "---|" * len(rates)]
        for variant in (v for v in VARIANTS if v in set(by_net["variant"])):
            mine = by_net[by_net["variant"] == variant]
            cells = [_cell(mine[mine["lr"] == lr]) if (mine["lr"] == lr).any() else "no run" for lr in rates]
            lines.append(f"| {VARIANTS[variant]} | " + " | ".join(cells) + " |")
        lines.append("")
    collapsed = runs[runs["collapse_epoch"].notna()]
    healthy = runs[runs["collapse_epoch"].isna()]
    lines += [
        "## The collapse threshold against these runs", "",
        f"- runs that collapsed: {len(collapsed)} of {len(runs)}",
        f"- lowest relative variance of a run that never collapsed: "
        f"{healthy['min_relative_var'].min():.2g}" if len(healthy) else "- every run collapsed",
        f"- threshold (trainer.collapse_ratio default) {COLLAPSE_RATIO:.2g}, set between a collapsed network "
        f"(~6e-17) and the lowest healthy value measured when it was set ({HEALTHY_RELATIVE_VARIANCE:.2g}); "
        "see dsvdd_repro/core/evaluation.py",
    ]
    return "\n".join(lines) + "\n"


def _values(column: pd.Series) -> str:
    values = sorted(column.dropna().unique())
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) or "n/a"


def draw(histories: pd.DataFrame, threshold: float = COLLAPSE_RATIO):
    """fig_collapse.png: one column per learning rate; per network a row of the validation
    features' relative variance (log scale, the threshold dashed, mean in log space over runs) and
    a row of the validation AUC, one line per variant."""
    nets = [net for net in NETS if net in set(histories["net"])]
    rates = sorted(histories["lr"].unique())
    fig, axes = plt.subplots(2 * len(nets), len(rates), figsize=(3.2 * len(rates), 2.6 * 2 * len(nets)),
                             squeeze=False, sharex=True)
    for row, net in enumerate(nets):
        for column, lr in enumerate(rates):
            var_ax, auc_ax = axes[2 * row][column], axes[2 * row + 1][column]
            cell = histories[(histories["net"] == net) & (histories["lr"] == lr)]
            for variant, label in VARIANTS.items():
                lines = cell[cell["variant"] == variant].groupby("epoch")
                if not len(cell[cell["variant"] == variant]):
                    continue
                var = lines["relative_var"].apply(lambda v: float(np.exp(np.log(v.clip(lower=1e-30)).mean())))
                var_ax.plot(var.index, var.values, label=label)
                auc = lines["val_auc"].mean()
                auc_ax.plot(auc.index, auc.values, label=label)
            var_ax.set_yscale("log")
            var_ax.axhline(threshold, color="gray", linestyle="--", linewidth=0.8)
            var_ax.set_title(f"{NETS[net]}, lr {lr:g}", fontsize=9)
            auc_ax.axhline(0.5, color="gray", linestyle=":", linewidth=0.8)
            if column == 0:
                var_ax.set_ylabel("val. variance / 2nd moment", fontsize=8)
                auc_ax.set_ylabel("val. AUC", fontsize=8)
            if row == len(nets) - 1:
                auc_ax.set_xlabel("epoch", fontsize=8)
                auc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Collapse study: relative feature variance (dashed: collapse threshold) and validation AUC",
                 fontsize=10)
    fig.tight_layout()
    return fig
