"""Every experiment composes, expands to the paper's grid, and `reproduce` drives them per profile."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from dsvdd_repro import reproduce
from dsvdd_repro.runs.config import validate
from dsvdd_repro.runs.folders import run_folder
from hydra_plugins.dsvdd_repro_sweeper.grid_sweeper import expand_grid, grid_axes
from tests.conftest import CONF_DIR, ROOT

# distinct runs of each experiment's paper grid: every axis only where it applies (k for the noise
# regularizer, normal_class for one-vs-all, objective for deep SVDD), 5 seeds
EXPECTED_RUNS = {
    "table1": 2 * 2 * (2 * 8 + 2) * 5,  # datasets x strokes x (noise: weighting x k, variance: weighting)
    "table2": 2 * 2 * (5 + 2 + 8 + 1) * 5,  # datasets x blocks x (5 baselines, 2 unregularized, 8 k, variance)
    "table3": (10 + 1) * (5 + 2 + 8 + 1) * 5,  # (10 normal classes + strokes) x rows
    "table4": 2 * 2 * (5 + 2 * (2 + 8 + 1)) * 5,  # the objective applies to the deep variants only
    "table5": 2 * 2 * 3 * (2 + 8 + 1) * 5,
    "table6": 2 * 3 * (2 + 8 + 1) * 5,
    "table6_cifar10": 10 * 9 * (2 + 8 + 1) * 5,  # the 10 pairs with labeled == normal are excluded
    "fig1": 2 * 2 * 3 * 2 * (2 + 8 + 1) * 5,
    "fig2": 2 * 2 * 2 * (2 + 2 + 8) * 5,  # pooling x (OC-SVM/IF on CNN features, D. SVDD, w/ bias, 8 k)
    "ruff2018": 10 * 2 * 5,  # normal classes x (last epoch, best validation epoch): no k
    "collapse": 2 * 4 * 4 * 10 * 5,  # nets x variants x learning rates x normal classes x seeds: k fixed
    "ruff2018_ten_classes": 10 + 2 * 2,  # ten classes with seed 0, seeds 1 and 2 for classes 1 and 3
}


def expand(experiment: str, profile: str = "paper"):
    """The experiment's sweep as the grid sweeper expands it (compositions through the compose API)."""
    base = [f"experiment={experiment}", f"profile={profile}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        sweeper = compose("config", overrides=base, return_hydra_config=True).hydra.sweeper
        loader = GlobalHydra.instance().config_loader()
        axes = grid_axes([], dict(sweeper.params), dict(sweeper.restrict or {}), OverridesParser.create(),
                         lambda key: bool(loader.get_group_options(key)))
        return expand_grid(axes, lambda overrides: compose("config", overrides=[*base, *overrides]),
                           [list(entry) for entry in sweeper.get("exclude") or ()])


def test_every_experiment_is_driven_by_reproduce():
    assert set(EXPECTED_RUNS) == set(reproduce.EXPERIMENTS)
    assert {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")} == set(reproduce.EXPERIMENTS)
    # the checks beside the tables run only when named
    assert set(reproduce.EXPERIMENTS) - set(reproduce.DEFAULT_EXPERIMENTS) == {"ruff2018_ten_classes"}


@pytest.mark.parametrize("experiment", sorted(EXPECTED_RUNS))
@pytest.mark.slow
def test_experiment_expands_to_its_distinct_paper_runs_composing_per_group_choice_only(experiment):
    expansion = expand(experiment)
    assert len(expansion.jobs) == EXPECTED_RUNS[experiment]
    assert expansion.compositions < 100  # never one composition per job
    noise = [job for job in expansion.jobs if "variant=dsvdd_bias_noise" in job]
    paper_k = {f"regularizer.k={k}" for k in (5, 30, 50, 60, 70, 100, 130, 200)}
    assert {item for job in noise for item in job if item.startswith("regularizer.k=")} == (
        set() if experiment in ("ruff2018", "ruff2018_ten_classes", "collapse") else paper_k)  # none selects k
    assert not any(item.startswith("regularizer.k=") for job in expansion.jobs if "variant=dsvdd_bias_noise" not in job
                   for item in job)


@pytest.mark.parametrize("experiment", sorted(EXPECTED_RUNS))
@pytest.mark.slow
def test_the_first_job_of_each_experiment_composes_and_validates(experiment):
    first = expand(experiment, "smoke").jobs[0]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", "profile=smoke", *first])
    validate(cfg)
    assert run_folder(cfg).startswith(cfg.variant + "/")


@pytest.mark.slow
def test_the_quick_and_smoke_profiles_restrict_the_paper_axes():
    quick = expand("table2", "quick").jobs
    assert {item for job in quick for item in job if item.startswith(("seed=", "regularizer.k="))} == {
        "seed=0", "regularizer.k=5", "regularizer.k=50"}
    assert len(quick) == 2 * 2 * (5 + 2 + 2 + 1)
    smoke = expand("table6_cifar10", "smoke").jobs
    assert len(smoke) == 2 + 1 + 1 and all("setup.normal_class=0" in job for job in smoke)


def test_the_quick_profile_runs_the_original_protocol_reduced_for_two_classes():
    assert expand("ruff2018", "quick").jobs == [
        ["seed=0", "setup.normal_class=1", "variant=dsvdd_ruff2018"],
        ["seed=0", "setup.normal_class=3", "variant=dsvdd_ruff2018"],
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=ruff2018", "profile=quick", "variant=dsvdd_ruff2018"])
    assert (cfg.pretrain.epochs, cfg.trainer.epochs, cfg.profile.max_train, cfg.setup.train_fraction) == (20, 30, None, 1.0)
    assert (cfg.model.name, cfg.model.bias, cfg.trainer.batch_size, cfg.optim.weight_decay) == ("lenet_cifar10", False, 200, 5e-7)


def test_the_ten_class_check_keeps_the_quick_schedule_and_its_own_seeds():
    quick = expand("ruff2018_ten_classes", "quick").jobs
    assert len(quick) == 14 and all("variant=dsvdd_ruff2018" in job for job in quick)
    seeds = {}
    for job in quick:
        normal = next(item for item in job if item.startswith("setup.normal_class="))
        seeds.setdefault(normal, set()).add(next(item for item in job if item.startswith("seed=")))
    assert seeds == {f"setup.normal_class={c}": {"seed=0", "seed=1", "seed=2"} if c in (1, 3) else {"seed=0"}
                     for c in range(10)}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=ruff2018_ten_classes", "profile=quick", "variant=dsvdd_ruff2018"])
    assert (cfg.pretrain.epochs, cfg.trainer.epochs, cfg.profile.max_train, cfg.model.init) == (
        20, 30, None, "xavier_leaky_relu")


@pytest.mark.slow
def test_the_collapse_study_sweeps_nets_variants_and_rates_from_random_initialisation():
    quick = expand("collapse", "quick").jobs
    assert len(quick) == 2 * 4 * 4 and all("setup.normal_class=0" in job and "seed=0" in job for job in quick)
    assert {item for job in quick for item in job if item.startswith("optim.lr=")} == {
        "optim.lr=0.0001", "optim.lr=0.001", "optim.lr=0.01", "optim.lr=0.1"}
    assert len(expand("collapse", "smoke").jobs) == 2 * 4 * 2
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for net, variant, bias in (("lenet_cifar10", "dsvdd", False), ("resnet18", "dsvdd_bias_var", True)):
            cfg = compose("config", overrides=["experiment=collapse", "profile=quick", f"model={net}",
                                                f"variant={variant}", "profile.weights=imagenet"])
            validate(cfg)
            # random initialisation whatever the profile asks, one rate for the whole net, 25 epochs
            assert (cfg.model.name, cfg.model.bias, cfg.model.weights) == (net, bias, "none")
            assert (cfg.optim.backbone_lr_factor, cfg.trainer.epochs, cfg.profile.max_train) == (1.0, 25, 500)
            assert cfg.lr_schedule is None and cfg.pretrain is None


def test_profile_commands():
    command = reproduce.experiment_command("table2", "smoke", "joblib", "none", ROOT / "runs")
    assert command[3:9] == ["-m", "experiment=table2", "profile=smoke", "launcher=joblib", "profile.weights=none",
                            "trainer.progress=false"]
    assert reproduce.main(["--experiments", "table9"]) == 2
    assert {name: reproduce.profile_weights(name) for name in reproduce.PROFILES} == {
        "paper": "imagenet", "quick": "auto", "smoke": "none"}


@pytest.mark.slow
@pytest.mark.skipif(not (os.environ.get("DSVDD_CIFAR10_ROOT") and os.environ.get("DSVDD_WIKIART_ROOT")),
                    reason="the smoke reproduction needs the offline CIFAR-10 copy and WikiArt subset")
def test_smoke_reproduction_end_to_end(tmp_path):
    """`make reproduce-tables PROFILE=smoke LAUNCHER=joblib`: every experiment (two runs at once, as
    the quick profile is run here), then all six tables and both figures."""
    result = subprocess.run(
        [sys.executable, "-m", "dsvdd_repro.reproduce", "--profile", "smoke", "--launcher", "joblib",
         "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
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
    assert "wikiart" in report and "Produced by: `python -m dsvdd_repro.reproduce --profile smoke --launcher joblib" in report


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

