"""k is chosen per cell by mean validation AUC over seeds, never by test AUC."""

import json

import pytest

from dsvdd_repro.selection import main, select_by_validation


def run(k, seed, val, test, normal_class=0, status="done"):
    return {"status": status, "method": "dsvdd", "regularizer": "noise", "normal_class": normal_class,
            "anomaly": None, "k": k, "seed": seed, "val_auc": val, "test_auc": test, "history": []}


def test_selection_uses_validation_mean_over_seeds_and_ignores_test():
    runs = [
        run(5, 0, 0.70, 0.99), run(5, 1, 0.72, 0.99),  # best test AUC, worse validation
        run(30, 0, 0.75, 0.60), run(30, 1, 0.71, 0.60),  # best mean validation (0.73)
        run(50, 0, 0.80, 0.50), run(50, 1, 0.40, 0.50),  # best single seed, worse mean
        run(100, 0, 0.99, 0.99, status="failed"),
    ]
    selection = select_by_validation(runs, "k")
    assert len(selection) == 1
    row = selection.iloc[0]
    assert row["k"] == 30 and row["val_auc_mean"] == pytest.approx(0.73) and row["n_seeds"] == 2
    assert row["test_auc_mean"] == pytest.approx(0.60)
    assert set(row["candidates"]) == {5, 30, 50}


def test_one_choice_per_cell_and_ties_go_to_the_smaller_k():
    runs = [run(5, 0, 0.6, 0.5, normal_class=1), run(200, 0, 0.6, 0.5, normal_class=1),
            run(5, 0, 0.6, 0.5, normal_class=2), run(70, 0, 0.9, 0.5, normal_class=2)]
    selection = select_by_validation(runs, "k").set_index("normal_class")
    assert selection.loc["1", "k"] == 5 and selection.loc["2", "k"] == 70


def test_command_line_reads_run_folders(tmp_path, capsys):
    for i, (k, val) in enumerate([(5, 0.6), (30, 0.8)]):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps(run(k, 0, val, 0.5)))
    assert main([str(tmp_path), "--out", str(tmp_path / "sel.csv")]) == 0
    assert "30" in capsys.readouterr().out and (tmp_path / "sel.csv").is_file()
    assert main([str(tmp_path / "empty")]) == 2
