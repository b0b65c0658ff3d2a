"""Write the report of one profile: `python -m dsvdd_repro.report runs/<profile> --out results/<profile>`.

Outputs: runs.csv (every run, finished or failed), table{I..VI}.{md,csv,tex} (ours mean +- std (n)
beside the paper's value, difference, cells beyond the paper's spread marked), fig1.png, fig2.png,
and REPORT.md (what was reproduced per table, with which data and weights, what is missing and why).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .collect import collect_runs
from .figures import draw_figure1, draw_figure2
from .published import TABLES, load_published
from .tables import pivot, table_cells, to_latex, to_markdown


def _data_lines(runs: pd.DataFrame) -> list[str]:
    done = runs[runs["status"] == "done"]
    lines = []
    for dataset, group in done.groupby("dataset"):
        weights = ", ".join(sorted(str(w) for w in group["weights_used"].dropna().unique())) or "n/a"
        sizes = ", ".join(str(s) for s in sorted(group["image_size"].dropna().unique()))
        lines.append(f"- {dataset}: {len(group)} finished runs, image size {sizes} px, weights used: {weights}")
    return lines or ["- no finished runs"]


def write_report(runs_root: Path, out: Path) -> dict[str, pd.DataFrame]:
    out.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(runs_root)
    runs.to_csv(out / "runs.csv", index=False)
    published = load_published()
    tables = {}
    summary = ["| table | cells | reproduced | missing | failed | beyond the paper's spread |", "|---|---|---|---|---|---|"]
    for table in TABLES:
        cells = table_cells(runs, published, table)
        tables[table] = cells
        cells.to_csv(out / f"table{table}.csv", index=False)
        wide = pivot(cells)
        (out / f"table{table}.md").write_text(f"# Table {table}: ours (mean ± std, n runs) / paper\n\n" + to_markdown(wide))
        (out / f"table{table}.tex").write_text(to_latex(wide))
        counts = cells["status"].value_counts()
        summary.append(
            f"| {table} | {len(cells)} | {counts.get('ok', 0)} | {counts.get('missing', 0)} | "
            f"{counts.get('failed', 0)} | {int(cells['beyond_spread'].sum())} |"
        )
    draw_figure1(runs).savefig(out / "fig1.png", dpi=120)
    draw_figure2(runs).savefig(out / "fig2.png", dpi=120)
    failed = runs[runs["status"] == "failed"]
    report = [
        f"# Reproduction report: {runs_root}",
        "",
        f"{len(runs)} runs collected ({(runs['status'] == 'done').sum()} done, {len(failed)} failed).",
        "Cells: ours = mean ± std over seeds (one-vs-all: over normal classes) with the number of runs; "
        "paper = the published value ± spread; † = ours differs by more than the paper's spread.",
        "",
        "## Per table",
        "",
        *summary,
        "",
        "## Data and weights actually used",
        "",
        *_data_lines(runs),
        "",
        "A cell is `missing` when no run of it finished: its data was not available (e.g. no VOC2012 here), "
        "it was not part of this profile's grid, or its runs failed (counted as `failed`).",
    ]
    if len(failed):
        report += ["", "## Failed runs", ""]
        report += [f"- {row.run_dir}: {row.error}" for row in failed.itertuples()]
    (out / "REPORT.md").write_text("\n".join(report) + "\n")
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tables I-VI and Figures 1-2 from run folders.")
    parser.add_argument("runs", type=Path, help="folder holding the run folders, e.g. runs/quick")
    parser.add_argument("--out", type=Path, required=True, help="where to write, e.g. results/quick")
    args = parser.parse_args(argv)
    tables = write_report(args.runs, args.out)
    reproduced = sum(int((cells["status"] == "ok").sum()) for cells in tables.values())
    print(f"wrote {args.out}: {reproduced} of {sum(len(c) for c in tables.values())} published cells reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
