"""The grid sweeper (hydra_plugins/dsvdd_repro_sweeper/grid_sweeper.py, `hydra/sweeper=grid`).

Self-contained: the app under tests/sweeper_conf/ (groups variant, loss, penalty, experiment,
profile) stands in for dsvdd_repro's config tree, so these tests do not depend on it. The expansion is
tested with a fake composer (exact job lists, compositions counted) and with the app's real
compositions; the sweeper itself by running the app with `-m` (basic and joblib launchers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.dsvdd_repro_sweeper import grid_sweeper
from hydra_plugins.dsvdd_repro_sweeper.grid_sweeper import (
    GridSweeper,
    expand_grid,
    grid_axes,
    sweep_jobs,
)


def Axis(*args, **kwargs):  # noqa: N802 (stands for the class)
    """The sweeper module's Axis as it is now: Hydra's plugin scan re-executes the module in place,
    so a class imported before a composition is no longer the one its functions build."""
    return grid_sweeper.Axis(*args, **kwargs)

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "sweeper_conf" / "app.py"
CONF = APP.parent / "conf"
GROUPS = {"variant", "loss", "penalty", "experiment", "profile"}

# The app's defaults and variants (tests/sweeper_conf/conf), for the fake composer.
DEFAULTS = {"loss": "one_class", "penalty": "noise", "variant": None}
VARIANTS = {
    "base": {},
    "bias": {},
    "var": {"penalty": "variance"},
    "flat": {"penalty": None, "loss": None},
}
OPTIONS = {
    "loss": {"one_class": {"name": "one_class"}, "soft_boundary": {"name": "soft_boundary", "nu": 0.1}},
    "penalty": {"noise": {"name": "noise", "k": 5}, "variance": {"name": "variance", "weight": 1.0}},
}


class FakeComposer:
    """Composes the app's config from group overrides as Hydra would (command line > variant > default);
    value overrides are not needed to decide which axes apply. Records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, overrides: list[str]) -> DictConfig:
        self.calls.append(list(overrides))
        given = dict(override.split("=", 1) for override in overrides)
        choices = dict(DEFAULTS)
        if "variant" in given:
            choices.update(VARIANTS[given["variant"]], variant=given["variant"])
        choices.update({group: given[group] for group in OPTIONS if group in given})
        cfg = {group: OPTIONS[group][choices[group]] for group in OPTIONS if choices[group] is not None}
        return OmegaConf.create(
            {
                **cfg,
                "seed": 0,
                "data": {"normal_class": 0, "labeled": 0},
                "hydra": {"runtime": {"choices": choices}},
            }
        )


GRID = ["variant=base,flat,var", "loss=one_class,soft_boundary", "penalty.k=5,30", "seed=3"]
GRID_JOBS = [
    ["variant=base", "loss=one_class", "penalty.k=5", "seed=3"],
    ["variant=base", "loss=one_class", "penalty.k=30", "seed=3"],
    ["variant=base", "loss=soft_boundary", "penalty.k=5", "seed=3"],
    ["variant=base", "loss=soft_boundary", "penalty.k=30", "seed=3"],
    ["variant=flat", "seed=3"],
    ["variant=var", "loss=one_class", "seed=3"],
    ["variant=var", "loss=soft_boundary", "seed=3"],
]

def axes(*arguments: str, params: dict | None = None, restrict: dict | None = None) -> list[Axis]:
    return grid_axes(
        list(arguments), params or {}, restrict or {}, OverridesParser.create(), GROUPS.__contains__
    )


def test_an_axis_applies_only_to_the_jobs_whose_config_has_it():
    jobs = expand_grid(axes("variant=flat,base", "penalty.k=5,30"), FakeComposer()).jobs
    assert jobs == [
        ["variant=flat"],
        ["variant=base", "penalty.k=5"],
        ["variant=base", "penalty.k=30"],
    ]


def test_a_group_a_variant_removed_is_not_put_back():
    expansion = expand_grid(axes(*GRID), FakeComposer())
    assert expansion.points == 12
    assert expansion.jobs == GRID_JOBS


def test_a_group_axis_without_a_variant_applies_and_fixed_overrides_apply_to_every_job():
    # penalty=noise,variance puts back k for its own choices; a fixed override is never dropped
    jobs = expand_grid(
        axes("penalty=noise,variance", "penalty.k=5,30", "seed=1"), FakeComposer()
    ).jobs
    assert jobs == [
        ["penalty=noise", "penalty.k=5", "seed=1"],
        ["penalty=noise", "penalty.k=30", "seed=1"],
        ["penalty=variance", "seed=1"],
    ]


def test_compositions_are_per_group_combination_and_cached():
    composer = FakeComposer()
    grid = axes(
        "variant=base,bias,var,flat",
        "penalty.k=range(10)",
        "seed=range(10)",
        "data.normal_class=range(8)",
        "data.labeled=range(5)",
    )
    tic = time.perf_counter()
    expansion = expand_grid(grid, composer)
    elapsed = time.perf_counter() - tic
    print(
        f"\nfake composer: {expansion.points} grid points, {len(expansion.jobs)} jobs, "
        f"{expansion.compositions} compositions, {elapsed:.3f} s"
    )
    assert expansion.points == 16_000
    assert len(expansion.jobs) == 2 * 4000 + 2 * 400  # var and flat have no k
    # the config without swept groups (variant is null there, so its axis applies without more
    # compositions), then one per variant
    assert composer.calls == [[], ["variant=base"], ["variant=bias"], ["variant=var"], ["variant=flat"]]
    assert expansion.compositions == 5


def test_without_group_configs_are_cached_across_combinations():
    composer = FakeComposer()
    expansion = expand_grid(
        axes("variant=base,flat", "loss=one_class,soft_boundary", "seed=0,1"), composer
    )
    assert len(composer.calls) == len({tuple(call) for call in composer.calls}) == expansion.compositions
    # [], without loss: [variant=base], [variant=flat]; the jobs' group configs: 2 for base (the
    # flat one without loss is [variant=flat] again)
    assert composer.calls == [
        [],
        ["variant=base"],
        ["variant=base", "loss=one_class"],
        ["variant=base", "loss=soft_boundary"],
        ["variant=flat"],
    ]
    assert len(expansion.jobs) == 2 * 2 + 2


def test_command_line_wins_in_params_order_and_restrict_replaces_params_sweeps_only():
    grid = axes(
        "seed=7",
        "data.normal_class=1,2",
        "model.bias=true",
        "name='a,b'",
        params={"variant": "base,flat", "penalty.k": "5,30", "seed": "range(2)"},
        restrict={
            "penalty.k": "5",
            "data.normal_class": "3",
            "model.bias": "false",
            "data.labeled": "1,2",
        },
    )
    assert grid == [
        Axis("variant", ("variant=base", "variant=flat"), group=True),
        Axis("penalty.k", ("penalty.k=5",)),
        Axis("seed", ("seed=7",)),  # params' axis, the command line's value
        Axis("data.normal_class", ("data.normal_class=1", "data.normal_class=2")),  # the user's, not restrict's
        Axis("model.bias", ("model.bias=true",), checked=False),
        Axis("name", ("name='a,b'",), checked=False),
    ]


def test_sweep_syntax_is_hydras():
    grid = axes("x=range(1,3)", "name='a,b',c", "+w=1,2", "v=[1,2],[3]")
    assert [axis.overrides for axis in grid] == [
        ("x=1", "x=2"),
        ("name='a,b'", "name=c"),
        ("+w=1", "+w=2"),
        ("v=[1,2]", "v=[3]"),
    ]
    assert [axis.checked for axis in grid] == [True, True, False, True]
    with pytest.raises(HydraException, match="INTERVAL_SWEEP"):
        axes("lr=interval(0,1)")


def test_real_compositions_agree_with_the_fake_and_are_few():
    arguments = [
        "variant=base,bias,var,flat",
        "penalty.k=range(10)",
        "seed=range(10)",
        "data.normal_class=range(8)",
        "data.labeled=range(5)",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", arguments, run_mode=RunMode.MULTIRUN)
        tic = time.perf_counter()
        expansion = sweep_jobs(arguments, {}, {}, loader, master)
        elapsed = time.perf_counter() - tic
    print(
        f"\nreal compositions: {expansion.points} grid points, {len(expansion.jobs)} jobs, "
        f"{expansion.compositions} compositions, {elapsed:.2f} s"
    )
    assert expansion.points == 16_000 and expansion.compositions == 5
    assert expansion.jobs == expand_grid(axes(*arguments), FakeComposer()).jobs


def launch_app(sweep_dir: Path, *args: str) -> tuple[int, list[dict], str]:
    """`python app.py -m ARGS`: its exit status, the jobs' records by job number, the console output."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, str(APP), "-m", f"hydra.sweep.dir={sweep_dir}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    records = [json.loads(path.read_text()) for path in sweep_dir.glob("*/job.json")]
    return proc.returncode, sorted(records, key=lambda record: record["num"]), proc.stdout + proc.stderr


def run_app(sweep_dir: Path, *args: str) -> tuple[list[dict], str]:
    """`python app.py -m ARGS`, which must succeed; the jobs' records by job number, and the console output."""
    code, records, output = launch_app(sweep_dir, *args)
    assert code == 0, output
    assert (sweep_dir / "multirun.yaml").is_file()
    return records, output




class FakeLauncher:
    def __init__(self) -> None:
        self.calls: list[tuple[list[list[str]], int]] = []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append((list(job_overrides), initial_job_idx))
        return [SimpleNamespace(return_value=None) for _ in job_overrides]


@pytest.mark.parametrize("max_batch_size", [None, 3])
@pytest.mark.slow
def test_batches_are_launched_in_order_and_never_empty(tmp_path, max_batch_size):
    def sweep(*arguments: str) -> tuple[list, FakeLauncher]:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()
            master = loader.load_configuration(
                "config", [f"hydra.sweep.dir={tmp_path}", *arguments], run_mode=RunMode.MULTIRUN
            )
            sweeper = GridSweeper(max_batch_size=max_batch_size)
            sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
            sweeper.config, sweeper.launcher = master, FakeLauncher()
            return sweeper.sweep(list(arguments)), sweeper.launcher

    returns, launcher = sweep(*GRID)
    batches = [GRID_JOBS] if max_batch_size is None else [GRID_JOBS[0:3], GRID_JOBS[3:6], GRID_JOBS[6:]]
    assert launcher.calls == [(batch, 3 * i) for i, batch in enumerate(batches)]
    assert [len(results) for results in returns] == [len(batch) for batch in batches]
    assert (tmp_path / "multirun.yaml").is_file()
    returns, launcher = sweep("variant=base,flat", "seed=range(0)")
    assert returns == [] and launcher.calls == []


@pytest.mark.slow
def test_the_sweeper_launches_each_applicable_job_once(tmp_path):
    records, output = run_app(tmp_path, *GRID)
    assert [record["overrides"] for record in records] == GRID_JOBS
    assert "sweep: 12 grid points are 7 distinct runs" in output
    flat = records[4]["config"]
    assert "loss" not in flat and "penalty" not in flat and flat["seed"] == 3
    assert records[0]["config"]["penalty"] == {"name": "noise", "k": 5}


@pytest.mark.slow
def test_params_restrict_and_batches_of_one(tmp_path):
    records, output = run_app(
        tmp_path, "experiment=grid", "profile=small", "data.labeled=2", "hydra.sweeper.max_batch_size=1"
    )
    # data.labeled: the command line's value wins over the profile's restriction
    fixed = ["experiment=grid", "profile=small", "data.labeled=2"]
    assert [record["overrides"] for record in records] == [
        ["variant=base", "penalty.k=5", "seed=0", *fixed],
        ["variant=base", "penalty.k=5", "seed=1", *fixed],
        ["variant=base", "penalty.k=50", "seed=0", *fixed],
        ["variant=base", "penalty.k=50", "seed=1", *fixed],
        ["variant=flat", "seed=0", *fixed],
        ["variant=flat", "seed=1", *fixed],
    ]
    assert [record["num"] for record in records] == list(range(6))
    assert output.count("Launching 1 jobs locally") == 6
    assert {record["config"]["data"]["normal_class"] for record in records} == {
        0
    }  # restricted, but not swept


@pytest.mark.slow
def test_the_sweeper_works_with_the_joblib_launcher(tmp_path):
    records, output = run_app(tmp_path, *GRID, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert [record["overrides"] for record in records] == GRID_JOBS
    assert "Joblib" in output
