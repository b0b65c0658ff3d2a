"""Figures 1 and 2 beside the paper's bars: the paper's values where its tables give them, error
bars that are the spread of what is plotted (of the difference, for Figure 1), single runs marked,
and the per-bar caveat of a regularizer that never switched on."""

import math

import numpy as np
import pytest

from dsvdd_repro.report.figures import (
    PAPER_ALPHA,
    REG_OFF_NOTE,
    combined_spread,
    draw_figure1,
    draw_figure2,
    figure1_data,
    figure2_data,
    reg_off_caveat,
)
from dsvdd_repro.report.published import load_published
from tests.runs_frame import frame, run

PUBLISHED = load_published()
# Table V's WikiArt block perm. 2x2 column at lr 1e-1, soft-boundary
BP2 = {"dataset": "wikiart", "val_anomaly": "block_perm:2", "test_anomaly": "block_perm:2",
       "objective": "soft_boundary", "lr": 0.1}


def test_spreads_of_independent_cells_add_in_quadrature_and_caveats_count_runs():
    assert combined_spread(3.0, 4.0) == pytest.approx(5.0)
    assert reg_off_caveat(0, 5) == "" and reg_off_caveat(5, 5) == "∅" and reg_off_caveat(2, 5) == "∅ 2/5"


def figure1_runs():
    one_lr = {**BP2, "backbone_lr_factor": 1.0}
    return frame(run("dsvdd", seed=0, test_auc=0.50, **BP2), run("dsvdd", seed=1, test_auc=0.54, **BP2),
                 run("dsvdd_bias", seed=0, test_auc=0.60, **BP2), run("dsvdd_bias", seed=1, test_auc=0.66, **BP2),
                 *(run("dsvdd_bias_noise", seed=seed, test_auc=0.60, **BP2) for seed in (0, 1)),
                 run("dsvdd_bias_var", test_auc=0.57, reg_active=False, **BP2),  # its hinge never switched on
                 run("dsvdd", **one_lr), run("dsvdd_bias", **one_lr))


def test_figure1_has_the_papers_differences_and_the_spread_of_ours():
    fig1 = figure1_data(figure1_runs(), PUBLISHED)
    at = (fig1.dataset == "wikiart") & (fig1.test_anomaly == "block_perm:2") & np.isclose(fig1.lr, 0.1)
    top = fig1[at & fig1.scheme.str.startswith("backbone")].set_index("variant")
    bias = top.loc["dsvdd_bias"]
    assert bias["difference"] == pytest.approx(63.0 - 52.0)
    # the sample std of (60, 66) is sqrt(18), of (50, 54) sqrt(8): the difference's spread sqrt(18 + 8)
    assert bias["spread"] == pytest.approx(math.sqrt(18.0 + 8.0))
    # Table V: w/ bias 58.7±1, D. SVDD 54.6±2
    assert bias["paper_difference"] == pytest.approx(58.7 - 54.6)
    assert bias["paper_spread"] == pytest.approx(math.sqrt(1.0**2 + 2.0**2))
    assert not bias["single_run"] and bias["caveat"] == "" and bias["n"] == 2 and bias["n_reference"] == 2
    variance = top.loc["dsvdd_bias_var"]
    assert variance["difference"] == pytest.approx(57.0 - 52.0)
    assert variance["single_run"] and np.isnan(variance["spread"])  # one run: no spread of the difference
    assert (variance["reg_off"], variance["caveat"]) == (1, "∅")
    assert (top.loc["dsvdd_bias_noise", "reg_off"], top.loc["dsvdd_bias_noise", "caveat"]) == (0, "")
    bottom = fig1[at & fig1.scheme.str.startswith("one")].set_index("variant")
    assert bottom["paper_difference"].isna().all()  # the paper prints no number for one lr for all layers
    assert bottom.loc["dsvdd_bias", "single_run"] and bottom.loc["dsvdd_bias", "difference"] == pytest.approx(0.0)


def test_figure1_draws_the_papers_bars_faded_and_marks_single_runs_and_caveats():
    figure = draw_figure1(figure1_data(figure1_runs(), PUBLISHED))
    panel = figure.axes[2]  # WikiArt block perm. 2x2, the paper's scheme
    paper = [patch for patch in panel.patches if patch.get_alpha() == PAPER_ALPHA]
    assert sum(np.isfinite(patch.get_height()) for patch in paper) == 9  # 3 variants x 3 lr from Table V
    hatched = [patch for patch in panel.patches if patch.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_height() == pytest.approx(5.0)
    marks = [text.get_text() for text in panel.texts]
    assert "n=1 ∅" in marks and "2" in marks
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "single run (n=1: no spread)" in legend and "paper (Table V's cells)" in legend
    assert REG_OFF_NOTE in [text.get_text() for text in figure.texts]
    without_caveat = draw_figure1(figure1_data(frame(run("dsvdd", **BP2)), PUBLISHED))
    assert REG_OFF_NOTE not in [text.get_text() for text in without_caveat.texts]


def test_figure2_has_the_papers_bars_only_with_pooling():
    bp8 = {"dataset": "wikiart", "val_anomaly": "block_perm:8", "test_anomaly": "block_perm:8"}
    runs = frame(run("dsvdd", seed=0, test_auc=0.70, **bp8), run("dsvdd", seed=1, test_auc=0.80, **bp8),
                 run("dsvdd", pooling="none", test_auc=0.74, **bp8))
    fig2 = figure2_data(runs, PUBLISHED)
    panel = fig2[(fig2.dataset == "wikiart") & (fig2.test_anomaly == "block_perm:8") & (fig2.model == "C")]
    pooled, unpooled = (panel.set_index("pooling").loc[pooling] for pooling in ("max", "none"))
    assert pooled["auc"] == pytest.approx(75.0) and pooled["spread"] == pytest.approx(np.std([70, 80], ddof=1))
    assert (pooled["paper_auc"], pooled["paper_spread"]) == (78.9, 2.3)  # Table II, one-class D. SVDD
    assert not pooled["single_run"]
    assert np.isnan(unpooled["paper_auc"]) and unpooled["single_run"] and np.isnan(unpooled["spread"])
    figure = draw_figure2(fig2)
    drawn = figure.axes[3]
    assert [patch.get_height() for patch in drawn.patches if patch.get_hatch()] == [pytest.approx(74.0)]
    assert "n=1" in [text.get_text() for text in drawn.texts]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "paper with pooling (Table II's cells)" in legend
