"""REPORT.md's reading caveats (`report.caveats.reading_caveats`) on hand-built runs frames: each
caveat appears where the runs depart from the paper's protocol, computed from the runs, and is
absent where they do not."""

import pandas as pd
import pytest

from dsvdd_repro.report.caveats import (
    paper_labeled_per_normal,
    paper_sweep,
    reading_caveats,
    regularizer_never_on,
)
from dsvdd_repro.report.published import load_published
from dsvdd_repro.report.tables import table_cells
from tests.runs_frame import frame, run

PUBLISHED = load_published()


def caveats(runs: pd.DataFrame, tables=("I", "IV"), metrics=None) -> list[str]:
    cells = {table: table_cells(runs, PUBLISHED, table) for table in tables}
    return reading_caveats(runs, cells, metrics)


def lines_with(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if text in line]


def sigma_runs(active: bool) -> pd.DataFrame:
    """Table I's two σ² rows (fixed, adaptive c_t) and Table IV's w/ bias cell on WikiArt strokes 5."""
    return frame(run("dsvdd_bias_var", weighting="fixed", reg_active=active, test_auc=0.70 if not active else 0.75),
                 run("dsvdd_bias_var", weighting="adaptive", reg_active=active, test_auc=0.70 if not active else 0.73),
                 run("dsvdd_bias", test_auc=0.70))


def test_regularizer_never_on_reads_the_recorded_activity():
    runs = frame(run("dsvdd_bias_var", reg_active=False), run("dsvdd_bias_var", reg_active=True), run("dsvdd_bias"))
    assert regularizer_never_on(runs).tolist() == [True, False, False]  # no regularizer: not "never on"


def test_sigma_cells_whose_hinge_never_switched_on_say_they_print_the_w_bias_value():
    lines = caveats(sigma_runs(active=False))
    activity = lines_with(lines, "D. SVDD w/ bias & σ² reg.: its regularizer (variance) switched on in")
    assert activity and "0 of 2 3-epoch runs" in activity[0]
    table_i = lines_with(lines, "- Table I: ")
    assert len(table_i) == 1
    assert "2 of 2 D. SVDD w/ bias & σ² reg. cells rest only on runs whose regularizer never switched on" in table_i[0]
    assert "(wikiart Strokes 5 [fixed], wikiart Strokes 5 [adaptive])" in table_i[0]
    assert "2 of them print the value of their D. SVDD w/ bias cell" in table_i[0]
    assert "differ only in the weighting print the same value in 1 column(s)" in table_i[0]


def test_active_regularizers_give_no_regularizer_caveat():
    lines = caveats(sigma_runs(active=True))
    assert not lines_with(lines, "never switched on") and not lines_with(lines, "switched on in")


def test_single_run_cells_are_counted_and_cells_with_seeds_are_not():
    single = lines_with(caveats(sigma_runs(active=True)), "single runs:")
    assert single and "Table I 2 of 2" in single[0] and "Table IV 2 of 2" in single[0]  # σ² adaptive and w/ bias
    seeded = frame(*(run("dsvdd_bias", seed=seed) for seed in range(2)))
    assert not lines_with(caveats(seeded), "single runs:")


def test_k_and_seeds_run_are_compared_with_the_papers_grid():
    paper_k = paper_sweep("k")
    assert 5 in paper_k and 50 in paper_k and len(paper_k) > 2  # conf/grid/paper.yaml, read not restated
    reduced = frame(*(run("dsvdd_bias_noise", k=k) for k in (5.0, 50.0)))
    lines = caveats(reduced)
    k_line = lines_with(lines, "- k (chosen on validation per cell): 5, 50 run")
    assert k_line and f"2 of the paper's {len(paper_k)} values" in k_line[0]
    assert lines_with(lines, "- seeds: 0 (1 per cell at most) of the paper's")
    full = frame(*(run("dsvdd_bias_noise", k=float(k), seed=seed) for k in paper_k for seed in paper_sweep("seed")))
    lines = caveats(full)
    assert not lines_with(lines, "- k (") and not lines_with(lines, "- seeds:")


def test_epochs_are_given_per_table_and_for_the_runs_in_no_table():
    runs = frame(run("dsvdd_bias"), run("dsvdd_bias", epochs=25.0, backbone_lr_factor=1.0, lr=0.1),
                 run("dsvdd_ruff2018", method="dsvdd", regularizer="none", bias=False, epochs=30.0))
    line = lines_with(caveats(runs), "- deep SVDD epochs per experiment:")
    assert len(line) == 1
    assert "Table IV: 3 (paper: 30)" in line[0]  # Table I has no w/ bias row
    assert "25 (1 run of dsvdd_bias; paper: 30)" in line[0]
    assert "30 (1 run of dsvdd_ruff2018; paper: 150)" in line[0]  # its own protocol (conf/variant)
    assert not lines_with(caveats(frame(run("dsvdd_bias", epochs=30.0))), "epochs per experiment")


def geo_metrics(**method) -> dict:
    return {"variant": "geo", "test_auc": 0.8, "config": {"method": {"name": "geo", **method}},
            "samples_per_epoch": method.get("max_samples_per_epoch"),
            "dirichlet": {"n_images": method.get("fit_max_samples")}, "val_subsample": {"n": 500}}


def test_geo_and_baseline_caps_come_from_the_runs_and_their_metrics():
    runs = frame(run("geo", epochs=1.0, test_anomaly="block_perm:2", val_anomaly="block_perm:2"),
                 run("ocsvm_cnn", features="cnn", test_anomaly="block_perm:2", val_anomaly="block_perm:2"))
    metrics = [geo_metrics(max_samples_per_epoch=5000, fit_max_samples=500, val_max_samples=2000),
               {"variant": "ocsvm_cnn", "test_auc": 0.6, "selection": {"n_train_used": 1000},
                "val_subsample": {"n": 500}, "config": {"method": {"name": "ocsvm"}}}]
    lines = caveats(runs, tables=("II",), metrics=metrics)
    geo = lines_with(lines, "- geo (1 run):")
    assert geo, lines
    for text in ("training rows 1000 (profile quick; paper: every one)", "1 epoch (paper: 3)",
                 "method.max_samples_per_epoch 5000 (paper: all)", "method.fit_max_samples 500 (paper: all)",
                 "5000 (image, transformation) pairs per epoch", "500 images in the Dirichlet fit",
                 "500 validation rows scored"):
        assert text in geo[0]
    assert "val_max_samples" not in geo[0]  # the paper's value: no cap of ours
    ocsvm = lines_with(lines, "- ocsvm_cnn (1 run):")
    assert ocsvm and "1000 training rows fitted" in ocsvm[0] and "epoch" not in ocsvm[0]
    # without the metrics, what runs.csv holds
    assert "1 epoch (paper: 3)" in lines_with(caveats(runs, tables=("II",)), "- geo (1 run):")[0]


def test_labeled_classes_of_the_semi_supervised_one_vs_all_cells():
    per_normal = paper_labeled_per_normal()
    assert per_normal == len(paper_sweep("setup.labeled_anomaly_class")) - 1  # labeled = normal is excluded
    semi = {"dataset": "cifar10", "setup": "one_vs_all", "semi_supervised": True, "val_anomaly": "",
            "test_anomaly": "", "labeled_anomaly_class": 0.0}
    runs = frame(*(run("dsvdd_bias", normal_class=float(c), **semi) for c in (1, 2)))
    line = lines_with(caveats(runs, tables=("VI",)), "- Table VI (cifar10, semi-supervised one-vs-all)")
    assert line and "labeled anomaly class 0, 1 per normal class (normal classes 1, 2)" in line[0]
    assert f"{per_normal} per normal class" in line[0]
    assert not lines_with(caveats(frame(run("dsvdd_bias"))), "labeled anomaly class")


def test_data_copies_image_sizes_and_what_a_stroke_spans():
    runs = frame(run("dsvdd_bias"), run("dsvdd_bias", val_anomaly="strokes:9", test_anomaly="strokes:9"),
                 run("dsvdd_bias", dataset="cifar10", data_layout="image-folder: cifar10-jpeg",
                     val_anomaly="strokes:1", test_anomaly="strokes:1"))
    metrics = [{"variant": "dsvdd_bias", "dataset": "cifar10", "test_auc": 0.7,
                "data": {"source": {"resize": "none (native 32 px)"}}}]
    lines = caveats(runs, metrics=metrics)
    wikiart = lines_with(lines, "- wikiart at 32 px (paper: 224 px)")
    assert wikiart and "thickness 5 / 9 px spans 16% / 28% of the side (paper: 2% / 4%)" in wikiart[0]
    assert lines_with(lines, "- cifar10 at 32 px (paper: 32 px): a stroke of thickness 1 px spans 3% of the side")
    copy = lines_with(lines, "- cifar10: read from the copy `image-folder: cifar10-jpeg`")
    assert copy and "JPEG" in copy[0] and "resized: none (native 32 px)" in copy[0]
    assert "JPEG" not in lines_with(lines, "- wikiart: read from the copy")[0]


def test_wall_times_per_method_and_epochs():
    runs = frame(run("dsvdd_bias", seconds=15.0), run("dsvdd_bias", seconds=35.0),
                 run("dsvdd_ruff2018", method="dsvdd", regularizer="none", epochs=30.0, seconds=792.0),
                 run("dsvdd_ruff2018", method="dsvdd", regularizer="none", epochs=30.0, seconds=810.0))
    lines = caveats(runs)
    assert "  - dsvdd (dsvdd_bias, 3 epochs; 2 runs): 15-35 s, median 25 s" in lines
    assert "  - dsvdd (dsvdd_ruff2018, 30 epochs; 2 runs): 13.2-13.5 min, median 13.3 min" in lines


def test_no_finished_runs():
    assert reading_caveats(frame(run(status="failed", test_auc=None)), {}) == ["- no finished runs"]


@pytest.mark.parametrize("text", ["5,30,50", "range(3)", 7])
def test_sweep_values_are_read_as_hydra_reads_them(text):
    from dsvdd_repro.report.caveats import _sweep_values

    assert _sweep_values(text) == {"5,30,50": [5, 30, 50], "range(3)": [0, 1, 2], 7: [7]}[text]
