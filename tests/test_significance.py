"""The test per cell (dsvdd_repro/report/significance.py) on hand-checked inputs: Welch's t, df and p,
the one-run prediction test, Holm's adjustment, the verdicts of a small table and the power."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dsvdd_repro.report.significance import (
    ALPHA,
    add_verdicts,
    compare,
    holm,
    power,
    runs_needed,
    single_run,
    welch,
)


def test_welch_matches_a_hand_computation_and_scipy():
    # ours 66.5 ± 1.0 over 4 runs, the paper's 69.5 ± 2.0 over 5 seeds, by hand:
    # s1²/n1 = 1/4 = 0.25, s2²/n2 = 4/5 = 0.8, so t = -3 / sqrt(1.05) = -2.927700...
    # df = 1.05² / (0.25²/3 + 0.8²/4) = 1.1025 / 0.180833... = 6.096774...
    result = welch(66.5, 1.0, 4, 69.5, 2.0, 5)
    assert result.t == pytest.approx(-2.9277002, abs=1e-6)
    assert result.df == pytest.approx(6.0967742, abs=1e-6)
    reference = stats.ttest_ind_from_stats(66.5, 1.0, 4, 69.5, 2.0, 5, equal_var=False)
    assert (result.t, result.p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)
    assert 0.02 < result.p < 0.05  # |t| between the 5% (2.447) and 2% (3.143) points of t(6)


def test_welch_p_matches_the_closed_form_of_two_degrees_of_freedom():
    # 10 ± 2 and 4 ± 2, two values each: s²/n = 2 on both sides, t = 6 / 2 = 3, df = 4² / (2² + 2²) = 2;
    # t(2) has the CDF 1/2 + t / (2 sqrt(2 + t²)), so p = 1 - 3 / sqrt(11) = 0.0954660...
    result = welch(10.0, 2.0, 2, 4.0, 2.0, 2)
    assert (result.t, result.df) == pytest.approx((3.0, 2.0))
    assert result.p == pytest.approx(1 - 3 / math.sqrt(11), abs=1e-12) == pytest.approx(0.0954660, abs=1e-7)


def test_one_run_falls_in_the_papers_seed_distribution():
    # scale s * sqrt(1 + 1/n) = (sqrt(3)/2) * sqrt(4/3) = 1 with n = 3: t = 2 with 2 df, p = 1 - 2/sqrt(6)
    result = single_run(82.0, 80.0, math.sqrt(3) / 2, 3)
    assert (result.t, result.df) == pytest.approx((2.0, 2.0))
    assert result.p == pytest.approx(0.1835034, abs=1e-7)
    # at the 97.5% point of t(4), 2.7764451 (any t table), the two-sided p is 0.05
    edge = single_run(80.0 + 2.7764451 * math.sqrt(1.2), 80.0, 1.0, 5)
    assert edge.df == 4 and edge.t == pytest.approx(2.7764451) and edge.p == pytest.approx(0.05, abs=1e-7)


def test_compare_picks_the_test_and_refuses_what_it_cannot_test():
    assert compare(66.5, 0.0, 1, 81.4, 1.3, 5) == single_run(66.5, 81.4, 1.3, 5)
    assert compare(66.5, 1.0, 4, 69.5, 2.0, 5) == welch(66.5, 1.0, 4, 69.5, 2.0, 5)
    # identical runs (std 0) against the paper's: its spread alone sets the scale, 4 df
    assert compare(70.0, 0.0, 3, 72.0, 2.0, 5).df == pytest.approx(4.0)
    # a printed ±0.0 is taken as 0.05, the largest std that prints so: t stays finite
    assert compare(55.0, 0.0, 1, 53.6, 0.0, 5).t == pytest.approx(1.4 / (0.05 * math.sqrt(1.2)))
    assert compare(53.6, 0.0, 1, 53.6, 0.0, 5).p == pytest.approx(1.0)
    for no_test in ((np.nan, np.nan, 0, 81.4, 1.3, 5),  # no finished run
                    (66.5, 0.0, 1, np.nan, 1.3, 5), (66.5, 0.0, 1, 81.4, np.nan, 5),  # paper unknown
                    (66.5, 0.0, 1, 81.4, 1.3, np.nan), (66.5, 0.0, 1, 81.4, 1.3, 1),
                    (66.5, np.nan, 3, 81.4, 1.3, 5)):
        assert compare(*no_test) is None, no_test


def test_holm_adjusts_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4) times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; then never below an
    # earlier one: 0.02, 0.03, 0.06, 0.06. NaN is no test: not counted in m, stays NaN.
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02, np.nan])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    assert holm([]).shape == (0,) and np.isnan(holm([np.nan])).all()


def test_verdicts_of_a_small_table():
    rows = [  # ours_mean, ours_std, ours_n, paper_mean, paper_spread, paper_n
        (66.5, 0.0, 1, 81.4, 1.3, 5),    # 10.5 prediction-interval scales below: differs
        (80.9, 0.0, 1, 81.4, 1.3, 5),    # inside the paper's seeds: consistent
        (np.nan, np.nan, 0, 75.0, 1.1, 5),  # no finished run
        (63.4, 10.1, 10, 61.6, 10.4, 10),  # one-vs-all over classes: consistent
        (60.0, 1.0, 3, 81.4, 1.3, np.nan),  # the paper's n unknown
    ]
    columns = ["ours_mean", "ours_std", "ours_n", "paper_mean", "paper_spread", "paper_n"]
    cells = add_verdicts(pd.DataFrame(rows, columns=columns))
    assert list(cells["verdict"]) == ["differs", "consistent", "too few runs", "consistent", "too few runs"]
    # the family is the three tested cells: Holm over them, untested cells have no p
    np.testing.assert_allclose(cells["p_adjusted"], holm(cells["p_value"]))
    first = single_run(66.5, 81.4, 1.3, 5).p
    assert cells.loc[0, "p_adjusted"] == pytest.approx(3 * first) and 3 * first < ALPHA
    assert cells.loc[[2, 4], ["t_statistic", "df", "p_value", "p_adjusted"]].isna().all().all()
    assert add_verdicts(pd.DataFrame(columns=columns)).empty


def test_power_matches_the_textbook_two_sample_case():
    # equal n and stds: Welch's df is Student's 2(n - 1); Cohen's d = 1 needs 17 per group for 80% power
    # at alpha 0.05 two-sided (Cohen 1988, Table 2.4.1; G*Power: actual power 0.807), 16 are not enough
    assert power(17, 1.0, 1.0, 17) == pytest.approx(0.807, abs=0.001)
    assert power(16, 1.0, 1.0, 17) < 0.8
    # no difference: the test rejects at its level alpha, one run or several
    assert power(1, 1.3, 0.0, 5) == pytest.approx(ALPHA) and power(4, 1.3, 0.0, 5) == pytest.approx(ALPHA)


def test_runs_needed_for_two_points():
    assert runs_needed(0.5) == 3 and runs_needed(1.0) == 6
    assert power(6, 1.0, 2.0, 5) >= 0.8 > power(5, 1.0, 2.0, 5)
    # out of reach at spread 2: with infinitely many runs of ours the statistic is the paper's own
    # one-sample t, 4 df and noncentrality 2 / (2 / sqrt(5)) = sqrt(5)
    critical = stats.t.isf(ALPHA / 2, 4)
    limit = stats.nct.sf(critical, 4, math.sqrt(5)) + stats.nct.cdf(-critical, 4, math.sqrt(5))
    assert power(math.inf, 2.0, 2.0, 5) == pytest.approx(limit) and limit < 0.8
    assert runs_needed(2.0) is None and runs_needed(4.0) is None
