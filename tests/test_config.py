"""The config nodes and `config.validate` (contract C1): bad values fail before any work, naming the
key, the value and what is allowed; variants, experiments, launchers and per-dataset defaults compose."""

import pytest

from dsvdd_repro import train
from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.runs.config import anomaly
from tests.conftest import CONF_DIR, TINY, compose_config


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["objective=soft_boundary", "objective.nu=0"], "objective.nu=0.0"),
        (["objective=soft_boundary", "objective.nu=1.5"], "objective.nu=1.5"),
        (["variant=dsvdd_bias_noise", "regularizer.k=0"], "regularizer.k=0"),
        (["variant=dsvdd_bias_var", "regularizer.alpha=1.2"], "regularizer.alpha=1.2"),
        (["model.pooling=mean"], "model.pooling='mean'"),
        (["objective=soft_boundary", "objective.warm_up_epochs=-1"], "objective.warm_up_epochs=-1"),
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

def test_semi_supervised_one_vs_all_needs_another_class(tmp_path):
    with pytest.raises(ConfigError, match="setup.labeled_anomaly_class"):
        train.run(compose_config([*TINY, "setup.semi_supervised=true"]), tmp_path)
    with pytest.raises(ConfigError, match="setup.labeled_anomaly_class=5 .*allowed: 0..2"):
        train.run(compose_config([*TINY, "setup.semi_supervised=true", "setup.labeled_anomaly_class=5"]), tmp_path)

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
    from dsvdd_repro.runs.folders import variant_name

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

def test_soft_boundary_nu_follows_the_dataset_as_in_the_paper():
    def nu(*overrides):
        return compose_config(["objective=soft_boundary", "model.weights=none", *overrides]).objective.nu

    assert nu("dataset=voc2012") == 0.2 and nu("dataset=wikiart") == 0.1 and nu("dataset=cifar10") == 0.1
    assert nu("dataset=voc2012", "objective.nu=0.05") == 0.05
