"""Extending the suite through config alone (README, "Extending"): a user's own regularizer (a class
in the user's module plus a YAML node on Hydra's search path) and a user's own images
(`dataset=folder`), run end to end without touching any file of dsvdd_repro/."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

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
