"""The entrypoint (dsvdd_repro/train.py, contracts C1, C2) end to end: outputs, skip-if-done, re-run after
a kill or a failure, bad input that fails before any work, and sweeps."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dsvdd_repro import train
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.methods.deep_svdd.trainer import DeepSVDD
from tests.conftest import ROOT, TINY, compose_config, run_cli

C2_KEYS = {
    "status", "method", "variant", "dataset", "setup", "normal_class", "anomaly", "objective", "regularizer",
    "bias", "pooling", "weights", "lr", "seed", "profile", "test_auc", "val_auc", "best_epoch", "collapsed",
    "history", "seconds", "provenance",
}

HISTORY_KEYS = {"epoch", "loss_svdd", "loss_reg", "reg_weight", "feature_var", "val_auc"}

REAL_CIFAR10 = os.environ.get("DSVDD_CIFAR10_ROOT")

needs_cifar10 = pytest.mark.skipif(not REAL_CIFAR10, reason="DSVDD_CIFAR10_ROOT (the real CIFAR-10 copy) not set")


@pytest.mark.slow
def test_cli_run_writes_c2_outputs_and_skips_when_done(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "setup=alteration", "anomaly=block_perm", "anomaly.n=4", f"hydra.run.dir={run_dir}"]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert C2_KEYS <= set(metrics)
    assert metrics["status"] == "done" and metrics["variant"] == "dsvdd_bias"
    assert metrics["anomaly"]["test"] == {"name": "block_perm", "n": 4, "thickness": 5}
    assert len(metrics["history"]) == 2 and HISTORY_KEYS <= set(metrics["history"][0])
    assert metrics["provenance"]["packages"]["torch"]
    scores = np.load(run_dir / "scores.npz")
    assert scores["score"].shape == scores["label"].shape == (60,)  # 30 test images + 30 altered
    assert scores["label"].sum() == 30 and np.std(scores["score"]) > 0
    assert (run_dir / ".hydra" / "config.yaml").is_file()

    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    second = run_cli(args)
    assert second.returncode == 0
    assert "already done, skipping" in second.stdout + second.stderr
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp

@pytest.mark.slow
def test_a_killed_run_leaves_no_done_and_runs_again(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.epochs=40", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "dsvdd_repro.train", *args], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    log = run_dir / "train.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and "epoch 1/40" in log.read_text()):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert "epoch 1/40" in log.read_text()
    assert not (run_dir / "metrics.json").exists()

    rerun = run_cli([*TINY, "trainer.epochs=3", f"hydra.run.dir={run_dir}"])
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "done"

@pytest.mark.slow
def test_a_failed_run_is_recorded_and_runs_again(tmp_path, monkeypatch):
    cfg = compose_config(TINY)

    def broken_fit(self, train_split, val_split):
        raise RuntimeError("simulated failure")

    with monkeypatch.context() as patch:
        patch.setattr(DeepSVDD, "fit", broken_fit)
        with pytest.raises(RuntimeError, match="simulated"):
            train.run(cfg, tmp_path)
    failed = json.loads((tmp_path / "metrics.json").read_text())
    assert failed["status"] == "failed" and "simulated failure" in failed["error"]
    assert train.run(cfg, tmp_path)["status"] == "done"

@pytest.mark.slow
def test_same_seed_same_test_set_and_scores(tmp_path):
    overrides = [*TINY, "trainer.epochs=1", "setup=alteration", "anomaly.thickness=1"]
    train.run(compose_config(overrides), tmp_path / "a")
    train.run(compose_config(overrides), tmp_path / "b")
    a, b = np.load(tmp_path / "a" / "scores.npz"), np.load(tmp_path / "b" / "scores.npz")
    np.testing.assert_array_equal(a["index"], b["index"])
    np.testing.assert_array_equal(a["score"], b["score"])

def test_missing_or_incomplete_dataset_root(tmp_path, monkeypatch):
    monkeypatch.delenv("DSVDD_CIFAR10_ROOT", raising=False)
    with pytest.raises(DatasetRootError, match="dataset.root is not set"):
        train.run(compose_config(["dataset=cifar10", "model.weights=none"]), tmp_path / "r1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetRootError, match="dataset.root"):
        train.run(compose_config(["dataset=cifar10", f"dataset.root={tmp_path / 'empty'}", "model.weights=none"]),
                  tmp_path / "r2")
    assert not list(tmp_path.rglob("metrics.json"))

@pytest.mark.slow
def test_cli_bad_input_exits_nonzero_with_one_clear_line(tmp_path):
    bad_value = run_cli([*TINY, "objective=soft_boundary", "objective.nu=0", f"hydra.run.dir={tmp_path}"])
    assert bad_value.returncode == 2
    errors = [line for line in bad_value.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: invalid config: objective.nu=0.0 (must be in (0.0, 1.0])"]
    unknown_option = run_cli([*TINY, "objective=huber", f"hydra.run.dir={tmp_path}"])
    assert unknown_option.returncode != 0
    assert "objective/huber" in unknown_option.stderr and "one_class" in unknown_option.stderr
    unknown_key = run_cli([*TINY, "trainer.epoch=3", f"hydra.run.dir={tmp_path}"])
    assert unknown_key.returncode != 0 and "trainer.epoch" in unknown_key.stderr
    assert not (tmp_path / "metrics.json").exists()

@pytest.mark.slow
@needs_cifar10
def test_real_cifar10_one_vs_all_end_to_end(tmp_path):
    """The whole real test set scored; the network is the small LeNet: the protocol is under test here."""
    result = run_cli([
        "dataset=cifar10", f"dataset.root={REAL_CIFAR10}", "setup=one_vs_all", "setup.normal_class=3",
        "model=lenet_cifar10", "model.bias=true", "trainer.epochs=1", "profile.max_val=1000", "seed=0",
        "trainer.progress=false", f"hydra.run.dir={tmp_path}",
    ])
    assert result.returncode == 0, result.stderr[-2000:]
    scores = np.load(tmp_path / "scores.npz")
    assert scores["score"].shape == (10_000,) and (scores["label"] == 0).sum() == 1_000
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"]["splits"]["train"]["n"] == 4_000
    assert metrics["data"]["source"]["n_train"] == 50_000 and 0.0 < metrics["test_auc"] < 1.0

@pytest.mark.slow
@needs_cifar10
def test_real_cifar10_strokes_alteration_end_to_end(tmp_path):
    result = run_cli([
        "dataset=cifar10", f"dataset.root={REAL_CIFAR10}", "setup=alteration", "anomaly=strokes",
        "anomaly.thickness=1", "model=lenet_cifar10", "trainer.epochs=1", "profile.max_train=1000",
        "profile.max_val=1000", "trainer.progress=false", f"hydra.run.dir={tmp_path}",
    ])
    assert result.returncode == 0, result.stderr[-2000:]
    scores = np.load(tmp_path / "scores.npz")
    assert scores["score"].shape == (20_000,) and scores["label"].sum() == 10_000

@pytest.mark.parametrize(
    "overrides",
    [
        ["variant=dsvdd"],
        ["variant=dsvdd_bias_noise", "regularizer.k=7"],
        ["variant=dsvdd_bias_var", "objective=soft_boundary", "objective.nu=0.2"],
        ["variant=dsvdd_bias_noise", "setup.semi_supervised=true", "setup.labeled_anomaly_class=2"],
        ["variant=dsvdd_bias_var", "setup=alteration", "setup.semi_supervised=true", "anomaly=strokes",
         "anomaly.train.name=block_perm", "anomaly.train.n=4", "anomaly.test.thickness=3"],
    ],
)
@pytest.mark.slow
def test_variants_objectives_and_semi_supervised_runs_write_c2_outputs(tmp_path, overrides):
    metrics = train.run(compose_config([*TINY, *overrides]), tmp_path)
    assert metrics["status"] == "done" and 0.0 <= metrics["test_auc"] <= 1.0
    assert (tmp_path / "scores.npz").is_file()
    expected_variant = {"none": "dsvdd_bias", "noise": "dsvdd_bias_noise", "variance": "dsvdd_bias_var"}
    regularizer = metrics["regularizer"]
    assert metrics["variant"] == ("dsvdd" if not metrics["bias"] else expected_variant[regularizer])
    assert metrics["k"] == (7 if regularizer == "noise" and not metrics["semi_supervised"] else metrics["k"])
    history = metrics["history"][-1]
    assert (history["loss_reg"] is None) == (regularizer == "none")
    assert ("variance_threshold" in history) == (regularizer == "variance")
    if metrics["objective"] == "soft_boundary":
        assert history["radius"] > 0
    if metrics["semi_supervised"]:
        assert metrics["data"]["splits"]["train"]["n_anomalous"] > 0

@pytest.mark.slow
def test_an_input_error_in_a_sweep_does_not_stop_the_other_jobs(tmp_path):
    result = run_cli(["-m", *TINY, "trainer.epochs=1", "objective.nu=0,0.5", "objective=soft_boundary",
                      f"hydra.sweep.dir={tmp_path}"])
    assert result.returncode == 1, result.stderr[-2000:]  # the sweep says a job was invalid
    assert "objective.nu=0.0" in result.stdout + result.stderr
    done = [json.loads(p.read_text()) for p in tmp_path.rglob("metrics.json")]
    assert [m["nu"] for m in done] == [0.5]

@pytest.mark.parametrize("batch", ["null", "1"])
@pytest.mark.slow
def test_a_sweep_launches_each_distinct_run_once(tmp_path, batch):
    """k x {variance, noise}: 6 jobs, 4 runs (the variance regularizer does not read k). With batches
    of one job, batches holding only duplicates launch nothing, the last one included."""
    result = run_cli(["-m", *TINY, "trainer.epochs=1", "variant=dsvdd_bias_var,dsvdd_bias_noise",
                      "regularizer.k=5,50,70", f"hydra.sweeper.max_batch_size={batch}", f"hydra.sweep.dir={tmp_path}"])
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert "sweep: 6 grid points are 4 distinct runs" in log
    launched = [line for line in log.splitlines() if "[HYDRA] \t#" in line]
    assert len(launched) == 4  # Hydra logs one "#i : overrides" line per launched job
    assert "already done, skipping" not in log
    done = sorted((m["variant"], m["k"]) for m in map(json.loads, (p.read_text() for p in tmp_path.rglob("metrics.json"))))
    assert done == [("dsvdd_bias_noise", 5), ("dsvdd_bias_noise", 50), ("dsvdd_bias_noise", 70), ("dsvdd_bias_var", None)]


@pytest.mark.slow
def test_model_seeds_share_one_test_set_and_the_data_seed_draws_another(tmp_path):
    """`seed` varies the model only; `data_seed` the split, the altered images and the subsamples
    (the paper's OC-SVM cells are +-0.0 over five runs: one test set for every seed)."""
    base = [*TINY, "trainer.epochs=1", "setup=alteration", "anomaly=strokes", "anomaly.thickness=1",
            "profile.max_train=40", "profile.max_test=40"]

    def scores(name, *overrides):
        train.run(compose_config([*base, *overrides]), tmp_path / name)
        return np.load(tmp_path / name / "scores.npz")

    a, b, c = scores("a"), scores("b", "seed=1"), scores("c", "data_seed=1")
    np.testing.assert_array_equal(a["index"], b["index"])
    np.testing.assert_array_equal(a["altered"], b["altered"])
    assert not np.array_equal(a["score"], b["score"])  # another model
    assert not np.array_equal(a["index"], c["index"])  # another test set
    ocsvm = [*base, "variant=ocsvm_pca", "method.nus=[0.1]", "method.gamma_exponents=[0]"]
    pca = [scores(f"p{seed}", *ocsvm[len(base):], f"seed={seed}")["score"] for seed in (0, 1)]
    np.testing.assert_array_equal(*pca)  # PCA + OC-SVM have no randomness beyond the data: +-0.0
