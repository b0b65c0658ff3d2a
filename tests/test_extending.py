"""Extending the suite without touching any file of dsvdd_repro/ (README, "Extending"): a user's own
regularizer through config alone (a class in the user's module plus a YAML node on Hydra's search
path) and a user's own images (`dataset=folder`), run end to end; and a user's regularizer registered
as the package registers its own (`config_node`), whose node declares its own hyper-parameter as
swept and chosen on validation: runs record it and the report's selection chooses it per cell."""

import importlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hydra.core.config_store import ConfigStore
from PIL import Image

from dsvdd_repro import train
from dsvdd_repro.core import schema
from dsvdd_repro.report.collect import collect_runs
from dsvdd_repro.report.published import table_names
from dsvdd_repro.report.tables import table_cells
from dsvdd_repro.runs.folders import run_axes
from tests.conftest import ROOT, TINY, compose_config

# The user's module: an L2 penalty on phi, mean_i ||phi(x_i)||^2, weighted like the paper's regularizers.
USER_MODULE = '''
import torch
from dsvdd_repro.methods.deep_svdd.regularizers import Regularizer


class L2Regularizer(Regularizer):
    name = "l2"

    def __init__(self, feature_dim, seed, scale=1.0, **weighting):
        super().__init__(**weighting)
        self.scale = scale

    def forward(self, features):
        return self.scale * features.pow(2).sum(dim=1).mean()
'''

USER_NODE = """
# regularizer=l2: the user's own regularizer (my_regularizers.py on PYTHONPATH)
_target_: my_regularizers.L2Regularizer
name: l2
scale: 0.01
weighting: fixed
alpha: 0.9
beta: 0.5
c0: 0.0
"""


def _image_tree(root, n_classes=3, per_class=24, size=16):
    """<root>/<class>/*.png: each class a different mean colour with noise."""
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 70 * c, 30, size=(size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.mark.slow
def test_a_users_regularizer_and_images_run_end_to_end_through_config_alone(tmp_path):
    user = tmp_path / "user"
    (user / "conf" / "regularizer").mkdir(parents=True)
    (user / "my_regularizers.py").write_text(textwrap.dedent(USER_MODULE))
    (user / "conf" / "regularizer" / "l2.yaml").write_text(USER_NODE)
    _image_tree(tmp_path / "images")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user), str(ROOT)]),
           "DSVDD_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "dsvdd_repro.train", f"hydra.searchpath=[file://{user / 'conf'}]",
         "regularizer=l2", "dataset=folder", f"dataset.root={tmp_path / 'images'}", "setup.normal_class=1",
         "profile.weights=none", "trainer.epochs=2", "trainer.batch_size=8", "trainer.progress=false",
         f"hydra.run.dir={runs}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((runs / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["dataset"] == "folder"
    assert metrics["regularizer"] == "l2" and metrics["variant"] == "custom_dsvdd_l2"
    assert metrics["config"]["regularizer"]["scale"] == 0.01  # the user's node is part of the identity
    history = metrics["history"]
    assert len(history) == 2 and all(entry["loss_reg"] > 0 and entry["reg_weight"] == 1.0 for entry in history)
    assert metrics["data"]["splits"]["train"]["n"] > 0 and 0.0 <= metrics["test_auc"] <= 1.0


# The user's module: a hinge that keeps the features' spread around their batch mean above `target`,
# a node of its own (registered like the package's), whose `target` is swept and chosen on validation.
SPREAD_MODULE = '''
from typing import ClassVar

import torch

from dsvdd_repro.methods.deep_svdd.regularizers import Regularizer, WeightingKeys
from dsvdd_repro.core.schema import config_node, positive


@config_node("regularizer", "spread")
class SpreadConfig(WeightingKeys):
    SWEPT: ClassVar[tuple[str, ...]] = ("target",)
    SELECTED: ClassVar[tuple[str, ...]] = ("target",)

    _target_: str = "my_spread.SpreadRegularizer"
    name: str = "spread"
    target: float = 1.0

    def __post_init__(self) -> None:
        positive("target", self.target)
        self.check_weighting()


class SpreadRegularizer(Regularizer):
    name = "spread"

    def __init__(self, feature_dim, seed, target, **weighting):
        super().__init__(**weighting)
        self.target = target

    def forward(self, features):
        spread = (features - features.mean(dim=0)).pow(2).sum(dim=1).mean()
        return torch.relu(self.target - spread)
'''


@pytest.fixture
def spread_regularizer(tmp_path, monkeypatch):
    """The user's module imported, so its node is registered; unregistered again afterwards, so that
    no other test sees it."""
    (tmp_path / "my_spread.py").write_text(textwrap.dedent(SPREAD_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("my_spread")
    ConfigStore.instance().repo["regularizer"].pop("spread.yaml", None)
    schema.NODE_TARGETS.pop(("regularizer", "spread"), None)
    schema.NODE_CLASSES.pop(("regularizer", "spread"), None)
    sys.modules.pop("my_spread", None)


# val / test AUC per (normal class, target): validation prefers 0.5 for class 0 and 2 for class 1,
# the test AUCs the other way round, so a choice by test AUC (or none) would give another number
AUCS = {(0, 0.5): (0.90, 0.50), (0, 2.0): (0.60, 0.80), (1, 0.5): (0.60, 0.70), (1, 2.0): (0.90, 0.55)}


@pytest.mark.slow
def test_a_users_swept_hyper_parameter_is_recorded_and_chosen_on_validation(tmp_path, spread_regularizer):
    base = [item for item in TINY if not item.startswith(("variant=", "trainer.epochs="))] + ["trainer.epochs=1"]
    runs = tmp_path / "runs"
    for (normal_class, target), (val_auc, test_auc) in AUCS.items():
        cfg = compose_config([*base, "regularizer=spread", f"regularizer.target={target}",
                              f"setup.normal_class={normal_class}"])
        assert run_axes(cfg)["target"] == target
        run_dir = runs / f"c{normal_class}_t{target}"
        assert train.run(cfg, run_dir)["status"] == "done"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        # (1) the run records the node's own hyper-parameter among its axes, beside every earlier axis
        assert metrics["status"] == "done" and metrics["variant"] == "custom_dsvdd_spread"
        assert metrics["target"] == target and metrics["config"]["regularizer"]["target"] == target
        assert {"nu", "k", "d0", "r", "weighting"} <= set(metrics) and metrics["k"] is None
        assert metrics["weighting"] == "adaptive" and all(entry["loss_reg"] >= 0 for entry in metrics["history"])
        # known AUCs, so that what is chosen is known: the report reads only metrics.json
        (run_dir / "metrics.json").write_text(json.dumps({**metrics, "val_auc": val_auc, "test_auc": test_auc}))

    # (2) the report: a table of the user's own (a published cell of this variant) chooses the target
    # per normal class on validation AUC, as the package's tables choose k
    published = pd.DataFrame([{
        "table": "spread", "variant": "custom_dsvdd_spread", "row_label": "D. SVDD w/ spread reg.",
        "dataset": "fake", "setup": "one_vs_all", "semi_supervised": False, "train_anomaly": "",
        "val_anomaly": "", "test_anomaly": "", "objective": "one_class", "lr": 1e-3, "weighting": "adaptive",
        "column_label": "one-vs-all", "mean": 60.0, "spread": 1.0, "bold": False, "note": "",
    }])
    assert table_names(published) == ("spread",)
    collected = collect_runs(runs, published)
    assert sorted(collected["target"]) == [0.5, 0.5, 2.0, 2.0]
    cell = table_cells(collected, published, "spread").iloc[0]
    assert cell["status"] == "ok" and cell["n_runs"] == 2 and cell["n_classes"] == 2
    assert cell["target"] == "0.5,2"  # class 0 chose 0.5, class 1 chose 2
    assert cell["ours_mean"] == pytest.approx(100 * (0.50 + 0.55) / 2)  # the validation-chosen runs' test AUC
    assert cell["k"] == ""  # the package's own selected parameter: this variant has none

