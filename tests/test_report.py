"""The report on synthetic run folders: cells are joined on the published keys, aggregated the
paper's way, k chosen on validation through the one selection layer (tables and figures alike), and
missing or failed cells are marked, never dropped."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsvdd_repro.report.collect import anomaly_key, collect_runs
from dsvdd_repro.report.figures import draw_figure1, draw_figure2, figure1_data, figure2_data
from dsvdd_repro.report.published import load_published
from dsvdd_repro.report.tables import pivot, table_cells, to_latex, to_markdown

PACKAGE = Path(__file__).resolve().parents[1] / "dsvdd_repro"


def metrics(variant, test_auc, seed=0, status="done", **axes):
    regularizer = {"dsvdd_bias_noise": "noise", "dsvdd_bias_var": "variance"}.get(variant, "none")
    base = {
        "status": status, "variant": variant, "method": "dsvdd" if variant.startswith("dsvdd") else variant,
        "dataset": "cifar10", "setup": "one_vs_all", "semi_supervised": False, "normal_class": 0,
        "labeled_anomaly_class": None, "anomaly": None, "objective": "one_class", "lr": 0.001,
        "backbone_lr_factor": 0.1, "regularizer": regularizer,
        "weighting": None if regularizer == "none" else "adaptive",
        "k": 5 if regularizer == "noise" else None, "bias": variant != "dsvdd", "pooling": "max",
        "weights": "none", "seed": seed, "profile": "smoke", "test_auc": test_auc, "val_auc": 0.5,
        "best_epoch": 1, "collapsed": False, "history": [], "seconds": 1.0,
    }
    base.update(axes)
    return base


def write_runs(root, runs):
    for i, run in enumerate(runs):
        folder = root / f"run{i}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(run))


def test_anomaly_keys_follow_the_published_notation():
    assert anomaly_key({"name": "strokes", "n": 2, "thickness": 9}) == "strokes:9"
    assert anomaly_key({"name": "block_perm", "n": 8, "thickness": 5}) == "block_perm:8"
    assert anomaly_key(None) == ""


def test_one_vs_all_cell_averages_classes_and_marks_missing_and_failed(tmp_path):
    runs = []
    for normal_class, aucs in {0: (0.60, 0.70), 1: (0.80, 0.80)}.items():
        runs += [metrics("dsvdd", auc, seed=s, normal_class=normal_class) for s, auc in enumerate(aucs)]
    runs.append(metrics("dsvdd_bias", 0.9, status="failed"))
    write_runs(tmp_path, runs)
    frame = collect_runs(tmp_path)
    assert len(frame) == 5 and (frame["status"] == "failed").sum() == 1
    cells = table_cells(frame, load_published(), "III").set_index(["variant", "column_label"])
    ours = cells.loc[("dsvdd", "One-vs-all")]
    assert ours["ours_mean"] == pytest.approx(72.5)  # classes 65 and 80
    assert ours["ours_std"] == pytest.approx(np.std([65.0, 80.0], ddof=1))
    assert ours["n_runs"] == 4 and ours["n_classes"] == 2 and ours["paper_mean"] == 67.9
    assert ours["diff"] == pytest.approx(72.5 - 67.9) and ours["verdict"] == "consistent"
    assert (ours["ours_n"], ours["paper_n"]) == (2, 10)  # one-vs-all: tested over normal classes
    assert cells.loc[("dsvdd_bias", "One-vs-all"), "status"] == "failed"
    assert cells.loc[("geo", "Strokes 1"), "status"] == "missing"
    assert len(cells) == 18  # every published cell is there


def test_alteration_cells_join_on_anomaly_objective_lr_and_select_k_on_validation(tmp_path):
    strokes5 = {s: {"name": "strokes", "n": 2, "thickness": 5} for s in ("train", "val", "test")}
    common = {"dataset": "wikiart", "setup": "alteration", "anomaly": strokes5, "normal_class": None}
    runs = [
        metrics("dsvdd_bias_noise", 0.70, k=5, val_auc=0.60, **common),
        metrics("dsvdd_bias_noise", 0.99, k=30, val_auc=0.55, **common),  # better test, worse validation
        metrics("dsvdd_bias_noise", 0.10, k=5, val_auc=0.60, objective="soft_boundary", **common),
        metrics("dsvdd_bias_noise", 0.10, k=5, val_auc=0.60, lr=0.1, **common),
        metrics("dsvdd_bias_noise", 0.10, k=5, val_auc=0.60, pooling="none", **common),
    ]
    write_runs(tmp_path, runs)
    cells = table_cells(collect_runs(tmp_path), load_published(), "IV")
    one_class = cells[(cells.variant == "dsvdd_bias_noise") & (cells.objective == "one_class")
                      & (cells.dataset == "wikiart") & (cells.column_label == "Strokes 5")].iloc[0]
    assert one_class["ours_mean"] == pytest.approx(70.0) and one_class["k"] == "5"
    assert one_class["n_runs"] == 1
    soft = cells[(cells.variant == "dsvdd_bias_noise") & (cells.objective == "soft_boundary")
                 & (cells.dataset == "wikiart") & (cells.column_label == "Strokes 5")].iloc[0]
    assert soft["ours_mean"] == pytest.approx(10.0) and soft["verdict"] == "differs"
    assert (soft["ours_n"], soft["paper_n"]) == (1, 5)  # one run: the paper's prediction interval


def test_rendered_tables_keep_every_cell(tmp_path):
    write_runs(tmp_path, [metrics("dsvdd", 0.7)])
    cells = table_cells(collect_runs(tmp_path), load_published(), "II")
    table = pivot(cells)
    assert table.shape == (9, 4)
    markdown = to_markdown(table)
    assert markdown.count("missing") == 36 and "OC-SVM w/ PCA" in markdown
    assert r"$\pm$" in to_latex(table)


def test_empty_root_gives_an_all_missing_table(tmp_path):
    frame = collect_runs(tmp_path)
    assert frame.empty and "test_auc" in frame.columns
    cells = table_cells(frame, load_published(), "VI")
    assert (cells["status"] == "missing").all() and len(cells) == 28
    assert isinstance(pivot(cells), pd.DataFrame)


@pytest.mark.slow
def test_figures_compute_differences_and_draw_the_papers_panels_even_with_gaps(tmp_path):
    bp8 = {s: {"name": "block_perm", "n": 8, "thickness": 5} for s in ("train", "val", "test")}
    common = {"dataset": "voc2012", "setup": "alteration", "anomaly": bp8, "normal_class": None,
              "objective": "soft_boundary"}
    runs = [metrics("dsvdd", 0.60, lr=0.01, **common), metrics("dsvdd_bias_noise", 0.65, lr=0.01, **common),
            metrics("dsvdd", 0.70, **{**common, "objective": "one_class"}),
            metrics("dsvdd", 0.74, pooling="none", **{**common, "objective": "one_class"})]
    write_runs(tmp_path, runs)
    frame, published = collect_runs(tmp_path), load_published()
    fig1 = figure1_data(frame, published)
    noise = fig1[(fig1.variant == "dsvdd_bias_noise") & np.isclose(fig1.lr, 0.01)
                 & fig1.scheme.str.startswith("backbone") & (fig1.dataset == "voc2012")
                 & (fig1.test_anomaly == "block_perm:8")]
    assert noise["difference"].iloc[0] == pytest.approx(5.0) and noise["k"].iloc[0] == "5"
    assert fig1[np.isclose(fig1.lr, 0.1)]["difference"].isna().all()
    fig2 = figure2_data(frame, published)
    fig2 = fig2[(fig2.dataset == "voc2012") & (fig2.test_anomaly == "block_perm:8")]
    fig2 = fig2.set_index(["model", "pooling"])["auc"]
    assert fig2[("C", "max")] == pytest.approx(70.0) and fig2[("C", "none")] == pytest.approx(74.0)
    drawn = {"fig1": draw_figure1(fig1), "fig2": draw_figure2(figure2_data(frame, published))}
    for name, figure in drawn.items():
        figure.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    draw_figure1(figure1_data(collect_runs(tmp_path / "nothing"), published)).savefig(tmp_path / "empty.png")
    # the paper's four panels, whatever else exists: a strokes run adds none
    panels = set(zip(fig1.dataset, fig1.test_anomaly, strict=True))
    assert panels == {("voc2012", "block_perm:2"), ("voc2012", "block_perm:8"),
                      ("wikiart", "block_perm:2"), ("wikiart", "block_perm:8")}
    strokes = {s: {"name": "strokes", "n": 2, "thickness": 5} for s in ("train", "val", "test")}
    write_runs(tmp_path / "more", [metrics("dsvdd", 0.5, **{**common, "anomaly": strokes})])
    assert figure1_data(collect_runs(tmp_path / "more"), published)["difference"].isna().all()


def test_figure1_shows_table_v_with_the_k_chosen_on_validation(tmp_path):
    """Figure 1's top row is Table V: the same validation-selected k and the same means, not an
    average over every k (test AUC would have picked k=30 here; validation picks 50, then 5 on a tie)."""
    bp2 = {s: {"name": "block_perm", "n": 2, "thickness": 5} for s in ("train", "val", "test")}
    common = {"dataset": "wikiart", "setup": "alteration", "anomaly": bp2, "normal_class": None,
              "objective": "soft_boundary", "lr": 0.1}
    runs = [metrics("dsvdd", auc, seed=seed, **common) for seed, auc in enumerate((0.50, 0.54))]
    for k, val, aucs in ((5, 0.6, (0.70, 0.72)), (30, 0.5, (0.95, 0.99)), (50, 0.7, (0.60, 0.64))):
        runs += [metrics("dsvdd_bias_noise", auc, seed=seed, k=k, val_auc=val, **common)
                 for seed, auc in enumerate(aucs)]
    # the bottom row (one lr for all layers): k=5 ties with k=50 on validation
    one_lr = {**common, "backbone_lr_factor": 1.0}
    runs += [metrics("dsvdd", 0.40, **one_lr), metrics("dsvdd_bias_noise", 0.90, k=50, val_auc=0.6, **one_lr),
             metrics("dsvdd_bias_noise", 0.45, k=5, val_auc=0.6, **one_lr)]
    write_runs(tmp_path, runs)
    frame, published = collect_runs(tmp_path), load_published()
    table5 = table_cells(frame, published, "V").set_index(["variant", "column_label", "dataset"])
    noise = table5.loc[("dsvdd_bias_noise", "1e-1 / Block perm. 2x2", "wikiart")]
    dsvdd = table5.loc[("dsvdd", "1e-1 / Block perm. 2x2", "wikiart")]
    assert noise["k"] == "50" and noise["ours_mean"] == pytest.approx(62.0) and noise["n_runs"] == 2
    fig1 = figure1_data(frame, published)
    at = ((fig1.variant == "dsvdd_bias_noise") & (fig1.dataset == "wikiart")
          & (fig1.test_anomaly == "block_perm:2") & np.isclose(fig1.lr, 0.1))
    top = fig1[at & fig1.scheme.str.startswith("backbone")].iloc[0]
    bottom = fig1[at & fig1.scheme.str.startswith("one")].iloc[0]
    assert top["k"] == noise["k"]
    assert top["difference"] == pytest.approx(noise["ours_mean"] - dsvdd["ours_mean"])
    assert bottom["k"] == "5" and bottom["difference"] == pytest.approx(5.0)


@pytest.mark.slow
def test_report_says_what_data_was_used_and_why_cells_are_missing(tmp_path):
    from dsvdd_repro.report.__main__ import write_report
    from dsvdd_repro.report.collect import collect_unstarted

    runs = tmp_path / "runs"
    data = {"source": {"layout": "style-folders", "styles_used": ["Symbolism", "Fauvism"]},
            "splits": {"train": {"n": 1000}, "val": {"n": 500}, "test": {"n": 1000}}}
    strokes5 = {"name": "strokes", "thickness": 5}
    finished = metrics("dsvdd_bias", 0.7, dataset="wikiart", setup="alteration", normal_class=None, epochs=3,
                       anomaly={"val": strokes5, "test": strokes5}, data=data,
                       model={"weights_used": {"weights": "none"}}, image_size=32)
    unpooled = {**finished, "variant": "ocsvm_cnn", "method": "ocsvm", "pooling": "none"}
    write_runs(runs, [finished, unpooled])
    # a VOC2012 job that stopped on its input, and one killed while training: logs, no metrics.json
    voc = runs / "dsvdd_bias" / "voc2012_alteration" / "0123456789ab_s0"
    voc.mkdir(parents=True)
    (voc / "train.log").write_text(
        "[2026-01-01 00:00:00,000][dsvdd_repro][ERROR] - dataset.root is not set: pass ...\n")
    killed = runs / "geo" / "cifar10_one_vs_all_c3" / "ba9876543210_s1"
    killed.mkdir(parents=True)
    (killed / "train.log").write_text("[2026-01-01 00:00:00,000][dsvdd_repro][INFO] - splits: ...\n")
    unstarted = collect_unstarted(runs).set_index("dataset")
    assert unstarted.loc["voc2012", "reason"] == "dataset.root is not set: pass ..."
    assert unstarted.loc["voc2012", "variant"] == "dsvdd_bias"
    assert unstarted.loc["cifar10", "setup"] == "one_vs_all"
    assert "interrupted" in unstarted.loc["cifar10", "reason"]

    write_report(runs, tmp_path / "out")
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert ("wikiart (style-folders, styles Symbolism+Fauvism): 2 finished runs; image size 32 px; "
            "splits train 1000 / val 500 / test 1000; deep SVDD epochs 3; seeds 0; weights used: none"
            in report)
    # jobs without a saved configuration are matched on what their folders name: variant, dataset, setup
    assert ("- Table IV, voc2012: 4 of 26 cells not reproduced (Soft-bound. D. SVDD w/ bias: Strokes 5, "
            "Soft-bound. D. SVDD w/ bias: Strokes 9, One-class D. SVDD w/ bias: Strokes 5, One-class D. SVDD w/ bias: "
            "Strokes 9): runs stopped before training (1 run: dataset.root is not set: pass ...)" in report)
    assert "- Table IV, voc2012: 22 of 26 cells not reproduced: no run of these cells in this profile's grid" in report
    assert ("- Table III, cifar10: 1 of 18 cells not reproduced (GEO w/ Dirichlet [22]: One-vs-all): runs stopped "
            "before training (1 run: (no error in the log: interrupted?))" in report)
    assert ("Table IV, wikiart: 25 of 26 cells not reproduced: no run of these cells in this profile's grid"
            in report)
    assert pd.read_csv(tmp_path / "out" / "runs.csv")["n_val"].tolist() == [500, 500]
    departures = report.split("## Where these runs depart from the paper's protocol")[1].split("##")[0]
    assert "- pooling: at 32 px ResNet-18's last feature map is 1x1" in departures
    assert ("- weights: 2 of the 2 runs with a network did not start from ImageNet-pretrained weights"
            in departures)
    assert "- wikiart: images at 32 px (paper: 224 px)" in departures
    assert "- wikiart: styles Symbolism+Fauvism of the paper's 6" in departures
    assert "- deep SVDD: 3 epochs (paper: 30)" in departures and "- seeds: 1 per cell" in departures


def test_a_single_run_cell_shows_no_spread():
    from dsvdd_repro.report.tables import format_cell

    cell = pd.Series({"status": "ok", "ours_mean": 61.54, "ours_std": 0.0, "n_runs": 1, "n_failed": 0,
                      "verdict": "differs", "p_adjusted": 0.0031, "paper_mean": 69.7, "paper_spread": 0.5})
    assert format_cell(cell) == "61.5 (n=1) differs (p=0.0031) † / 69.7±0.5"
    several = cell.copy()
    several["n_runs"], several["p_adjusted"] = 3, 0.0004
    assert format_cell(several) == "61.5±0.0 (n=3) differs (p<0.001) † / 69.7±0.5"


def test_variants_the_paper_does_not_print_are_collected_but_placed_in_no_table(tmp_path):
    runs = [metrics("dsvdd_nobias_noise", 0.8, k=5),  # a deep variant with no published row
            metrics("knn_pca", 0.6, method="knn", objective=None, lr=None, k=None),  # a new baseline
            metrics("ocsvm_pca", 0.7, method="ocsvm")]  # today's baselines record an objective: blanked
    write_runs(tmp_path / "runs", runs)
    from dsvdd_repro.report.__main__ import write_report

    tables = write_report(tmp_path / "runs", tmp_path / "out")
    collected = pd.read_csv(tmp_path / "out" / "runs.csv", keep_default_na=False).set_index("variant")
    assert collected.loc["dsvdd_nobias_noise", "objective"] == "one_class"
    assert collected.loc["knn_pca", "objective"] == "" and collected.loc["ocsvm_pca", "objective"] == ""
    assert collected.loc["ocsvm_pca", "lr"] == "" and collected.loc["dsvdd_nobias_noise", "lr"] == "0.001"
    placed = pd.concat(tables.values())
    assert set(placed.loc[placed["status"] == "ok", "variant"]) == {"ocsvm_pca"}


def test_table_csvs_carry_the_numbers_the_markdown_prints(tmp_path):
    from dsvdd_repro.report.__main__ import write_report

    aucs = (0.61234, 0.70001)
    write_runs(tmp_path / "runs", [metrics("dsvdd", auc, normal_class=c) for c, auc in enumerate(aucs)])
    write_report(tmp_path / "runs", tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "tableIII.csv").set_index(["variant", "column_label"])
    ours = cells.loc[("dsvdd", "One-vs-all")]
    full, spread = np.mean([61.234, 70.001]), np.std([61.234, 70.001], ddof=1)
    assert ours["ours_mean"] == float(f"{full:.1f}") and ours["ours_std"] == float(f"{spread:.1f}")
    assert ours["diff"] == float(f"{full - 67.9:.1f}")
    markdown = (tmp_path / "out" / "tableIII.md").read_text()
    assert f"{ours['ours_mean']:.1f}±{ours['ours_std']:.1f} (n=2)" in markdown
    numbers = cells[["paper_mean", "paper_spread", "ours_mean", "ours_std", "diff"]].stack().dropna()
    assert (numbers == numbers.round(1)).all()
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(runs["test_auc"]) == [0.61234, 0.70001]  # full precision stays in runs.csv


@pytest.mark.slow
def test_the_report_runs_from_any_folder_with_the_package_alone(tmp_path):
    """A copy of the package outside the repository (as `pip install .` leaves it) finds the published
    tables through the package and writes the report from another working directory."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "dsvdd_repro", ignore=shutil.ignore_patterns("__pycache__"))
    write_runs(tmp_path / "runs", [metrics("dsvdd", 0.7)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "dsvdd_repro.report", str(tmp_path / "runs"), "--out", "out",
                           "--produced-by", "a test"], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 of 198 published cells reproduced" in done.stdout
    assert "Produced by: a test" in (elsewhere / "out" / "REPORT.md").read_text()
    code = "import dsvdd_repro.report.published as p; print(p.PUBLISHED_CSV)"
    where = subprocess.run([sys.executable, "-c", code],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip() == str(site / "dsvdd_repro" / "published" / "tables.csv")


def test_baselines_without_a_network_or_an_objective_fill_their_cells(tmp_path):
    """A PCA baseline has no model (pooling None), no objective, no optimiser (lr None): its runs
    still fill its Table III cell, and CNN baselines theirs."""
    baseline = {"objective": None, "lr": None, "backbone_lr_factor": None, "regularizer": None, "weighting": None}
    write_runs(tmp_path, [
        metrics("ocsvm_pca", 0.61, pooling=None, bias=None, weights=None, method="ocsvm", features="pca", **baseline),
        metrics("ocsvm_cnn", 0.71, method="ocsvm", features="cnn", **baseline),
    ])
    cells = table_cells(collect_runs(tmp_path), load_published(), "III").set_index(["variant", "column_label"])
    assert cells.loc[("ocsvm_pca", "One-vs-all"), "ours_mean"] == pytest.approx(61.0)
    assert cells.loc[("ocsvm_cnn", "One-vs-all"), "ours_mean"] == pytest.approx(71.0)


def test_the_original_protocol_is_reported_per_class_beside_ruff_et_al(tmp_path):
    from dsvdd_repro.report.ruff2018 import ruff2018_cells, to_markdown

    def original(variant, normal_class, auc, seed=0):
        return metrics(variant, auc, seed=seed, normal_class=normal_class, method="dsvdd", epochs=30, regularizer="none")

    write_runs(tmp_path, [original("dsvdd_ruff2018", 1, 0.60), original("dsvdd_ruff2018", 1, 0.64, seed=1),
                          original("dsvdd_ruff2018_val", 3, 0.55), metrics("dsvdd", 0.7)])
    cells = ruff2018_cells(collect_runs(tmp_path)).set_index(["normal_class", "variant"])
    automobile = cells.loc[(1, "dsvdd_ruff2018")]
    assert automobile["paper_mean"] == 65.9 and automobile["ours_mean"] == 62.0 and automobile["n_runs"] == 2
    assert automobile["ours_std"] == pytest.approx(2.8) and automobile["diff"] == pytest.approx(-3.9)
    assert cells.loc[(3, "dsvdd_ruff2018_val"), "paper_mean"] == 59.1 and len(cells) == 2
    table = to_markdown(cells.reset_index())
    assert "| 1 automobile | 65.9 | 62.0 ± 2.8 (n=2, 30 epochs) | -3.9 * | missing |  |" in table
    assert "| 3 cat | 59.1 | missing |  | 55.0 (n=1, 30 epochs) | -4.1 * |" in table
    assert "mean over the ten classes" not in table  # only two classes ran
    assert "Seed spread (sample std over seeds, points of AUC): automobile 2.8 (n=2, last epoch" in table
    assert "automobile (-3.9, last epoch (published protocol)), cat (-4.1, best validation epoch)" in table


def test_the_mean_over_the_ten_classes_stands_beside_the_published_64_8(tmp_path):
    from dsvdd_repro.report.ruff2018 import ruff2018_cells, to_markdown

    # ours = the published mean + 1 point for every class: the mean over classes is 64.8 + 1.0
    published = [61.7, 65.9, 50.8, 59.1, 60.9, 65.7, 67.7, 67.3, 75.9, 73.1]
    write_runs(tmp_path, [metrics("dsvdd_ruff2018", (mean + 1) / 100, normal_class=c, method="dsvdd", epochs=30,
                                  regularizer="none") for c, mean in enumerate(published)])
    table = to_markdown(ruff2018_cells(collect_runs(tmp_path)))
    assert "| mean over the ten classes | 64.8 | 65.8 | +1.0 | not all ten classes |  |" in table
    assert "*" not in table.split("|---|")[-1]  # no class is flagged


def test_figures_say_when_a_panel_cannot_differ(tmp_path):
    from dsvdd_repro.report.figures import figure_caveats

    def altered(variant, **axes):
        return metrics(variant, 0.7, dataset="wikiart", setup="alteration", normal_class=None,
                       anomaly={"train": None, "val": {"name": "block_perm", "n": 2}, "test": {"name": "block_perm", "n": 2}},
                       image_size=32, **axes)

    never = [{"epoch": 1, "loss_reg": 0.0}, {"epoch": 2, "loss_reg": 0.0}]
    write_runs(tmp_path, [altered("dsvdd", pooling="none"),
                          altered("dsvdd_bias_var", objective="soft_boundary", history=never)])
    caveats = figure_caveats(collect_runs(tmp_path))
    assert "1x1" in caveats["fig2"][("wikiart", "block_perm:2")]
    assert ("wikiart", "block_perm:8") not in caveats["fig2"]
    # Figure 1's caveat is per bar (tests/test_figures.py), not per panel
    assert caveats["fig1"] == {}


@pytest.mark.slow
def test_the_collapse_study_reports_collapse_epochs_and_its_lowest_variances(tmp_path):
    from dsvdd_repro.report import collapse
    from dsvdd_repro.report.__main__ import write_report
    from dsvdd_repro.runs.folders import collect_metrics

    def study(variant, net, lr, relative_vars, collapse_epoch=None, **axes):
        history = [{"epoch": e + 1, "feature_var": 0.1, "mean_dist": 1.0, "val_auc": 0.6,
                    "val_relative_var": v} for e, v in enumerate(relative_vars)]
        config = {"model": {"name": net}, "trainer": {"collapse_ratio": 6.6e-11}}
        return metrics(variant, 0.6, **{"lr": lr, "backbone_lr_factor": 1.0, "history": history, "config": config,
                                        "collapse_epoch": collapse_epoch, **axes})

    write_runs(tmp_path / "runs", [
        study("dsvdd", "lenet_cifar10", 0.1, [1e-2, 1e-3, 1e-4]),
        study("dsvdd_bias", "lenet_cifar10", 0.1, [1e-2, 1e-12, 1e-13], collapse_epoch=2),
        study("dsvdd_bias", "resnet18", 0.001, [0.3, 0.2]),
        study("dsvdd_bias", "resnet18", 0.001, [0.3, 0.2], backbone_lr_factor=0.1),  # a table run: not the study's
        study("dsvdd_ruff2018", "lenet_cifar10", 0.1, [1e-2]),  # not one of the four variants
    ])
    runs = collapse.study_runs(collect_metrics(tmp_path / "runs"))
    assert len(runs) == 3
    bias = runs[(runs["variant"] == "dsvdd_bias") & (runs["net"] == "lenet_cifar10")].iloc[0]
    assert (bias["collapse_epoch"], bias["min_relative_var"], bias["min_relative_var_epoch"]) == (2, 1e-13, 3)
    table = collapse.to_markdown(runs)
    assert "| w/ bias | 2 (min 1.0e-13) |" in table and "| D. SVDD (no bias) | - (min 1.0e-04) |" in table
    assert "runs that collapsed: 1 of 3" in table and "never collapsed: 0.0001" in table
    write_report(tmp_path / "runs", tmp_path / "out")
    assert (tmp_path / "out" / "fig_collapse.png").stat().st_size > 0
    assert "collapse.md, fig_collapse.png: the collapse study, 3 runs, 1 collapsed" in (
        tmp_path / "out" / "REPORT.md").read_text()


@pytest.mark.slow
def test_a_cell_says_how_many_of_its_runs_failed_or_diverged(tmp_path):
    """n counts the finished runs; the cell says how many others failed or diverged. A diverged run
    scored on the model from before the divergence counts in the mean, flagged; one without a score
    counts as diverged, and a cell with nothing else is `diverged`, in the tables and the summary."""
    from dsvdd_repro.report.__main__ import write_report

    nan_at = {"diverged_at": {"epoch": 3, "step": 40}, "error": "FloatingPointError: non-finite loss"}
    runs = [metrics("dsvdd", 0.60, seed=0), metrics("dsvdd", 0.70, seed=1),
            metrics("dsvdd", None, seed=2, status="failed", error="RuntimeError: CUDA error"),
            # the only run of its cell: diverged before any model could be scored (no test_auc)
            {key: value for key, value in metrics("dsvdd_bias", None, status="diverged", **nan_at).items()
             if key != "test_auc"},
            metrics("dsvdd_bias_noise", 0.80, seed=0),
            metrics("dsvdd_bias_noise", 0.70, seed=1, status="diverged", **nan_at),  # scored before diverging
            metrics("dsvdd_bias_noise", None, seed=2, status="diverged", **nan_at)]
    write_runs(tmp_path / "runs", runs)
    write_report(tmp_path / "runs", tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "tableIII.csv").set_index(["variant", "column_label"])
    dsvdd, bias, noise = (cells.loc[(variant, "One-vs-all")] for variant in ("dsvdd", "dsvdd_bias", "dsvdd_bias_noise"))
    assert (dsvdd["status"], dsvdd["n_runs"], dsvdd["n_failed"], dsvdd["n_diverged"]) == ("ok", 2, 1, 0)
    assert (bias["status"], bias["n_runs"], bias["n_failed"], bias["n_diverged"]) == ("diverged", 0, 0, 1)
    assert (noise["status"], noise["n_runs"], noise["n_pre_divergence"], noise["n_diverged"]) == ("ok", 2, 1, 1)
    assert noise["ours_mean"] == 75.0  # the run scored before it diverged counts in the mean
    markdown = (tmp_path / "out" / "tableIII.md").read_text()
    # one class each: where the class falls among the paper's classes (t = -0.43 and 0.95, 9 df)
    assert "| 65.0±0.0 (n=2; 1 failed) consistent / 67.9±6.5 |" in markdown
    assert "| diverged (1 diverged) / 67.7±6.1 |" in markdown
    assert "| 75.0±0.0 (n=2, 1 pre-divergence; 1 diverged) consistent / 68.6±6.4 |" in markdown
    assert "diverged (1 diverged)" in (tmp_path / "out" / "tableIII.tex").read_text()
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "7 runs collected (3 done, 1 failed, 3 diverged, 1 of them scored" in report
    header = "| table | cells | reproduced | missing | failed | diverged | consistent | differs | too few runs |"
    assert header in report
    assert "| III | 18 | 2 | 15 | 0 | 1 | 2 | 0 | 16 |" in report
    assert "Power: at the median paper spread over seeds (2 points, 5 seeds)" in report
    diverged = report.split("## Diverged runs")[1]
    assert "- run3: epoch 3, step 40 (not scored): FloatingPointError: non-finite loss" in diverged
    assert "- run5: epoch 3, step 40 (scored on the model from before the divergence: test AUC 70.0%)" in diverged
    assert ("- Table III, cifar10: 1 of 18 cells not reproduced (One-class D. SVDD w/ bias: One-vs-all): "
            "1 run diverged (see Diverged runs)" in report)
    collected = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("run_dir")
    assert (collected.loc["run3", "diverged_epoch"], collected.loc["run3", "diverged_step"]) == (3, 40)


def test_cells_print_their_unfinished_runs():
    from dsvdd_repro.report.tables import format_cell

    cell = pd.Series({"status": "ok", "ours_mean": 61.24, "ours_std": 1.26, "n_runs": 4, "n_pre_divergence": 0,
                      "n_failed": 1, "n_diverged": 0, "verdict": "consistent", "p_adjusted": 0.2,
                      "paper_mean": 65.9, "paper_spread": 1.0})
    assert format_cell(cell) == "61.2±1.3 (n=4; 1 failed) consistent / 65.9±1"
    both = {**cell, "n_runs": 3, "n_pre_divergence": 1, "n_failed": 1, "n_diverged": 2}
    assert (format_cell(pd.Series(both))
            == "61.2±1.3 (n=3, 1 pre-divergence; 1 failed, 2 diverged) consistent / 65.9±1")
    failed = {**both, "status": "failed", "n_runs": 0, "n_pre_divergence": 0}
    assert format_cell(pd.Series(failed)) == "failed (1 failed, 2 diverged) / 65.9±1"
    assert format_cell(pd.Series({**failed, "status": "missing", "n_failed": 0, "n_diverged": 0})) == "missing / 65.9±1"


@pytest.mark.slow
def test_figures_label_diverged_cells_instead_of_drawing_them(tmp_path):
    bp8 = {s: {"name": "block_perm", "n": 8, "thickness": 5} for s in ("train", "val", "test")}
    bp2 = {s: {"name": "block_perm", "n": 2, "thickness": 5} for s in ("train", "val", "test")}
    voc = {"dataset": "voc2012", "setup": "alteration", "anomaly": bp8, "normal_class": None}
    wiki = {"dataset": "wikiart", "setup": "alteration", "anomaly": bp2, "normal_class": None,
            "objective": "soft_boundary", "lr": 0.1}
    write_runs(tmp_path, [
        metrics("dsvdd", 0.70, **voc), metrics("dsvdd_bias", None, status="diverged", **voc),
        # Figure 1: the reference diverged (no difference to draw), and a variant diverged
        metrics("dsvdd", None, status="diverged", **wiki), metrics("dsvdd_bias", 0.6, **wiki),
        metrics("dsvdd_bias_noise", None, status="diverged", **wiki),
    ])
    frame, published = collect_runs(tmp_path), load_published()
    fig2 = figure2_data(frame, published)
    panel = fig2[(fig2.dataset == "voc2012") & (fig2.test_anomaly == "block_perm:8") & (fig2.pooling == "max")]
    notes = panel.set_index("model")["note"]
    assert notes["D"] == "diverged" and notes["C"] == "" and panel.set_index("model")["status"]["D"] == "diverged"
    fig1 = figure1_data(frame, published)
    at = (fig1.dataset == "wikiart") & (fig1.test_anomaly == "block_perm:2") & np.isclose(fig1.lr, 0.1) \
        & fig1.scheme.str.startswith("backbone")
    fig1_notes = fig1[at].set_index("variant")["note"]
    assert fig1_notes["dsvdd_bias"] == "D. SVDD diverged" and fig1_notes["dsvdd_bias_noise"] == "diverged"
    assert fig1[at]["difference"].isna().all()
    figure = draw_figure2(fig2)
    texts = [text.get_text() for text in figure.axes[1].texts]  # voc2012 block_perm:8
    assert "diverged" in texts
    ours = [patch.get_height() for patch in figure.axes[1].patches if patch.get_alpha() in (None, 1.0)]
    assert sum(np.isfinite(ours)) == 1  # only D. SVDD's bar of ours is drawn, beside the paper's (faded)
    panel_text = [text.get_text() for text in draw_figure1(fig1).axes[2].texts]  # wikiart block_perm:2, top row
    # the paper's bars (Table V) are drawn there, so the panel says why ours are absent
    assert "ours: no runs\n(2 of 9 cells: D. SVDD diverged, diverged)" in panel_text


def _unstarted_job(root, variant, group, config, error):
    """A job that stopped before training: Hydra's saved configuration and the log's error, no metrics.json."""
    import yaml

    folder = root / variant / group / f"{abs(hash(error)) % 10**12:012d}_s0"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "train.log").write_text(f"[2026-01-01 00:00:00,000][dsvdd_repro][ERROR] - {error}\n")


def _voc_config(variant, objective, lr, n, pooling="max"):
    split = {"name": None, "n": None, "thickness": None}
    return {"dataset": {"name": "voc2012", "root": "${oc.env:DSVDD_VOC2012_ROOT,null}", "image_size": 32},
            "setup": {"name": "alteration", "semi_supervised": False, "labeled_anomaly_fraction": 0.1},
            "anomaly": {"name": "block_perm", "n": n, "thickness": 5, "train": split, "val": split, "test": split},
            "method": {"name": "dsvdd"}, "objective": {"name": objective},
            "model": {"name": "resnet18", "bias": True, "pooling": pooling,
                      "weights": "${resolve_weights:${profile.weights}}"},
            "regularizer": {"name": "none"}, "features": None,
            "optim": {"name": "adam", "lr": lr, "backbone_lr_factor": 0.1}, "variant": variant, "seed": 0}


@pytest.mark.slow
def test_missing_cells_name_only_their_own_jobs_reasons(tmp_path):
    """Jobs that stopped before training are matched to cells on the cells' key columns (from the
    configuration Hydra saved), so two cells of one variant and dataset each name their own reason."""
    from dsvdd_repro.report.__main__ import write_report
    from dsvdd_repro.report.collect import collect_unstarted

    runs = tmp_path / "runs"
    write_runs(runs, [metrics("dsvdd", 0.7)])
    _unstarted_job(runs, "dsvdd_bias", "voc2012_alteration", _voc_config("dsvdd_bias", "soft_boundary", 0.01, 2),
                   "CUDA out of memory")
    _unstarted_job(runs, "dsvdd_bias", "voc2012_alteration", _voc_config("dsvdd_bias", "soft_boundary", 0.1, 2),
                   "weights not found: resnet18.pth")
    # a Figure 2 job (no pooling layer) is no run of Table II's cells
    _unstarted_job(runs, "dsvdd_bias", "voc2012_alteration",
                   _voc_config("dsvdd_bias", "one_class", 0.001, 8, pooling="none"), "only Figure 2's")
    unstarted = collect_unstarted(runs).set_index("reason")
    oom = unstarted.loc["CUDA out of memory"]
    assert oom["configured"] and oom["lr"] == 0.01 and oom["objective"] == "soft_boundary"
    assert (oom["test_anomaly"], oom["val_anomaly"], oom["train_anomaly"]) == ("block_perm:2", "block_perm:2", "")

    write_report(runs, tmp_path / "out")
    missing = (tmp_path / "out" / "REPORT.md").read_text().split("## Missing cells and why")[1].split("\n## ")[0]
    assert ("- Table V, voc2012: 1 of 24 cells not reproduced (Soft-bound. D. SVDD w/ bias: 1e-2 / Block perm. 2x2): "
            "runs stopped before training (1 run: CUDA out of memory)" in missing)
    assert ("- Table V, voc2012: 1 of 24 cells not reproduced (Soft-bound. D. SVDD w/ bias: 1e-1 / Block perm. 2x2): "
            "runs stopped before training (1 run: weights not found: resnet18.pth)" in missing)
    assert "- Table V, voc2012: 22 of 24 cells not reproduced: no run of these cells in this profile's grid" in missing
    for line in missing.splitlines():
        assert not ("CUDA out of memory" in line and "weights not found" in line), line
    assert missing.count("CUDA out of memory") == 1 and "only Figure 2's" not in missing
