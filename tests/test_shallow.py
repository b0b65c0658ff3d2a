"""Shallow baselines: PCA features, OC-SVM / Isolation Forest scores and selection, the feature cache,
and end-to-end runs through the entrypoint (contract C2)."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.decomposition import PCA

from dsvdd_repro import train
from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.methods.features import (
    FeatureCache,
    FeatureExtractor,
    PCAFeatures,
    PCAFeaturesConfig,
    content_hash,
    fit_pca,
    selection_rows,
    subset,
)
from dsvdd_repro.methods.geo import PAPER_EPOCHS
from dsvdd_repro.methods.shallow import (
    IForestConfig,
    IForestDetector,
    OCSVMConfig,
    OCSVMDetector,
    OCSVMScaledConfig,
    gamma_scale,
)
from dsvdd_repro.models.resnet import ResNet18Config
from dsvdd_repro.runs.config import validate
from dsvdd_repro.runs.folders import variant_name
from tests.conftest import TINY, compose_config
from tests.nodes import shallow


def _split(n: int = 12, size: int = 8, n_altered: int = 0, seed: int = 0, name: str = "s") -> SplitData:
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    keys = np.concatenate([np.arange(n), np.arange(n_altered)])
    slots = np.concatenate([np.full(n, -1), np.arange(n_altered)])
    altered = torch.randint(0, 256, (n_altered, 3, size, size), dtype=torch.uint8, generator=gen)
    labels = (slots >= 0).astype(np.int64)
    return SplitData(name, pool, keys, labels, slots, altered)


def _low_rank(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(d)[: min(n, d)]  # a decaying spectrum
    basis = np.linalg.qr(rng.normal(size=(d, len(scales))))[0]
    return ((rng.normal(size=(n, len(scales))) * scales) @ basis.T + 3.0).astype(np.float32)


@pytest.mark.parametrize(("n", "d"), [(200, 20), (15, 60)])  # covariance route, Gram route (D > N)
def test_pca_keeps_the_fewest_components_above_the_requested_variance(n, d):
    x = _low_rank(n, d)
    mean, components, ratio = fit_pca(x, 0.95)
    k = len(components)
    assert ratio[:k].sum() > 0.95 >= ratio[: k - 1].sum()
    reference = PCA(n_components=0.95, svd_solver="full").fit(x.astype(np.float64))
    assert k == reference.n_components_
    np.testing.assert_allclose(components @ components.T, np.eye(k), atol=1e-6)
    ours = (x - mean) @ components.T
    theirs = reference.transform(x)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-3, atol=1e-4)  # up to signs


def test_pca_features_report_retained_variance_and_are_fitted_on_train_only():
    train_split, other = _split(40, seed=1), _split(30, seed=2)
    pca = PCAFeatures(variance=0.9, gcn=PCAFeaturesConfig().gcn, progress=False)
    info = pca.fit(train_split)
    assert info["retained_variance"] > 0.9 and info["input_dim"] == 3 * 8 * 8 and info["n_fit"] == 40
    features = pca.transform(train_split)
    assert features.shape == (40, info["n_components"]) and features.dtype == np.float32
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)  # centred on the training set
    assert pca.transform(other).shape == (30, info["n_components"])


def _toy_with_outlier(seed: int = 0):
    rng = np.random.default_rng(seed)
    x_train = rng.normal(size=(200, 5))
    x_val = np.concatenate([rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 4.0])
    y_val = np.repeat([0, 1], 40)
    x_test = np.concatenate([rng.normal(size=(50, 5)), np.full((1, 5), 6.0)])
    return x_train, x_val, y_val, x_test


@pytest.mark.parametrize(("detector_cls", "node"), [(OCSVMDetector, OCSVMConfig), (IForestDetector, IForestConfig)])
def test_scores_are_higher_for_the_known_outlier(detector_cls, node):
    x_train, x_val, y_val, x_test = _toy_with_outlier()
    grid = {"nus": (0.1,), "gamma_exponents": (-2, 0)} if detector_cls is OCSVMDetector else {}
    detector = shallow(detector_cls, node(), progress=False, **grid)
    summary = detector._fit(x_train, x_val, y_val)
    scores = detector._score(x_test)
    assert scores[-1] > scores[:-1].max()
    assert summary["val_auc"] > 0.9


def test_ocsvm_selects_the_best_validation_auc_and_caps_the_training_set():
    x_train, x_val, y_val, _ = _toy_with_outlier()
    detector = shallow(OCSVMDetector, OCSVMConfig(), nus=(0.05, 0.5), gamma_exponents=(-8, 0, 6), gamma_unit="scale",
                       max_train=120, progress=False)
    summary = detector._fit(x_train, x_val, y_val)
    grid = summary["selection"]["grid"]
    assert len(grid) == 6 and summary["selection"]["n_train_used"] == 120
    best = max(grid, key=lambda row: row["val_auc"])
    assert summary["val_auc"] == best["val_auc"]
    assert summary["selection"]["chosen"]["gamma_exponent"] == best["gamma_exponent"]
    # the subsample's scale (within 30% of the whole set's) times 2^k
    assert np.isclose(best["gamma"], gamma_scale(x_train[:120]) * 2.0 ** best["gamma_exponent"], rtol=0.3)


def test_ocsvm_defaults_to_ruff_et_als_absolute_grid_on_every_training_row():
    x_train, x_val, y_val, _ = _toy_with_outlier()
    detector = shallow(OCSVMDetector, OCSVMConfig(), progress=False)
    summary = detector._fit(x_train, x_val, y_val)
    grid = summary["selection"]["grid"]
    assert [(row["nu"], row["gamma"]) for row in grid] == [
        (nu, 2.0**k) for nu in (0.01, 0.1) for k in range(-10, 0)]
    assert summary["selection"]["n_train_used"] == len(x_train) and summary["selection"]["gamma_unit"] == "absolute"
    node = OmegaConf.structured(OCSVMConfig)
    assert (list(node.nus), list(node.gamma_exponents), node.gamma_unit, node.max_train) == (
        [0.01, 0.1], list(range(-10, 0)), "absolute", None)
    wider = OmegaConf.structured(OCSVMScaledConfig)  # method=ocsvm_scaled: the grid this suite used before
    assert (len(wider.nus) * len(wider.gamma_exponents), wider.gamma_unit) == (40, "scale")


def test_validation_subsample_is_seeded_and_balanced():
    labels = np.r_[np.zeros(30), np.ones(970)].astype(int)
    rows = selection_rows(labels, 100, seed=3)
    assert np.array_equal(rows, selection_rows(labels, 100, seed=3))
    assert (labels[rows] == 0).sum() == 30 and (labels[rows] == 1).sum() == 50
    assert len(selection_rows(labels, None, seed=3)) == 1000


class CountingFeatures(FeatureExtractor):
    """Mean pixel per image, fitted on train (a stand-in for PCA with a visible call count)."""

    name = "counting"
    needs_fit = True

    def __init__(self, offset: float = 0.0):
        self.offset, self.fits, self.transforms = offset, 0, 0

    def params(self):
        return {"offset": self.offset}

    def fit(self, train_split):
        self.fits += 1
        self.train_mean = float(train_split.batch(np.arange(len(train_split))).float().mean())
        return {"train_mean": self.train_mean}

    def transform(self, split):
        self.transforms += 1
        images = split.batch(np.arange(len(split))).float()
        return (images.mean(dim=(1, 2, 3)) - self.train_mean + self.offset).numpy()[:, None]


def test_feature_cache_is_hit_the_second_time_and_invalidated_when_an_input_changes(tmp_path):
    train_split, test_split = _split(10, seed=1), _split(6, n_altered=3, seed=2)

    def features(extractor, train_split, test_split):
        cache = FeatureCache(extractor, tmp_path)
        cache.set_train(train_split)
        out = cache.features(train_split, is_train=True), cache.features(test_split)
        return out, cache

    first_extractor = CountingFeatures()
    (first_train, first_test), first = features(first_extractor, train_split, test_split)
    assert first.hits == [False, False] and first_extractor.fits == 1

    again = CountingFeatures()
    (train_again, test_again), second = features(again, train_split, test_split)
    assert second.hits == [True, True] and again.fits == 0 and again.transforms == 0
    np.testing.assert_array_equal(test_again, first_test)
    assert second.fit_info == first.fit_info  # the fit's summary comes back from the cache

    # an altered image changes: that split is recomputed (the extractor fitted again), train is not
    changed = subset(test_split, np.arange(len(test_split)))
    changed.altered_images = test_split.altered_images.clone()
    changed.altered_images[0, 0, 0, 0] ^= 1
    assert content_hash(changed) != content_hash(test_split)
    (_, _), third = features(CountingFeatures(), train_split, changed)
    assert third.hits == [True, False]

    # the training set changes: every fitted feature is recomputed
    (_, _), fourth = features(CountingFeatures(), _split(10, seed=5), test_split)
    assert fourth.hits == [False, False]

    # a parameter changes
    (_, _), fifth = features(CountingFeatures(offset=1.0), train_split, test_split)
    assert fifth.hits == [False, False]


@pytest.mark.slow
def test_cnn_features_cache_key_holds_weights_pooling_size_and_init_seed():
    from dsvdd_repro.core.execution import Execution
    from dsvdd_repro.methods.features import CNNFeatures

    def cnn(pooling, seed):
        execution = Execution(torch.device("cpu"))
        model = OmegaConf.structured(ResNet18Config(pooling=pooling, weights="none"))
        return CNNFeatures(model, 8, seed=seed, device=execution.device, batch_size=execution.eval_batch_size,
                           progress=False, execution=execution)

    a, b, c = cnn("max", 0), cnn("max", 0), cnn("none", 1)
    assert a.params() == b.params() != c.params()
    assert a.params()["init_seed"] == 0 and a.params()["image_size"] == 8
    split = _split(4)
    np.testing.assert_array_equal(a.transform(split), b.transform(split))  # seeded random init
    assert a.transform(split).shape == (4, 512)


C2_KEYS = {"status", "method", "variant", "dataset", "setup", "normal_class", "anomaly", "bias", "pooling",
           "weights", "seed", "profile", "test_auc", "val_auc", "best_epoch", "collapsed", "history", "seconds",
           "provenance"}


@pytest.mark.parametrize(
    ("overrides", "variant"),
    [
        (["variant=ocsvm_pca", "method.nus=[0.1,0.5]", "method.gamma_exponents=[-2,0,2]"], "ocsvm_pca"),
        (["variant=iforest_cnn", "setup=alteration", "anomaly=block_perm", "anomaly.n=4"], "iforest_cnn"),
    ],
)
@pytest.mark.slow
def test_baseline_runs_write_c2_outputs(tmp_path, overrides, variant):
    cfg = compose_config([*TINY, *overrides])
    metrics = train.run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert C2_KEYS <= set(on_disk) and on_disk["status"] == "done"
    assert on_disk["variant"] == variant and on_disk["features"] == variant.split("_")[1]
    assert on_disk["history"] == [] and on_disk["best_epoch"] is None and 0.0 <= on_disk["val_auc"] <= 1.0
    assert on_disk["features_info"]["features"] == variant.split("_")[1]
    scores = np.load(tmp_path / "scores.npz")
    assert scores["score"].shape == scores["label"].shape and np.std(scores["score"]) > 0
    assert metrics["test_auc"] == on_disk["test_auc"]
    # a second launch of the same configuration is skipped
    assert train.run(cfg, tmp_path)["config_hash"] == on_disk["config_hash"]


@pytest.mark.slow
def test_baseline_config_values_are_checked_and_named():
    with pytest.raises(ConfigError, match=r"method.nus=1.5"):
        validate(compose_config([*TINY, "variant=ocsvm_pca", "method.nus=[0.1,1.5]"]))
    with pytest.raises(ConfigError, match=r"features.variance=0.0"):
        validate(compose_config([*TINY, "variant=ocsvm_pca", "features.variance=0"]))
    with pytest.raises(ConfigError, match=r"trainer.batch_size=1"):
        validate(compose_config([*TINY, "variant=geo", "trainer.batch_size=1"]))
    with pytest.raises(ConfigError, match=r"features=None \(method=ocsvm needs a features node\)"):
        validate(compose_config([*TINY, "method=ocsvm"]))


@pytest.mark.slow
def test_variants_name_themselves_and_drop_the_groups_they_do_not_read():
    for variant in ("ocsvm_cnn", "iforest_pca", "geo", "dsvdd_bias", "dsvdd"):
        assert variant_name(compose_config([*TINY, f"variant={variant}"])) == variant
    pca = compose_config([*TINY, "variant=ocsvm_pca"])
    assert pca.model is None and pca.objective is None and pca.regularizer is None and pca.optim is None
    cnn = compose_config([*TINY, "variant=ocsvm_cnn"])
    assert cnn.model.name == "resnet18" and cnn.objective is None
    geo = compose_config(["variant=geo"])
    assert geo.objective is None and geo.regularizer is None
    # conf/method_settings/geo.yaml holds Section V-B's values; its epochs are ceil(200 / 72)
    assert (geo.optim.lr, geo.trainer.batch_size, geo.trainer.epochs) == (1e-4, 35, PAPER_EPOCHS)
    # without a variant, the run is named after its method and regularizer
    assert variant_name(compose_config([*TINY[1:], "regularizer=noise"])) == "custom_dsvdd_noise"
