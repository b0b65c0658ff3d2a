"""Bad input is refused in one line before any work (contract C1): `error: ...` on stderr naming the
key or path, the bad value and what is allowed, exit code 2, no metrics.json, and no dataset read.

Most cases call `config.validate` on a composed config (what `train.run` calls first); a few run the
real entrypoint in a subprocess, two of them with a dataset root that does not exist, so that the
error proves the check came before the dataset was looked at (else it would be about dataset.root).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torchvision.models import resnet18

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.models.weights import WeightsError
from dsvdd_repro.runs.config import validate
from tests.conftest import ROOT, TINY, compose_config

ALTERATION = ["setup=alteration", "anomaly=strokes"]
# CIFAR-10 without its data: its class count is known from its node alone
CIFAR10 = ["variant=dsvdd_bias", "dataset=cifar10", "profile.weights=none", "trainer.progress=false"]


def refused(overrides: list[str], error=ConfigError) -> str:
    with pytest.raises(error) as caught:
        validate(compose_config(overrides))
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # optim: finite learning rate and factors
        (["optim.lr=nan"], ["optim.lr=nan", "must be a finite number > 0"]),
        (["optim.lr=inf"], ["optim.lr=inf", "must be a finite number > 0"]),
        (["optim.lr=-1"], ["optim.lr=-1.0", "> 0"]),
        (["optim.lr=0"], ["optim.lr=0.0", "> 0"]),
        (["optim.weight_decay=nan"], ["optim.weight_decay=nan", "finite number >= 0"]),
        (["optim.weight_decay=-0.1"], ["optim.weight_decay=-0.1", ">= 0"]),
        (["optim.backbone_lr_factor=inf"], ["optim.backbone_lr_factor=inf", "finite number > 0"]),
        (["optim.backbone_lr_factor=0"], ["optim.backbone_lr_factor=0.0", "> 0"]),
        (["trainer.collapse_ratio=nan"], ["trainer.collapse_ratio=nan", "must be in (0.0, 1.0]"]),
        # anomalies that do not fit the image (32 px)
        ([*ALTERATION, "anomaly.thickness=100"], ["anomaly.thickness=100", "must be in 1..16", "image_size=32"]),
        ([*ALTERATION, "anomaly.thickness=0"], ["anomaly.thickness=0", "must be in 1..16"]),
        ([*ALTERATION, "anomaly.test.thickness=17"], ["anomaly.test.thickness=17", "1..16"]),
        (["setup=alteration", "anomaly=block_perm", "anomaly.n=64"], ["anomaly.n=64", "must divide dataset.image_size=32"]),
        (["setup=alteration", "anomaly=block_perm", "anomaly.n=1"], ["anomaly.n=1", ">= 2"]),
        # keys no schema has, added with `+`
        (["+trainer.epoch=3"], ["trainer.epoch=3", "unknown key; allowed: epochs, batch_size"]),
        (["+epoch=3"], ["epoch=3", "unknown key", "seed, data_seed"]),
        (["+optim.momentum=0.9"], ["optim.momentum=0.9", "unknown key; allowed: name, lr, backbone_lr_factor"]),
        (["+dataset.n_class=4"], ["dataset.n_class=4", "n_classes"]),
        (["+profile.max_tests=5"], ["profile.max_tests=5", "max_test"]),
        ([*ALTERATION, "+anomaly.test.thicknes=3"], ["anomaly.test.thicknes=3", "allowed: name, n, thickness"]),
        # counts and seeds
        (["trainer.num_threads=-1"], ["trainer.num_threads=-1", "must be null or >= 1"]),
        (["trainer.num_threads=0"], ["trainer.num_threads=0", ">= 1"]),
        (["seed=-1"], ["seed=-1", "0..4294967295"]),
        (["seed=4294967296"], ["seed=4294967296", "0..4294967295"]),
        (["data_seed=-1"], ["data_seed=-1", "0..4294967295"]),
        (["dataset.n_train_per_class=0"], ["dataset.n_train_per_class=0", "must be >= 1"]),
        (["dataset.n_test_per_class=0"], ["dataset.n_test_per_class=0", "must be >= 1"]),
        # class indices against the classes the dataset node knows
        (["setup.normal_class=3"], ["setup.normal_class=3", "not a class of fake; allowed: 0..2"]),
        (["setup.normal_class=-1"], ["setup.normal_class=-1", ">= 0"]),
        (["setup.semi_supervised=true", "setup.labeled_anomaly_class=5"],
         ["setup.labeled_anomaly_class=5", "allowed: 0..2"]),
        (["setup.semi_supervised=true", "setup.labeled_anomaly_class=-1"], ["setup.labeled_anomaly_class=-1", ">= 0"]),
        (["dataset.n_classes=1"], ["setup='one_vs_all'", "single class", "setup=alteration"]),
    ],
)
def test_bad_value_is_one_config_error_naming_key_value_and_rule(overrides, expected):
    message = refused([*TINY, *overrides])
    assert all(part in message for part in expected), message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["setup.normal_class=12"], ["setup.normal_class=12", "not a class of cifar10; allowed: 0..9"]),
        (["setup.normal_class=10"], ["setup.normal_class=10", "allowed: 0..9"]),
        (["setup.semi_supervised=true", "setup.labeled_anomaly_class=10"],
         ["setup.labeled_anomaly_class=10", "allowed: 0..9"]),
    ],
)
def test_cifar10_class_indices_are_checked_without_its_data(overrides, expected):
    message = refused([*CIFAR10, *overrides])
    assert all(part in message for part in expected), message


@pytest.mark.parametrize(
    "overrides",
    [
        [*TINY, *ALTERATION, "anomaly.thickness=16"],  # the largest stroke at 32 px
        [*TINY, *ALTERATION, "anomaly.thickness=9"],  # Tables I-VI's strokes 9 in the 32 px profiles
        [*TINY, "setup=alteration", "anomaly=block_perm", "anomaly.n=32"],
        [*TINY, "anomaly.thickness=100"],  # one-vs-all alters no image: the anomaly node is unused
        [*TINY, "setup.normal_class=2", "seed=4294967295", "data_seed=0"],
        [*CIFAR10, "setup.normal_class=9", "setup.semi_supervised=true", "setup.labeled_anomaly_class=0"],
    ],
)
def test_values_at_the_limits_are_accepted(overrides):
    validate(compose_config(overrides))


# --- weights files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory) -> dict:
    """One file per way a weights file can be wrong (and one right file)."""
    folder = tmp_path_factory.mktemp("weights")
    state = resnet18(weights=None).state_dict()
    files = {}

    def save(name, content):
        files[name] = folder / f"{name}.pth"
        torch.save(content, files[name])

    save("good", state)
    save("non_tensor", {"a": 1})
    save("list", [torch.zeros(3)])
    save("mixed", {**state, "conv1.weight": "weights"})
    save("nan", {**state, "conv1.weight": torch.full_like(state["conv1.weight"], float("nan"))})
    save("inf", {**state, "layer1.0.bn1.running_var": torch.full((64,), float("inf"))})
    save("misshapen", {**state, "conv1.weight": torch.zeros(64, 1, 7, 7)})
    save("object", {"net": torch.nn.Linear(2, 2)})
    files["text"] = folder / "notes.txt"
    files["text"].write_text("these are not weights\nsecond line\n")
    files["empty"] = folder / "empty.pth"
    files["empty"].write_bytes(b"")
    files["missing"] = folder / "missing.pth"
    return files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("non_tensor", "expected a dict of tensors; not tensors: a (int)"),
        ("list", "expected a dict of tensors, got list"),
        ("mixed", "not tensors: conv1.weight (str)"),
        ("nan", "tensors holding NaN or inf values: conv1.weight"),
        ("inf", "tensors holding NaN or inf values: layer1.0.bn1.running_var"),
        ("misshapen", "wrong shapes: conv1.weight"),
        ("object", "holds objects other than tensors (torch.nn.modules.linear.Linear)"),
        ("text", "not a state dict saved with torch.save"),
        ("empty", "empty file"),
        ("missing", "no such file; allowed: imagenet, none"),
    ],
)
def test_bad_weights_file_is_one_weights_error_naming_path_and_problem(weights_files, name, expected):
    path = weights_files[name]
    message = refused([*TINY, f"model.weights={path}"], WeightsError)
    assert message.startswith(f"model.weights='{path}': ") and expected in message, message


def test_a_good_weights_file_passes(weights_files):
    validate(compose_config([*TINY, f"model.weights={weights_files['good']}"]))


# --- the entrypoint ------------------------------------------------------------------------------


def run_entrypoint(tmp_path, overrides: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "DSVDD_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "dsvdd_repro.train", *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([*TINY, "optim.lr=nan"], ["optim.lr=nan", "finite"]),
        ([*TINY, "+trainer.epoch=3"], ["trainer.epoch=3", "unknown key; allowed: epochs"]),
        # the root does not exist: refused on the class index, so before the dataset was looked at
        ([*CIFAR10, "dataset.root=/nonexistent/cifar10", "setup.normal_class=12"],
         ["setup.normal_class=12", "allowed: 0..9"]),
        # torch.load's message about a text file, in one line, before the dataset was looked at
        ([*CIFAR10, "dataset.root=/nonexistent/cifar10", "model.weights=WEIGHTS"],
         ["model.weights=", "notes.txt", "not a state dict saved with torch.save"]),
    ],
)
@pytest.mark.slow
def test_entrypoint_refuses_in_one_line_with_exit_code_2(tmp_path, overrides, expected):
    weights = tmp_path / "notes.txt"
    weights.write_text("these are not weights\nsecond line\n")
    result = run_entrypoint(tmp_path, [item.replace("WEIGHTS", str(weights)) for item in overrides])
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert all(part in errors[0] for part in expected), errors[0]
    assert "dataset.root" not in errors[0]
    assert not (tmp_path / "run" / "metrics.json").exists()
