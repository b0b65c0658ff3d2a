"""The paper's conclusions, checked: every conclusion Chong et al. draw from Tables I-VI and Figures 1-2
(Section VI, sentence by sentence, and the new ones Section VII adds) written once as a statement over
the tables' cells (`tables.table_cells`), evaluated on two value columns of the same cells: the
paper's (`paper_mean`), on which every computable claim must hold, and ours (`ours_mean`).

A claim (`Claim`, one entry of `CLAIMS`) quotes the paper, names its section and source, and holds
one or more parts; a part is a statement (a function of the cells and the value column that lists
its comparisons, each a number against a number: `pairs`, `best_of`, `mostly`, `gain_steps`) and a
quantifier saying how many comparisons must hold (`EVERY`, `MAJORITY`, `AT_LEAST_HALF`, `ALMOST_ALL`,
`SOME`, `MIXED`). The paper's "generally", "in a majority", "mostly" read as a majority (more than
half), "almost all" as at least 3/4, "half" as at least half, "for some" as at least one; a plain
statement ("GEO outperforms all the other methods") as every comparison. A comparison counts when
every cell it reads has a value; "notably" / "significantly" are not tested (no per-seed numbers).

Verdicts, per part and value column:
- `holds` / `fails`: the quantifier over the comparisons that count;
- `not enough cells`: fewer than half of the part's comparisons count, or the quantifier is a share
  (majority, at least half, almost all) and fewer than MIN_COUNTED (3) comparisons count: a majority
  of one or two says nothing. (Figure 1's trends: fewer than half of its panels have every cell.)
A claim fails when one of its parts fails, else is `not enough cells` when one part is, else holds.
A conclusion the tables cannot decide (Figure 2 prints no numbers and the tables hold no run without
pooling; observations made during training; other papers' numbers) is listed with the verdict
`not computable from the tables` and the reason.
Left out as no conclusion from the results: the design choices they motivate ("we use only the
adaptive weighting scheme", "we choose the low learning rate of 1e-3") and explanations ("the pooling
operation may have removed certain useful features", "GEO ... due to the presence of significant
geometrical structures").

`rank_agreement`: per table and column, Kendall's tau between our and the paper's ordering of the
rows that have both values. `write_claims` writes claims.md and returns REPORT.md's summary lines.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

HOLDS, FAILS, NOT_ENOUGH = "holds", "fails", "not enough cells"
NOT_COMPUTABLE = "not computable from the tables"
PAPER, OURS = "paper_mean", "ours_mean"
MIN_COUNTED = 3  # a majority of fewer comparisons says nothing
MIN_SHARE = 0.5  # of a part's comparisons, at least this share must count
MIN_RANKED = 3  # rows a Kendall's tau needs

NOISE, VAR, DSVDD, BIAS, GEO = "dsvdd_bias_noise", "dsvdd_bias_var", "dsvdd", "dsvdd_bias", "geo"
REGULARIZED = (NOISE, VAR)
SHALLOW = ("ocsvm_pca", "ocsvm_cnn", "iforest_pca", "iforest_cnn")
DEEP_OBJECTIVES = ("one_class", "soft_boundary")
STROKES = ("strokes:1", "strokes:5", "strokes:9")
SHORT = {DSVDD: "D. SVDD", BIAS: "w/ bias", NOISE: "noise", VAR: "σ²", GEO: "GEO", "ocsvm_pca": "OC-SVM PCA",
         "ocsvm_cnn": "OC-SVM CNN", "iforest_pca": "IF PCA", "iforest_cnn": "IF CNN"}
OBJECTIVE_SHORT = {"one_class": "one-class", "soft_boundary": "soft-bound."}
# what pairs match a cell on: the same column of a table (comparing rows), the same row (comparing columns)
SAME_COLUMN = ("table", "dataset", "column_label", "objective", "lr")
SAME_ROW = ("table", "variant", "dataset", "objective", "lr", "weighting")
SAME_PANEL = ("table", "variant", "dataset", "test_anomaly")  # Table V: one model and panel, any lr
OTHERS = None  # a side of `best_of`: every other row of the setting

Where = dict[str, tuple]


@dataclass(frozen=True)
class Comparison:
    """One number against another (each the best of a group of cells, or a mean of differences);
    NaN where a cell it reads has no value. `ties`: whether equal numbers count as holding."""

    place: str
    left: str
    right: str
    left_value: float
    right_value: float
    left_cells: tuple = ()
    right_cells: tuple = ()
    ties: bool = False

    @property
    def counts(self) -> bool:
        return bool(np.isfinite(self.left_value) and np.isfinite(self.right_value))

    @property
    def holds(self) -> bool:
        return bool(self.left_value >= self.right_value if self.ties else self.left_value > self.right_value)

    @property
    def key(self) -> tuple:
        """The same comparison in both value columns: the cells it reads do not depend on the values."""
        return self.left_cells, self.right_cells


Statement = Callable[[pd.DataFrame, str], list[Comparison]]


@dataclass(frozen=True)
class Quantifier:
    words: str
    test: Callable[[int, int], bool]  # (comparisons held, comparisons counted) -> holds
    share: bool  # a share of the comparisons: needs MIN_COUNTED of them


EVERY = Quantifier("every comparison", lambda held, counted: held == counted, share=False)
MAJORITY = Quantifier("a majority of the comparisons", lambda held, counted: 2 * held > counted, share=True)
AT_LEAST_HALF = Quantifier("at least half of the comparisons", lambda held, counted: 2 * held >= counted,
                           share=True)
ALMOST_ALL = Quantifier("at least 3/4 of the comparisons", lambda held, counted: 4 * held >= 3 * counted,
                        share=True)
SOME = Quantifier("at least one comparison", lambda held, counted: held >= 1, share=False)
MIXED = Quantifier("some comparisons but not all (no trend)", lambda held, counted: 0 < held < counted,
                   share=False)


@dataclass(frozen=True)
class Part:
    statement: Statement
    quantifier: Quantifier


@dataclass(frozen=True)
class Claim:
    """One conclusion of the paper: its words, where it stands, what it rests on, and its parts (none:
    not computable from the tables, `note` says why; else `note` says how the words are read)."""

    id: str
    section: str
    source: str
    wording: str
    parts: tuple[Part, ...]
    note: str = ""


@dataclass(frozen=True)
class PartResult:
    verdict: str
    held: int
    counted: int
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True)
class Result:
    verdict: str
    parts: tuple[PartResult, ...]

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        return tuple(c for part in self.parts for c in part.comparisons)


# ---- the cells a statement reads


def _short(cell: pd.Series) -> str:
    return SHORT.get(cell["variant"], cell["row_label"])


def _select(cells: pd.DataFrame, tables: tuple[str, ...], where: Where | None) -> pd.DataFrame:
    mask = cells["table"].isin(tables)
    for column, values in (where or {}).items():
        mask &= cells[column].isin(values)
    return cells[mask]


def _several_objectives(cells: pd.DataFrame) -> set[str]:
    """Tables with blocks per objective (Table IV): their places name the objective."""
    deep = cells[cells["objective"] != ""]
    counts = deep.groupby("table")["objective"].nunique()
    return set(counts.index[counts > 1])


def _place(table: str, dataset: str, column: str | None, objective: str = "", extra: str = "") -> str:
    where = " / ".join(part for part in (dataset, column, OBJECTIVE_SHORT.get(objective, ""), extra) if part)
    return f"Table {table}, {where}"


def _settings(cells: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """The rows that compete in one setting: one column of a table (Table IV: per objective, each
    block with the baselines, which have no objective)."""
    for (table, dataset, column), group in cells.groupby(["table", "dataset", "column_label"], sort=False):
        objectives = [objective for objective in dict.fromkeys(group["objective"]) if objective]
        if len(objectives) < 2:
            yield _place(table, dataset, column), group
            continue
        for objective in objectives:
            yield _place(table, dataset, column, objective), group[group["objective"].isin(["", objective])]


def _best(rows: pd.DataFrame, value: str) -> tuple[str, float]:
    """The best row's short name and value; NaN (named by the group) when a row has no value."""
    values = rows[value].astype(float)
    if values.empty or values.isna().any():
        return "best of " + "/".join(dict.fromkeys(_short(cell) for _, cell in rows.iterrows())), np.nan
    return _short(rows.loc[values.idxmax()]), float(values.max())


def _versus(place: str, left: pd.DataFrame, right: pd.DataFrame, value: str,
            ties: bool = False) -> Comparison:
    (left_name, left_value), (right_name, right_value) = _best(left, value), _best(right, value)
    return Comparison(place, left_name, right_name, left_value, right_value, tuple(left.index),
                      tuple(right.index), ties)


# ---- statements: each lists the same comparisons whatever the values, so that the paper's and ours pair up


def combined(*statements: Statement) -> Statement:
    """The comparisons of several statements, one after the other."""
    return lambda cells, value: [c for statement in statements for c in statement(cells, value)]


def best_of(tables: tuple[str, ...], left: tuple[str, ...] | None, right: tuple[str, ...] | None = OTHERS, *,
            exclude: tuple[str, ...] = (), where: Where | None = None, ties: bool = False) -> Statement:
    """Per setting (`_settings`) of `tables`: the best of the `left` variants against the best of the
    `right` ones (OTHERS: every other variant of the setting but `exclude`). `where` selects settings
    by their columns (dataset, test anomaly, setup), never rows within them."""

    def statement(cells: pd.DataFrame, value: str) -> list[Comparison]:
        comparisons = []
        for place, block in _settings(_select(cells, tables, where)):
            block = block[~block["variant"].isin(exclude)]
            variants = tuple(dict.fromkeys(block["variant"]))
            lefts = left if left is not OTHERS else tuple(v for v in variants if v not in right)
            rights = right if right is not OTHERS else tuple(v for v in variants if v not in lefts)
            mine, theirs = block[block["variant"].isin(lefts)], block[block["variant"].isin(rights)]
            if len(mine) and len(theirs):
                comparisons.append(_versus(place, mine, theirs, value, ties))
        return comparisons

    return statement


def _matches(cells: pd.DataFrame, selector: Where) -> pd.DataFrame:
    return _select(cells, tuple(cells["table"].unique()), selector)


def _key(cell: pd.Series, match_on: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(cell[column]) for column in match_on)  # str: NaN learning rates (baselines) match


def _pair_place(left: pd.Series, right: pd.Series, several_objectives: set[str]) -> tuple[str, str, str]:
    """Where two cells are compared and how each side is called: by variant when the variants differ,
    else by weighting (Table I), else by column."""
    objective = left["objective"] if left["table"] in several_objectives else ""
    if left["variant"] != right["variant"]:
        place = _place(left["table"], left["dataset"], left["column_label"], objective)
        return place, _short(left), _short(right)
    if left["weighting"] != right["weighting"]:
        place = _place(left["table"], left["dataset"], left["column_label"], objective, _short(left))
        return place, left["weighting"], right["weighting"]
    place = _place(left["table"], left["dataset"], None, objective, _short(left))
    return place, left["column_label"], right["column_label"]


def pairs(tables: tuple[str, ...], left: Where, right: Where,
          match_on: tuple[str, ...] = SAME_COLUMN) -> Statement:
    """Cell against cell: every cell of `tables` matching `right` against the cell matching `left` that
    agrees with it on `match_on` (one left cell per key)."""

    def statement(cells: pd.DataFrame, value: str) -> list[Comparison]:
        chosen = cells[cells["table"].isin(tables)]
        lefts = {_key(cell, match_on): index for index, cell in _matches(chosen, left).iterrows()}
        several = _several_objectives(chosen)
        comparisons = []
        for index, cell in _matches(chosen, right).iterrows():
            mine = lefts.get(_key(cell, match_on))
            if mine is not None and mine != index:
                place, left_name, right_name = _pair_place(cells.loc[mine], cell, several)
                comparisons.append(Comparison(place, left_name, right_name, float(cells.at[mine, value]),
                                              float(cell[value]), (mine,), (index,)))
        return comparisons

    return statement


def variants(left: str, right: str) -> tuple[Where, Where]:
    return {"variant": (left,)}, {"variant": (right,)}


def mostly(tables: tuple[str, ...], contenders: tuple[str, ...], preferred: str,
           rivals: tuple[str, ...] | None = OTHERS, *, exclude: tuple[str, ...] = ()) -> Statement:
    """"(mostly X)": per setting where the best of `contenders` beats the best of `rivals` (`best_of`),
    `preferred` against the other contenders (ties count); NaN where the win itself is unknown."""
    wins = best_of(tables, contenders, rivals, exclude=exclude)
    others = tuple(v for v in contenders if v != preferred)

    def statement(cells: pd.DataFrame, value: str) -> list[Comparison]:
        comparisons = []
        for won in wins(cells, value):
            if won.counts and not won.holds:
                continue  # a setting the contenders lost says nothing of which of them wins
            group = cells.loc[list(won.left_cells)]
            mine, theirs = group[group["variant"] == preferred], group[group["variant"].isin(others)]
            which = _versus(won.place, mine, theirs, value, ties=True)
            comparisons.append(which if won.counts else replace(which, left_value=np.nan))
        return comparisons

    return statement


def gain_steps(table: str, variant: str, reference: str = DSVDD) -> Statement:
    """Figure 1 (its top row is Table V): the variant's gain over `reference`, averaged over the panels
    (dataset, anomaly) that have every cell, at each learning rate; one comparison per step up in
    learning rate, the mean gain after it against before. NaN when fewer than half of the panels are
    complete (a trend over one panel of four says little)."""

    def statement(cells: pd.DataFrame, value: str) -> list[Comparison]:
        rows = cells[(cells["table"] == table) & cells["variant"].isin([variant, reference])]
        if rows.empty:
            return []
        values = rows.set_index(["dataset", "test_anomaly", "lr", "variant"])[value].astype(float)
        wide = values.unstack("variant").reindex(columns=[variant, reference])
        gains = (wide[variant] - wide[reference]).unstack("lr")  # panels x learning rates
        complete = gains.dropna()
        enough = len(complete) and len(complete) >= MIN_SHARE * len(gains)
        means = complete.mean() if enough else gains.mean() * np.nan
        learning_rates = sorted(gains.columns)
        gain = f"{SHORT.get(variant, variant)} minus {SHORT.get(reference, reference)}"
        place = f"Table {table}, {gain}, mean over the panels with every lr"
        return [Comparison(place, f"lr {high:g}", f"lr {low:g}", float(means[high]), float(means[low]),
                           tuple(rows.index[rows["lr"] == high]), tuple(rows.index[rows["lr"] == low]))
                for low, high in zip(learning_rates, learning_rates[1:], strict=False)]

    return statement


# ---- the claims


def _one(statement: Statement, quantifier: Quantifier) -> tuple[Part, ...]:
    return (Part(statement, quantifier),)


def larger_distortion(table: str, larger: str, smaller: str) -> Statement:
    """Each deep model of `table` at the larger distortion against itself at the smaller."""
    return pairs((table,), {"test_anomaly": (larger,), "objective": DEEP_OBJECTIVES},
                 {"test_anomaly": (smaller,)}, SAME_ROW)


NOT_FROM_TABLES: tuple[Part, ...] = ()  # a claim without parts: not computable from the tables
STROKE_SETTINGS: Where = {"test_anomaly": STROKES}
ONE_VS_ALL: Where = {"setup": ("one_vs_all",)}
HIGH_LR = (0.01, 0.1)
METHOD_TABLES = ("II", "III", "IV", "V", "VI")  # the tables comparing the methods (Table I: weightings)
FIG2_WHY = ("Figure 2 prints no numbers and the tables hold only models with the pooling layer (fig2.png "
            "draws ours from the runs without it)")

CLAIMS: tuple[Claim, ...] = (
    Claim("adaptive-weighting", "VI", "Table I",
          "In Table I, it can be observed that the adaptive weighting scheme generally improves performance "
          "in a majority of the settings.",
          _one(pairs(("I",), {"weighting": ("adaptive",)}, {"weighting": ("fixed",)},
                     ("table", "variant", "dataset", "column_label")), MAJORITY),
          "adaptive above fixed weighting, same model and column"),
    Claim("geo-best-block-perm", "VI", "Table II",
          "On the block permutation test sets, the GEO model [22] significantly outperforms all the other "
          "methods.",
          _one(best_of(("II",), (GEO,)), EVERY),
          "GEO above every other row in every column ('significantly' not tested)"),
    Claim("geo-best-one-vs-all", "VI", "Table III",
          "The same can also be observed for the one-vs-all setup in Table III.",
          _one(best_of(("III",), (GEO,), where=ONE_VS_ALL), EVERY),
          "GEO above every other row on CIFAR10 one-vs-all"),
    Claim("regularized-second-block-perm", "VI", "Table II",
          "In Table II, we also note that at least one of the proposed regularized variants of deep SVDD "
          "(mostly the noise-regularized variant, i.e. D. SVDD w/ bias & noise reg.) has the second best "
          "performance after the GEO method for a majority of the block permutation settings.",
          (Part(best_of(("II",), REGULARIZED, exclude=(GEO,)), MAJORITY),
           Part(mostly(("II",), REGULARIZED, NOISE, exclude=(GEO,)), MAJORITY)),
          "the best regularized variant above every row but GEO (GEO first: geo-best-block-perm); "
          "'mostly noise': in the columns so won, noise at least as good as σ²"),
    Claim("ocsvm-cnn-second-one-vs-all", "VI", "Table III",
          "In Table III, the OC-SVM model with CNN features performs second best on the one-vs-all setup.",
          _one(best_of(("III",), ("ocsvm_cnn",), exclude=(GEO,), where=ONE_VS_ALL), EVERY),
          "OC-SVM w/ CNN feat. above every row but GEO"),
    Claim("noise-over-variance", "VI", "Tables II, III",
          "Additionally, we observe that the noise-regularized model appears to be more effective than the "
          "variance-regularized model in a majority of the cases.",
          _one(pairs(("II", "III"), *variants(NOISE, VAR)), MAJORITY),
          "noise above σ² per column of the tables that paragraph discusses (all tables: "
          "noise-generally-better)"),
    Claim("pca-over-cnn-sometimes", "VI", "Tables II, III",
          "For some experiments, we also observe that the shallow models with features from PCA yield better "
          "performance than features from ResNet-18",
          _one(combined(pairs(("II", "III"), *variants("ocsvm_pca", "ocsvm_cnn")),
                        pairs(("II", "III"), *variants("iforest_pca", "iforest_cnn"))), SOME),
          "OC-SVM and IF with PCA above the same model with CNN features in at least one column"),
    Claim("one-vs-all-like-other-works", "VI", "Table III",
          "We also note that the performance achieved by the different models for the one-vs-all setup on "
          "CIFAR10 in Table III is similar to other works [13], [22].",
          NOT_FROM_TABLES,
          "needs the numbers of [13] and [22], which the tables do not hold (ruff2018.md sets the original "
          "protocol beside [13]'s)"),
    Claim("geo-weak-on-strokes", "VI", "Tables III, IV",
          "The GEO method does not perform well on the strokes test sets as shown in Table III and IV.",
          _one(best_of(("III", "IV"), OTHERS, (GEO,), where=STROKE_SETTINGS), EVERY),
          "in every strokes setting some other model above GEO"),
    Claim("variance-best-on-voc2012", "VI", "Tables III, IV",
          "Based on Table III and IV, the variance-regularized model performs better than the other models "
          "on the VOC2012 dataset for a majority of the settings,",
          _one(best_of(("III", "IV"), (VAR,), where={"dataset": ("voc2012",), **STROKE_SETTINGS}), MAJORITY),
          "σ² above every other row of the setting (Table IV's objectives apart)"),
    Claim("noise-best-on-cifar10-wikiart", "VI", "Tables III, IV",
          "while the noise-regularized model is more effective on the CIFAR10 and WikiArt dataset.",
          _one(best_of(("III", "IV"), (NOISE,), where={"dataset": ("cifar10", "wikiart"), **STROKE_SETTINGS},
                       ties=True), MAJORITY),
          "noise at least as good as every other row, on the strokes settings the paragraph is about (on "
          "one-vs-all GEO leads: geo-best-one-vs-all); ties count, as the paper bolds both tied cells"),
    Claim("easier-settings-better", "VI", "Tables II, IV",
          "It can also be observed that the deep SVDD model and its variants perform better on easier "
          "settings, i.e. samples with larger distortion of the natural image.",
          _one(combined(larger_distortion("II", "block_perm:8", "block_perm:2"),
                        larger_distortion("IV", "strokes:9", "strokes:5")), MAJORITY),
          "each deep model higher at the larger distortion (Block perm. 8x8 vs 2x2, Strokes 9 vs 5); a "
          "majority, as the paper's own Table IV has an exception (one-class D. SVDD, VOC2012: 70.2 vs "
          "73.6)"),
    Claim("low-lr-better", "VI", "Table V",
          "Regarding impact of learning rates, we observe that both regularized and non-regularized deep "
          "SVDD models generally perform better at low learning rate (0.001) as compared to high learning "
          "rates (0.01 and 0.1).",
          _one(pairs(("V",), {"lr": (0.001,)}, {"lr": HIGH_LR}, SAME_PANEL), MAJORITY),
          "each model at lr 1e-3 above itself at 1e-2 and at 1e-1"),
    Claim("collapse-at-high-lr", "VI", "training",
          "Close examinations on the experiments also reveal that both regularized variants and the standard "
          "deep SVDD model [13] collapse to a single point φ ≡ c at high learning rates (0.01 and 0.1).",
          NOT_FROM_TABLES,
          "an observation of the features during training; the tables report the best model before the "
          "collapse (collapse.md checks it on our runs)"),
    Claim("fixed-variance-threshold", "VI", "preliminary experiments",
          "For the variance-regularized method, we observe in our preliminary experiments that fixing the "
          "variance threshold d_i to a sufficiently small constant can effectively prevent mode collapse for "
          "high learning rates, but such a stringent threshold can severely hinder feature learning.",
          NOT_FROM_TABLES, "preliminary experiments, in no table"),
    Claim("noise-over-dsvdd-across-lr", "VI", "Table V",
          "D. SVDD w/ bias & noise reg. model achieves better performance convergence than the D. SVDD "
          "model for a majority of the experiments as shown in Table V.",
          _one(pairs(("V",), *variants(NOISE, DSVDD)), MAJORITY),
          "noise above D. SVDD per column"),
    Claim("variance-below-noise-across-lr", "VI", "Table V",
          "even though the D. SVDD w/ bias & σ² reg. model is less effective than the D. SVDD w/ bias & "
          "noise reg. model,",
          _one(pairs(("V",), *variants(NOISE, VAR)), MAJORITY),
          "noise above σ² per column"),
    Claim("variance-over-dsvdd-half-high-lr", "VI", "Table V",
          "it shows better performance convergence than the D. SVDD model for half of the experiments at "
          "high learning rates (0.01 and 0.1).",
          _one(pairs(("V",), {"variant": (VAR,), "lr": HIGH_LR}, {"variant": (DSVDD,)}), AT_LEAST_HALF),
          "σ² above D. SVDD per column at lr 1e-2 and 1e-1; 'half' read as at least half (the paper: 4 "
          "of 8)"),
    Claim("noise-gain-grows-with-lr", "VI", "Fig. 1 (top row = Table V)",
          "For the noise-regularized variant of deep SVDD, we observe in general a higher performance gain "
          "over the standard deep SVDD model as the learning rate increases.",
          _one(gain_steps("V", NOISE), EVERY),
          "the mean gain of noise over D. SVDD grows at each step up in lr; Fig. 1's bottom row (one lr for "
          "all layers) prints no numbers and is in no table"),
    Claim("variance-gain-no-trend", "VI", "Fig. 1 (top row = Table V)",
          "Meanwhile, no obvious trend is shown for the performance difference between the "
          "variance-regularized model and the standard deep SVDD model.",
          _one(gain_steps("V", VAR), MIXED),
          "the mean gain of σ² over D. SVDD grows at one step up in lr and not at the other (the bottom row: "
          "as above)"),
    Claim("pooling-helps-shallow", "VI", "Fig. 2",
          "In Figure 2, the OC-SVM and IF models generally show better performance when given ResNet-18 "
          "features without pooling.",
          NOT_FROM_TABLES, FIG2_WHY),
    Claim("unpooled-shallow-over-pca", "VI", "Fig. 2, Table II",
          "For some settings, these shallow models even outperform their counterparts with PCA features "
          "(refer Table II).",
          NOT_FROM_TABLES, FIG2_WHY),
    Claim("pooling-deep-voc2012-wikiart", "VI", "Fig. 2",
          "Without the pooling layer, the deep SVDD model and its variants consistently perform better on "
          "the VOC2012 dataset and worse for the WikiArt dataset.",
          NOT_FROM_TABLES, FIG2_WHY),
    Claim("noise-best-semi-one-vs-all", "VI", "Table VI",
          "For the one-vs-all setup conducted with the CIFAR10 dataset, the D. SVDD w/ bias & noise reg. "
          "model has the best performance.",
          _one(best_of(("VI",), (NOISE,), where=ONE_VS_ALL), EVERY),
          "noise above every other row on CIFAR10 one-vs-all"),
    Claim("block-perm-training-generalizes", "VI", "Table VI",
          "It can be seen that the models trained with block permutation train set show better performance "
          "on strokes test set, as compared to models trained with strokes train set and tested on block "
          "permutation test sets.",
          _one(pairs(("VI",), {"train_anomaly": ("block_perm:8",), "test_anomaly": ("strokes:5",)},
                     {"train_anomaly": ("strokes:9",), "val_anomaly": ("block_perm:8",)},
                     ("table", "variant", "dataset")), EVERY),
          "each model, VOC2012 and WikiArt: ◇Bp.8 □St.9 △St.5 above ◇St.9 □Bp.8 △Bp.2 (the first two "
          "columns)"),
    Claim("noise-over-variance-semi", "VI", "Table VI",
          "Similar to unsupervised learning, the semi-supervised noise-regularized variant generally "
          "achieves better performance than the variance-regularized variant.",
          _one(pairs(("VI",), *variants(NOISE, VAR)), MAJORITY),
          "noise above σ² per column"),
    Claim("regularizers-best-semi", "VI", "Table VI",
          "For almost all settings, it can be observed that the proposed regularizers (mostly D. SVDD w/ "
          "bias & noise reg.) perform notably better than the other deep SVDD models.",
          (Part(best_of(("VI",), REGULARIZED), ALMOST_ALL),
           Part(mostly(("VI",), REGULARIZED, NOISE), MAJORITY)),
          "the best regularized variant above D. SVDD and w/ bias per column ('notably' not tested); "
          "'mostly noise': in the columns so won, noise at least as good as σ²"),
    Claim("noise-generally-better", "VII", "Tables II-VI",
          "Even though the minibatch variance regularization method provided more control over the amount "
          "of regularization applied, the regularization method based on random noise injection generally "
          "performed better.",
          _one(pairs(METHOD_TABLES, *variants(NOISE, VAR)), MAJORITY),
          "noise above σ² per column of every table with both (Table I: adaptive-weighting)"),
    Claim("regularizers-above-geo-on-strokes", "VII", "Tables III, IV",
          "we demonstrated that both regularization methods performed better than the state-of-the-art GEO "
          "method on the strokes test sets that do not portray apparent geometrical structures.",
          _one(combined(best_of(("III", "IV"), (NOISE,), (GEO,), where=STROKE_SETTINGS),
                        best_of(("III", "IV"), (VAR,), (GEO,), where=STROKE_SETTINGS)), EVERY),
          "noise and σ² each above GEO in every strokes setting (the abstract says the same)"),
    Claim("regularized-beat-dsvdd-and-shallow", "VII", "Tables II-VI",
          "We also showed that either one of the regularized variants achieved better performance than the "
          "standard deep SVDD and other classification-based models in a majority of the experiments.",
          _one(best_of(METHOD_TABLES, REGULARIZED, (DSVDD, *SHALLOW)), MAJORITY),
          "the best regularized variant above D. SVDD, OC-SVM and IF per setting; GEO, compared apart in "
          "the paper, and D. SVDD w/ bias, no standard model, are left out"),
    Claim("low-lr-more-stable", "VII", "training",
          "Moreover, we learned that the standard deep SVDD model and its variants performed better and were "
          "more stable at low learning rate.",
          NOT_FROM_TABLES,
          "'more stable' means against mode collapse (Section VI), seen during training; 'performed "
          "better' is low-lr-better"),
)


# ---- verdicts


def judge(comparisons: list[Comparison], quantifier: Quantifier) -> PartResult:
    """A part's verdict over its comparisons (module docstring: the not-enough rule)."""
    counted = [c for c in comparisons if c.counts]
    held = sum(c.holds for c in counted)
    enough = bool(counted) and len(counted) >= MIN_SHARE * len(comparisons)
    if quantifier.share:
        enough = enough and len(counted) >= MIN_COUNTED
    verdict = NOT_ENOUGH if not enough else HOLDS if quantifier.test(held, len(counted)) else FAILS
    return PartResult(verdict, held, len(counted), tuple(comparisons))


def evaluate(claim: Claim, cells: pd.DataFrame, value: str = PAPER) -> Result:
    """The claim on one value column of the cells (`paper_mean` or `ours_mean`)."""
    if not claim.parts:
        return Result(NOT_COMPUTABLE, ())
    parts = tuple(judge(part.statement(cells, value), part.quantifier) for part in claim.parts)
    verdicts = {part.verdict for part in parts}
    verdict = FAILS if FAILS in verdicts else NOT_ENOUGH if NOT_ENOUGH in verdicts else HOLDS
    return Result(verdict, parts)


def all_cells(cells_by_table: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tables' cells in one frame with a fresh index (comparisons name cells by it)."""
    return pd.concat(list(cells_by_table.values()), ignore_index=True)


Evaluated = list[tuple[Claim, Result, Result]]


def evaluate_all(cells: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> Evaluated:
    """Every claim on the paper's numbers and on ours."""
    return [(claim, evaluate(claim, cells, PAPER), evaluate(claim, cells, OURS)) for claim in claims]


# ---- rank agreement


def _tau(paper: pd.Series, ours: pd.Series) -> float:
    if len(paper) < MIN_RANKED:
        return np.nan
    with warnings.catch_warnings():  # a constant column has no ordering: NaN, not a warning
        warnings.simplefilter("ignore")
        return float(kendalltau(paper, ours).statistic)


def rank_agreement(cells: pd.DataFrame) -> pd.DataFrame:
    """Per table and column (dataset / column label): Kendall's tau (tau-b) between the paper's and our
    ordering of the rows that have both values, and their number; NaN with fewer than 3 rows."""
    rows = []
    for (table, dataset, column), group in cells.groupby(["table", "dataset", "column_label"], sort=False):
        both = group[group[PAPER].notna() & group[OURS].notna()]
        rows.append({"table": table, "dataset": dataset, "column_label": column, "n_rows": len(both),
                     "tau": _tau(both[PAPER].astype(float), both[OURS].astype(float))})
    return pd.DataFrame(rows, columns=["table", "dataset", "column_label", "n_rows", "tau"])


# ---- claims.md


def _number(value: float) -> str:
    return f"{value:.1f}" if np.isfinite(value) else "—"


def _mark(comparison: Comparison) -> str:
    return "✓" if comparison.holds else "✗"


def _side_by_side(ours: Comparison, paper: Comparison | None) -> str:
    """`noise 66.5 vs σ² 65.9 ✓ (paper 81.4 vs 78.1 ✓)`; the paper's names only where its best rows differ."""
    text = f"{ours.left} {_number(ours.left_value)} vs {ours.right} {_number(ours.right_value)} {_mark(ours)}"
    if paper is None or not paper.counts:
        return text + " (paper: not compared)"
    if (paper.left, paper.right) == (ours.left, ours.right):
        return text + f" (paper {_number(paper.left_value)} vs {_number(paper.right_value)} {_mark(paper)})"
    return text + (f" (paper {paper.left} {_number(paper.left_value)} vs {paper.right} "
                   f"{_number(paper.right_value)} {_mark(paper)})")


def _missing_where(comparisons: list[Comparison], cells: pd.DataFrame) -> str:
    """The tables and datasets of the cells without our value that kept comparisons from counting."""
    used = [index for c in comparisons for index in (*c.left_cells, *c.right_cells)]
    lacking = cells.loc[used]
    lacking = lacking[lacking[OURS].isna()]
    return ", ".join(dict.fromkeys(f"Table {t} {d}" for t, d in zip(lacking["table"], lacking["dataset"],
                                                                          strict=True)))


def _counts(result: Result) -> str:
    return "; then ".join(f"{part.held} of {part.counted}" for part in result.parts)


def _claim_lines(number: int, claim: Claim, paper: Result, ours: Result, cells: pd.DataFrame) -> list[str]:
    lines = [f"### {number}. `{claim.id}` (Section {claim.section}, {claim.source})", "",
             f"> {claim.wording}", ""]
    if not claim.parts:
        return lines + [f"Verdict: **{NOT_COMPUTABLE}**: {claim.note}.", ""]
    needs = "; then ".join(part.quantifier.words for part in claim.parts)
    lines += [f"Checked as: {claim.note} — must hold in {needs}.", "",
              f"Paper: **{paper.verdict}** ({_counts(paper)} comparisons hold). "
              f"Ours: **{ours.verdict}** ({_counts(ours)} comparisons hold).", ""]
    papers = {c.key: c for c in paper.comparisons}
    lines += [f"- {c.place}: {_side_by_side(c, papers.get(c.key))}" for c in ours.comparisons if c.counts]
    uncounted = [c for c in ours.comparisons if not c.counts]
    if uncounted:
        where = _missing_where(uncounted, cells)
        lines.append(f"- {len(uncounted)} comparisons without our values ({where})")
    return lines + [""]


def _tau_text(tau: float) -> str:
    return f"{round(tau, 2) + 0.0:+.2f}" if np.isfinite(tau) else "n/a"  # + 0.0: never "-0.00"


def _rank_lines(agreement: pd.DataFrame) -> list[str]:
    lines = ["## Rank agreement", "",
             "Kendall's τ between the paper's and our ordering of the rows of each column that have both "
             f"values (n/a: fewer than {MIN_RANKED} such rows); +1 = the same order, -1 = reversed.", ""]
    for table, group in agreement.groupby("table", sort=False):
        finite = group["tau"].dropna()
        mean = f"; mean τ {_tau_text(finite.mean())} over {len(finite)} columns" if len(finite) else ""
        lines += [f"### Table {table}{mean}", "", "| column | rows with both | Kendall's τ |",
                  "|---|---|---|"]
        lines += [f"| {row.dataset} / {row.column_label} | {row.n_rows} | {_tau_text(row.tau)} |"
                  for row in group.itertuples()]
        lines.append("")
    return lines


PLURAL = {HOLDS: "hold", FAILS: "fail", NOT_ENOUGH: "not enough cells"}


def _tally(results: list[Result]) -> str:
    """`20 hold, 3 fail, 1 not enough cells`."""
    counts = pd.Series([r.verdict for r in results], dtype=str).value_counts()
    return ", ".join(f"{counts[v]} {PLURAL[v]}" for v in PLURAL if v in counts) or "none"


def summary_lines(evaluated: Evaluated, agreement: pd.DataFrame) -> list[str]:
    """REPORT.md's lines on claims.md: the verdicts counted on the paper's numbers and on ours, and the
    mean rank agreement per table."""
    computable = [(paper, ours) for claim, paper, ours in evaluated if claim.parts]
    taus = agreement.dropna(subset=["tau"]).groupby("table", sort=False)["tau"].mean()
    ranks = ", ".join(f"{table} {_tau_text(tau)}" for table, tau in taus.items()) or "no column with 3 rows"
    return [f"- claims.md: the paper's {len(evaluated)} conclusions from its tables and figures, "
            f"{len(computable)} computable from the tables: on the paper's numbers "
            f"{_tally([p for p, _ in computable])}; on ours {_tally([o for _, o in computable])}",
            f"- rank agreement with the paper (mean Kendall's τ over the columns, per table): {ranks}"]


def _markdown(cells: pd.DataFrame, evaluated: Evaluated, agreement: pd.DataFrame) -> str:
    lines = ["# The paper's claims, checked", "",
             "Each conclusion the paper draws from its tables and figures, as a statement over the tables' "
             "cells, evaluated on the paper's numbers (every computable one must hold there) and on ours. A "
             "comparison counts when all its cells have a value; a claim has `not enough cells` when fewer "
             "than half of its comparisons count, or, for a share (a majority, half, 3/4), fewer than "
             f"{MIN_COUNTED}. "
             "✓/✗: the comparison holds or not; (paper ...): the same comparison on the paper's numbers.", "",
             *summary_lines(evaluated, agreement), "",
             "| # | claim | section | source | paper | ours |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | `{claim.id}` | {claim.section} | {claim.source} | {paper.verdict} | {ours.verdict} |"
              for n, (claim, paper, ours) in enumerate(evaluated, start=1)]
    lines += ["", "## The claims", ""]
    for n, (claim, paper, ours) in enumerate(evaluated, start=1):
        lines += _claim_lines(n, claim, paper, ours, cells)
    lines += _rank_lines(agreement)
    return "\n".join(lines).rstrip() + "\n"


def claims_markdown(cells_by_table: dict[str, pd.DataFrame], claims: tuple[Claim, ...] = CLAIMS) -> str:
    """claims.md: an overview, each claim with its verdicts and the comparisons ours counted, and the
    rank agreement per table."""
    cells = all_cells(cells_by_table)
    return _markdown(cells, evaluate_all(cells, claims), rank_agreement(cells))


def write_claims(cells_by_table: dict[str, pd.DataFrame], out_dir: Path) -> list[str]:
    """Write out_dir/claims.md (`claims_markdown`); return REPORT.md's summary lines."""
    cells = all_cells(cells_by_table)
    evaluated, agreement = evaluate_all(cells), rank_agreement(cells)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "claims.md").write_text(_markdown(cells, evaluated, agreement))
    return summary_lines(evaluated, agreement)
