"""k is chosen per cell (the axes the caller names) by mean validation AUC over seeds, never by test AUC."""

import json

import pandas as pd
import pytest

from dsvdd_repro.report.selection import choose, default_cell_axes, main, select_by_validation


def run(k, seed, val, test, normal_class=0, status="done", **axes):
    return {"status": status, "method": "dsvdd", "variant": "dsvdd_bias_noise", "regularizer": "noise",
            "normal_class": normal_class, "anomaly": None, "lr": 0.001, "k": k, "seed": seed, "val_auc": val,
            "test_auc": test, "history": [], **axes}


def frame(runs):
    return pd.DataFrame(runs)


def chosen_k(selected):
    return sorted(set(selected["k"]))


def test_validation_mean_over_seeds_chooses_and_test_auc_is_ignored():
    runs = frame([
        run(5, 0, 0.70, 0.99), run(5, 1, 0.72, 0.99),  # best test AUC, worse validation
        run(30, 0, 0.75, 0.60), run(30, 1, 0.71, 0.60),  # best mean validation (0.73)
        run(50, 0, 0.80, 0.50), run(50, 1, 0.40, 0.50),  # best single seed, worse mean
    ])
    selected = select_by_validation(runs, "k", ["normal_class"])
    assert list(selected.index) == [2, 3]  # the two k=30 runs, in their order
    row = choose(runs, "k", ["normal_class"]).iloc[0]
    assert row["k"] == 30 and row["val_auc_mean"] == pytest.approx(0.73) and row["n_seeds"] == 2
    assert row["test_auc_mean"] == pytest.approx(0.60) and set(row["candidates"]) == {5, 30, 50}


def test_ties_go_to_the_smaller_value_even_through_float_noise():
    exact = frame([run(200, 0, 0.6, 0.9), run(5, 0, 0.6, 0.1)])
    assert chosen_k(select_by_validation(exact, "k", [])) == [5]
    # (0.1 + 0.2) / 2 != 0.15 in floating point: still a tie
    noisy = frame([run(30, 0, 0.1, 0.9), run(30, 1, 0.2, 0.9), run(70, 0, 0.15, 0.1), run(70, 1, 0.15, 0.1)])
    assert chosen_k(select_by_validation(noisy, "k", [])) == [30]


def test_cells_are_the_named_axes_and_other_axes_are_averaged_over():
    runs = frame([
        # lr 0.001: k=5 wins on class 0, k=30 on class 1, k=5 on their mean (0.65 vs 0.6)
        run(5, 0, 0.9, 0.5, normal_class=0), run(30, 0, 0.3, 0.5, normal_class=0),
        run(5, 0, 0.4, 0.5, normal_class=1), run(30, 0, 0.9, 0.5, normal_class=1),
        # lr 0.01: k=50 wins
        run(5, 0, 0.5, 0.9, lr=0.01), run(50, 0, 0.8, 0.1, lr=0.01),
    ])
    by_lr = select_by_validation(runs, "k", ["lr"])
    assert chosen_k(by_lr[by_lr["lr"] == 0.001]) == [5] and len(by_lr[by_lr["lr"] == 0.001]) == 2
    assert chosen_k(by_lr[by_lr["lr"] == 0.01]) == [50]
    by_class = select_by_validation(runs, "k", ["lr", "normal_class"])
    at_low_lr = by_class[by_class["lr"] == 0.001]
    assert at_low_lr.set_index("normal_class")["k"].to_dict() == {0: 5, 1: 30}
    choices = choose(runs, "k", ["lr", "normal_class"])
    expected = [[0.001, 0, 5], [0.001, 1, 30], [0.01, 0, 50]]
    assert choices[["lr", "normal_class", "k"]].values.tolist() == expected


def test_runs_without_the_parameter_pass_through_and_missing_axes_are_named():
    runs = frame([run(None, 0, 0.9, 0.9, variant="dsvdd", regularizer="none"), run(5, 0, 0.5, 0.5),
                  run(30, 0, 0.6, 0.5)])
    selected = select_by_validation(runs, "k", ["variant"])
    assert list(selected.index) == [0, 2]
    assert select_by_validation(runs.iloc[:0], "k", ["variant"]).empty
    with pytest.raises(ValueError, match="'dataset'"):
        select_by_validation(runs, "k", ["dataset"])


def write(root, runs):
    for i, metrics in enumerate(runs):
        folder = root / f"run{i}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(metrics))


def test_command_line_reads_run_folders_with_explicit_default_cell_axes(tmp_path, capsys):
    axes = default_cell_axes()
    assert "seed" not in axes and "data_seed" not in axes
    # the swept hyper-parameters the nodes declare are axes (the soft-boundary nu, the regularizers')
    assert {"dataset", "variant", "lr", "normal_class", "nu", "k", "d0", "r", "weighting"} <= set(axes)
    write(tmp_path, [run(5, 0, 0.6, 0.5), run(30, 0, 0.8, 0.5), run(5, 0, 0.9, 0.5, normal_class=1),
                     run(30, 0, 0.1, 0.5, normal_class=1), run(200, 0, 1.0, 1.0, status="failed")])
    assert main([str(tmp_path), "--out", str(tmp_path / "sel.csv")]) == 0
    capsys.readouterr()
    selection = pd.read_csv(tmp_path / "sel.csv")
    assert selection.set_index("normal_class")["k"].to_dict() == {0: 30, 1: 5}  # one cell per class
    assert main([str(tmp_path), "--cell", "variant", "--out", str(tmp_path / "pooled.csv")]) == 0
    assert pd.read_csv(tmp_path / "pooled.csv")["k"].tolist() == [5]  # classes averaged: 0.75 vs 0.45
    assert main([str(tmp_path / "empty")]) == 2
