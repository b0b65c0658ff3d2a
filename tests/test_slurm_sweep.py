"""The cluster path end to end on a real single-node SLURM (`make slurm-up`, tests/conftest.py's
`slurm_env`): sweeps through `launcher=slurm_cpu` (an array of jobs, packed two runs per job or
one), a job requeued mid-training (what SLURM does on preemption), submitit's own signal, a time
limit that expires mid-run, and jobs killed outright (scancel, kill -9 of the job's step); each
sweep's exit status and summary line,
resumed runs bit-identical to uninterrupted ones, and a relaunch that runs only what is missing.
Skipped where SLURM cannot start (not root, no apt-get)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# long enough (40 epochs of ~0.6 s) that a requeue at epoch 3 lands mid-training and the run still trains
# when SIGKILL comes KillWait (10 s) later; a checkpoint after every epoch
RUN = ["dataset=fake", "dataset.n_classes=2", "dataset.n_train_per_class=200", "dataset.n_test_per_class=20",
       "variant=dsvdd_bias_noise", "model=lenet_cifar10", "profile=smoke", "profile.weights=none",
       "trainer.batch_size=20", "trainer.checkpoint_every_s=0", "trainer.progress=false", "trainer.num_threads=1"]
SLURM = ["launcher=slurm_cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
SEEDS = "seed=0,1,2,3"


def sweep(env: dict, folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dsvdd_repro.train", "-m", *RUN, *SLURM, *args,
                             f"hydra.sweep.dir={folder}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def summary_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "sweep: " in line and " jobs: " in line]
    assert lines, out[-3000:]
    return lines[-1].split("sweep: ", 1)[1]


def runs_of(folder: Path) -> dict[int, Path]:
    """seed -> run folder of a sweep."""
    return {int(json.loads(p.read_text())["seed"]): p.parent for p in folder.rglob("metrics.json")}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.5)


def epochs_logged(run_dir: Path) -> int:
    log = run_dir / "train.log"
    return len(re.findall(r"epoch \d+/\d+: loss_svdd", log.read_text())) if log.is_file() else 0


def training_runs(folder: Path) -> list[Path]:
    return [log.parent for log in folder.rglob("train.log") if not (log.parent / "metrics.json").exists()]


def running_jobs(env: dict) -> list[str]:
    out = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i"], env=env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return out.split()


def assert_identical(run_dir: Path, reference: Path) -> None:
    with np.load(run_dir / "scores.npz") as a, np.load(reference / "scores.npz") as b:
        assert np.array_equal(a["score"], b["score"]) and np.array_equal(a["index"], b["index"])
    got, want = (torch.load(d / "model.pt", weights_only=True) for d in (run_dir, reference))
    assert got["net"].keys() == want["net"].keys()
    assert all(torch.equal(got["net"][k], want["net"][k]) for k in want["net"])
    assert torch.equal(got["center"], want["center"]) and got["radius"] == want["radius"]


def start_reference_run(tmp_path: Path, seed: int, epochs: int) -> tuple[subprocess.Popen, Path]:
    """The same run, uninterrupted, without SLURM (in the background)."""
    folder = tmp_path / f"reference_s{seed}"
    process = subprocess.Popen([sys.executable, "-m", "dsvdd_repro.train", *RUN, f"trainer.epochs={epochs}",
                                f"seed={seed}", f"hydra.run.dir={folder}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    return process, folder


def finished_reference(process: subprocess.Popen, folder: Path) -> Path:
    """The reference run's folder, once it has finished (started beside the sweep: it trains while
    the test waits on SLURM)."""
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return folder


def first_job(env: dict) -> str:
    """The running job of the array's first task (`<id>_0`): seed 0's (and seed 1's, packed)."""
    return next(job for job in running_jobs(env) if job.endswith("_0"))


def job_epochs(folder: Path, job: str) -> int:
    """Epochs a running job's run has logged (its runs log to the job's submitit output)."""
    log = folder / ".submitit" / job / f"{job}_0_log.out"
    return len(re.findall(r"epoch \d+/\d+: loss_svdd", log.read_text())) if log.is_file() else 0


def job_logs(folder: Path, tail: int = 3000) -> str:
    """The end of each job's submitit logs, for an assertion's message."""
    return "".join(f"\n== {p.name}\n{p.read_text()[-tail:]}" for p in sorted((folder / ".submitit").rglob("*_log.*")))


def step_pid(env: dict, job: str) -> int:
    """The PID of the job's step (submitit's process in `srun`), from `scontrol listpids`."""
    run = lambda *cmd: subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=True).stdout  # noqa: E731
    job_id = run("squeue", "--noheader", "--format=%A", "--jobs", job).split()[0]  # 96_3 -> its own id
    out = run("scontrol", "listpids", job_id)
    rows = [line.split() for line in out.splitlines()[1:]]
    return next(int(pid) for pid, _, step, local_id, *_ in rows if step == "0" and local_id == "0")


def test_a_packed_array_sweep_survives_a_requeue_mid_training(slurm_env, tmp_path):
    """4 runs, 2 per job: one job is requeued (SIGTERM, SIGKILL after KillWait, back in the queue)
    mid-training; the sweep exits 0 with 4 done, the requeued runs resumed after the epoch their
    metrics.json names and equal to uninterrupted runs; a relaunch runs nothing."""
    env, folder, epochs = {**slurm_env, "DSVDD_CACHE_DIR": str(tmp_path / "cache")}, tmp_path / "sweep", 40
    process = sweep(env, folder, SEEDS, f"trainer.epochs={epochs}", "hydra.launcher.runs_per_job=2")
    reference, reference_dir = start_reference_run(tmp_path, 0, epochs)  # seed 0: in the job requeued
    wait_for(lambda: any(epochs_logged(run) >= 3 for run in training_runs(folder)), 300, "a run at epoch 3")
    job = first_job(env)  # both jobs run at once (a core each): each has its runs mid-training
    subprocess.run(["scontrol", "requeue", job], env=env, check=True, timeout=30)
    code, out = finish(process)
    assert code == 0, out[-3000:]
    assert summary_line(out).startswith("4 jobs: 4 done,"), summary_line(out)
    runs = runs_of(folder)
    resumed = {seed: json.loads((run / "metrics.json").read_text())["resumed_after_epoch"] for seed, run in runs.items()}
    assert all(json.loads((run / "metrics.json").read_text())["status"] == "done" for run in runs.values())
    requeued = [seed for seed, epoch in resumed.items() if epoch is not None]
    assert requeued, f"no run resumed: {resumed}"
    for seed in requeued:
        log = (runs[seed] / "train.log").read_text()
        assert f"resumed from the checkpoint after epoch {resumed[seed]} of {epochs}" in log
        assert "SIGTERM received" in log
    assert 0 in requeued, resumed
    assert_identical(runs[0], finished_reference(reference, reference_dir))
    code, out = finish(sweep(env, folder, SEEDS, f"trainer.epochs={epochs}", "hydra.launcher.runs_per_job=2"))
    assert code == 0 and "4 skipped (already done)" in summary_line(out), out[-2000:]


def test_an_array_sweep_with_submitits_signal_and_jobs_killed_outright(slurm_env, tmp_path):
    """4 runs, one per job: submitit's preemption signal (SIGUSR2) to one job requeues it and its
    run resumes; a job cancelled (scancel) and a job whose step is killed (kill -9) each end as one
    failed run in bounded time, the sweep exits 1 naming them; the relaunch runs only those two runs
    (from their checkpoints) and exits 0."""
    env, folder, epochs = {**slurm_env, "DSVDD_CACHE_DIR": str(tmp_path / "cache")}, tmp_path / "sweep", 40
    args = (SEEDS, f"trainer.epochs={epochs}", "hydra.launcher.runs_per_job=1")
    process = sweep(env, folder, *args)
    reference, reference_dir = start_reference_run(tmp_path, 0, epochs)  # seed 0: the job signalled
    wait_for(lambda: sum(job_epochs(folder, job) >= 3 for job in running_jobs(env)) >= 2, 300, "two runs at epoch 3")
    signalled = first_job(env)
    cancelled = next(job for job in running_jobs(env) if job != signalled)
    # delivered to the job's step at once; scancel then keeps retrying to signal the job, which submitit
    # is already requeueing ("can not be altered now"), and would signal it again once it restarts:
    # stopped as soon as the job has left RUNNING
    subprocess.run(["scancel", cancelled], env=env, check=True, timeout=30)
    signaller = subprocess.Popen(["scancel", "--signal=USR2", signalled], env=env)
    wait_for(lambda: signalled not in running_jobs(env), 60, "the signalled job requeued")
    signaller.kill()
    others = lambda: [job for job in running_jobs(env) if job not in (signalled, cancelled)]  # noqa: E731
    wait_for(lambda: any(job_epochs(folder, job) >= 3 for job in others()), 300, "a third run at epoch 3")
    killed = next(job for job in others() if job_epochs(folder, job) >= 3)
    os.kill(step_pid(env, killed), 9)
    tic = time.monotonic()
    code, out = finish(process)
    summary = summary_line(out)
    assert code == 1 and summary.startswith("4 jobs: 2 done,") and ", 2 failed" in summary, out[-3000:]
    assert time.monotonic() - tic < 240  # the dead jobs are noticed, not waited for
    assert out.count("ended without results") == 2, out[-3000:]
    statuses = {seed: json.loads((run / "metrics.json").read_text()) for seed, run in runs_of(folder).items()}
    assert len(statuses) == 2 and all(m["status"] == "done" for m in statuses.values())
    resumed = [seed for seed, m in statuses.items() if m["resumed_after_epoch"] is not None]
    assert resumed == [0], f"the signalled job's run (seed 0) resumed: {resumed}"
    assert "SIGUSR2 received" in (runs_of(folder)[0] / "train.log").read_text()
    assert_identical(runs_of(folder)[0], finished_reference(reference, reference_dir))
    code, out = finish(sweep(env, folder, *args))
    assert code == 0 and summary_line(out).startswith("4 jobs: 2 done, 2 skipped (already done)"), out[-3000:]
    relaunched = [m for m in (json.loads((run / "metrics.json").read_text()) for run in runs_of(folder).values())
                  if m["seed"] not in statuses]
    assert len(relaunched) == 2 and all(m["resumed_after_epoch"] is not None for m in relaunched)  # checkpoints


def test_a_time_limit_mid_run_requeues_the_job_and_the_run_resumes(slurm_env, tmp_path):
    """timeout_min=2 with submitit's SIGUSR2 30 s before it. SLURM sends the signal at the first of its
    30-second checks with at most signal_delay_s + 30 s left, 60-90 s into each attempt here; submitit
    counts a timeout and requeues the job, the run writes its checkpoint after its epoch, and each
    attempt resumes from it until the run ends (200 epochs of ~0.6 s: two or three attempts, more on a
    busy machine, whose start-ups are slower); exit 0, bit-identical to an uninterrupted run (trained
    meanwhile on the other core)."""
    env, folder, epochs = {**slurm_env, "DSVDD_CACHE_DIR": str(tmp_path / "cache")}, tmp_path / "sweep", 200
    reference, reference_dir = start_reference_run(tmp_path, 0, epochs)
    code, out = finish(sweep(env, folder, "seed=0", f"trainer.epochs={epochs}", "hydra.launcher.timeout_min=2",
                             "hydra.launcher.signal_delay_s=30", "hydra.launcher.max_num_timeout=20"), timeout=1800)
    assert code == 0 and summary_line(out).startswith("1 jobs: 1 done,"), out[-2000:] + job_logs(folder)
    run = runs_of(folder)[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["resumed_after_epochs"], metrics
    assert metrics["resumed_after_epoch"] == metrics["resumed_after_epochs"][-1] < epochs
    log = (run / "train.log").read_text()
    assert "SIGUSR2 received" in log and f"after epoch {metrics['resumed_after_epochs'][0]} of {epochs}" in log
    submitit_logs = "".join(p.read_text() for p in (folder / ".submitit").rglob("*_log.err"))
    assert "this job is timed-out" in submitit_logs
    assert_identical(run, finished_reference(reference, reference_dir))
