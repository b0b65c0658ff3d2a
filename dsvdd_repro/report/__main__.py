"""Write the report of one profile: `python -m dsvdd_repro.report runs/<profile> --out results/<profile>`.

Outputs: runs.csv (every run, finished, failed or diverged, full precision), table{I..VI}.{md,csv,tex}
(ours mean +- std (n; failed and diverged runs) beside the paper's value, difference, each cell's
verdict against the paper under a significance test (`report.significance`); the CSV's AUCs rounded
as the Markdown prints them), fig1.png and fig2.png (ours beside the paper's bars where its tables give
them), claims.md (the paper's conclusions checked on its numbers and on ours, rank agreement per table:
`report.claims`), and REPORT.md (what was reproduced per table, with which data and weights, what is
missing and why, each missing cell with the reasons its own jobs gave, the claims' verdicts, and the
caveats that change how a cell reads, counted from the runs: `report.caveats`); when their runs exist, ruff2018.{md,csv}
(the original deep SVDD protocol) and collapse.{md,csv} with fig_collapse.png (the collapse study). Reads only the run folders and the
package's published tables, so it runs from any folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from dsvdd_repro.report import collapse
from dsvdd_repro.report.caveats import reading_caveats
from dsvdd_repro.report.claims import write_claims
from dsvdd_repro.report.collect import collect_runs, collect_unstarted
from dsvdd_repro.report.figures import draw_figure1, draw_figure2, figure1_data, figure2_data, figure_caveats
from dsvdd_repro.report.protocol import paper_epochs, paper_image_size, paper_seeds, paper_styles
from dsvdd_repro.report.published import load_published, table_names
from dsvdd_repro.report.ruff2018 import ruff2018_cells
from dsvdd_repro.report.ruff2018 import to_markdown as ruff2018_markdown
from dsvdd_repro.report.significance import ALPHA, CONSISTENT, DIFFERS, TOO_FEW_RUNS, power, runs_needed
from dsvdd_repro.report.tables import (
    cell_mask,
    finished,
    pivot,
    rounded,
    row_name,
    table_cells,
    to_latex,
    to_markdown,
)
from dsvdd_repro.runs.folders import collect_metrics


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
    done = runs[finished(runs)]
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


def _difference_lines(runs: pd.DataFrame, paper_datasets: set[str]) -> list[str]:
    """Where the finished runs depart from the paper's protocol (Section V, as the paper profile and
    the nodes state it: `report.protocol`), one line per kind of departure; `paper_datasets`: the
    datasets of the paper's tables."""
    done = runs[finished(runs)]
    lines = []
    with_network = done[done["weights_used"].notna()]  # PCA baselines have no network
    not_imagenet = with_network[with_network["weights_used"] != "imagenet"]
    if len(not_imagenet):
        used = _values(not_imagenet["weights_used"])
        lines.append(f"- weights: {len(not_imagenet)} of the {len(with_network)} runs with a network did not "
                     f"start from ImageNet-pretrained weights (used: {used}); "
                     "the paper's deep models and CNN features all do")
    for dataset, group in done.groupby("dataset"):
        if dataset not in paper_datasets:
            continue
        paper_size = paper_image_size(dataset)
        if (group["image_size"] != paper_size).any():
            lines.append(f"- {dataset}: images at {_values(group['image_size'])} px "
                         f"(paper: {paper_size} px); strokes keep their thickness in pixels, so they are "
                         "relatively thicker")
        styles = group["styles_used"].dropna()
        paper_styles_n = paper_styles(dataset) if len(styles) else None
        if paper_styles_n and styles.str.count(r"\+").max() + 1 < paper_styles_n:
            lines.append(f"- {dataset}: styles {_values(styles)} of the paper's {paper_styles_n}")
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
    if len(deep) and (deep["epochs"] != paper_epochs()).any():
        lines.append(f"- deep SVDD: {_values(deep['epochs'])} epochs (paper: {paper_epochs()})")
    if len(done) and done["seed"].nunique() < paper_seeds():
        lines.append(f"- seeds: {done['seed'].nunique()} per cell (seed {_values(done['seed'])}; paper: "
                     f"{paper_seeds()}); a cell's ± is then over normal classes (one-vs-all) or absent")
    return lines or ["- none found in the recorded settings"]


# A line names its cells when there are at most this many (else it counts them).
MAX_NAMED_CELLS = 6


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def unstarted_of(cell: pd.Series, unstarted: pd.DataFrame) -> pd.Series:
    """Which unstarted jobs (`collect_unstarted`) are runs of `cell`: on the key columns the cell's
    runs are matched on (`tables.cell_mask`, the paper's pooling and learning-rate scheme); a job
    without a saved configuration on what its folders name (variant, dataset, setup, semi-supervised)."""
    if unstarted.empty:
        return pd.Series(False, index=unstarted.index)
    configured = unstarted["configured"]
    by_folder = ~configured
    for key in ("variant", "dataset", "setup", "semi_supervised"):
        by_folder &= unstarted[key] == cell[key]
    return (configured & cell_mask(unstarted, cell)) | by_folder


NOT_LAUNCHED = "no run of these cells in this profile's grid"
MAX_REASONS = 3


def _describe(stopped: pd.Series, n_failed: int, n_diverged: int) -> str:
    """Why cells have no finished run, in words: the reasons of their jobs that stopped before
    training (`stopped`: reason -> number of jobs), their failed and diverged runs."""
    why = []
    if len(stopped):
        reasons = "; ".join(f"{_runs(count)}: {reason}" for reason, count in stopped.head(MAX_REASONS).items())
        rest = int(stopped.iloc[MAX_REASONS:].sum())
        why.append(f"runs stopped before training ({reasons}{f'; {_runs(rest)}: other reasons' if rest else ''})")
    for count, status, section in ((n_failed, "failed", "Failed runs"), (n_diverged, "diverged", "Diverged runs")):
        if count:
            why.append(f"{_runs(count)} {status} (see {section})")
    return "; ".join(why) or NOT_LAUNCHED


def _missing_lines(tables: dict[str, pd.DataFrame], unstarted: pd.DataFrame) -> list[str]:
    """Per table and dataset, the cells without a finished run, one line per group of cells with
    the same causes (the cells named when they are few, the runs counted over the group, each job
    once): the reasons their own jobs gave for not running (`unstarted_of`), their failed and
    diverged runs, or that no run of them was launched."""
    lines = []
    for table, cells in tables.items():
        gaps = cells[cells["status"] != "ok"]
        for dataset, group in gaps.groupby("dataset", sort=True):
            total = int((cells["dataset"] == dataset).sum())
            jobs = {index: unstarted.index[unstarted_of(cell, unstarted)] for index, cell in group.iterrows()}
            kinds = {index: (tuple(sorted(set(unstarted.loc[jobs[index], "reason"]))), bool(cell["n_failed"]),
                             bool(cell["n_diverged"])) for index, cell in group.iterrows()}
            # the cells with causes first, in table order; those never launched last
            for kind in sorted(dict.fromkeys(kinds.values()), key=lambda kind: kind == ((), False, False)):
                same = group.loc[[index for index in group.index if kinds[index] == kind]]
                mine = unstarted.index.intersection(sorted({job for index in same.index for job in jobs[index]}))
                why = _describe(unstarted.loc[mine, "reason"].value_counts(), int(same["n_failed"].sum()),
                                int(same["n_diverged"].sum()))
                names = ""
                if len(same) <= MAX_NAMED_CELLS:
                    names = " (" + ", ".join(f"{row_name(c)}: {c['column_label']}" for _, c in same.iterrows()) + ")"
                lines.append(f"- Table {table}, {dataset}: {len(same)} of {total} cells not reproduced{names}: {why}")
    return lines or ["- none: every cell has at least one finished run"]


def _write_table(cells: pd.DataFrame, table: str, out: Path) -> None:
    """One table as CSV (rounded as printed), Markdown and LaTeX."""
    rounded(cells).to_csv(out / f"table{table}.csv", index=False)
    wide = pivot(cells)
    title = (f"# Table {table}: ours (mean ± std, n finished runs; failed and diverged runs) verdict "
             f"/ paper\n\nVerdict: `{DIFFERS} (p=...) †` where ours differs from the paper's mean ± std over "
             f"its seeds (one-vs-all: its classes) at Holm-adjusted p < {ALPHA:g} over this table's cells "
             f"(Welch's t; one run of ours: the paper's prediction interval), `{CONSISTENT}` where not, "
             f"`{TOO_FEW_RUNS}` where nothing could be tested; see dsvdd_repro/report/significance.py.\n\n")
    (out / f"table{table}.md").write_text(title + to_markdown(wide))
    (out / f"table{table}.tex").write_text(to_latex(wide))


def _summary_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """REPORT.md's per-table counts of reproduced, missing, failed and diverged cells, and of each
    verdict (every cell has one: the cells without a finished run are `too few runs`)."""
    lines = [f"| table | cells | reproduced | missing | failed | diverged | {CONSISTENT} | {DIFFERS} | "
             f"{TOO_FEW_RUNS} |", "|---|---|---|---|---|---|---|---|---|"]
    for table, cells in tables.items():
        counts, verdicts = cells["status"].value_counts(), cells["verdict"].value_counts()
        lines.append(
            f"| {table} | {len(cells)} | {counts.get('ok', 0)} | {counts.get('missing', 0)} | "
            f"{counts.get('failed', 0)} | {counts.get('diverged', 0)} | {verdicts.get(CONSISTENT, 0)} | "
            f"{verdicts.get(DIFFERS, 0)} | {verdicts.get(TOO_FEW_RUNS, 0)} |"
        )
    return lines


def _power_line(tables: dict[str, pd.DataFrame], difference: float = 2.0, target: float = 0.8) -> str:
    """How many runs of ours a cell needs to detect `difference` points at the median paper spread of
    the tables' cells over seeds (one-vs-all spreads are over classes, a different scale)."""
    cells = pd.concat(tables.values())
    seeds = cells[cells["setup"] != "one_vs_all"]
    if seeds.empty:
        return "Power: no cell with a spread over seeds."
    spread, paper_n = float(seeds["paper_spread"].median()), int(seeds["paper_n"].median())
    needed = runs_needed(spread, difference, paper_n, target)
    limit = power(math.inf, spread, difference, paper_n)  # the paper's own mean is uncertain too
    what = (f"takes {needed} runs of ours per cell" if needed else
            f"is out of reach for any number of runs of ours (power at most {limit:.0%})")
    return (f"Power: at the median paper spread over seeds ({spread:g} points, {paper_n} seeds), detecting a "
            f"{difference:g}-point difference with {target:.0%} power (alpha {ALPHA:g} per cell, before the "
            f"correction) {what}.")


def _diverged_line(run) -> str:
    """`- <run dir>: epoch 4, step 120 (not scored): <error>`, or with "(scored on the model from before
    the divergence: test AUC 61.2%)"."""
    where = ", ".join(f"{what} {int(value)}" for what, value in (("epoch", run.diverged_epoch),
                                                                   ("step", run.diverged_step)) if pd.notna(value))
    scored = pd.to_numeric(pd.Series([run.test_auc]), errors="coerce").iloc[0]
    note = (f" (scored on the model from before the divergence: test AUC {100 * scored:.1f}%)"
            if pd.notna(scored) else " (not scored)")
    error = f": {run.error}" if isinstance(run.error, str) and run.error else ""
    return f"- {run.run_dir}: {where or 'diverged'}{note}{error}"


def _report_lines(runs_root: Path, runs: pd.DataFrame, tables: dict[str, pd.DataFrame],
                  unstarted: pd.DataFrame, produced_by: str | None) -> list[str]:
    """REPORT.md, line by line."""
    failed = runs[runs["status"] == "failed"]
    diverged = runs[runs["status"] == "diverged"]
    scored = int(finished(diverged).sum())
    report = [
        f"# Reproduction report: {runs_root}",
        "",
        *([f"Produced by: {produced_by}", ""] if produced_by else []),
        f"{len(runs)} runs collected ({(runs['status'] == 'done').sum()} done, {len(failed)} failed, "
        f"{len(diverged)} diverged, {scored} of them scored on the model from before the divergence).",
        "Cells: ours = mean ± std over seeds (one-vs-all: over normal classes) with the number n of finished "
        "runs (done, and diverged runs scored on the model from before the divergence: \"n=3, 1 pre-divergence\") "
        "and the cell's runs that did not finish (\"n=3; 1 failed, 2 diverged\"); "
        "paper = the published value ± spread over its seeds (one-vs-all: over its classes); "
        f"verdict = `{DIFFERS} (p=...) †` where a test (Welch's t; one run of ours: where it falls in "
        f"the paper's seed distribution) rejects equal means at Holm-adjusted p < {ALPHA:g} over the "
        f"table's cells, `{CONSISTENT}` where not, `{TOO_FEW_RUNS}` where nothing could be tested "
        "(no finished run); "
        "dsvdd_repro/report/significance.py states the test and its assumptions.",
        _power_line(tables),
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
        *_difference_lines(runs, {dataset for cells in tables.values() for dataset in cells["dataset"]}),
        "",
        "## Missing cells and why",
        "",
        "A cell is `missing` when it has no run that wrote a result: its data was not available (e.g. no "
        "VOC2012 here), its jobs stopped before training, or it was not part of this profile's grid; `failed` "
        "when it has runs, none finished and at least one failed; "
        "`diverged` when every run of it diverged (a non-finite loss) before a model could be scored.",
        "",
        *_missing_lines(tables, unstarted),
    ]
    if len(failed):
        report += ["", "## Failed runs", ""]
        report += [f"- {row.run_dir}: {row.error}" for row in failed.itertuples()]
    if len(diverged):
        report += ["", "## Diverged runs", ""]
        report += [_diverged_line(row) for row in diverged.itertuples()]
    return report


def write_report(runs_root: Path, out: Path, produced_by: str | None = None) -> dict[str, pd.DataFrame]:
    """Every output of the report (module docstring) into `out`; returns the tables' cells."""
    out.mkdir(parents=True, exist_ok=True)
    published = load_published()
    runs = collect_runs(runs_root, published)
    runs.to_csv(out / "runs.csv", index=False)
    tables = {table: table_cells(runs, published, table) for table in table_names(published)}
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
    every_run = collect_metrics(runs_root)  # read once: the study's table and its figure both need it
    study = collapse.study_runs(every_run)
    if len(study):  # the collapse study (experiment `collapse`), when it ran
        study.to_csv(out / "collapse.csv", index=False)
        (out / "collapse.md").write_text(collapse.to_markdown(study))
        figure = collapse.draw(collapse.study_histories(every_run))
        figure.savefig(out / "fig_collapse.png", dpi=110)
        n_collapsed = int(study["collapse_epoch"].notna().sum())
        extra.append(f"- collapse.md, fig_collapse.png: the collapse study, {len(study)} runs, "
                     f"{n_collapsed} collapsed")
    caveats = figure_caveats(runs)
    draw_figure1(figure1_data(runs, published), caveats["fig1"]).savefig(out / "fig1.png", dpi=120)
    draw_figure2(figure2_data(runs, published), caveats["fig2"]).savefig(out / "fig2.png", dpi=120)
    lines = _report_lines(runs_root, runs, tables, collect_unstarted(runs_root, published), produced_by)
    lines += ["", "## The paper's conclusions checked (claims.md)", "", *write_claims(tables, out)]
    lines += ["", "## Read the cells with these caveats", "", *reading_caveats(runs, tables, every_run)]
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
