"""Run folders (dsvdd_repro/runs/folders.py, contract C2): identity, the hash in the folder name, skip-if-done
and conflicts."""

import json

import pytest

from dsvdd_repro import train
from dsvdd_repro.runs.folders import identity
from tests.conftest import CONF_DIR, TINY, compose_config, with_profile


@pytest.mark.slow
def test_a_done_folder_of_another_configuration_is_not_overwritten(tmp_path):
    train.run(compose_config([*TINY, "trainer.epochs=1"]), tmp_path)
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(train.RunDirError, match=r"different configuration \(seed\)"):
        train.run(compose_config([*TINY, "trainer.epochs=1", "seed=3"]), tmp_path)
    assert (tmp_path / "metrics.json").read_text() == before

@pytest.mark.slow
def test_a_done_run_from_an_older_schema_is_still_recognised(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=1"])
    train.run(cfg, tmp_path)
    path = tmp_path / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["config"]["setup"]["semi_supervised"]  # as if written before that key existed
    metrics["config"]["retired_group"] = {"old_key": 1}
    path.write_text(json.dumps(metrics))
    assert train.run(cfg, tmp_path)["test_auc"] == metrics["test_auc"]

@pytest.mark.slow
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

def _run_dir(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=with_profile(overrides), return_hydra_config=True).hydra.run.dir

@pytest.mark.slow
def test_run_folders_are_named_by_the_run_identity_and_stay_short():
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

def test_geo_identity_keeps_the_bias_switch_it_reads():
    geo = [*TINY, "variant=geo"]
    assert identity(compose_config([*geo, "model.bias=false"])) != identity(compose_config(geo))


def test_a_key_added_at_its_earlier_value_keeps_the_identity_runs_had_before_it():
    from omegaconf import OmegaConf

    from dsvdd_repro.runs.folders import identity_of

    container = OmegaConf.to_container(compose_config([*TINY, "model=lenet_cifar10"]), resolve=True)
    assert container["model"]["init"] == "torch"
    before_the_key = {**container, "model": {k: v for k, v in container["model"].items() if k != "init"}}
    assert identity_of(container) == identity_of(before_the_key)
    authors = {**container, "model": {**container["model"], "init": "xavier_leaky_relu"}}
    assert identity_of(authors) != identity_of(container) and identity_of(authors)["model"]["init"] == "xavier_leaky_relu"
