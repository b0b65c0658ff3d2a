"""Fault injection: runs and sweeps killed (SIGKILL, `DSVDD_CRASH_AT`, dsvdd_repro/core/faults.py) while
decoding, writing the cache, mid-epoch, writing a checkpoint and writing the results; every relaunch
must end with the results of an uninterrupted run, bit for bit, and leave no temporary file."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsvdd_repro.runs.folders import LOCK_FILE

pytestmark = pytest.mark.slow

# LeNet with bias and the noise regularizer on a tiny image-folder dataset: a checkpoint holds a
# network, Adam's moments, the noise head, c_t and the label stream; three epochs of three steps
RUN = ["dataset=folder", "dataset.image_size=32", "variant=dsvdd_bias_noise", "model=lenet_cifar10",
       "setup.normal_class=0", "profile=smoke", "trainer.epochs=3", "trainer.batch_size=10",
       "trainer.num_threads=1", "trainer.progress=false", "trainer.checkpoint_every_s=0"]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """<root>/{train,test}/<class>/*.png: two classes of noisy images with different mean colours."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("test", 10)):
        for label, colour in (("a", (60, 120, 180)), ("b", (180, 90, 40))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(colour, 40, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def launch(images: Path, run_dir: Path, cache: Path, crash: str | None = None, sweep: list[str] | None = None):
    env = {**os.environ, "DSVDD_CACHE_DIR": str(cache)}
    env.pop("DSVDD_CRASH_AT", None)
    if crash:
        env["DSVDD_CRASH_AT"] = crash
    where = [f"hydra.sweep.dir={run_dir}", *sweep] if sweep else [f"hydra.run.dir={run_dir}"]
    mode = ["-m"] if sweep else []
    return subprocess.run([sys.executable, "-m", "dsvdd_repro.train", *mode, f"dataset.root={images}", *RUN, *where],
                          env=env, capture_output=True, text=True, timeout=600)


def outcome(run_dir: Path) -> dict:
    """What must not depend on interruptions: the scores, the test AUC and the history (timings aside)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = [{k: v for k, v in entry.items() if k != "seconds"} for entry in metrics["history"]]
    with np.load(run_dir / "scores.npz") as scores:
        arrays = {name: scores[name].tolist() for name in scores.files}
    return {"status": metrics["status"], "test_auc": metrics["test_auc"], "history": history, "scores": arrays,
            "best_epoch": metrics["best_epoch"]}


def temporaries(*folders: Path) -> list[str]:
    return [str(p) for folder in folders for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name == LOCK_FILE]


@pytest.fixture(scope="module")
def uninterrupted(images, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("baseline") / "run"
    result = launch(images, run_dir, tmp_path_factory.mktemp("cache"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (run_dir / "checkpoint.pt").exists()
    return outcome(run_dir)


@pytest.mark.parametrize("crash", [
    "decode",                          # decoding the image folder (cold cache)
    "atomic_write:train_images.npy",   # the cache's first array written, not yet renamed
    "mid_epoch:5",                     # the second step of epoch 2
    "atomic_write:checkpoint.pt:3",    # the checkpoint after epoch 2 written, not yet renamed
    "atomic_write:scores.npz",         # the final writes
    "atomic_write:metrics.json",
])
def test_a_killed_run_resumes_to_the_uninterrupted_result(crash, images, uninterrupted, tmp_path):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    killed = launch(images, run_dir, cache, crash=crash)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (run_dir / "metrics.json").exists()
    relaunched = launch(images, run_dir, cache)
    assert relaunched.returncode == 0, relaunched.stderr[-2000:]
    assert outcome(run_dir) == uninterrupted
    assert temporaries(run_dir, cache) == []
    assert not (run_dir / "checkpoint.pt").exists() and (run_dir / "model.pt").exists()
    if crash.startswith(("mid_epoch", "atomic_write:checkpoint")):
        assert "resumed from the checkpoint after epoch" in (run_dir / "train.log").read_text()


def test_a_killed_sweep_resumes_and_skips_its_finished_runs(images, uninterrupted, tmp_path):
    sweep = ["seed=0,1"]
    killed = launch(images, tmp_path / "sweep", tmp_path / "cache", crash="mid_epoch:11", sweep=sweep)
    assert killed.returncode == -signal.SIGKILL  # in the second run's second epoch
    relaunched = launch(images, tmp_path / "sweep", tmp_path / "cache", sweep=sweep)
    assert relaunched.returncode == 0, relaunched.stderr[-2000:]
    runs = sorted(p.parent for p in (tmp_path / "sweep").rglob("metrics.json"))
    assert len(runs) == 2 and temporaries(tmp_path / "sweep", tmp_path / "cache") == []
    assert outcome(next(r for r in runs if r.name.endswith("_s0"))) == uninterrupted
    assert "1 done, 1 skipped (already done)" in relaunched.stdout + relaunched.stderr  # the sweeper's summary


def test_a_killed_geo_run_resumes_to_the_uninterrupted_result(images, tmp_path):
    """GEO checkpoints its epochs too: killed after epoch 1 of 2, the relaunch trains only epoch 2."""
    geo = ["variant=geo", "trainer.epochs=2", "method.max_samples_per_epoch=100"]

    def run(run_dir, crash=None):
        env = {**os.environ, "DSVDD_CACHE_DIR": str(tmp_path / "cache")}
        env.pop("DSVDD_CRASH_AT", None)
        env.update({"DSVDD_CRASH_AT": crash} if crash else {})
        args = [a for a in RUN if not a.startswith(("variant=", "model=", "trainer.epochs="))]
        return subprocess.run([sys.executable, "-m", "dsvdd_repro.train", f"dataset.root={images}", *args, *geo,
                               f"hydra.run.dir={run_dir}"], env=env, capture_output=True, text=True, timeout=600)

    assert run(tmp_path / "whole").returncode == 0
    assert run(tmp_path / "killed", crash="atomic_write:checkpoint.pt:2").returncode == -signal.SIGKILL
    relaunched = run(tmp_path / "killed")
    assert relaunched.returncode == 0, relaunched.stderr[-2000:]
    assert "resumed from the checkpoint after epoch 1 of 2" in (tmp_path / "killed" / "train.log").read_text()
    assert outcome(tmp_path / "killed") == outcome(tmp_path / "whole")
