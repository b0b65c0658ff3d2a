"""The cost plan: split sizes counted as the protocols draw them, a run's work, the schedule, and
the plan of a profile from the sweeps `reproduce` launches."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dsvdd_repro.core.anomaly import AnomalyConfig
from dsvdd_repro.data.cifar10 import CIFAR10Config
from dsvdd_repro.data.fake import FakeImages, make_fake
from dsvdd_repro.data.setups import AlterationSetup, OneVsAllSetup
from dsvdd_repro.data.voc2012 import VOC2012Config
from dsvdd_repro.data.wikiart import WikiArtConfig
from dsvdd_repro.methods.base import Detector, PlannedWork
from dsvdd_repro.sweeps.cost import CostNotStated, run_work
from dsvdd_repro.sweeps.plan import Pricer, make_plan, schedule
from tests.conftest import ROOT, compose_config
from tests.nodes import from_node
from tests.test_reproduce import EXPECTED_RUNS

SETUPS = [
    OneVsAllSetup(normal_class=1),
    OneVsAllSetup(normal_class=2, semi_supervised=True, labeled_anomaly_class=0),
    AlterationSetup(),
    AlterationSetup(semi_supervised=True),
]


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: f"{s.name}{'-semi' if s.semi_supervised else ''}")
@pytest.mark.parametrize("limits", [{}, {"max_train": 20, "max_val": 11, "max_test": 9}])
def test_planned_sizes_are_those_of_the_real_splits(setup, limits):
    images = make_fake(n_classes=3, n_train_per_class=40, n_test_per_class=12, image_size=32)
    real = setup.splits(images, 0, limits, AnomalyConfig(name="block_perm", n=2), False)
    planned = setup.planned_sizes(FakeImages(32, 3, 40, 12).planned_counts(), limits)
    assert {name: len(getattr(real, name)) for name in ("train", "val", "test")} == \
        {name: planned[name] for name in ("train", "val", "test")}
    assert planned["labeled"] == int((real.train.semi_targets == -1).sum())
    assert planned["val_labels"] == len(np.unique(real.val.labels))
    assert planned["altered"] == len(real.train.altered_images) + len(real.val.altered_images) + \
        len(real.test.altered_images)


def test_the_full_datasets_give_the_papers_split_sizes():
    """Section V-A's numbers, from each source's pool sizes (its node's defaults: the paper's styles)."""
    cifar = from_node(CIFAR10Config(root=None)).planned_counts()
    voc = from_node(VOC2012Config(root=None)).planned_counts()
    wikiart = from_node(WikiArtConfig(root=None)).planned_counts()
    sizes = {
        "cifar10 alteration": (AlterationSetup(), cifar, (40_000, 20_000, 20_000)),
        "voc2012 alteration": (AlterationSetup(), voc, (5_717, 4_658, 6_988)),
        "voc2012 semi": (AlterationSetup(semi_supervised=True), voc, (6_352, 4_658, 6_988)),
        "wikiart alteration": (AlterationSetup(), wikiart, (7_856, 3_928, 8_410)),
        "wikiart semi": (AlterationSetup(semi_supervised=True), wikiart, (8_728, 3_928, 8_410)),
        # one-vs-all: 80% of the normal class trains; the rest of the train set validates
        "cifar10 one-vs-all": (OneVsAllSetup(normal_class=3), cifar, (4_000, 46_000, 10_000)),
        "cifar10 semi": (OneVsAllSetup(normal_class=3, semi_supervised=True, labeled_anomaly_class=5), cifar,
                         (4_500, 45_500, 10_000)),
    }
    for name, (setup, counts, expected) in sizes.items():
        planned = setup.planned_sizes(counts, {})
        assert (planned["train"], planned["val"], planned["test"]) == expected, name


def test_a_runs_work_is_counted_from_its_config():
    quick = ["profile=quick", "profile.weights=none", "dataset=cifar10", "setup=one_vs_all"]
    dsvdd = run_work(_container(quick + ["variant=dsvdd_bias_noise"]))
    # 3 epochs of 1,000 training images; BN calibration and c (random initialisation), 3 validations of
    # 500 rows, the 1,000 test rows; a checkpoint before the first epoch and after each
    assert (dsvdd.train, dsvdd.eval, dsvdd.checkpoints, dsvdd.network) == (3_000, 4_500, 4, ("resnet18", 32))
    geo = run_work(_container(quick + ["variant=geo"]))
    # 1 epoch of at most 5,000 transformed samples; 72 passes of 500 (Dirichlet fit), 500 (val), 1,000 (test)
    assert (geo.train, geo.eval, geo.geo) == (5_000, 72 * 2_000, 5_000 + 72 * 2_000)
    ocsvm = run_work(_container(quick + ["variant=ocsvm_pca"]))
    assert (ocsvm.fits, ocsvm.fit_rows, ocsvm.network, ocsvm.train) == (20, 1_000, None, 0)
    lenet = run_work(_container(["profile=paper", "variant=dsvdd_ruff2018", "dataset=cifar10", "setup=one_vs_all"]))
    # the original protocol: all 5,000 images of the normal class train; 150 epochs after 350 of
    # pretraining; its validation holds anomalies only, so no epoch is validated: c and the test set
    assert (lenet.train, lenet.pretrain, lenet.network) == (150 * 5_000, 350 * 5_000, ("lenet_cifar10", 32))
    assert lenet.eval == 5_000 + 10_000


class SilentDetector(Detector):
    """A user's method that states no run cost."""

    def fit(self, train, val):
        return {}

    def score(self, split):
        return np.zeros(len(split))

    @classmethod
    def from_context(cls, context):
        return cls()


class StatedDetector(SilentDetector):
    """A user's method that states its cost: its network trains on every training row each epoch,
    then scores the test set."""

    @staticmethod
    def planned_work(config, sizes):
        return PlannedWork(train=int(config["trainer"]["epochs"]) * sizes["train"], eval=sizes["test"])


def _users_method(target):
    quick = ["profile=quick", "profile.weights=none", "dataset=cifar10", "setup=alteration", "anomaly=strokes"]
    c = _container(quick + ["variant=dsvdd_bias"])
    c["method"] = {"_target_": target, "name": "mine"}
    return c


def _unit_prices(self, tasks):
    for task in tasks:
        self.entries[self.key(task)] = {"train": 1.0, "eval": 1.0, "pretrain": 1.0, "checkpoint_seconds": 0.0,
                                        "altered": 1e12, "fit_seconds": 0.0, "startup": 0.0}


def test_a_method_that_states_no_cost_is_refused_before_anything_is_priced(tmp_path, monkeypatch):
    from dsvdd_repro.sweeps.calibration import Calibration

    c = _users_method("tests.test_plan.SilentDetector.from_context")
    message = ("method=mine: tests.test_plan.SilentDetector states no run cost "
               "(implement planned_work(config, sizes))")
    with pytest.raises(CostNotStated) as refused:
        run_work(c)
    assert str(refused.value) == message
    monkeypatch.setattr("dsvdd_repro.sweeps.plan.sweep_containers",
                        lambda *args: ((1, None), [("run", str(tmp_path / "run"), c)], 0.0))
    monkeypatch.setattr(Calibration, "measure", lambda self, tasks: pytest.fail("measured a refused plan"))
    with pytest.raises(CostNotStated, match="SilentDetector states no run cost"):
        make_plan("quick", ["mine"], "local", "none", tmp_path / "runs", tmp_path)


def test_a_method_that_states_its_cost_is_priced(tmp_path, monkeypatch):
    import torch

    from dsvdd_repro.sweeps.calibration import Calibration

    monkeypatch.setattr(Calibration, "measure", _unit_prices)
    c = _users_method("tests.test_plan.StatedDetector.from_context")
    work = run_work(c)
    # quick: 3 epochs of the 1,000 training rows; 500 natural + 500 altered test rows
    assert (work.method, work.train, work.eval, work.network, work.fits) == ("mine", 3_000, 1_000, ("resnet18", 32), 0)
    assert work.altered == 250 + 500  # the validation and test sets' altered halves (quick caps)
    pricer = Pricer(Calibration(tmp_path, "cpu", 1, 1), torch.device("cpu"))
    pricer.calibration.measure(pricer.tasks(c, work))
    assert pricer.seconds(c, work) == pytest.approx(3_000 + 1_000)  # unit prices: 1 image/s, free anomalies


def _container(overrides):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_config(overrides), resolve=True)


def test_schedule_starts_each_job_on_the_first_free_worker():
    assert schedule([3, 1, 1, 1], 2) == 3
    assert schedule([2, 2, 2], 2) == 4
    assert schedule([1, 2, 3], 1) == 6


@pytest.mark.slow
def test_the_paper_plan_counts_every_experiments_runs_once(tmp_path, monkeypatch):
    """Every experiment's grid as test_reproduce expects it; runs two experiments share are counted
    once; with unit prices (1 image/s, no fixed cost) the run-seconds are the image-passes."""
    from dsvdd_repro.sweeps.calibration import Calibration

    monkeypatch.setattr(Calibration, "measure", _unit_prices)
    monkeypatch.setattr("dsvdd_repro.sweeps.plan.data_here", lambda container: True)  # every dataset, here or not
    plans, info = make_plan("paper", sorted(EXPECTED_RUNS), "local", "imagenet", tmp_path / "runs", tmp_path)
    for plan in plans:
        assert len(plan.runs) + plan.shared + plan.invalid == EXPECTED_RUNS[plan.name], plan.name
        assert plan.done == 0 and plan.invalid == 0
    by_name = {plan.name: plan for plan in plans}
    table6 = by_name["table6_cifar10"]
    assert len(table6.runs) == 4_950
    # 30 epochs of 4,000 normal + 500 labeled images; eval: c, 30 validations of 45,500 rows, 10,000 test rows
    assert table6.total("train") == 4_950 * 30 * 4_500
    assert table6.run_seconds == pytest.approx(4_950 * (30 * 4_500 + 4_500 + 30 * 45_500 + 10_000))
    assert by_name["table5"].shared > 0  # its runs are those of tables 2 and 4 under other selections
    assert info["workers"] == 1


@pytest.mark.slow
def test_make_plan_prints_the_plan_and_caches_the_calibration(tmp_path):
    env = {**os.environ, "DSVDD_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "dsvdd_repro.reproduce", "--profile", "smoke", "--experiments", "ruff2018",
               "--plan", "--runs-dir", str(tmp_path / "runs")]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "| ruff2018 | 2 | 0 | 0 | 0 | 0 |" in first.stdout and "measured now: autoencoder, network, startup" in first.stdout
    assert (tmp_path / "plan" / "calibration.json").is_file()
    assert len(list((tmp_path / "plan" / "sweeps").glob("*.json"))) == 1  # the expansion, kept for the next plan
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "calibration.json (cached)" in again.stdout
