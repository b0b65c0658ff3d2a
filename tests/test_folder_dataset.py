"""`dataset=folder`: a user's own class folders, with given train/test splits or a seeded split,
built and loaded through the config node as the entrypoint does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from PIL import Image

from dsvdd_repro.core.schema import ConfigError, build
from dsvdd_repro.data import decode, protocols
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.data.folder import FolderConfig
from dsvdd_repro.data.images import NaturalImages
from tests.conftest import run_cli

SIZE = 16
CLASSES = {"zebra": 10, "apple": 7, "mango": 4}  # sorted: apple, mango, zebra


def load(root, **keys):
    return build(OmegaConf.structured(FolderConfig(root=str(root), **keys))).load(progress=False)


def picture(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def write_class(folder, n: int, seed: int) -> dict[str, np.ndarray]:
    """n images in `folder`: lossless PNGs at the target size, every third a JPEG of another size."""
    folder.mkdir(parents=True)
    written = {}
    for i in range(n):
        if i % 3 == 2:
            Image.fromarray(picture(seed + i, 40)).save(folder / f"img{i:02d}.jpg", quality=90)
        else:
            written[f"img{i:02d}.png"] = picture(seed + i)
            Image.fromarray(written[f"img{i:02d}.png"]).save(folder / f"img{i:02d}.png")
    return written


@pytest.fixture
def class_root(tmp_path):
    root = tmp_path / "mine"
    pngs = {}
    for c, (name, n) in enumerate(CLASSES.items()):
        pngs.update({f"{name}/{k}": v for k, v in write_class(root / name, n, 100 * c).items()})
    (root / "notes.txt").write_text("not a class")
    (root / ".hidden").mkdir()
    return root, pngs


@pytest.fixture
def split_root(tmp_path):
    root = tmp_path / "given"
    for split, n in (("train", 5), ("test", 2)):
        for c, name in enumerate(("cat", "dog")):
            write_class(root / split / name, n + c, 1000 * c + (split == "test"))
    return root


def test_class_folders_seeded_split(class_root, tmp_path):
    root, pngs = class_root
    data = load(root, image_size=SIZE, cache_dir=str(tmp_path / "cache"))
    assert data.name == "folder" and data.class_names == ["apple", "mango", "zebra"]
    # 30% of each class (rounded) is the test pool: 7 -> 2, 4 -> 1, 10 -> 3
    assert data.source["per_class"] == {
        "apple": {"train": 5, "test": 2}, "mango": {"train": 3, "test": 1}, "zebra": {"train": 7, "test": 3}
    }
    assert data.train_labels.tolist() == [0] * 5 + [1] * 3 + [2] * 7
    assert data.test_labels.tolist() == [0] * 2 + [1] + [2] * 3
    assert data.train_images.shape == (15, 3, SIZE, SIZE) and data.test_images.shape == (6, 3, SIZE, SIZE)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    src = data.source
    assert src["layout"] == "class-folders" and src["root"] == str(root.resolve())
    assert "seed 0" in src["split_rule"]
    assert data.val_from == "train" and data.default_val_fraction == 0.2
    # PNGs at the target size are kept pixel for pixel, wherever the split put them
    got = {bytes(x.permute(1, 2, 0).numpy()) for x in torch.cat([data.train_images, data.test_images])}
    assert {bytes(p) for p in pngs.values()} <= got


def test_seeded_split_is_fixed_and_per_class(class_root, tmp_path):
    root, _ = class_root
    first = load(root, image_size=SIZE, cache_dir=str(tmp_path / "c1"))
    again = load(root, image_size=SIZE, cache_dir=str(tmp_path / "c2"))
    assert torch.equal(first.test_images, again.test_images)
    assert torch.equal(first.train_images, again.train_images)
    # another class does not move this class's split
    write_class(root / "banana", 6, 7)
    more = load(root, image_size=SIZE, cache_dir=str(tmp_path / "c1"))
    assert more.class_names == ["apple", "banana", "mango", "zebra"] and not more.source["cache_hit"]
    for name in ("apple", "zebra"):
        old, new = first.class_names.index(name), more.class_names.index(name)
        before, after = first.test_images[first.test_labels == old], more.test_images[more.test_labels == new]
        assert torch.equal(before, after)
    # the share is a key: a larger one, a different test pool
    larger = load(root, image_size=SIZE, test_fraction=0.5, cache_dir=str(tmp_path / "c1"))
    assert larger.source["per_class"]["zebra"] == {"train": 5, "test": 5} and not larger.source["cache_hit"]


def test_given_train_and_test_folders(split_root, tmp_path):
    data = load(split_root, image_size=24, val_fraction=0.4, cache_dir=str(tmp_path / "cache"))
    assert data.class_names == ["cat", "dog"] and data.source["layout"] == "train-test"
    assert data.train_labels.tolist() == [0] * 5 + [1] * 6 and data.test_labels.tolist() == [0] * 2 + [1] * 3
    assert data.train_images.shape == (11, 3, 24, 24)  # resized from 16 and 40 px
    assert data.source["per_class"] == {"cat": {"train": 5, "test": 2}, "dog": {"train": 6, "test": 3}}
    # the test folder's first cat image, resized as the other sources do (PIL, bilinear)
    with Image.open(split_root / "test" / "cat" / "img00.png") as im:
        first = np.asarray(im.resize((24, 24), Image.Resampling.BILINEAR))
    assert np.array_equal(data.test_images[0].permute(1, 2, 0).numpy(), first)
    # val_fraction is the alteration protocol's share of the train pool
    assert data.default_val_fraction == 0.4
    specs = {
        "val": {"name": "block_perm", "n": 2, "thickness": 1},
        "test": {"name": "strokes", "n": 2, "thickness": 1},
    }
    splits = protocols.alteration(data, specs, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 8, 10)
    ova = protocols.one_vs_all(data, normal_class=1, seed=0)
    assert (ova.test.labels == 0).sum() == 3


def test_cache_hit_and_invalidation(class_root, tmp_path, monkeypatch):
    root, _ = class_root
    cache = str(tmp_path / "cache")
    first = load(root, image_size=SIZE, cache_dir=cache)
    with monkeypatch.context() as patch:
        patch.setattr(decode, "iter_decoded", lambda *a, **k: pytest.fail("decoded despite the cache"))
        second = load(root, image_size=SIZE, cache_dir=cache)
    assert second.source["cache_hit"] and second.source["cache_path"] == first.source["cache_path"]
    assert torch.equal(first.train_images, second.train_images)
    Image.fromarray(picture(999)).save(root / "mango" / "new.png")
    assert not load(root, image_size=SIZE, cache_dir=cache).source["cache_hit"]


def test_node_is_registered_and_reads_the_environment(split_root, monkeypatch):
    monkeypatch.setenv("DSVDD_FOLDER_ROOT", str(split_root))
    node = ConfigStore.instance().load("dataset/folder.yaml").node
    assert node.root == str(split_root) and node.image_size == 32 and node.name == "folder"
    data = build(node).load(progress=False)
    assert data.class_names == ["cat", "dog"] and data.image_size == 32


def _message(root, **keys) -> str:
    with pytest.raises(DatasetRootError) as exc:
        load(root, **keys)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("dataset.root")
    return msg


def test_errors(tmp_path, class_root, split_root, monkeypatch):
    monkeypatch.delenv("DSVDD_FOLDER_ROOT", raising=False)
    with pytest.raises(DatasetRootError, match="dataset.root is not set.*DSVDD_FOLDER_ROOT"):
        build(OmegaConf.structured(FolderConfig)).load(progress=False)
    msg = _message(tmp_path / "nope")
    assert "does not exist" in msg and str(tmp_path / "nope") in msg and "download" not in msg
    (tmp_path / "flat").mkdir()
    Image.fromarray(picture(0)).save(tmp_path / "flat" / "a.png")
    assert "holds no class folders; expected one sub-folder per class" in _message(tmp_path / "flat")
    write_class(tmp_path / "one" / "only", 3, 0)
    assert "the root holds 1 class folder(s), at least 2 are needed" in _message(tmp_path / "one")

    root, _ = class_root
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("no images")
    assert "class folder(s) empty/ hold no images" in _message(root)

    (split_root / "test" / "dog").rename(split_root / "test" / "cow")
    assert "train/ holds the classes cat, dog but test/ holds cat, cow" in _message(split_root)
    write_class(split_root / "test" / "bird", 0, 0)
    assert "hold no images" in _message(split_root)
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    assert "found train/ but not test/ beside it" in _message(tmp_path / "half")

    tiny = tmp_path / "tiny"
    for name in ("a", "b"):
        write_class(tiny / name, 1, 0)
    # round(0.3 x 1) = 0 test images; round(0.6 x 1) = 1 test image, 0 train
    assert "class folder a/ has 1 image, b/ has 1 image; the split needs at least 2 per class" in _message(tiny)
    assert "(1 train, 1 test with test_fraction=0.6)" in _message(tiny, test_fraction=0.6)


def test_every_accepted_extension_in_any_case_and_no_hidden_file(tmp_path):
    root = tmp_path / "mine"
    (root / "a" / ".thumbs").mkdir(parents=True)
    grays = {f"x{i}{ext}": picture(10 + i)[..., 0] for i, ext in enumerate((".png", ".BMP", ".webp", ".Gif"))}
    for name, gray in grays.items():
        Image.fromarray(gray).save(root / "a" / name, **({"lossless": True} if name.endswith(".webp") else {}))
    for ignored in ("a/.x9.png", "a/.thumbs/x8.png", ".trash/x7.png"):  # hidden file, inside hidden folders
        (root / ignored).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(99)).save(root / ignored)
    (root / "a" / "notes.txt").write_text("not an image")
    write_class(root / "b", 3, 50)
    data = load(root, image_size=SIZE, cache_dir=str(tmp_path / "cache"))
    assert data.class_names == ["a", "b"]
    assert data.source["per_class"]["a"] == {"train": 3, "test": 1}  # the 4 images, nothing hidden
    a = torch.cat([data.train_images[data.train_labels == 0], data.test_images[data.test_labels == 0]])
    assert {bytes(x[0].numpy()) for x in a} == {bytes(g) for g in grays.values()}  # lossless: pixel for pixel


def _classes(root, counts: dict[str, int]):
    for c, (name, n) in enumerate(counts.items()):
        write_class(root / name, n, 10 * c)
    return root


@pytest.mark.parametrize(("n", "test_fraction", "need"), [(1, 0.3, 2), (4, 0.9, 5), (1, 0.6, 2)])
def test_a_class_folder_too_small_for_the_seeded_split_is_refused(tmp_path, n, test_fraction, need):
    root = _classes(tmp_path / "mine", {"cats": n, "dogs": 10})
    msg = _message(root, test_fraction=test_fraction)
    images = "image" if n == 1 else "images"
    assert msg == (f"dataset.root={root.resolve()}: class folder cats/ has {n} {images}; the split needs at least "
                   f"{need} per class (1 train, 1 test with test_fraction={test_fraction}): add images or change "
                   "dataset.test_fraction")
    # the count needed is enough
    for i in range(need - n):
        Image.fromarray(picture(500 + i)).save(root / "cats" / f"more{i}.png")
    data = load(root, image_size=SIZE, test_fraction=test_fraction, cache_dir=str(tmp_path / "cache"))
    per_class = data.source["per_class"]["cats"]
    assert per_class["train"] >= 1 and per_class["test"] >= 1 and sum(per_class.values()) == need


def _refused(call) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    msg = str(caught.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(("n", "train_fraction", "pool", "need", "uses"), [
    (2, 0.8, 1, 3, "2 to train, 1 to validate"),  # 1 train image, none to validate
    (3, 0.8, 2, 3, "2 to train, 1 to validate"),  # round(0.8 x 2) = 2 train, 0 to validate
    (3, 0.5, 2, 3, "2 to train, 1 to validate"),  # round(0.5 x 2) = 1 train image
    (2, 1.0, 1, 2, "2 to train"),  # no validation split: only the training set counts
])
def test_one_vs_all_refuses_a_normal_class_too_small_for_its_splits(tmp_path, n, train_fraction, pool, need, uses):
    data = load(_classes(tmp_path / "mine", {"cats": n, "dogs": 10}), image_size=SIZE,
                cache_dir=str(tmp_path / "cache"))
    assert data.source["per_class"]["cats"]["train"] == pool
    msg = _refused(lambda: protocols.one_vs_all(data, normal_class=0, seed=0, train_fraction=train_fraction))
    images = "image" if pool == 1 else "images"
    assert msg == (f"invalid config: setup.normal_class=0 (class cats has {pool} {images} in the train pool; "
                   f"one_vs_all with train_fraction={train_fraction} needs at least {need} ({uses}))")
    # as an anomaly class it is fine
    assert set(protocols.one_vs_all(data, normal_class=1, seed=0).test.labels.tolist()) == {0, 1}


def test_one_vs_all_with_a_just_big_enough_normal_class(tmp_path):
    data = load(_classes(tmp_path / "mine", {"cats": 4, "dogs": 2}), image_size=SIZE,
                cache_dir=str(tmp_path / "cache"))
    assert data.source["per_class"] == {"cats": {"train": 3, "test": 1}, "dogs": {"train": 1, "test": 1}}
    splits = protocols.one_vs_all(data, normal_class=0, seed=0)
    assert len(splits.train) == 2 and splits.val.labels.tolist() == [0, 1] and splits.test.labels.tolist() == [0, 1]


def test_semi_supervised_one_vs_all_refuses_taking_every_anomaly_from_validation(tmp_path):
    data = load(_classes(tmp_path / "mine", {"cats": 10, "dogs": 2}), image_size=SIZE,
                cache_dir=str(tmp_path / "cache"))
    msg = _refused(lambda: protocols.one_vs_all(data, normal_class=0, seed=0, labeled_anomaly_class=1))
    assert msg == ("invalid config: setup.labeled_anomaly_class=1 (the classes other than cats have 1 image in the "
                   "train pool, less 1 labeled anomaly, leaving no anomaly to validate; one_vs_all needs at least 1)")
    _classes(tmp_path / "mine", {"birds": 2})  # a third class keeps an anomaly to validate
    more = load(tmp_path / "mine", image_size=SIZE, cache_dir=str(tmp_path / "cache"))
    splits = protocols.one_vs_all(more, normal_class=1, seed=0, labeled_anomaly_class=2)
    assert splits.val.labels.tolist().count(1) == 1 and splits.train.labels.tolist().count(1) == 1


def _natural(train_labels: list[int], test_labels: list[int], val_from: str = "train") -> NaturalImages:
    def images(n: int) -> torch.Tensor:
        return torch.zeros((n, 3, 4, 4), dtype=torch.uint8)

    return NaturalImages("hand", ["cats", "dogs"], images(len(train_labels)), torch.tensor(train_labels),
                         images(len(test_labels)), torch.tensor(test_labels), val_from=val_from)


def test_one_vs_all_refuses_a_test_set_with_one_label():
    no_normal = _natural([0] * 5 + [1] * 5, [1, 1])
    assert _refused(lambda: protocols.one_vs_all(no_normal, normal_class=0, seed=0)) == (
        "invalid config: setup.normal_class=0 (class cats has 0 images in the test pool; one_vs_all needs at least "
        "1 normal image to test)")
    no_anomaly = _natural([0] * 5 + [1] * 5, [0, 0])
    assert _refused(lambda: protocols.one_vs_all(no_anomaly, normal_class=0, seed=0)) == (
        "invalid config: setup.normal_class=0 (the classes other than cats have 0 images in the test pool; "
        "one_vs_all needs at least 1 anomaly to test)")


SPECS = {"val": {"name": "block_perm", "n": 2, "thickness": 1}, "test": {"name": "strokes", "n": 2, "thickness": 1}}


def test_alteration_refuses_a_pool_too_small_for_its_validation_share(tmp_path):
    data = load(_classes(tmp_path / "mine", {"cats": 2, "dogs": 2}), image_size=SIZE,
                cache_dir=str(tmp_path / "cache"))  # train pool: 1 + 1
    assert _refused(lambda: protocols.alteration(data, SPECS, seed=0, progress=False)) == (
        "invalid config: setup.val_fraction=None (null: folder's 0.2 of the train pool (2 images) validates; "
        "alteration needs at least 3 there (1 to validate, 2 to train))")  # round(0.2 x 2) = 0
    assert _refused(lambda: protocols.alteration(data, SPECS, seed=0, val_fraction=0.5, progress=False)) == (
        "invalid config: setup.val_fraction=0.5 (0.5 of the train pool (2 images) validates; "
        "alteration needs at least 4 there (1 to validate, 2 to train))")  # 1 validates, 1 trains
    # validation from the test pool (as VOC2012's): the rest tests, the whole train pool trains
    assert "0.4 of the test pool (1 image) validates; alteration needs at least 2 there (1 to validate, 1 to test)" in (
        _refused(lambda: protocols.alteration(_natural([0, 1], [0], "test"), SPECS, 0, 0.4, progress=False)))
    assert _refused(lambda: protocols.alteration(_natural([0], [0, 1], "test"), SPECS, 0, 0.5, progress=False)) == (
        "invalid config: setup='alteration' (the train pool of hand has 1 image; alteration trains on all of it and "
        "needs at least 2)")


def test_alteration_with_a_just_big_enough_pool(tmp_path):
    data = load(_classes(tmp_path / "mine", {"cats": 2, "dogs": 3}), image_size=SIZE,
                cache_dir=str(tmp_path / "cache"))  # train pool 1 + 2: round(0.2 x 3) = 1 validates, 2 train
    splits = protocols.alteration(data, SPECS, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (2, 2, 4)


@pytest.mark.parametrize(("counts", "expected"), [
    ({"cats": 1, "dogs": 10}, "class folder cats/ has 1 image; the split needs at least 2 per class"),
    ({"cats": 3, "dogs": 10}, "invalid config: setup.normal_class=0 (class cats has 2 images in the train pool; "
                              "one_vs_all with train_fraction=0.8 needs at least 3 (2 to train, 1 to validate))"),
])
@pytest.mark.slow
def test_a_run_on_a_class_too_small_is_refused_before_any_work(tmp_path, counts, expected):
    root = _classes(tmp_path / "mine", counts)
    result = run_cli(["dataset=folder", f"dataset.root={root}", "variant=ocsvm_pca", "setup=one_vs_all",
                      "setup.normal_class=0", "profile=smoke", "trainer.progress=false",
                      f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0]
    assert not (tmp_path / "run" / "metrics.json").exists()
