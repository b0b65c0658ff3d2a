"""Split sizes and properties of the paper's protocols (Section V-A)."""

import numpy as np
import pytest
import torch

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.data import protocols
from dsvdd_repro.data.images import NaturalImages

STROKES = {"name": "strokes", "n": 2, "thickness": 1}
BLOCKS = {"name": "block_perm", "n": 4, "thickness": 1}


def cifar_like(n_train_per_class=50, n_test_per_class=10, n_classes=10, size=32) -> NaturalImages:
    """Random images with CIFAR-10's structure at a fraction of its size."""
    gen = torch.Generator().manual_seed(0)
    n_train, n_test = n_train_per_class * n_classes, n_test_per_class * n_classes
    return NaturalImages(
        name="cifar_like",
        class_names=[f"c{i}" for i in range(n_classes)],
        train_images=torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=gen),
        train_labels=torch.arange(n_train) % n_classes,
        test_images=torch.randint(0, 256, (n_test, 3, size, size), dtype=torch.uint8, generator=gen),
        test_labels=torch.arange(n_test) % n_classes,
    )


def test_one_vs_all_sizes_follow_the_paper():
    # CIFAR-10 scaled by 1/100: 5,000 -> 50 train images per class, 1,000 -> 10 test images
    images = cifar_like()
    splits = protocols.one_vs_all(images, normal_class=3, seed=0)
    assert len(splits.train) == 40  # 80% of the normal class
    assert len(splits.val) == 500 - 40  # every other train image
    assert len(splits.test) == 100
    assert splits.train.labels.sum() == 0
    assert (images.train_labels[splits.train.keys] == 3).all()
    assert splits.val.labels.sum() == 450 and (splits.val.labels == 0).sum() == 10
    assert (splits.test.labels == 0).sum() == 10
    assert set(splits.train.keys).isdisjoint(splits.val.keys)


def test_one_vs_all_rejects_unknown_class():
    with pytest.raises(ConfigError, match="setup.normal_class=10") as exc:  # the one ConfigError (core/schema.py)
        protocols.one_vs_all(cifar_like(), normal_class=10, seed=0)
    assert isinstance(exc.value, ValueError) and "allowed: 0..9" in str(exc.value)
    with pytest.raises(ConfigError, match="setup.labeled_anomaly_class=-1"):
        protocols.one_vs_all(cifar_like(), normal_class=0, seed=0, labeled_anomaly_class=-1)


def test_alteration_sizes_and_pairing():
    # CIFAR-10's 50,000 / 10,000 scaled by 1/100 -> train 400, val 200 (100 + 100), test 200
    images = cifar_like()
    splits = protocols.alteration(images, {"val": BLOCKS, "test": STROKES}, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (400, 200, 200)
    for split in (splits.val, splits.test):
        assert split.labels.sum() == len(split) // 2
        natural = split.batch(np.flatnonzero(split.labels == 0))
        altered = split.batch(np.flatnonzero(split.labels == 1))
        # the i-th anomaly is the altered counterpart of the i-th natural image
        assert np.array_equal(split.keys[split.labels == 0], split.keys[split.labels == 1])
        assert (natural != altered).flatten(1).any(dim=1).all()
    assert set(splits.train.keys).isdisjoint(splits.val.keys)
    assert splits.val.anomaly["name"] == "block_perm" and splits.test.anomaly["name"] == "strokes"


def test_splits_are_deterministic_per_seed():
    images = cifar_like()
    a = protocols.alteration(images, {"val": STROKES, "test": STROKES}, seed=4, progress=False)
    b = protocols.alteration(images, {"val": STROKES, "test": STROKES}, seed=4, progress=False)
    c = protocols.alteration(images, {"val": STROKES, "test": STROKES}, seed=5, progress=False)
    assert np.array_equal(a.train.keys, b.train.keys)
    assert torch.equal(a.test.altered_images, b.test.altered_images)
    assert not np.array_equal(a.train.keys, c.train.keys)
    assert not torch.equal(a.test.altered_images, c.test.altered_images)


def test_subsampling_balances_evaluation_splits_and_keeps_pairs():
    images = cifar_like()  # 50 train and 10 test images per class
    limits = {"max_train": 30, "max_val": 100, "max_test": 40}
    ova = protocols.one_vs_all(images, normal_class=0, seed=0, limits=limits)
    assert len(ova.train) == 30 and len(ova.val) == 100 and len(ova.test) == 40
    # validation has only 10 normals (50 - 40 trained on): all kept, anomalies fill the rest
    assert (ova.val.labels == 0).sum() == 10 and ova.val.labels.sum() == 90
    assert (ova.test.labels == 0).sum() == 10 and ova.test.labels.sum() == 30
    small = protocols.one_vs_all(images, normal_class=0, seed=0, limits={"max_val": 16, "max_test": 8})
    assert (small.val.labels == 0).sum() == 8 and (small.test.labels == 0).sum() == 4
    semi = protocols.one_vs_all(
        images, normal_class=3, seed=0, labeled_anomaly_class=7, limits={"max_train": 9}
    )
    assert len(semi.train) == 9 and (semi.train.semi_targets == -1).sum() == 1  # train stays stratified (8:1)
    alt = protocols.alteration(images, {"val": STROKES, "test": STROKES}, 0, limits=limits, progress=False)
    assert len(alt.val) == 100 and alt.val.labels.sum() == 50
    assert len(alt.test) == 40 and alt.test.labels.sum() == 20


def test_batch_gathers_without_copying_the_pool():
    images = cifar_like()
    splits = protocols.one_vs_all(images, normal_class=1, seed=0)
    assert splits.train.pool.data_ptr() == images.train_images.data_ptr()
    rows = np.array([2, 0])
    assert torch.equal(splits.val.batch(rows), images.train_images[splits.val.keys[rows]])


def test_semi_supervised_one_vs_all_adds_one_labeled_anomaly_class():
    images = cifar_like()  # 50 train images per class
    splits = protocols.one_vs_all(images, normal_class=3, seed=0, labeled_anomaly_class=7)
    labeled = splits.train.semi_targets == -1
    assert len(splits.train) == 40 + 5  # 80% of the normal class + 10% of class 7
    assert labeled.sum() == 5 and (splits.train.labels[labeled] == 1).all()
    assert (images.train_labels[splits.train.keys[labeled]] == 7).all()
    assert (splits.train.semi_targets[~labeled] == 0).all()
    assert set(splits.train.keys).isdisjoint(splits.val.keys)  # labeled anomalies left validation
    assert len(splits.val) == 500 - 45
    train_classes = set(images.train_labels[splits.train.keys].tolist())
    assert train_classes == {3, 7}  # the other anomaly classes stay unseen in training


def test_semi_supervised_alteration_train_is_90_percent_natural_10_percent_labeled_anomalies():
    images = cifar_like()
    specs = {"train": {"name": "block_perm", "n": 8, "thickness": 1}, "val": STROKES, "test": BLOCKS}
    splits = protocols.alteration(images, specs, seed=0, progress=False, labeled_anomaly_fraction=0.1)
    n_natural = 400
    n_labeled = n_natural // 9  # VOC2012: 5,717 natural + 635 labeled = 6,352; WikiArt 7,856 + 872
    assert len(splits.train) == n_natural + n_labeled
    assert (splits.train.semi_targets == -1).sum() == n_labeled == splits.train.labels.sum()
    assert splits.train.anomaly["name"] == "block_perm" and splits.test.anomaly["name"] == "block_perm"
    assert splits.val.anomaly["name"] == "strokes"
    altered_rows = np.flatnonzero(splits.train.labels == 1)
    natural = images.train_images[splits.train.keys[altered_rows]]
    assert (splits.train.batch(altered_rows) != natural).flatten(1).any(dim=1).all()


def test_labeled_anomaly_counts_match_the_papers_semi_supervised_training_sets():
    assert 5717 + protocols.labeled_anomaly_count(5717, 0.1) == 6352  # VOC2012
    assert 7856 + protocols.labeled_anomaly_count(7856, 0.1) == 8728  # WikiArt
    assert protocols.labeled_anomaly_count(40000, 0.1) == 4444  # CIFAR-10 (not reported)
