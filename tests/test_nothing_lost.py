"""Nothing lost: finished folders are never touched, a run is done only with its files, a second
launch never trains a run twice, divergence ends a run cleanly, a failing final write keeps the
result in the log, and the SLURM path can be rehearsed on one machine."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dsvdd_repro.runs.folders import run_lock
from dsvdd_repro.storage import preemption

pytestmark = pytest.mark.slow

TINY = ["dataset=fake", "variant=dsvdd_bias_noise", "model=lenet_cifar10", "profile=smoke", "trainer.epochs=2",
        "trainer.checkpoint_every_s=0",
        "trainer.num_threads=1", "trainer.progress=false"]


def train(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    for variable in ("DSVDD_CRASH_AT", "DSVDD_FAIL_AT"):
        if variable not in (env or {}):
            environment.pop(variable, None)
    return subprocess.run([sys.executable, "-m", "dsvdd_repro.train", *args], env=environment, capture_output=True,
                          text=True, timeout=600)


def snapshot(folder: Path) -> dict:
    """Every file below `folder`: its bytes' hash and its modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(tmp_path) -> Path:
    run_dir = tmp_path / "run"
    result = train(*TINY, f"hydra.run.dir={run_dir}", env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_a_finished_runs_folder_is_never_modified_by_later_launches(finished, tmp_path):
    before = snapshot(finished)
    assert {"metrics.json", "scores.npz", "model.pt", "train.log", ".hydra/config.yaml", ".hydra/overrides.yaml"} <= set(before)
    metrics = json.loads((finished / "metrics.json").read_text())
    assert set(metrics["files"]) == {"scores.npz", "model.pt"} and metrics["provenance"]["torch_threads"] == 1
    env = {"DSVDD_CACHE_DIR": str(tmp_path / "cache")}
    skipped = train(*TINY, f"hydra.run.dir={finished}", env=env)
    # differs only in how it executes (threads): the same run, skipped, as the README says
    other_threads = train(*TINY[:-2], "trainer.num_threads=2", "trainer.progress=false", f"hydra.run.dir={finished}", env=env)
    refused = train(*TINY, "seed=7", f"hydra.run.dir={finished}", env=env)  # another run in this folder
    assert skipped.returncode == 0 and other_threads.returncode == 0 and "already done, skipping" in skipped.stdout
    assert refused.returncode == 2 and "finished run of a different configuration" in refused.stderr
    assert snapshot(finished) == before


def test_a_run_whose_files_are_missing_or_changed_is_not_done(finished, tmp_path):
    (finished / "scores.npz").unlink()
    rerun = train(*TINY, f"hydra.run.dir={finished}", env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert rerun.returncode == 0 and "scores.npz is missing or changed: the run is done again" in rerun.stdout
    assert (finished / "scores.npz").is_file()


def test_a_requeued_attempt_waits_for_its_previous_attempts_process(tmp_path, monkeypatch):
    """A run held elsewhere is skipped at once; a requeued SLURM job's attempt (SLURM_RESTART_COUNT)
    waits for the holder, its previous attempt's process, to let go, and then holds the run."""
    run_dir, acquired, release = tmp_path / "run", threading.Event(), threading.Event()

    def previous_attempt():
        with run_lock(run_dir) as held:
            assert held
            acquired.set()
            release.wait(10)

    holder = threading.Thread(target=previous_attempt)
    holder.start()
    assert acquired.wait(10)
    with run_lock(run_dir) as held:
        assert not held
    threading.Timer(1.0, release.set).start()
    tic = time.monotonic()
    with run_lock(run_dir, wait_s=30) as held:
        assert held and 0.9 < time.monotonic() - tic < 10
    holder.join()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert preemption.lock_wait_s() == preemption.REQUEUED_LOCK_WAIT_S
    for first_attempt in ("0", ""):
        monkeypatch.setenv("SLURM_RESTART_COUNT", first_attempt)
        assert preemption.lock_wait_s() == 0


def test_a_run_held_by_another_process_is_skipped_not_trained_twice(tmp_path):
    run_dir = tmp_path / "run"
    with run_lock(run_dir) as held:
        assert held
        second = train(*TINY, f"hydra.run.dir={run_dir}", env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert second.returncode == 0 and "running in another process, skipping" in second.stdout
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "train.log").exists()


@pytest.mark.parametrize("lr", ["1e10", "10"])
def test_a_diverging_run_ends_diverged_with_its_history_and_no_traceback(lr, tmp_path):
    run_dir = tmp_path / "run"
    result = train(*TINY, "trainer.epochs=3", f"optim.lr={lr}", "optim.backbone_lr_factor=1.0",
                   f"hydra.run.dir={run_dir}", env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["diverged_at"]["epoch"] >= 1
    assert len(metrics["history"]) == metrics["diverged_at"]["epoch"] - 1
    if metrics["best_epoch"] is None:  # diverged in epoch 1: nothing to score
        assert metrics["test_auc"] is None and "scores.npz" not in metrics["files"]
    else:
        assert 0.0 <= metrics["test_auc"] <= 1.0
    assert not (run_dir / "checkpoint.pt").exists()


def test_a_failing_final_write_logs_the_test_auc_first_and_names_the_path(tmp_path):
    run_dir, env = tmp_path / "run", {"DSVDD_CACHE_DIR": str(tmp_path / "cache")}
    failed = train(*TINY, f"hydra.run.dir={run_dir}", env={**env, "DSVDD_FAIL_AT": "atomic_write:metrics.json"})
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: could not write {run_dir / 'metrics.json'}: No space left on device"]
    assert "test AUC" in (run_dir / "train.log").read_text()
    assert not (run_dir / "metrics.json").exists() and (run_dir / "checkpoint.pt").exists()
    resumed = train(*TINY, f"hydra.run.dir={run_dir}", env=env)  # from the checkpoint: no epoch is redone
    assert resumed.returncode == 0 and "resumed from the checkpoint after epoch 2" in resumed.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == 2 and metrics["resumed_after_epochs"] == [2]  # not the last epoch


def test_the_slurm_path_rehearsed_on_one_machine(tmp_path):
    # launcher=slurm_local packs two runs per job (hydra.launcher.runs_per_job=2), as launcher=slurm packs 4
    sweep = tmp_path / "sweep"
    result = train("-m", *TINY, "launcher=slurm_local", "seed=0,1,2", f"hydra.sweep.dir={sweep}",
                   env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    done = [json.loads(p.read_text())["status"] for p in sweep.rglob("metrics.json")]
    assert done == ["done", "done", "done"]
    assert "3 runs in 2 jobs of up to 2 runs each" in result.stdout + result.stderr
    assert len(list((sweep / ".submitit").rglob("*_result.pkl"))) == 2  # two jobs: runs 0 and 1 shared one
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*.out"))
    assert "test AUC" in logs and "it/s" not in logs  # plain log lines, no progress bars, in job logs


@pytest.mark.parametrize("variant", ["dsvdd_bias_noise", "ocsvm_pca", "geo"])
def test_a_finished_run_scores_new_images_with_its_saved_model(variant, tmp_path):
    """`dsvdd_repro.score` on the run's own test images (written as PNG files) gives the run's test
    scores: the saved model and the run's preprocessing are restored exactly."""
    import numpy as np
    from PIL import Image

    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("variant=", "model="))]
    extra = ["model=lenet_cifar10"] if variant.startswith("dsvdd") else []
    result = train(*args, f"variant={variant}", *extra, f"hydra.run.dir={run_dir}",
                   env={"DSVDD_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    from hydra import compose, initialize_config_dir

    from dsvdd_repro import score as scoring
    from dsvdd_repro.data.fake import make_fake
    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*args, f"variant={variant}"])
    node = cfg.dataset
    images = make_fake(n_classes=node.n_classes, n_train_per_class=node.n_train_per_class,
                       n_test_per_class=node.n_test_per_class, image_size=node.image_size)
    with np.load(run_dir / "scores.npz") as saved:
        index, expected = saved["index"], saved["score"]
    folder = tmp_path / "new"
    folder.mkdir()
    for i in index[:8]:
        Image.fromarray(images.test_images[i].numpy().transpose(1, 2, 0)).save(folder / f"{i:05d}.png")
    out = tmp_path / "scores.csv"
    assert scoring.main([str(run_dir), str(folder), "--out", str(out)]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    np.testing.assert_allclose([float(r[1]) for r in rows], expected[:8], rtol=1e-5, atol=1e-6)
