"""Whether a cell of ours differs from the paper's: a test per cell, corrected over the table's cells.

What is compared. Ours: mean ± sample std over n values, n = our finished runs (seeds), or for
one-vs-all the normal classes (`tables.aggregate` averages seeds per class first). The paper's: the
printed mean ± spread. The paper says only "all reported results are the average of five runs, where
each run was initialized with a random seed" and never defines ±; we take the spread as the sample std
over its n = 5 seeds (`protocol.paper_seeds`). Its one-vs-all cells are "the average of 10 normal
classes" and their ± can only be over classes (OC-SVM w/ PCA, deterministic and ±0.0 on strokes, is
61.6±10.4 on one-vs-all), so there n = 10 classes (the dataset's), as ours.

The test (`compare`), two-sided:
- our n >= 2: Welch's t on the summary statistics, t = (m1 - m2) / sqrt(s1²/n1 + s2²/n2) with the
  Welch-Satterthwaite df, p from Student's t (`welch`);
- our n = 1: where the run falls in the paper's seed distribution, the prediction-interval t
  t = (x - m) / (s * sqrt(1 + 1/n_paper)) with n_paper - 1 df (`single_run`). It is exact under the
  null hypothesis that our run is one more draw from the paper's distribution, which includes our
  seed std being the paper's (one run cannot estimate it), so one run is tested, not "too few": it
  detects only large differences (`runs_needed`).
Assumptions: the per-seed AUCs (one-vs-all: the per-class means) are normal and independent, within
and between the two sides; the variances may differ (n >= 2). One-vs-all treats the classes as
independent draws and ignores that both sides average the same 10 classes: a paired test would have
less variance, so this one is conservative there (fewer "differs").

Degenerate cases:
- a paper spread below the printed resolution (±0.0, the deterministic baselines) is taken as
  SPREAD_FLOOR = 0.05, the largest std that still prints as 0.0: the test keeps a finite scale, and
  the rounding of the printed mean cannot make a cell differ. Tables V-VI print integer spreads:
  taken as printed;
- our std 0 with n >= 2 (identical runs) is used as it is: the paper's spread then sets the scale;
- no test, verdict `too few runs`: our n = 0 (a missing, failed or diverged cell), or a value of
  either side unknown (NaN: our mean or std, the paper's mean, spread or n), or the paper's n < 2.

Correction: Holm over a family = the cells of one table that have a test (`add_verdicts` is given
one table's cells). Holm, not Benjamini-Hochberg: a † is read per cell ("this cell does not
reproduce"), so it bounds the chance of any false † (family-wise error) rather than their expected
share (BH's false discovery rate), and it does so under any dependence between cells (they share
datasets, code and, Tables I and IV, even runs), with more power than Bonferroni. Per table, not per
report: each table is a separate experiment of the paper, written and read on its own; its verdicts
do not change when another table gains runs, and the cells Table IV repeats from Table I are not
counted twice. A cell `differs` when its Holm-adjusted p < ALPHA (the one home of alpha).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
# The paper prints spreads to one decimal: any std below half a unit prints as 0.0.
SPREAD_FLOOR = 0.05
CONSISTENT, DIFFERS, TOO_FEW_RUNS = "consistent", "differs", "too few runs"
# What `add_verdicts` adds to a table's cells.
TEST_COLUMNS = ("t_statistic", "df", "p_value", "p_adjusted", "verdict")


class Result(NamedTuple):
    t: float
    df: float
    p: float


def _two_sided(t: float, df: float) -> Result:
    return Result(t, df, float(2.0 * stats.t.sf(abs(t), df)))


def _welch_scale(std1: float, n1: float, std2: float, n2: float) -> tuple[float, float]:
    """The standard error of a difference of two means and its Welch-Satterthwaite df."""
    var1, var2 = std1**2 / n1, std2**2 / n2
    return math.sqrt(var1 + var2), (var1 + var2) ** 2 / (var1**2 / (n1 - 1) + var2**2 / (n2 - 1))


def _prediction_scale(std: float, n: float) -> tuple[float, float]:
    """The standard error of one new value minus the mean of n (std known by that sample), and df."""
    return std * math.sqrt(1.0 + 1.0 / n), n - 1


def welch(mean1: float, std1: float, n1: float, mean2: float, std2: float, n2: float) -> Result:
    """Welch's t-test from summary statistics (sample stds, n1, n2 >= 2, not both stds 0)."""
    scale, df = _welch_scale(std1, n1, std2, n2)
    return _two_sided((mean1 - mean2) / scale, df)


def single_run(value: float, mean: float, std: float, n: float) -> Result:
    """Where one value falls in a distribution known by a sample (mean, sample std, n >= 2):
    the prediction-interval t with n - 1 df."""
    scale, df = _prediction_scale(std, n)
    return _two_sided((value - mean) / scale, df)


def _known(*values: float) -> bool:
    return not any(pd.isna(value) for value in values)


def compare(ours_mean: float, ours_std: float, ours_n: float, paper_mean: float, paper_spread: float,
            paper_n: float) -> Result | None:
    """Ours against the paper's (module docstring: which test, the spread floor); None when there is
    nothing to test (our n = 0, a value unknown, the paper's n < 2)."""
    if not _known(ours_mean, ours_n, paper_mean, paper_spread, paper_n) or ours_n < 1 or paper_n < 2:
        return None
    paper_std = max(float(paper_spread), SPREAD_FLOOR)
    if ours_n == 1:
        return single_run(ours_mean, paper_mean, paper_std, paper_n)
    if not _known(ours_std):
        return None
    return welch(ours_mean, ours_std, ours_n, paper_mean, paper_std, paper_n)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN (no test) stays NaN and is not in the family."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p_values, np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    order = tested[np.argsort(p_values[tested], kind="stable")]
    # the i-th smallest of m is scaled by m - i, and an adjusted p never falls below an earlier one
    scaled = (len(order) - np.arange(len(order))) * p_values[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def add_verdicts(cells: pd.DataFrame) -> pd.DataFrame:
    """`cells` (one table: the family) with TEST_COLUMNS. Reads ours_mean, ours_std, ours_n,
    paper_mean, paper_spread, paper_n; verdict `differs` when p_adjusted < ALPHA, `consistent` when
    not, `too few runs` when there is no test."""
    columns = ["ours_mean", "ours_std", "ours_n", "paper_mean", "paper_spread", "paper_n"]
    results = [compare(*row) for row in cells[columns].itertuples(index=False)]
    t, df, p = (np.array([np.nan if r is None else r[i] for r in results], dtype=float) for i in range(3))
    adjusted = holm(p)
    verdict = np.where(np.isnan(adjusted), TOO_FEW_RUNS, np.where(adjusted < ALPHA, DIFFERS, CONSISTENT))
    return cells.assign(t_statistic=t, df=df, p_value=p, p_adjusted=adjusted, verdict=verdict)


def power(n: float, spread: float, difference: float, paper_n: int, alpha: float = ALPHA) -> float:
    """The chance that `compare` finds a true `difference` between ours (n runs) and the paper's
    (paper_n values), both with std `spread`, at `alpha`: the noncentral t of the test's statistic
    (exact for n = 1; for Welch the usual approximation with its Satterthwaite df); n may be
    math.inf (the limit: the paper's uncertainty alone)."""
    spread = max(spread, SPREAD_FLOOR)
    scale, df = _prediction_scale(spread, paper_n) if n == 1 else _welch_scale(spread, n, spread, paper_n)
    critical, shift = stats.t.isf(alpha / 2, df), difference / scale
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def runs_needed(spread: float, difference: float = 2.0, paper_n: int = 5, target: float = 0.8,
                alpha: float = ALPHA, max_runs: int = 1000) -> int | None:
    """The fewest runs of ours for which `compare` detects `difference` points with power `target`
    at the paper's `spread` over `paper_n` values; None when no number of runs does (the paper's own
    n bounds the power: with infinitely many runs the test still has the paper's uncertainty)."""
    if power(math.inf, spread, difference, paper_n, alpha) < target:
        return None
    # the first n, not a bisection: one run (a prediction test, 4 df) can beat two (Welch, ~2 df)
    for n in range(1, max_runs + 1):
        if power(n, spread, difference, paper_n, alpha) >= target:
            return n
    return None
