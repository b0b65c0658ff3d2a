"""Every experiment composes, expands to the paper's grid, and `reproduce` drives them per profile."""

import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from dsvdd_repro import reproduce
from dsvdd_repro.config import run_id, validate
from tests.conftest import CONF_DIR, ROOT

# jobs in the paper grid of each experiment (product of its sweep values)
EXPECTED_JOBS = {
    "table1": 2 * 2 * 2 * 2 * 8 * 5,
    "table2": 2 * 2 * 9 * 8 * 5,
    "table3": 2 * 10 * 1 * 9 * 8 * 5,
    "table4": 2 * 2 * 2 * 9 * 8 * 5,
    "table5": 2 * 2 * 3 * 4 * 8 * 5,
    "table6": 2 * 3 * 4 * 8 * 5,
    "table6_cifar10": 10 * 10 * 4 * 8 * 5,
    "fig1": 2 * 2 * 3 * 2 * 4 * 8 * 5,
    "fig2": 2 * 2 * 2 * 5 * 8 * 5,
}


def sweep_values(experiment: str) -> dict[str, list]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    parser = OverridesParser.create()
    params = cfg.hydra.sweeper.params
    overrides = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
    return {o.key_or_group: list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()] for o in overrides}


def test_every_experiment_is_driven_by_reproduce():
    assert set(EXPECTED_JOBS) == set(reproduce.EXPERIMENTS)
    assert {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")} == set(reproduce.EXPERIMENTS)


@pytest.mark.parametrize("experiment", sorted(EXPECTED_JOBS))
def test_experiment_expands_to_the_paper_grid(experiment):
    values = sweep_values(experiment)
    assert math.prod(len(v) for v in values.values()) == EXPECTED_JOBS[experiment]
    assert values["seed"] == [0, 1, 2, 3, 4]
    assert values["regularizer.k"] == [5, 30, 50, 60, 70, 100, 130, 200]


@pytest.mark.parametrize("experiment", sorted(EXPECTED_JOBS))
def test_first_job_of_each_experiment_composes_and_validates(experiment):
    values = sweep_values(experiment)
    # the (normal, labeled) = (0, 0) pair of table6_cifar10 is refused by design: take class 1
    first = [f"{key}={vals[1] if key == 'setup.labeled_anomaly_class' else vals[0]}" for key, vals in values.items()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", "model.weights=none", *first])
    validate(cfg)
    assert run_id(_root_=cfg)


def test_irrelevant_axes_collapse_to_unique_runs():
    """Table I's 640 jobs are 360 runs: the variance regularizer does not read k."""
    values = sweep_values("table1")
    ids = set()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for dataset in values["dataset"]:
            for variant in values["variant"]:
                for k in values["regularizer.k"]:
                    cfg = compose("config", overrides=["experiment=table1", f"dataset={dataset}",
                                                       f"variant={variant}", f"regularizer.k={k}"])
                    ids.add(run_id(_root_=cfg))
    assert len(ids) == 2 * (8 + 1)  # per dataset: 8 noise runs (one per k) + 1 variance run


def test_profile_commands():
    command = reproduce.experiment_command("table2", "smoke", "joblib", "none")
    assert command[3:8] == ["-m", "experiment=table2", "profile=smoke", "launcher=joblib", "model.weights=none"]
    assert "seed=0" in command and "regularizer.k=5" in command
    assert reproduce.experiment_command("table2", "paper", "local", "imagenet")[-1] == "trainer.progress=false"
    assert reproduce.main(["--experiments", "table9"]) == 2
    # a profile's sweep of an axis applies only where the experiment sweeps it
    table3 = reproduce.experiment_command("table3", "quick", "local", "none")
    table4 = reproduce.experiment_command("table4", "quick", "local", "none")
    assert "setup.normal_class=range(10)" in table3 and "setup.normal_class=range(10)" not in table4
    assert "regularizer.k=5,50" in table4 and "dataset.image_size=32" in table4
    assert "method.ocsvm_gamma_exponents=[-2,0,2]" in reproduce.experiment_command("table4", "smoke", "local", "none")


@pytest.mark.slow
@pytest.mark.skipif(not (os.environ.get("DSVDD_CIFAR10_ROOT") and os.environ.get("DSVDD_WIKIART_ROOT")),
                    reason="the smoke reproduction needs the offline CIFAR-10 copy and WikiArt subset")
def test_smoke_reproduction_end_to_end(tmp_path):
    """`make reproduce-tables PROFILE=smoke`: every experiment, then all six tables and both figures."""
    result = subprocess.run(
        [sys.executable, "-m", "dsvdd_repro.reproduce", "--profile", "smoke",
         "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    out = tmp_path / "results"
    for table in ("I", "II", "III", "IV", "V", "VI"):
        for suffix in ("md", "csv", "tex"):
            assert (out / f"table{table}.{suffix}").stat().st_size > 0
    assert (out / "fig1.png").stat().st_size > 1000 and (out / "fig2.png").stat().st_size > 1000
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "done").all() and set(runs["dataset"]) == {"cifar10", "wikiart"}
    cells = pd.read_csv(out / "tableIII.csv")
    assert (cells["status"] == "ok").all()  # CIFAR-10 exists here: every Table III cell has a run
    voc = pd.read_csv(out / "tableII.csv").query("dataset == 'voc2012'")
    assert (voc["status"] == "missing").all()  # no VOC2012 here: marked, not dropped
    report = (out / "REPORT.md").read_text()
    assert "wikiart" in report and "Produced by: `python -m dsvdd_repro.reproduce --profile smoke" in report


def test_auto_weights_fall_back_to_random_initialisation_when_imagenet_cannot_be_had(monkeypatch, capsys):
    from dsvdd_repro.models import weights

    def unavailable():
        raise weights.WeightsError("model.weights=imagenet: not here")

    monkeypatch.setattr(weights, "load_imagenet_state", unavailable)
    assert reproduce.resolve_weights("auto") == "none"
    assert "random initialisation" in capsys.readouterr().out
    monkeypatch.setattr(weights, "load_imagenet_state", lambda: ({}, {"weights": "imagenet"}))
    assert reproduce.resolve_weights("auto") == "imagenet"
    assert reproduce.resolve_weights("none") == "none" and reproduce.resolve_weights("/w.pth") == "/w.pth"
    assert reproduce.DEFAULT_WEIGHTS == {"paper": "imagenet", "quick": "auto", "smoke": "none"}
