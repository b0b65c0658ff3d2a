"""A job's fault never stops a sweep (hydra_plugins/dsvdd_repro_sweeper, dsvdd_repro/sweeps/filter.py).

- a bad value in a sweep list (`optim.lr=0.001,fast`) fails only its job, found before launching;
- a job that fails at run time stops no later batch (`max_batch_size=1`);
- the launcher gets only the jobs that are neither invalid nor done;
- one summary line, and exit status 1 once every batch ran if a job failed or was invalid;
- the job filter's run folders are those Hydra's own composition gives, and Table VI's 5,500
  CIFAR-10 jobs are expanded and filtered in seconds.

The sweeper is run on tests/sweeper_conf's small app (subprocess), and on dsvdd_repro's real
configuration (in process, and end to end with dataset=fake).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf

from dsvdd_repro import train
from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.runs.config import validate
from dsvdd_repro.runs.folders import SCORES_FILE, identity
from dsvdd_repro.storage.integrity import file_record
from dsvdd_repro.sweeps import filter as sweep_filter
from hydra_plugins.dsvdd_repro_sweeper import grid_sweeper
from tests.conftest import CONF_DIR, TINY, compose_config, run_cli
from tests.test_sweeper import APP, launch_app

APP_CONF = APP.parent / "conf"
APP_FILTER = "hydra.sweeper.job_filter=tests.sweeper_conf.app_filter.classify"


def summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "sweep: " in line and " jobs: " in line]
    assert len(lines) == 1, output
    return lines[0].split("sweep: ", 1)[1]


# --- the small app, end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_a_bad_value_in_a_sweep_list_fails_only_its_job(tmp_path):
    code, records, output = launch_app(tmp_path, "+optim=adam", "optim.lr=0.001,fast,0.002")
    assert code == 1, output
    assert [record["config"]["optim"]["lr"] for record in records] == [0.001, 0.002]
    assert [record["num"] for record in records] == [0, 1]
    assert "invalid, not launched: +optim=adam optim.lr=fast: Error merging override optim.lr=fast" in output
    assert "could not be converted to Float" in output
    assert summary_line(output) == "3 jobs: 2 done, 0 skipped (already done), 1 invalid, 0 failed, 0 diverged"


@pytest.mark.slow
def test_a_job_failing_in_the_first_batch_stops_no_later_batch(tmp_path):
    code, records, output = launch_app(
        tmp_path, "seed=0,1,2", "+crash_seed=0", "hydra.sweeper.max_batch_size=1"
    )
    assert code == 1, output
    assert output.count("Launching 1 jobs locally") == 3
    assert [record["config"]["seed"] for record in records] == [1, 2]
    assert "RuntimeError: seed 0 crashes" in output
    assert summary_line(output) == "3 jobs: 2 done, 0 skipped (already done), 0 invalid, 1 failed, 0 diverged"


@pytest.mark.slow
def test_a_sweep_whose_jobs_are_all_invalid_launches_nothing_and_exits_non_zero(tmp_path):
    code, records, output = launch_app(tmp_path, "+optim=adam", "optim.lr=fast,slow")
    assert code == 1, output
    assert records == [] and "Launching" not in output
    assert summary_line(output) == "2 jobs: 0 done, 0 skipped (already done), 2 invalid, 0 failed, 0 diverged"


@pytest.mark.slow
def test_a_group_option_that_does_not_exist_fails_only_its_jobs(tmp_path):
    code, records, output = launch_app(tmp_path, "variant=base,typo", "seed=0,1")
    assert code == 1, output
    assert [record["overrides"] for record in records] == [["variant=base", "seed=0"], ["variant=base", "seed=1"]]
    assert "invalid, not launched: variant=typo: cannot compose variant=typo" in output
    assert summary_line(output) == "3 jobs: 2 done, 0 skipped (already done), 1 invalid, 0 failed, 0 diverged"


@pytest.mark.slow
def test_done_jobs_are_not_launched_and_every_outcome_is_counted(tmp_path):
    code, records, output = launch_app(
        tmp_path, "seed=0,1,2,3", "+done_seeds=[1,3]", "+diverge_seed=2", APP_FILTER
    )
    assert code == 0, output  # diverged is an outcome, not a fault
    assert "Launching 2 jobs locally" in output
    assert [record["config"]["seed"] for record in records] == [0, 2]
    assert "sweep: 2 to launch, 2 already done, 0 invalid" in output
    assert summary_line(output) == "4 jobs: 1 done, 2 skipped (already done), 0 invalid, 0 failed, 1 diverged"


@pytest.mark.slow
def test_jobs_the_filter_refuses_are_logged_not_launched_and_fail_the_sweep(tmp_path):
    code, records, output = launch_app(tmp_path, "seed=0,1", "+invalid_seeds=[1]", APP_FILTER)
    assert code == 1, output
    assert [record["config"]["seed"] for record in records] == [0]
    assert "invalid, not launched: seed=1 +invalid_seeds=[1]: seed 1 is refused by the test filter" in output
    assert summary_line(output) == "2 jobs: 1 done, 0 skipped (already done), 1 invalid, 0 failed, 0 diverged"


# --- the sweeper in process, with a fake launcher -----------------------------------------------


class Launcher:
    """Returns what `outcomes[seed]` says for each job (an exception: FAILED), records each call."""

    def __init__(self, outcomes: dict) -> None:
        self.outcomes, self.calls = outcomes, []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append([list(job) for job in job_overrides])
        results = []
        for job in job_overrides:
            outcome = self.outcomes.get(int(dict(o.split("=", 1) for o in job)["seed"]), None)
            failed = isinstance(outcome, Exception)
            results.append(JobReturn(overrides=list(job), status=JobStatus.FAILED if failed else JobStatus.COMPLETED,
                                     _return_value=outcome))
        return results


def app_sweeper(tmp_path, arguments: list[str], **kwargs) -> grid_sweeper.GridSweeper:
    loader = GlobalHydra.instance().config_loader()
    sweeper = grid_sweeper.GridSweeper(**kwargs)
    sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
    sweeper.config = loader.load_configuration(
        "config", [f"hydra.sweep.dir={tmp_path}", *arguments], run_mode=RunMode.MULTIRUN
    )
    return sweeper


@pytest.mark.slow
def test_every_batch_runs_then_failures_and_invalid_jobs_raise_one_summary(tmp_path, caplog):
    arguments = ["seed=0,1,2,3,4"]
    launcher = Launcher({0: RuntimeError("boom"), 1: {"status": "invalid", "error": "bad"},
                         3: {"status": "skipped"}, 4: {"status": "diverged"}})
    with initialize_config_dir(config_dir=str(APP_CONF), version_base="1.3"):
        sweeper = app_sweeper(tmp_path, arguments, max_batch_size=1)
        sweeper.launcher = launcher
        with caplog.at_level("INFO"), pytest.raises(grid_sweeper.SweepError) as error:
            sweeper.sweep(arguments)
    assert len(launcher.calls) == 5
    assert "sweep: 5 jobs: 1 done, 1 skipped (already done), 1 invalid, 1 failed, 1 diverged" in caplog.text
    assert str(error.value) == "1 invalid and 1 failed of 5 jobs (their reasons are logged above)"
    assert "sweep: failed: seed=0: RuntimeError: boom" in caplog.text
    assert "sweep: invalid: seed=1: bad" in caplog.text


def test_a_launched_run_found_finished_counts_as_done_not_skipped(tmp_path):
    """A requeued SLURM job finds its run finished by its earlier attempt (the filter had found it
    unfinished, so it finished during this sweep): what the job really returns then counts as done;
    a run held by another process stays skipped."""
    cfg = compose_config([*TINY, "trainer.epochs=1"])
    train.run(cfg, tmp_path)
    found_finished = train.job_result(tmp_path, train.run(cfg, tmp_path))
    assert found_finished["status"] == "skipped" and found_finished["finished_as"] == "done"
    finished = JobReturn(overrides=["seed=0"], status=JobStatus.COMPLETED, _return_value=found_finished)
    busy = JobReturn(overrides=["seed=1"], status=JobStatus.COMPLETED,
                     _return_value={"status": "skipped", "error": "running in another process"})
    assert grid_sweeper.job_outcome(finished) == ("done", None)
    assert grid_sweeper.job_outcome(busy) == ("skipped", "running in another process")


def test_a_sweep_without_faults_returns_its_batches(tmp_path):
    with initialize_config_dir(config_dir=str(APP_CONF), version_base="1.3"):
        sweeper = app_sweeper(tmp_path, ["seed=0,1,2"], max_batch_size=2)
        sweeper.launcher = Launcher({2: {"status": "diverged"}})
        returns = sweeper.sweep(["seed=0,1,2"])
    assert [len(batch) for batch in returns] == [2, 1]


def test_excluded_grid_points_are_no_jobs(tmp_path):
    arguments = ["variant=base,flat", "seed=0,1", "hydra.sweeper.exclude=[['variant=flat','seed=1'],['seed=7']]"]
    with initialize_config_dir(config_dir=str(APP_CONF), version_base="1.3"):
        master = app_sweeper(tmp_path, arguments).config
        settings = OmegaConf.to_container(master.hydra.sweeper)
        settings.pop("_target_")  # type: ignore[union-attr]
        sweeper = app_sweeper(tmp_path, arguments, **settings)  # type: ignore[arg-type]
        expansion, jobs = sweeper.prepare(arguments[:2])
        with pytest.raises(HydraException, match="sweeps no key of the grid"):
            grid_sweeper.expand_grid(expansion.axes, lambda overrides: None, [["seed=1", "sed=1"]])
    assert expansion.excluded == 1 and expansion.points == 4
    assert [job.overrides for job in jobs] == [
        ["variant=base", "seed=0"], ["variant=base", "seed=1"], ["variant=flat", "seed=0"]
    ]


def test_job_outcomes():
    assert grid_sweeper.job_outcome(SimpleNamespace(return_value=None)) == ("done", None)
    assert grid_sweeper.job_outcome(SimpleNamespace(return_value=0.7)) == ("done", None)
    done = JobReturn(status=JobStatus.COMPLETED, _return_value={"status": "skipped", "error": None})
    assert grid_sweeper.job_outcome(done) == ("skipped", None)
    failed = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("no\nmore"))
    assert grid_sweeper.job_outcome(failed) == ("failed", "ValueError: no")
    assert grid_sweeper.summary({"done": 2, "weird": 1}) == (
        "sweep: 3 jobs: 2 done, 0 skipped (already done), 0 invalid, 0 failed, 0 diverged, 1 weird"
    )


@pytest.mark.slow
def test_value_overrides_are_set_as_hydra_composes_them(tmp_path):
    """The fast path (one composition, values set with OmegaConf) gives Hydra's config per job, and
    refuses what Hydra's composition refuses."""
    arguments = ["variant=base,flat", "penalty.k=5,7", "seed=1,2", "model.bias=true"]
    with initialize_config_dir(config_dir=str(APP_CONF), version_base="1.3"):
        sweeper = app_sweeper(tmp_path, arguments)
        expansion, jobs = sweeper.prepare(arguments)
        assert expansion.compositions == 3
        for job in jobs:
            real = sweeper.hydra_context.config_loader.load_sweep_config(sweeper.config, job.overrides)
            assert job.error is None and job.changes is not None
            assert job.container() == OmegaConf.to_container(grid_sweeper.task_config(real), resolve=True)
            with job.config() as cfg:
                assert {key: cfg[key] for key in cfg if key != "hydra"} == {key: real[key] for key in real if key != "hydra"}
            with job.config(task=True) as cfg:
                assert OmegaConf.to_container(cfg) == OmegaConf.to_container(grid_sweeper.task_config(real))
            assert job.sweep_dir() == str(tmp_path)
        # the composition is left as it was
        assert {job.composition for job in jobs} and all(
            job.composition.cfg.seed == 0 for job in jobs if job.composition is not None
        )


# --- dsvdd_repro's real configuration ------------------------------------------------------------


def dsvdd_sweeper(sweep_dir: Path, arguments: list[str]) -> grid_sweeper.GridSweeper:
    loader = GlobalHydra.instance().config_loader()
    master = loader.load_configuration(
        "config", [f"hydra.sweep.dir={sweep_dir}", *arguments], run_mode=RunMode.MULTIRUN
    )
    settings = OmegaConf.to_container(master.hydra.sweeper, resolve=True)
    settings.pop("_target_")  # type: ignore[union-attr]
    sweeper = grid_sweeper.GridSweeper(**settings)  # type: ignore[arg-type]
    sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
    sweeper.config = master
    return sweeper


def real_outcome(loader, master, overrides: list[str]) -> tuple[str, str, dict | None]:
    """What train.py computes for the job from Hydra's own composition: (status, run folder, identity)."""
    real = loader.load_sweep_config(master, overrides)
    run_dir = str(Path(str(real.hydra.sweep.dir)) / str(real.hydra.sweep.subdir))
    task = grid_sweeper.task_config(real)
    try:
        validate(task)
    except ConfigError as error:
        return "invalid", str(error), None
    return "run", run_dir, identity(task)


SAMPLES = [
    ("table2", "paper", []),
    ("table3", "quick", []),
    ("table6_cifar10", "paper", []),
    # as `reproduce` launches them, and a swept learning rate given as an integer (stored as 1.0)
    ("table2", "quick", ["profile.weights=none", "trainer.progress=false", "optim.lr=1,0.0001"]),
]


@pytest.mark.parametrize(("experiment", "profile", "extra"), SAMPLES)
@pytest.mark.slow
def test_the_filter_computes_the_run_folders_hydras_composition_gives(tmp_path, experiment, profile, extra):
    arguments = [f"experiment={experiment}", f"profile={profile}", *extra]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        sweeper = dsvdd_sweeper(tmp_path, arguments)
        assert sweeper.job_filter == "dsvdd_repro.sweeps.filter.classify"
        _, jobs = sweeper.prepare(arguments)
        sample = jobs[:: max(1, len(jobs) // 12)] + jobs[-2:]
        loader = sweeper.hydra_context.config_loader
        statuses = set()
        for job in sample:
            status, where, real_identity = real_outcome(loader, sweeper.config, job.overrides)
            assert job.error is None
            assert sweep_filter.classify(job) == (status, where), job.overrides
            if real_identity is not None:
                assert sweep_filter.job_run_folder(job)[1] == real_identity
                real = loader.load_sweep_config(sweeper.config, job.overrides)
                assert job.container() == OmegaConf.to_container(grid_sweeper.task_config(real), resolve=True)
            statuses.add(status)
        assert statuses == {"run"}  # table6_cifar10's labeled == normal pairs are excluded from its grid


def mark_done(run_dir: Path, run_identity: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SCORES_FILE).write_bytes(b"0" * 10)
    metrics = {"status": "done", "config": run_identity, "test_auc": 0.5,
               "files": {SCORES_FILE: file_record(run_dir / SCORES_FILE)}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def filter_table6(sweep_dir: Path) -> tuple[grid_sweeper.GridSweeper, list, dict, float]:
    arguments = ["experiment=table6_cifar10", "profile=paper"]
    tic = time.perf_counter()
    sweeper = dsvdd_sweeper(sweep_dir, arguments)
    _, jobs = sweeper.prepare(arguments)
    counts: Counter = Counter()
    sweeper.select(jobs, counts)
    return sweeper, jobs, counts, time.perf_counter() - tic


@pytest.mark.slow
def test_table6_cifar10_is_expanded_deduplicated_and_filtered_in_seconds(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        _, jobs, counts, empty = filter_table6(tmp_path)
        assert len(jobs) == 4950 and counts == {}  # the 10 pairs with labeled == normal class are excluded
        for job in jobs:
            status, where = sweep_filter.classify(job)
            if status == "run":
                mark_done(Path(where), sweep_filter.job_run_folder(job)[1])
        _, _, counts, done = filter_table6(tmp_path)
        assert counts == {"skipped": 4950}
    print(f"\ntable6_cifar10 (paper): 16,000 grid points, 4,950 jobs expanded and filtered in {empty:.1f} s "
          f"(empty runs folder), {done:.1f} s (all done)")
    # one composition per job would take 15-20 minutes; 3-11 s here, up to ~35 s while other tests share
    # the two cores (pytest-xdist): the bound tells the two apart without failing on a busy machine
    assert max(empty, done) < 120


@pytest.mark.slow
def test_the_entrypoint_skips_done_runs_and_fails_a_sweep_with_a_bad_value(tmp_path):
    sweep = [f"hydra.sweep.dir={tmp_path}", *TINY]
    first = run_cli(["-m", *sweep, "seed=0,1", "optim.lr=0.001,fast"])
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert "Launching 2 jobs locally" in output
    assert summary_line(output) == "4 jobs: 2 done, 0 skipped (already done), 2 invalid, 0 failed, 0 diverged"
    assert len(list(tmp_path.rglob("metrics.json"))) == 2

    second = run_cli(["-m", *sweep, "seed=0,1,2", "optim.lr=0.001"])
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert "Launching 1 jobs locally" in output
    assert summary_line(output) == "3 jobs: 1 done, 2 skipped (already done), 0 invalid, 0 failed, 0 diverged"
    assert len(list(tmp_path.rglob("metrics.json"))) == 3


@pytest.mark.slow
def test_the_entrypoint_exits_non_zero_when_every_job_is_invalid(tmp_path):
    tiny = [override for override in TINY if not override.startswith("trainer.epochs=")]
    result = run_cli(["-m", f"hydra.sweep.dir={tmp_path}", *tiny, "trainer.epochs=0,-1"])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Launching" not in output
    assert "invalid, not launched: " in output and "trainer.epochs=-1: invalid config: trainer.epochs=-1" in output
    assert summary_line(output) == "2 jobs: 0 done, 0 skipped (already done), 2 invalid, 0 failed, 0 diverged"
