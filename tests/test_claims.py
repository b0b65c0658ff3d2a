"""The paper's claims as statements over table cells (dsvdd_repro/report/claims.py): each holds on the
published numbers, holds on a small table of the cells it reads and fails once those are changed
against it, and says `not enough cells` without our values; the statement kinds and the not-enough
rule on hand-built tables; Kendall's tau on a hand-checked example; claims.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsvdd_repro.report import claims as C
from dsvdd_repro.report.collect import collect_runs
from dsvdd_repro.report.published import load_published, table_names
from dsvdd_repro.report.tables import table_cells


@pytest.fixture(scope="module")
def published_tables() -> dict[str, pd.DataFrame]:
    """Every table's cells with the paper's numbers and no run of ours (`table_cells` on no runs)."""
    published = load_published()
    runs = collect_runs(Path("/nonexistent-runs"), published)
    return {table: table_cells(runs, published, table) for table in table_names(published)}


@pytest.fixture(scope="module")
def published_cells(published_tables) -> pd.DataFrame:
    return C.all_cells(published_tables)


COMPUTABLE = [claim for claim in C.CLAIMS if claim.parts]


def test_the_claims_are_named_once_and_say_where_they_stand():
    ids = [claim.id for claim in C.CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(claim.section in {"VI", "VII"} and claim.wording and claim.note for claim in C.CLAIMS)
    assert {claim.source for claim in C.CLAIMS} >= {"Table I", "Table II", "Table III", "Table V", "Table VI",
                                                    "Fig. 2"}


@pytest.mark.parametrize("claim", C.CLAIMS, ids=lambda claim: claim.id)
def test_every_claim_holds_on_the_published_numbers(claim, published_cells):
    result = C.evaluate(claim, published_cells, C.PAPER)
    assert result.verdict == (C.HOLDS if claim.parts else C.NOT_COMPUTABLE), result


# ---- each claim on a small table of the cells it reads: as published (holds), changed against it (fails)


def set_ours(value: float, **where: tuple) -> callable:
    """A change of our values: `value` in the cells matching `where` (column -> values)."""

    def change(cells: pd.DataFrame) -> pd.DataFrame:
        mask = pd.Series(True, index=cells.index)
        for column, values in where.items():
            mask &= cells[column].isin(values)
        assert mask.any(), where
        return cells.assign(ours_mean=cells["ours_mean"].where(~mask, value))

    return change


def with_gain(variant: str, gain) -> callable:
    """Our `variant` set to D. SVDD's value plus gain(lr) in each Table V cell."""

    def change(cells: pd.DataFrame) -> pd.DataFrame:
        cells = cells.copy()
        references = cells[cells["variant"] == C.DSVDD]
        reference = references.set_index(["dataset", "test_anomaly", "lr"])["ours_mean"]
        for index, cell in cells[cells["variant"] == variant].iterrows():
            at = (cell["dataset"], cell["test_anomaly"], cell["lr"])
            cells.at[index, "ours_mean"] = reference[at] + gain(cell["lr"])
        return cells

    return change


NOISE, VAR, GEO = (C.NOISE,), (C.VAR,), (C.GEO,)
AGAINST = {  # per claim, a change of the cells it reads that makes it fail
    "adaptive-weighting": set_ours(0.0, weighting=("adaptive",)),
    "geo-best-block-perm": set_ours(0.0, variant=GEO),
    "geo-best-one-vs-all": set_ours(0.0, variant=GEO),
    "regularized-second-block-perm": set_ours(0.0, variant=C.REGULARIZED),
    "ocsvm-cnn-second-one-vs-all": set_ours(0.0, variant=("ocsvm_cnn",)),
    "noise-over-variance": set_ours(0.0, variant=NOISE),
    "pca-over-cnn-sometimes": set_ours(0.0, variant=("ocsvm_pca", "iforest_pca")),
    "geo-weak-on-strokes": set_ours(100.0, variant=GEO),
    "variance-best-on-voc2012": set_ours(0.0, variant=VAR),
    "noise-best-on-cifar10-wikiart": set_ours(0.0, variant=NOISE),
    "easier-settings-better": set_ours(0.0, test_anomaly=("block_perm:8", "strokes:9")),
    "low-lr-better": set_ours(0.0, lr=(0.001,)),
    "noise-over-dsvdd-across-lr": set_ours(0.0, variant=NOISE),
    "variance-below-noise-across-lr": set_ours(0.0, variant=NOISE),
    "variance-over-dsvdd-half-high-lr": set_ours(0.0, variant=VAR),
    "noise-gain-grows-with-lr": with_gain(C.NOISE, lambda lr: -100 * lr),  # the gain falls with lr
    "variance-gain-no-trend": with_gain(C.VAR, lambda lr: 100 * lr),  # a clear trend: grows with lr
    "noise-best-semi-one-vs-all": set_ours(0.0, variant=NOISE),
    "block-perm-training-generalizes": set_ours(0.0, train_anomaly=("block_perm:8",)),
    "noise-over-variance-semi": set_ours(0.0, variant=NOISE),
    "regularizers-best-semi": set_ours(0.0, variant=C.REGULARIZED),
    "noise-generally-better": set_ours(0.0, variant=NOISE),
    "regularizers-above-geo-on-strokes": set_ours(100.0, variant=GEO),
    "regularized-beat-dsvdd-and-shallow": set_ours(0.0, variant=C.REGULARIZED),
}


def test_every_computable_claim_has_a_case_against_it():
    assert set(AGAINST) == {claim.id for claim in COMPUTABLE}


def small_table(claim: C.Claim, published_cells: pd.DataFrame) -> pd.DataFrame:
    """The cells the claim reads, ours equal to the paper's."""
    used = {index for c in C.evaluate(claim, published_cells).comparisons for index in (*c.left_cells,
                                                                                          *c.right_cells)}
    cells = published_cells.loc[sorted(used)]
    return cells.assign(ours_mean=cells["paper_mean"])


@pytest.mark.parametrize("claim", COMPUTABLE, ids=lambda claim: claim.id)
def test_each_claim_holds_on_its_cells_and_fails_when_they_turn_against_it(claim, published_cells):
    cells = small_table(claim, published_cells)
    assert len(cells) < len(published_cells)
    assert C.evaluate(claim, cells, C.OURS).verdict == C.HOLDS
    assert C.evaluate(claim, AGAINST[claim.id](cells), C.OURS).verdict == C.FAILS


@pytest.mark.parametrize("claim", COMPUTABLE, ids=lambda claim: claim.id)
def test_each_claim_has_not_enough_cells_without_our_values(claim, published_cells):
    assert C.evaluate(claim, published_cells, C.OURS).verdict == C.NOT_ENOUGH


# ---- the statement kinds on hand-built tables


def cell(table: str, variant: str, column: str, paper: float, ours: float = np.nan, *,
         dataset: str = "wikiart", objective: str = "one_class", lr: float = 0.001, weighting: str = "",
         anomaly: str = "strokes:5", setup: str = "alteration") -> dict:
    return {"table": table, "variant": variant, "row_label": variant, "column_label": column,
            "dataset": dataset, "setup": setup, "train_anomaly": "", "val_anomaly": anomaly,
            "test_anomaly": anomaly, "objective": objective, "lr": lr if objective else np.nan, "weighting": weighting,
            "paper_mean": paper, "ours_mean": ours}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_pairs_compare_the_cells_of_one_column():
    cells = frame(cell("VI", C.NOISE, "A", 90.0, 60.0), cell("VI", C.VAR, "A", 80.0, 70.0),
                  cell("VI", C.NOISE, "B", 85.0), cell("VI", C.VAR, "B", 86.0),
                  cell("VI", C.DSVDD, "A", 99.0, 99.0))
    statement = C.pairs(("VI",), *C.variants(C.NOISE, C.VAR))
    paper = statement(cells, C.PAPER)
    assert [(c.place, c.left, c.right, c.holds) for c in paper] == [
        ("Table VI, wikiart / A", "noise", "σ²", True), ("Table VI, wikiart / B", "noise", "σ²", False)]
    ours = statement(cells, C.OURS)
    assert [c.counts for c in ours] == [True, False] and not ours[0].holds
    assert [c.key for c in ours] == [c.key for c in paper]  # the same comparisons in both columns


def test_best_of_splits_table_iv_by_objective_with_the_baselines_in_both_blocks():
    cells = frame(cell("IV", C.GEO, "Strokes 5", 70.0, objective=""),
                  cell("IV", C.DSVDD, "Strokes 5", 75.0, objective="soft_boundary"),
                  cell("IV", C.NOISE, "Strokes 5", 76.0, objective="soft_boundary"),
                  cell("IV", C.DSVDD, "Strokes 5", 80.0, objective="one_class"),
                  cell("IV", C.NOISE, "Strokes 5", 80.0, objective="one_class"))
    strict = C.best_of(("IV",), (C.NOISE,))(cells, C.PAPER)
    assert [c.place for c in strict] == ["Table IV, wikiart / Strokes 5 / soft-bound.",
                                         "Table IV, wikiart / Strokes 5 / one-class"]
    assert all(0 in c.right_cells for c in strict)  # GEO in both blocks
    assert [c.holds for c in strict] == [True, False]  # 80.0 vs 80.0: a tie is no win
    assert [c.holds for c in C.best_of(("IV",), (C.NOISE,), ties=True)(cells, C.PAPER)] == [True, True]
    beaten = C.best_of(("IV",), C.OTHERS, (C.GEO,))(cells, C.PAPER)  # anyone above GEO
    assert [(c.left, c.holds) for c in beaten] == [("noise", True), ("D. SVDD", True)]
    without_geo = C.best_of(("IV",), (C.DSVDD,), exclude=(C.GEO, C.NOISE))(cells, C.PAPER)
    assert without_geo == []  # nothing left to compare with


def test_best_of_does_not_count_a_setting_with_a_row_without_value():
    cells = frame(cell("II", C.GEO, "A", 80.0, 70.0), cell("II", C.DSVDD, "A", 60.0),
                  cell("II", C.NOISE, "A", 65.0, 66.0))
    (comparison,) = C.best_of(("II",), (C.GEO,))(cells, C.OURS)
    assert not comparison.counts and comparison.right.startswith("best of")


def test_mostly_asks_which_contender_won_only_where_they_won():
    rows = []
    columns = (("A", 90, 80, 70), ("B", 80, 90, 70), ("C", 60, 65, 70), ("D", 88, 85, 70))
    for column, noise, var, dsvdd in columns:
        rows += [cell("VI", C.NOISE, column, noise), cell("VI", C.VAR, column, var),
                 cell("VI", C.DSVDD, column, dsvdd)]
    comparisons = C.mostly(("VI",), C.REGULARIZED, C.NOISE)(frame(*rows), C.PAPER)
    assert [c.place.rsplit("/ ", 1)[1] for c in comparisons] == ["A", "B", "D"]  # C was lost
    assert [c.holds for c in comparisons] == [True, False, True]


def table_v(gains: dict[tuple[str, float], float], reference: float = 70.0) -> pd.DataFrame:
    """Table V cells of D. SVDD and noise whose gain per (panel, lr) is given (NaN: no value of ours)."""
    rows = []
    for (panel, lr), gain in gains.items():
        at = {"lr": lr, "anomaly": panel, "objective": "soft_boundary"}
        rows += [cell("V", C.DSVDD, f"{lr:g} / {panel}", reference, reference, **at),
                 cell("V", C.NOISE, f"{lr:g} / {panel}", reference + gain, reference + gain, **at)]
    return frame(*rows)


def test_gain_steps_average_the_complete_panels_and_need_half_of_them():
    gains = {("bp2", 0.001): 1.0, ("bp2", 0.01): 3.0, ("bp2", 0.1): 2.0,
             ("bp8", 0.001): 1.0, ("bp8", 0.01): 1.0, ("bp8", 0.1): 8.0}
    steps = C.gain_steps("V", C.NOISE)(table_v(gains), C.OURS)
    assert [(c.left, c.right) for c in steps] == [("lr 0.01", "lr 0.001"), ("lr 0.1", "lr 0.01")]
    assert [(c.left_value, c.right_value) for c in steps] == [(2.0, 1.0), (5.0, 2.0)]
    assert C.judge(steps, C.EVERY).verdict == C.HOLDS and C.judge(steps, C.MIXED).verdict == C.FAILS
    cells = table_v({**gains, ("bp8x", 0.001): 0.0, ("bp8y", 0.001): 0.0})
    cells.loc[cells["test_anomaly"].isin(["bp8x", "bp8y"]), "ours_mean"] = np.nan  # 2 of 4 panels complete
    assert C.judge(C.gain_steps("V", C.NOISE)(cells, C.OURS), C.EVERY).verdict == C.HOLDS
    cells.loc[cells["test_anomaly"] == "bp8", "ours_mean"] = np.nan  # 1 of 4
    assert C.judge(C.gain_steps("V", C.NOISE)(cells, C.OURS), C.EVERY).verdict == C.NOT_ENOUGH


def comparisons(*outcomes: bool | None) -> list[C.Comparison]:
    """True: holds, False: fails, None: a cell without value."""
    values = {True: (2.0, 1.0), False: (1.0, 2.0), None: (np.nan, 1.0)}
    return [C.Comparison("x", "a", "b", *values[outcome]) for outcome in outcomes]


def test_the_not_enough_cells_rule():
    # a majority needs 3 comparisons that count, and at least half of those the claim needs
    assert C.judge(comparisons(True, True, None, None), C.MAJORITY).verdict == C.NOT_ENOUGH
    assert C.judge(comparisons(True, True, False, None), C.MAJORITY).verdict == C.HOLDS
    assert C.judge(comparisons(True, False, False, None), C.MAJORITY).verdict == C.FAILS
    assert C.judge(comparisons(True, True, True, None, None, None, None), C.MAJORITY).verdict == C.NOT_ENOUGH
    assert C.judge(comparisons(True, False), C.AT_LEAST_HALF).verdict == C.NOT_ENOUGH
    assert C.judge(comparisons(True, False, True, False), C.AT_LEAST_HALF).verdict == C.HOLDS
    assert C.judge(comparisons(True, True, True, False), C.ALMOST_ALL).verdict == C.HOLDS
    assert C.judge(comparisons(True, True, False, False), C.ALMOST_ALL).verdict == C.FAILS
    # 'every' and 'some' need no count, only half of the comparisons
    assert C.judge(comparisons(True), C.EVERY).verdict == C.HOLDS
    assert C.judge(comparisons(True, None), C.EVERY).verdict == C.HOLDS
    assert C.judge(comparisons(True, None, None), C.EVERY).verdict == C.NOT_ENOUGH
    assert C.judge(comparisons(False, False, True), C.SOME).verdict == C.HOLDS
    assert C.judge([], C.EVERY).verdict == C.NOT_ENOUGH


def test_a_claim_fails_when_one_part_fails_even_if_another_lacks_cells():
    parts = (C.Part(lambda cells, value: comparisons(False), C.EVERY),
             C.Part(lambda cells, value: comparisons(None), C.EVERY))
    claim = C.Claim("x", "VI", "Table VI", "words", parts)
    assert C.evaluate(claim, pd.DataFrame()).verdict == C.FAILS
    lacking = replace_part(claim, 0, lambda cells, value: comparisons(True))
    assert C.evaluate(lacking, pd.DataFrame()).verdict == C.NOT_ENOUGH


def replace_part(claim: C.Claim, index: int, statement) -> C.Claim:
    parts = list(claim.parts)
    parts[index] = C.Part(statement, parts[index].quantifier)
    return C.Claim(claim.id, claim.section, claim.source, claim.wording, tuple(parts))


# ---- rank agreement and claims.md


def test_kendall_tau_on_a_hand_checked_column():
    # paper 1 < 2 < 3 < 4, ours swaps the middle two: 5 concordant and 1 discordant pairs of 6 -> 4/6
    rows = [cell("II", v, "A", paper, ours) for v, paper, ours in
            (("a", 1.0, 10.0), ("b", 2.0, 30.0), ("c", 3.0, 20.0), ("d", 4.0, 40.0), ("e", 5.0, np.nan))]
    rows += [cell("II", v, "B", paper, ours) for v, paper, ours in (("a", 1.0, 2.0), ("b", 2.0, 1.0))]
    agreement = C.rank_agreement(frame(*rows))
    first, second = agreement.itertuples()
    assert (first.column_label, first.n_rows) == ("A", 4) and first.tau == pytest.approx(2 / 3)
    assert (second.n_rows, np.isnan(second.tau)) == (2, True)  # fewer than 3 rows: no tau


def test_write_claims_writes_claims_md_and_returns_the_summary(tmp_path, published_tables):
    ours = {table: cells.assign(ours_mean=cells["paper_mean"]) for table, cells in published_tables.items()}
    ours["I"] = ours["I"].assign(ours_mean=np.nan)  # Table I not reproduced
    lines = C.write_claims(ours, tmp_path / "out")
    text = (tmp_path / "out" / "claims.md").read_text()
    assert all(f"`{claim.id}`" in text for claim in C.CLAIMS)
    assert C.NOT_COMPUTABLE in text and "## Rank agreement" in text and "| +1.00 |" in text
    assert "8 comparisons without our values (Table I voc2012, Table I wikiart)" in text
    n_computable = len(COMPUTABLE)
    assert lines[0].endswith(f"on the paper's numbers {n_computable} hold; on ours {n_computable - 1} hold, "
                             "1 not enough cells")
    per_table = lines[1].split(": ", 1)[1].split(", ")
    assert per_table == [f"{table} +1.00" for table in ("II", "III", "IV", "V", "VI")]  # Table I: no tau
    assert C.claims_markdown(ours) == text
