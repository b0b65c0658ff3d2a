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


# a class whose mean is further than this from the published one is flagged (points of AUC in %)
FLAG_POINTS = 3.0


def class_means(cells: pd.DataFrame, variant: str) -> tuple[float, float] | None:
    """(ours, paper): the mean over the ten classes of the per-class means, when all ten have runs."""
    rows = cells[cells["variant"] == variant]
    if sorted(rows["normal_class"]) != list(range(10)):
        return None
    return round(float(rows["ours_mean"].mean()), 1), round(float(rows["paper_mean"].mean()), 1)


def to_markdown(cells: pd.DataFrame) -> str:
    lines = ["# Original deep SVDD protocol (Ruff et al. 2018, Table 1, CIFAR-10 one-vs-all)", "",
             "Ours: test AUC in %, mean ± std over seeds (n runs), with the deep SVDD epochs run, and ours "
             "minus the paper; paper: the published mean (autoencoder pretraining 350 epochs, deep SVDD 150 "
             f"epochs). `*`: more than {FLAG_POINTS:g} points from the published mean.", "",
             "| normal class | paper | ours, last epoch | diff | ours, best validation epoch | diff |",
             "|---|---|---|---|---|---|"]
    for (normal_class, name), group in cells.groupby(["normal_class", "class_name"], sort=True):
        shown = {}
        for row in group.itertuples():
            spread = f" ± {row.ours_std}" if row.n_runs > 1 else ""
            flag = " *" if abs(row.diff) > FLAG_POINTS else ""
            shown[row.variant] = (f"{row.ours_mean}{spread} (n={row.n_runs}, {row.epochs} epochs)", f"{row.diff:+.1f}{flag}")
        last, val = (shown.get(v, ("missing", "")) for v in VARIANTS)
        lines.append(f"| {normal_class} {name} | {group['paper_mean'].iloc[0]} | {last[0]} | {last[1]} | {val[0]} | {val[1]} |")
    means = {variant: class_means(cells, variant) for variant in VARIANTS}
    if any(means.values()):
        paper = next(m[1] for m in means.values() if m)
        shown = [(f"{m[0]}", f"{m[0] - m[1]:+.1f}") if m else ("not all ten classes", "") for m in means.values()]
        lines.append(f"| mean over the ten classes | {paper} | {shown[0][0]} | {shown[0][1]} | {shown[1][0]} | {shown[1][1]} |")
    seeded = cells[cells["n_runs"] > 1]
    if len(seeded):
        spreads = ", ".join(f"{row.class_name} {row.ours_std} (n={row.n_runs}, {VARIANTS[row.variant]})"
                            for row in seeded.itertuples())
        lines += ["", f"Seed spread (sample std over seeds, points of AUC): {spreads}."]
    flagged = cells[cells["diff"].abs() > FLAG_POINTS]
    if len(flagged):
        lines += ["", f"More than {FLAG_POINTS:g} points from the published mean: " + ", ".join(
            f"{row.class_name} ({row.diff:+.1f}, {VARIANTS[row.variant]})" for row in flagged.itertuples()) + "."]
    return "\n".join(lines) + "\n"
