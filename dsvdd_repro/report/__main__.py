"""Write the report of one profile: `python -m dsvdd_repro.report runs/<profile> --out results/<profile>`.

Outputs: runs.csv (every run, finished or failed, full precision), table{I..VI}.{md,csv,tex} (ours
mean +- std (n) beside the paper's value, difference, cells beyond the paper's spread marked; the CSV's
AUCs rounded as the Markdown prints them), fig1.png, fig2.png, and REPORT.md (what was reproduced per
table, with which data and weights, what is missing and why); when their runs exist, ruff2018.{md,csv}
(the original deep SVDD protocol) and collapse.{md,csv} with fig_collapse.png (the collapse study). Reads only the run folders and the
package's published tables, so it runs from any folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..runs import collect_metrics
from . import collapse
from .collect import collect_runs, collect_unstarted
from .figures import draw_figure1, draw_figure2, figure1_data, figure2_data, figure_caveats
from .published import TABLES, load_published
from .ruff2018 import ruff2018_cells
from .ruff2018 import to_markdown as ruff2018_markdown
from .tables import pivot, rounded, table_cells, to_latex, to_markdown


def _values(column: pd.Series) -> str:
    """The distinct values of a column, as text: "32", "1000-4000", "n/a"."""
    values = sorted(column.dropna().unique())
    if not values:
        return "n/a"
    if all(isinstance(v, (int, float)) for v in values) and len(values) > 2:
        return f"{values[0]:g}-{values[-1]:g}"
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _data_lines(runs: pd.DataFrame) -> list[str]:
    """Per dataset, what the finished runs really used: layout, styles, sizes, weights, epochs, seeds."""
    done = runs[runs["status"] == "done"]
    lines = []
    for dataset, group in done.groupby("dataset"):
        deep = group[group["objective"] != ""]  # collect leaves the baselines' objective empty
        styles = f", styles {_values(group['styles_used'])}" if group["styles_used"].notna().any() else ""
        lines.append(
            f"- {dataset} ({_values(group['data_layout'])}{styles}): {len(group)} finished runs; image size "
            f"{_values(group['image_size'])} px; splits train {_values(group['n_train'])} / val "
            f"{_values(group['n_val'])} / test {_values(group['n_test'])}; "
            f"deep SVDD epochs {_values(deep['epochs'])}; seeds {_values(group['seed'])}; "
            f"weights used: {_values(group['weights_used'])}"
        )
    return lines or ["- no finished runs"]


# The paper's protocol (Section V), to say where finished runs departed from it.
PAPER_IMAGE_SIZE = {"cifar10": 32, "voc2012": 224, "wikiart": 224}
PAPER_EPOCHS, PAPER_SEEDS, PAPER_WIKIART_STYLES = 30, 5, 6


def _difference_lines(runs: pd.DataFrame) -> list[str]:
    """Where the finished runs depart from the paper's protocol, one line per kind of departure."""
    done = runs[runs["status"] == "done"]
    lines = []
    with_network = done[done["weights_used"].notna()]  # PCA baselines have no network
    not_imagenet = with_network[with_network["weights_used"] != "imagenet"]
    if len(not_imagenet):
        used = _values(not_imagenet["weights_used"])
        lines.append(f"- weights: {len(not_imagenet)} of the {len(with_network)} runs with a network did not "
                     f"start from ImageNet-pretrained weights (used: {used}); "
                     "the paper's deep models and CNN features all do")
    for dataset, group in done.groupby("dataset"):
        paper_size = PAPER_IMAGE_SIZE.get(dataset)
        if paper_size and (group["image_size"] != paper_size).any():
            lines.append(f"- {dataset}: images at {_values(group['image_size'])} px "
                         f"(paper: {paper_size} px); strokes keep their thickness in pixels, so they are "
                         "relatively thicker")
        styles = group["styles_used"].dropna()
        if dataset == "wikiart" and len(styles) and styles.str.count(r"\+").max() + 1 < PAPER_WIKIART_STYLES:
            lines.append(f"- wikiart: styles {_values(styles)} of the paper's {PAPER_WIKIART_STYLES}")
    unpooled = done[(done["pooling"] == "none") & (done["image_size"] < 64)]
    if len(unpooled):  # ResNet-18 downsamples by 32: below 64 px its last feature map is one pixel
        lines.append(f"- pooling: at {_values(unpooled['image_size'])} px ResNet-18's last feature map is "
                     "1x1, so model.pooling=none gives the same features as the pooling layer and Figure 2's "
                     "bars coincide")
    if done["profile"].ne("paper").any():
        lines.append(f"- splits: subsampled by profile {_values(done['profile'])} "
                     f"(train {_values(done['n_train'])}, val {_values(done['n_val'])}, "
                     f"test {_values(done['n_test'])} images)")
    deep = done[done["objective"] != ""]
    if len(deep) and (deep["epochs"] != PAPER_EPOCHS).any():
        lines.append(f"- deep SVDD: {_values(deep['epochs'])} epochs (paper: {PAPER_EPOCHS})")
    if len(done) and done["seed"].nunique() < PAPER_SEEDS:
        lines.append(f"- seeds: {done['seed'].nunique()} per cell (seed {_values(done['seed'])}; paper: "
                     f"{PAPER_SEEDS}); a cell's ± is then over normal classes (one-vs-all) or absent")
    return lines or ["- none found in the recorded settings"]


def _missing_lines(tables: dict[str, pd.DataFrame], unstarted: pd.DataFrame) -> list[str]:
    """Per table, the missing or failed cells by dataset, with the reason jobs gave for not running."""
    lines = []
    for table, cells in tables.items():
        gaps = cells[cells["status"] != "ok"]
        for dataset, group in gaps.groupby("dataset"):
            mine = (unstarted["dataset"] == dataset) & unstarted["variant"].isin(group["variant"])
            reasons = unstarted.loc[mine, "reason"].value_counts()
            if len(reasons):
                why = "; ".join(f"{count} runs: {reason}" for reason, count in reasons.head(3).items())
                why = f"their runs stopped before training ({why})"
            elif (group["status"] == "failed").all():
                why = "its runs failed (see Failed runs)"
            else:
                why = "no run of these cells in this profile's grid"
            total = len(cells[cells["dataset"] == dataset])
            lines.append(f"- Table {table}, {dataset}: {len(group)} of {total} cells not reproduced: {why}")
    return lines or ["- none: every cell has at least one finished run"]


def _write_table(cells: pd.DataFrame, table: str, out: Path) -> None:
    """One table as CSV (rounded as printed), Markdown and LaTeX."""
    rounded(cells).to_csv(out / f"table{table}.csv", index=False)
    wide = pivot(cells)
    title = f"# Table {table}: ours (mean ± std, n runs) / paper\n\n"
    (out / f"table{table}.md").write_text(title + to_markdown(wide))
    (out / f"table{table}.tex").write_text(to_latex(wide))


def _summary_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """REPORT.md's per-table counts of reproduced, missing, failed and beyond-spread cells."""
    lines = ["| table | cells | reproduced | missing | failed | beyond the paper's spread |",
             "|---|---|---|---|---|---|"]
    for table, cells in tables.items():
        counts = cells["status"].value_counts()
        lines.append(
            f"| {table} | {len(cells)} | {counts.get('ok', 0)} | {counts.get('missing', 0)} | "
            f"{counts.get('failed', 0)} | {int(cells['beyond_spread'].sum())} |"
        )
    return lines


def _report_lines(runs_root: Path, runs: pd.DataFrame, tables: dict[str, pd.DataFrame],
                  unstarted: pd.DataFrame, produced_by: str | None) -> list[str]:
    """REPORT.md, line by line."""
    failed = runs[runs["status"] == "failed"]
    report = [
        f"# Reproduction report: {runs_root}",
        "",
        *([f"Produced by: {produced_by}", ""] if produced_by else []),
        f"{len(runs)} runs collected ({(runs['status'] == 'done').sum()} done, {len(failed)} failed).",
        "Cells: ours = mean ± std over seeds (one-vs-all: over normal classes) with the number of runs; "
        "paper = the published value ± spread; † = ours differs by more than the paper's spread.",
        "",
        "## Per table",
        "",
        *_summary_lines(tables),
        "",
        "## Data and weights actually used",
        "",
        *_data_lines(runs),
        "",
        "## Where these runs depart from the paper's protocol",
        "",
        *_difference_lines(runs),
        "",
        "## Missing cells and why",
        "",
        "A cell is `missing` when no run of it finished: its data was not available (e.g. no VOC2012 here), "
        "it was not part of this profile's grid, or its runs failed (counted as `failed`).",
        "",
        *_missing_lines(tables, unstarted),
    ]
    if len(failed):
        report += ["", "## Failed runs", ""]
        report += [f"- {row.run_dir}: {row.error}" for row in failed.itertuples()]
    return report


def write_report(runs_root: Path, out: Path, produced_by: str | None = None) -> dict[str, pd.DataFrame]:
    """Every output of the report (module docstring) into `out`; returns the tables' cells."""
    out.mkdir(parents=True, exist_ok=True)
    published = load_published()
    runs = collect_runs(runs_root, published)
    runs.to_csv(out / "runs.csv", index=False)
    tables = {table: table_cells(runs, published, table) for table in TABLES}
    for table, cells in tables.items():
        _write_table(cells, table, out)
    original = ruff2018_cells(runs)
    if len(original):  # the original deep SVDD protocol (experiment ruff2018), when it ran
        original.to_csv(out / "ruff2018.csv", index=False)
        (out / "ruff2018.md").write_text(ruff2018_markdown(original))
    extra = []
    if len(original):
        extra.append("- ruff2018.md: the original deep SVDD protocol (Ruff et al. 2018) beside its published "
                     "per-class AUCs")
    study = collapse.study_runs(collect_metrics(runs_root))
    if len(study):  # the collapse study (experiment `collapse`), when it ran
        study.to_csv(out / "collapse.csv", index=False)
        (out / "collapse.md").write_text(collapse.to_markdown(study))
        figure = collapse.draw(collapse.study_histories(collect_metrics(runs_root)))
        figure.savefig(out / "fig_collapse.png", dpi=110)
        n_collapsed = int(study["collapse_epoch"].notna().sum())
        extra.append(f"- collapse.md, fig_collapse.png: the collapse study, {len(study)} runs, "
                     f"{n_collapsed} collapsed")
    caveats = figure_caveats(runs)
    draw_figure1(figure1_data(runs, published), caveats["fig1"]).savefig(out / "fig1.png", dpi=120)
    draw_figure2(figure2_data(runs, published), caveats["fig2"]).savefig(out / "fig2.png", dpi=120)
    lines = _report_lines(runs_root, runs, tables, collect_unstarted(runs_root), produced_by)
    if extra:
        lines += ["", "## Beyond the paper's tables", "", *extra]
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tables I-VI and Figures 1-2 from run folders.")
    parser.add_argument("runs", type=Path, help="folder holding the run folders, e.g. runs/quick")
    parser.add_argument("--out", type=Path, required=True, help="where to write, e.g. results/quick")
    parser.add_argument("--produced-by",
                        help="how the runs were made (command, wall time, machine), for REPORT.md")
    args = parser.parse_args(argv)
    tables = write_report(args.runs, args.out, args.produced_by)
    reproduced = sum(int((cells["status"] == "ok").sum()) for cells in tables.values())
    total = sum(len(cells) for cells in tables.values())
    print(f"wrote {args.out}: {reproduced} of {total} published cells reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
