"""A real single-node SLURM cluster (`scripts/slurm_cluster.sh`, `make slurm-up`): batch and array jobs
complete, a requeued running job runs again, and `status` sees it up. Needs root and apt-get (or slurm
and munge installed); skipped otherwise. A cluster that was already up is used and left up."""

import re
import subprocess
import time

import pytest

from tests.conftest import cluster

pytestmark = pytest.mark.slow


def slurm(env: dict, *args: str) -> str:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


def show_job(env: dict, job_id: str) -> str:
    # no accounting storage, so no sacct: scontrol knows finished jobs for MinJobAge (300 s)
    return slurm(env, "scontrol", "show", "job", job_id)


def wait_until(env: dict, job_id: str, done, timeout: float = 40) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = show_job(env, job_id)
        if done(re.findall(r"JobState=(\w+)", text)):
            return text
        assert time.monotonic() < deadline, f"job {job_id} not there after {timeout} s:\n{text}"
        time.sleep(0.2)


def test_a_batch_job_completes(slurm_env, tmp_path):
    out = tmp_path / "job.out"
    job = slurm(slurm_env, "sbatch", "--parsable", f"--output={out}", "--wrap", "echo ran on $(hostname -s)").strip()
    wait_until(slurm_env, job, lambda states: states == ["COMPLETED"])
    assert out.read_text().startswith("ran on ")


def test_an_array_job_of_four_tasks_completes(slurm_env, tmp_path):
    job = slurm(slurm_env, "sbatch", "--parsable", "--array=0-3", f"--output={tmp_path}/%a.out",
                "--wrap", "echo task $SLURM_ARRAY_TASK_ID").strip()
    wait_until(slurm_env, job, lambda states: states == ["COMPLETED"] * 4)
    assert [(tmp_path / f"{i}.out").read_text() for i in range(4)] == [f"task {i}\n" for i in range(4)]


def test_a_requeued_running_job_runs_again_and_completes(slurm_env, tmp_path):
    out = tmp_path / "job.out"
    # the first run would sleep a minute; the run after the requeue ends at once
    job = slurm(slurm_env, "sbatch", "--parsable", f"--output={out}", "--open-mode=append", "--wrap",
                'echo "run ${SLURM_RESTART_COUNT:-0}"; sleep $(( ${SLURM_RESTART_COUNT:-0} ? 0 : 60 ))').strip()
    wait_until(slurm_env, job, lambda states: states == ["RUNNING"])
    slurm(slurm_env, "scontrol", "requeue", job)
    # held for AuthInfo's cred_expire (10 s) after the requeue, then scheduled again
    text = wait_until(slurm_env, job, lambda states: states == ["COMPLETED"])
    assert "Restarts=1" in text
    assert out.read_text().splitlines()[0] == "run 0" and out.read_text().splitlines()[-1] == "run 1"


def test_status_reports_the_cluster_up(slurm_env):
    status = cluster("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "cluster: up" in status.stdout and re.search(r"^cpu\*\s+up\s", status.stdout, re.M)


def test_the_watcher_reports_transient_squeue_states_as_running():
    """A requeued job passes through states submitit does not know (it would take them for ended)."""
    from hydra_plugins.dsvdd_repro_launcher.slurm_watcher import parse_squeue

    info = parse_squeue("12_0|CONFIGURING\n12_1|REQUEUE_FED\n12_2|COMPLETED\n12_3|PENDING\n13|CANCELLED\n")
    assert {job: entry["State"] for job, entry in info.items()} == {
        "12_0": "RUNNING", "12_1": "RUNNING", "12_2": "COMPLETED", "12_3": "RUNNING", "13": "CANCELLED"}
    assert info["12_1"]["squeue"] == "REQUEUE_FED"
