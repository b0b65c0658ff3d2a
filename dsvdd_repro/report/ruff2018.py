"""The original deep SVDD protocol beside its published numbers (experiment `ruff2018`).

Ruff et al. (ICML 2018) Table 1, CIFAR-10 one-vs-all, one-class Deep SVDD: the per-class mean test
AUC (`dsvdd_repro/published/ruff2018_cifar10.csv`; their standard deviations are not transcribed:
only the means are confirmed). Ours: the runs of variant `dsvdd_ruff2018` (the published protocol:
the last epoch is scored) and of `dsvdd_ruff2018_val` (the same with our validation-based choice of
the epoch), mean +- std over seeds per normal class, with the epochs they really ran (the reduced
schedule shows as fewer).
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

PUBLISHED_CSV = files("dsvdd_repro") / "published" / "ruff2018_cifar10.csv"
VARIANTS = {"dsvdd_ruff2018": "last epoch (published protocol)", "dsvdd_ruff2018_val": "best validation epoch"}
COLUMNS = ("normal_class", "class_name", "paper_mean", "variant", "selection", "epochs", "ours_mean", "ours_std",
           "n_runs", "diff")


def load_published() -> pd.DataFrame:
    with PUBLISHED_CSV.open() as handle:
        return pd.read_csv(handle)


def ruff2018_cells(runs: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (normal class, variant) with finished runs: ours in % (mean, sample std over
    seeds, n) beside the published mean; empty when no run of the experiment finished."""
    published = load_published() if published is None else published
    done = runs[(runs["status"] == "done") & runs["variant"].isin(VARIANTS) & (runs["dataset"] == "cifar10")]
    rows = []
    for (normal_class, variant), group in done.groupby(["normal_class", "variant"], sort=True):
        paper = published[published["normal_class"] == int(normal_class)].iloc[0]
        auc = group["test_auc"].astype(float) * 100
        rows.append({
            "normal_class": int(normal_class), "class_name": paper["class_name"], "paper_mean": paper["mean"],
            "variant": variant, "selection": VARIANTS[variant],
            "epochs": ",".join(str(int(e)) for e in sorted(group["epochs"].dropna().unique())),
            "ours_mean": round(float(auc.mean()), 1), "ours_std": round(float(auc.std(ddof=1)), 1) if len(auc) > 1 else 0.0,
            "n_runs": len(auc), "diff": round(float(auc.mean()) - paper["mean"], 1),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def to_markdown(cells: pd.DataFrame) -> str:
    lines = ["# Original deep SVDD protocol (Ruff et al. 2018, Table 1, CIFAR-10 one-vs-all)", "",
             "Ours: test AUC in %, mean ± std over seeds (n runs), with the deep SVDD epochs run; paper: the "
             "published mean (autoencoder pretraining 350 epochs, deep SVDD 150 epochs).", "",
             "| normal class | paper | ours, last epoch | ours, best validation epoch |", "|---|---|---|---|"]
    for (normal_class, name), group in cells.groupby(["normal_class", "class_name"], sort=True):
        shown = {}
        for row in group.itertuples():
            spread = f" ± {row.ours_std}" if row.n_runs > 1 else ""
            shown[row.variant] = f"{row.ours_mean}{spread} (n={row.n_runs}, {row.epochs} epochs)"
        lines.append(f"| {normal_class} {name} | {group['paper_mean'].iloc[0]} | "
                     f"{shown.get('dsvdd_ruff2018', 'missing')} | {shown.get('dsvdd_ruff2018_val', 'missing')} |")
    return "\n".join(lines) + "\n"
