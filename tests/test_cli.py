"""The command line and run directory contracts (C1, C2): outputs, skip-if-done, re-run after a
kill or a failure, and bad input that fails before any work."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dsvdd_repro import train
from dsvdd_repro.config import anomaly
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.runs import identity
from dsvdd_repro.schema import ConfigError
from dsvdd_repro.methods.deep_svdd.trainer import DeepSVDD
from tests.conftest import CONF_DIR, ROOT, TINY, compose_config, run_cli

C2_KEYS = {
    "status", "method", "variant", "dataset", "setup", "normal_class", "anomaly", "objective", "regularizer",
    "bias", "pooling", "weights", "lr", "seed", "profile", "test_auc", "val_auc", "best_epoch", "collapsed",
    "history", "seconds", "provenance",
}
HISTORY_KEYS = {"epoch", "loss_svdd", "loss_reg", "reg_weight", "feature_var", "val_auc"}


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


def test_a_done_folder_of_another_configuration_is_not_overwritten(tmp_path):
    train.run(compose_config([*TINY, "trainer.epochs=1"]), tmp_path)
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(train.RunDirError, match=r"different configuration \(seed\)"):
        train.run(compose_config([*TINY, "trainer.epochs=1", "seed=3"]), tmp_path)
    assert (tmp_path / "metrics.json").read_text() == before


def test_same_seed_same_test_set_and_scores(tmp_path):
    overrides = [*TINY, "trainer.epochs=1", "setup=alteration", "anomaly.thickness=1"]
    train.run(compose_config(overrides), tmp_path / "a")
    train.run(compose_config(overrides), tmp_path / "b")
    a, b = np.load(tmp_path / "a" / "scores.npz"), np.load(tmp_path / "b" / "scores.npz")
    np.testing.assert_array_equal(a["index"], b["index"])
    np.testing.assert_array_equal(a["score"], b["score"])


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["objective=soft_boundary", "objective.nu=0"], "objective.nu=0.0"),
        (["objective=soft_boundary", "objective.nu=1.5"], "objective.nu=1.5"),
        (["variant=dsvdd_bias_noise", "regularizer.k=0"], "regularizer.k=0"),
        (["variant=dsvdd_bias_var", "regularizer.alpha=1.2"], "regularizer.alpha=1.2"),
        (["model.pooling=avg"], "model.pooling='avg'"),
        (["trainer.epochs=0"], "trainer.epochs=0"),
        (["optim.lr=0"], "optim.lr=0.0"),
        (["variant=ocsvm_pca", "method.max_train=1"], "method.max_train=1"),
        (["dataset.image_size=0"], "dataset.image_size=0"),
    ],
)
def test_bad_values_fail_before_any_work_naming_key_and_allowed(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as error:
        train.run(compose_config([*TINY, *overrides]), tmp_path)
    assert key in str(error.value) and ("allowed" in str(error.value) or "must be" in str(error.value))
    assert not (tmp_path / "metrics.json").exists()


def test_block_count_must_divide_the_image(tmp_path):
    with pytest.raises(ConfigError, match=r"anomaly.n=3 .*must divide dataset.image_size=32"):
        train.run(compose_config([*TINY, "setup=alteration", "anomaly=block_perm", "anomaly.n=3"]), tmp_path)
    cfg = compose_config([*TINY, "setup=alteration", "anomaly.test.name=block_perm", "anomaly.test.n=5"])
    with pytest.raises(ConfigError, match=r"anomaly.test.n=5"):
        train.run(cfg, tmp_path)


def test_per_split_anomaly_overrides_fall_back_key_by_key():
    cfg = compose_config([*TINY, "setup=alteration", "anomaly=strokes", "anomaly.thickness=9",
                          "anomaly.train.name=block_perm", "anomaly.train.n=8", "anomaly.test.thickness=5"])
    assert anomaly(cfg).spec("train") == {"name": "block_perm", "n": 8, "thickness": 9}
    assert anomaly(cfg).spec("val") == {"name": "strokes", "n": 2, "thickness": 9}
    assert anomaly(cfg).spec("test") == {"name": "strokes", "n": 2, "thickness": 5}


def test_missing_or_incomplete_dataset_root(tmp_path, monkeypatch):
    monkeypatch.delenv("DSVDD_CIFAR10_ROOT", raising=False)
    with pytest.raises(DatasetRootError, match="dataset.root is not set"):
        train.run(compose_config(["dataset=cifar10", "model.weights=none"]), tmp_path / "r1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetRootError, match="dataset.root"):
        train.run(compose_config(["dataset=cifar10", f"dataset.root={tmp_path / 'empty'}"]), tmp_path / "r2")
    assert not list(tmp_path.rglob("metrics.json"))


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


REAL_CIFAR10 = os.environ.get("DSVDD_CIFAR10_ROOT")
needs_cifar10 = pytest.mark.skipif(not REAL_CIFAR10, reason="DSVDD_CIFAR10_ROOT (the real CIFAR-10 copy) not set")


@pytest.mark.slow
@needs_cifar10
def test_real_cifar10_one_vs_all_end_to_end(tmp_path):
    result = run_cli([
        "dataset=cifar10", f"dataset.root={REAL_CIFAR10}", "setup=one_vs_all", "setup.normal_class=3",
        "model.bias=true", "model.weights=none", "trainer.epochs=1", "profile.max_val=1000", "seed=0",
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
        "anomaly.thickness=1", "model.weights=none", "trainer.epochs=1", "profile.max_train=1000",
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


def test_semi_supervised_one_vs_all_needs_another_class(tmp_path):
    with pytest.raises(ConfigError, match="setup.labeled_anomaly_class"):
        train.run(compose_config([*TINY, "setup.semi_supervised=true"]), tmp_path)
    with pytest.raises(ConfigError, match="setup.labeled_anomaly_class=5 .*allowed: 0..2"):
        train.run(compose_config([*TINY, "setup.semi_supervised=true", "setup.labeled_anomaly_class=5"]), tmp_path)


def test_a_done_run_from_an_older_schema_is_still_recognised(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=1"])
    train.run(cfg, tmp_path)
    path = tmp_path / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["config"]["setup"]["semi_supervised"]  # as if written before that key existed
    metrics["config"]["retired_group"] = {"old_key": 1}
    path.write_text(json.dumps(metrics))
    assert train.run(cfg, tmp_path)["test_auc"] == metrics["test_auc"]


def test_run_identity_is_the_config_without_execution_keys_and_unread_groups():
    def of(*overrides):
        return identity(compose_config([*TINY, *overrides]))

    base = of()
    assert of("trainer.device=cpu", "trainer.num_threads=1", "trainer.progress=true", "trainer.eval_batch_size=7") == base
    cifar = ["dataset=cifar10", "model.weights=none"]
    assert identity(compose_config([*cifar, "dataset.root=/a"])) == identity(
        compose_config([*cifar, "dataset.root=/b", "dataset.cache_dir=/x", "dataset.download=true"]))
    assert of("anomaly.thickness=9") == base  # one-vs-all alters no image
    assert of("setup=alteration", "anomaly.thickness=9") != of("setup=alteration")
    assert of("variant=dsvdd_bias_noise", "regularizer.k=50") != of("variant=dsvdd_bias_noise")
    assert of("trainer.epochs=3") != base and of("seed=1") != base
    pca = of("variant=ocsvm_pca")
    assert {"model", "objective", "regularizer", "optim"} & {key for key, value in pca.items() if value} == set()
    with pytest.raises(Exception, match="regularizer.k"):  # a key the run does not have cannot be set
        of("variant=dsvdd_bias_var", "regularizer.k=50")


def test_an_input_error_in_a_sweep_does_not_stop_the_other_jobs(tmp_path):
    result = run_cli(["-m", *TINY, "trainer.epochs=1", "objective.nu=0,0.5", "objective=soft_boundary",
                      f"hydra.sweep.dir={tmp_path}"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "objective.nu=0.0" in result.stderr
    done = [json.loads(p.read_text()) for p in tmp_path.rglob("metrics.json")]
    assert [m["nu"] for m in done] == [0.5]


@pytest.mark.parametrize("batch", ["null", "1"])
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


def test_the_default_sweeper_is_the_grid_sweeper_and_experiments_share_the_paper_axes():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=table1", "profile=quick"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.dsvdd_repro_sweeper.grid_sweeper.GridSweeper"
    assert cfg.hydra.sweeper.params["regularizer.k"] == "5,30,50,60,70,100,130,200"  # conf/grid/paper.yaml
    assert cfg.hydra.sweeper.params["seed"] == "range(5)" and "variant" in cfg.hydra.sweeper.params
    assert cfg.hydra.sweeper.restrict["regularizer.k"] == "5,50"  # the profile's restriction


@pytest.mark.parametrize(
    ("variant", "method", "regularizer", "bias", "features"),
    [
        ("dsvdd", "dsvdd", "none", False, None),
        ("dsvdd_bias", "dsvdd", "none", True, None),
        ("dsvdd_bias_noise", "dsvdd", "noise", True, None),
        ("dsvdd_bias_var", "dsvdd", "variance", True, None),
        ("ocsvm_pca", "ocsvm", None, None, "pca"),
        ("ocsvm_cnn", "ocsvm", None, None, "cnn"),
        ("iforest_pca", "iforest", None, None, "pca"),
        ("iforest_cnn", "iforest", None, None, "cnn"),
        ("geo", "geo", None, None, None),
    ],
)
def test_each_table_row_is_one_variant_override(variant, method, regularizer, bias, features):
    from dsvdd_repro.config import variant_name

    cfg = compose_config([*TINY, f"variant={variant}"])
    assert cfg.method.name == method and variant_name(cfg) == variant
    if regularizer is not None:
        assert cfg.regularizer.name == regularizer and cfg.model.bias == bias
    if features is not None:
        assert cfg.features.name == features


def test_launcher_groups_select_hydra_launchers():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for launcher, target in [("local", "BasicLauncher"), ("joblib", "JoblibLauncher"), ("slurm", "SlurmLauncher")]:
            cfg = compose("config", overrides=[f"launcher={launcher}"], return_hydra_config=True)
            assert cfg.hydra.launcher._target_.endswith(target)
        slurm = compose("config", overrides=["launcher=slurm", "+launcher/clusters=example"], return_hydra_config=True)
        assert slurm.hydra.launcher.partition == "gpu" and slurm.trainer.device == "cuda"


def _run_dir(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True).hydra.run.dir


def test_run_folders_are_named_by_semantic_config_and_stay_short():
    many = [*TINY, "setup=alteration", "anomaly=strokes", "anomaly.thickness=1", "anomaly.train.name=block_perm",
            "anomaly.train.n=8", "setup.semi_supervised=true", "profile.max_train=500", "profile.max_val=500",
            "profile.max_test=1000", "variant=dsvdd_bias_noise", "objective=soft_boundary"]
    folder = _run_dir(many)
    assert folder.startswith("runs/paper/dsvdd_bias_noise/fake_alteration_semi/") and folder.endswith("_s0")
    assert len(folder) < 90
    assert _run_dir(many) == folder
    assert _run_dir([*many, "seed=1"]).endswith("_s1")
    assert _run_dir([*many, "trainer.device=cpu", "trainer.num_threads=1"]) == folder
    assert _run_dir([*TINY, "variant=ocsvm_pca", "profile=smoke"]).startswith("runs/smoke/ocsvm_pca/fake_one_vs_all_c0/")


def test_soft_boundary_nu_follows_the_dataset_as_in_the_paper():
    def nu(*overrides):
        return compose_config(["objective=soft_boundary", "model.weights=none", *overrides]).objective.nu

    assert nu("dataset=voc2012") == 0.2 and nu("dataset=wikiart") == 0.1 and nu("dataset=cifar10") == 0.1
    assert nu("dataset=voc2012", "objective.nu=0.05") == 0.05


def test_geo_identity_keeps_the_bias_switch_it_reads():
    geo = [*TINY, "variant=geo"]
    assert identity(compose_config([*geo, "model.bias=false"])) != identity(compose_config(geo))
