"""Dataset sources: the config nodes, CIFAR-10 layouts, the decoded-array cache, errors, and the fake
dataset. Every dataset is built and loaded as the entrypoint does it: `build(node).load()`."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import pickle
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from PIL import Image

import dsvdd_repro.data
from dsvdd_repro.core.schema import ConfigError, build
from dsvdd_repro.data import cifar10 as cifar10_mod
from dsvdd_repro.data import decode
from dsvdd_repro.data.cache import cached_arrays, fingerprint
from dsvdd_repro.data.cifar10 import CIFAR10_CLASSES, CIFAR10Config
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.data.fake import FakeConfig, make_fake
from dsvdd_repro.data.folder import FolderConfig
from dsvdd_repro.data.source import IMAGE_EXTENSIONS, find_images, image_files, is_hidden
from dsvdd_repro.data.voc2012 import VOC2012Config
from dsvdd_repro.data.wikiart import WIKIART_PAPER_STYLES, WikiArtConfig
from dsvdd_repro.storage.locations import default_cache_root

N_TRAIN, N_TEST = 3, 2


def load_cifar10(root, **keys):
    """CIFAR-10 through its config node, as the entrypoint loads it."""
    return build(OmegaConf.structured(CIFAR10Config(root=root, **keys))).load(progress=False)


def _image(cls: int, i: int, split: str) -> np.ndarray:
    """A distinct, reproducible 32x32x3 image per (class, index, split)."""
    seed = cls * 100 + i * 10 + (split == "test")
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.fixture
def folder_root(tmp_path):
    """train/ and test/ with one PNG folder per class (PNG is lossless: pixels round-trip)."""
    root = tmp_path / "cifar-folder"
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        for c, name in enumerate(CIFAR10_CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            # Written out of order so that the loader's sorting is what fixes the order.
            for i in reversed(range(n)):
                Image.fromarray(_image(c, i, split)).save(d / f"{i:04d}.png")
    return root


@pytest.fixture
def pickle_root(tmp_path):
    """A tiny copy of torchvision's cifar-10-batches-py (same pickle dict structure)."""
    root = tmp_path / "cifar-pickle"
    batches = root / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(1)
    expected = {}

    def write(name, n):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, n)]
        with open(batches / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [f"{k}.png".encode() for k in range(n)]}, fh)
        expected[name] = (data, labels)

    for i in range(1, 6):
        write(f"data_batch_{i}", 4)
    write("test_batch", 5)
    with open(batches / "batches.meta", "wb") as fh:
        pickle.dump({b"num_cases_per_batch": 4, b"label_names": [n.encode() for n in CIFAR10_CLASSES],
                     b"num_vis": 3072}, fh)
    return root, expected


def _no_decode(*args, **kwargs):
    raise AssertionError("decoded images although the cache should have been used")


# ---------------------------------------------------------------------------------------------------
# image-folder layout


def test_image_folder_shapes_labels_order_and_pixels(folder_root, tmp_path):
    data = load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))
    assert data.class_names == list(CIFAR10_CLASSES)
    assert data.train_images.shape == (10 * N_TRAIN, 3, 32, 32)
    assert data.test_images.shape == (10 * N_TEST, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert data.train_labels.tolist() == [c for c in range(10) for _ in range(N_TRAIN)]
    assert data.test_labels.tolist() == [c for c in range(10) for _ in range(N_TEST)]
    # Files sorted by name within a class, pixel-exact for PNG.
    for c in (0, 4, 9):
        for i in range(N_TRAIN):
            got = data.train_images[c * N_TRAIN + i].permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(got, _image(c, i, "train"))
    last = data.test_images[-1].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(last, _image(9, N_TEST - 1, "test"))
    src = data.source
    assert src["dataset"] == "cifar10" and src["layout"] == "image-folder"
    assert src["root"] == str(folder_root.resolve())
    assert src["n_train"] == 10 * N_TRAIN and src["n_test"] == 10 * N_TEST and src["image_size"] == 32
    assert src["cache_hit"] is False and src["cache_path"].startswith(str(tmp_path / "cache"))


def test_image_folder_jpeg_and_grayscale_decode_to_rgb(folder_root, tmp_path):
    d = folder_root / "train" / "cat"
    yy, xx = np.meshgrid(np.arange(32) * 8, np.arange(32) * 4, indexing="ij")
    smooth = np.stack([yy, xx, np.full((32, 32), 90)], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(d / "0100.jpg", quality=95)
    Image.fromarray(_image(3, 8, "train")[..., 0]).save(d / "0101.png")
    data = load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))
    assert data.train_images.shape[0] == 10 * N_TRAIN + 2
    cat = data.train_images[data.train_labels == 3]
    assert cat.shape == (N_TRAIN + 2, 3, 32, 32)
    jpg = cat[N_TRAIN].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(jpg - smooth.astype(int)).mean() < 4  # lossy but the same picture
    gray = cat[N_TRAIN + 1]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


@pytest.fixture
def listed_tree(tmp_path):
    """Files named (not decoded): images of every extension in any case, hidden ones, other files."""
    root = tmp_path / "pics"
    names = ["b.JPEG", "a.jpg", "c.Png", "d.bmp", "e.GIF", "f.webp", "notes.txt", "g.tiff", ".h.png", "._i.jpg",
             "sub/j.png", "sub/.k.png", "sub/.cache/l.png", ".git/objects/m.png", "dir.png/n.png", "sub/deeper/o.webp"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_image_files_and_find_images_share_one_list_and_one_hidden_rule(listed_tree):
    root = listed_tree
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
    assert is_hidden(".git") and is_hidden(".h.png") and not is_hidden("a.jpg") and not is_hidden("a.b")
    # one folder, sorted, no hidden file, no sub-folder (dir.png is a folder)
    assert image_files(root) == ["a.jpg", "b.JPEG", "c.Png", "d.bmp", "e.GIF", "f.webp"]
    assert image_files(root / "sub", prefix="sub/") == ["sub/j.png"]
    # the scorer's search: recursive, nothing hidden below the folder, sorted
    found = ["a.jpg", "b.JPEG", "c.Png", "d.bmp", "dir.png/n.png", "e.GIF", "f.webp", "sub/deeper/o.webp",
             "sub/j.png"]
    assert find_images(root) == [root / name for name in found]
    assert find_images(root / ".git") == [root / ".git" / "objects" / "m.png"]  # named: searched
    # a named file is scored whatever its name says
    for name in ("notes.txt", ".h.png", "g.tiff"):
        assert find_images(root / name) == [root / name]


def test_worker_pool_decode_matches_serial(folder_root, tmp_path, monkeypatch):
    serial = load_cifar10(str(folder_root), cache_dir=str(tmp_path / "c1"))
    monkeypatch.setattr(decode, "POOL_MIN_IMAGES", 1)
    monkeypatch.setattr(decode, "CHUNK", 7)
    pooled = load_cifar10(str(folder_root), cache_dir=str(tmp_path / "c2"))
    assert torch.equal(serial.train_images, pooled.train_images)
    assert torch.equal(serial.test_images, pooled.test_images)
    # A bad file found by a worker still surfaces as a DatasetRootError.
    (folder_root / "train" / "deer" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetRootError, match="cannot decode train/deer/broken.jpg"):
        load_cifar10(str(folder_root), cache_dir=str(tmp_path / "c2"))


def test_layout_found_one_level_down(folder_root, tmp_path):
    data = load_cifar10(str(folder_root.parent), cache_dir=str(tmp_path / "cache"))
    assert data.source["root"] == str(folder_root.resolve())
    assert data.source["requested_root"] == str(folder_root.parent.resolve())
    assert data.train_images.shape[0] == 10 * N_TRAIN


def test_cache_miss_then_hit_without_decoding(folder_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_cifar10(str(folder_root), cache_dir=str(cache))
    assert first.source["cache_hit"] is False
    meta = json.loads((cache / os.path.basename(first.source["cache_path"]) / "meta.json").read_text())
    assert meta["key"]["layout"] == "image-folder" and meta["key"]["image_size"] == 32
    assert set(meta["arrays"]) == {"train_images", "train_labels", "test_images", "test_labels"}

    monkeypatch.setattr(decode, "iter_decoded", _no_decode)
    second = load_cifar10(str(folder_root), cache_dir=str(cache))
    assert second.source["cache_hit"] is True
    assert second.source["cache_path"] == first.source["cache_path"]
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)


def test_cache_dir_from_environment(folder_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DSVDD_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_root() == tmp_path / "envcache"
    assert default_cache_root(str(tmp_path / "x")) == tmp_path / "x"
    data = load_cifar10(str(folder_root))
    assert data.source["cache_path"].startswith(str(tmp_path / "envcache"))


def test_cache_invalidated_by_added_or_changed_file(folder_root, tmp_path):
    cache = str(tmp_path / "cache")
    first = load_cifar10(str(folder_root), cache_dir=cache)

    extra = _image(5, 9, "train")
    Image.fromarray(extra).save(folder_root / "train" / "dog" / "0999.png")
    added = load_cifar10(str(folder_root), cache_dir=cache)
    assert added.source["cache_hit"] is False and added.source["cache_path"] != first.source["cache_path"]
    assert added.train_images.shape[0] == 10 * N_TRAIN + 1
    np.testing.assert_array_equal(added.train_images[6 * N_TRAIN].permute(1, 2, 0).numpy(), extra)

    # Same name, new content (and so a new size/mtime): decoded again.
    target = folder_root / "test" / "ship" / "0000.png"
    new = np.full((32, 32, 3), 7, dtype=np.uint8)
    Image.fromarray(new).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    changed = load_cifar10(str(folder_root), cache_dir=cache)
    assert changed.source["cache_hit"] is False
    np.testing.assert_array_equal(changed.test_images[8 * N_TEST].permute(1, 2, 0).numpy(), new)


def test_resize_to_64(folder_root, tmp_path):
    data = load_cifar10(str(folder_root), image_size=64, cache_dir=str(tmp_path / "cache"))
    assert data.train_images.shape == (10 * N_TRAIN, 3, 64, 64) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (10 * N_TEST, 3, 64, 64)
    assert data.source["image_size"] == 64 and "cifar10-64" in data.source["cache_path"]
    # A flat image stays flat under the antialiased bilinear resize.
    flat = np.full((1, 3, 32, 32), 123, dtype=np.uint8)
    assert (decode.resize_uint8(flat, 64) == 123).all()
    # CIFAR-10 is resized from its native 32 px by torch, not by PIL from the file
    native = load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))
    resized = decode.resize_uint8(native.test_images.numpy(), 64)
    assert torch.equal(data.test_images, torch.from_numpy(resized))
    assert data.source["resize"].startswith("torch bilinear") and native.source["resize"].startswith("none")


# ---------------------------------------------------------------------------------------------------
# torchvision pickle layout


def test_pickle_layout_values_and_labels(pickle_root, tmp_path):
    root, expected = pickle_root
    data = load_cifar10(str(root), cache_dir=str(tmp_path / "cache"))
    assert data.train_images.shape == (20, 3, 32, 32) and data.test_images.shape == (5, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    train_data = np.concatenate([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((expected[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(data.train_images.reshape(20, -1).numpy(), train_data)
    assert data.train_labels.tolist() == train_labels
    np.testing.assert_array_equal(data.test_images.reshape(5, -1).numpy(), expected["test_batch"][0])
    assert data.test_labels.tolist() == expected["test_batch"][1]
    assert data.class_names == list(CIFAR10_CLASSES)
    assert data.source["layout"] == "torchvision-pickle"
    assert data.source["root"] == str((root / "cifar-10-batches-py").resolve())
    assert data.source["n_train"] == 20 and data.source["n_test"] == 5


def test_pickle_layout_one_level_down_and_batches_folder_itself(pickle_root, tmp_path):
    root, _ = pickle_root
    for given in (root.parent, root / "cifar-10-batches-py"):
        data = load_cifar10(str(given), cache_dir=str(tmp_path / "cache"))
        assert data.source["layout"] == "torchvision-pickle" and data.train_images.shape[0] == 20


def test_pickle_layout_resized_goes_through_cache(pickle_root, tmp_path, monkeypatch):
    root, _ = pickle_root
    cache = str(tmp_path / "cache")
    first = load_cifar10(str(root), image_size=64, cache_dir=cache)
    assert first.train_images.shape == (20, 3, 64, 64) and first.source["cache_hit"] is False

    def no_read(*a, **k):
        raise AssertionError("read the pickles although the cache should have been used")

    native = load_cifar10(str(root), cache_dir=cache)
    assert native.source["cache_hit"] is False
    monkeypatch.setattr(cifar10_mod, "read_batches", no_read)
    second = load_cifar10(str(root), image_size=64, cache_dir=cache)
    assert second.source["cache_hit"] is True and torch.equal(first.train_images, second.train_images)
    again = load_cifar10(str(root), cache_dir=cache)  # the native size is cached too
    assert again.source["cache_hit"] is True and torch.equal(native.test_images, again.test_images)
    # an edited pickle is read again
    batch = root / "cifar-10-batches-py" / "test_batch"
    st = batch.stat()
    os.utime(batch, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with pytest.raises(AssertionError, match="read the pickles"):
        load_cifar10(str(root), cache_dir=cache)


# ---------------------------------------------------------------------------------------------------
# errors


def test_missing_root(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetRootError, match="does not exist") as exc:
        load_cifar10(str(missing), cache_dir=str(tmp_path / "cache"))
    msg = str(exc.value)
    assert "dataset.root" in msg and str(missing) in msg and "\n" not in msg
    assert "dataset.download=true" in msg


def test_root_with_neither_layout(tmp_path):
    root = tmp_path / "empty"
    (root / "something").mkdir(parents=True)
    with pytest.raises(DatasetRootError, match="holds no CIFAR-10 layout") as exc:
        load_cifar10(str(root), cache_dir=str(tmp_path / "cache"))
    msg = str(exc.value)
    assert str(root) in msg and "cifar-10-batches-py" in msg and "airplane" in msg and "truck" in msg
    assert "\n" not in msg


def test_missing_class_folder(folder_root, tmp_path):
    for f in (folder_root / "test" / "frog").iterdir():
        f.unlink()
    (folder_root / "test" / "frog").rmdir()
    with pytest.raises(DatasetRootError, match=r"test/ is missing class folder\(s\) frog") as exc:
        load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))
    assert str(folder_root) in str(exc.value)


def test_missing_split_folder(folder_root, tmp_path):
    import shutil

    shutil.rmtree(folder_root / "test")
    with pytest.raises(DatasetRootError, match="missing test/ folder"):
        load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))


def test_empty_class_folder(folder_root, tmp_path):
    for f in (folder_root / "train" / "horse").iterdir():
        f.unlink()
    (folder_root / "train" / "horse" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetRootError, match="train/horse/ holds no images") as exc:
        load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))
    assert str(folder_root) in str(exc.value)


def test_wrong_image_size_in_folder(folder_root, tmp_path):
    Image.new("RGB", (40, 30)).save(folder_root / "train" / "bird" / "big.png")
    with pytest.raises(DatasetRootError, match="big.png is 40x30"):
        load_cifar10(str(folder_root), cache_dir=str(tmp_path / "cache"))


def test_missing_batch_file(pickle_root, tmp_path):
    root, _ = pickle_root
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetRootError, match="missing data_batch_3") as exc:
        load_cifar10(str(root), cache_dir=str(tmp_path / "cache"))
    assert str(root / "cifar-10-batches-py") in str(exc.value)


def test_download_without_network_raises(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def offline(root, train=True, download=False, **kwargs):
        calls.append((root, train, download))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    root = tmp_path / "dl"
    with pytest.raises(DatasetRootError, match="download") as exc:
        load_cifar10(str(root), download=True, cache_dir=str(tmp_path / "cache"))
    msg = str(exc.value)
    assert calls and calls[0][2] is True
    assert str(root) in msg and "name resolution" in msg and "cifar-10-python.tar.gz" in msg
    assert "image-folder" in msg and "\n" not in msg


def test_download_skipped_when_data_present(folder_root, tmp_path, monkeypatch):
    import torchvision

    def fail(*a, **k):
        raise AssertionError("downloaded although data is present")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fail)
    data = load_cifar10(str(folder_root), download=True, cache_dir=str(tmp_path / "cache"))
    assert data.train_images.shape[0] == 10 * N_TRAIN


# ---------------------------------------------------------------------------------------------------
# cached_arrays


def test_cached_arrays_roundtrip_and_mmap(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.uint8).reshape(3, 4), "b": np.array([1, 2], dtype=np.int64)}
    built = []

    def build():
        built.append(1)
        return arrays

    key = {"v": 1, "root": "/x"}
    out, info = cached_arrays(tmp_path, "thing", key, build)
    assert info == {"cache_path": str(tmp_path / f"thing-{fingerprint(key)}"), "cache_hit": False}
    out2, info2 = cached_arrays(tmp_path, "thing", key, build, mmap=True)
    assert info2["cache_hit"] is True and len(built) == 1
    assert isinstance(out2["a"], np.memmap)
    np.testing.assert_array_equal(out2["a"], arrays["a"])
    np.testing.assert_array_equal(out2["b"], arrays["b"])
    # A different key is a different entry.
    _, info3 = cached_arrays(tmp_path, "thing", {"v": 2, "root": "/x"}, build)
    assert info3["cache_hit"] is False and len(built) == 2
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_cached_arrays_concurrent_builders(tmp_path):
    import threading
    import time

    key = {"v": "race"}
    results, builds, start = [], [], threading.Barrier(4)

    def build():
        builds.append(1)
        time.sleep(0.2)  # the others look the entry up while this one builds
        return {"x": np.arange(1000, dtype=np.int64)}

    def worker():
        start.wait(timeout=10)  # all four look the entry up at once
        results.append(cached_arrays(tmp_path, "race", key, build))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r[0]["x"].sum() == 499500 for r in results)
    # the entry's lock: one builds, the others wait and load its result
    assert len(builds) == 1 and sorted(r[1]["cache_hit"] for r in results) == [False, True, True, True]
    out, info = cached_arrays(tmp_path, "race", key, _no_decode)
    assert info["cache_hit"] is True and out["x"].sum() == 499500
    assert sorted(p.name for p in (tmp_path / f"race-{fingerprint(key)}").iterdir()) == ["meta.json", "x.npy"]


def test_fingerprint_is_stable():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint(1, 2) != fingerprint(2, 1)
    assert len(fingerprint("x")) == 16


def test_cached_arrays_failed_build_leaves_no_complete_entry(tmp_path):
    key = {"v": 1}

    def bad_build():
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_arrays(tmp_path, "thing", key, bad_build)
    folder = tmp_path / f"thing-{fingerprint(key)}"
    assert not (folder / "meta.json").exists()

    # A build interrupted after some arrays were written (no meta.json) is rebuilt, not trusted.
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "a.npy", np.zeros(3))
    out, info = cached_arrays(tmp_path, "thing", key, lambda: {"a": np.ones(3)})
    assert info["cache_hit"] is False and out["a"].tolist() == [1, 1, 1]
    out, info = cached_arrays(tmp_path, "thing", key, lambda: {"a": np.zeros(3)})
    assert info["cache_hit"] is True and out["a"].tolist() == [1, 1, 1]


def test_cached_arrays_write_failure_keeps_no_partial_entry(tmp_path, monkeypatch):
    import dsvdd_repro.data.cache as cache_mod

    real_save = np.save
    n = []

    def crash_on_second(fh, arr, **kw):
        n.append(1)
        if len(n) == 2:
            raise OSError("disk full")
        real_save(fh, arr, **kw)

    monkeypatch.setattr(cache_mod.np, "save", crash_on_second)
    out, info = cached_arrays(tmp_path, "thing", {"v": 1}, lambda: {"a": np.ones(2), "b": np.ones(3)})
    assert info["cache_hit"] is False and out["b"].shape == (3,)
    folder = tmp_path / f"thing-{fingerprint({'v': 1})}"
    assert not (folder / "meta.json").exists() and not list(folder.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------------
# fake dataset


def test_fake_is_deterministic_and_shaped():
    a, b = make_fake(seed=3), make_fake(seed=3)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_images, b.test_images)
    assert not torch.equal(a.train_images, make_fake(seed=4).train_images)
    assert a.train_images.shape == (120, 3, 32, 32) and a.test_images.shape == (60, 3, 32, 32)
    assert a.train_images.dtype == torch.uint8 and a.train_labels.dtype == torch.int64
    assert a.class_names == ["class0", "class1", "class2"]
    assert a.source["dataset"] == "fake" and a.source["layout"] == "generated" and a.source["seed"] == 3
    big = make_fake(n_classes=10, n_train_per_class=2, n_test_per_class=1, image_size=64)
    assert big.train_images.shape == (20, 3, 64, 64) and big.test_labels.tolist() == list(range(10))


def test_fake_classes_are_separable_and_textured():
    data = make_fake(n_classes=5, n_train_per_class=30, n_test_per_class=30)
    x = data.train_images.float()
    means = torch.stack([x[data.train_labels == c].mean(dim=(0, 2, 3)) for c in range(5)])
    # Class mean colours are far apart relative to their spread.
    assert torch.cdist(means, means)[~torch.eye(5, dtype=torch.bool)].min() > 20
    # Nearest class-mean colour on held-out images beats chance by far.
    test_colour = data.test_images.float().mean(dim=(2, 3))
    pred = torch.cdist(test_colour, means).argmin(dim=1)
    assert (pred == data.test_labels).float().mean() > 0.8
    # Not flat: per-image spatial variation.
    assert x.std(dim=(2, 3)).mean() > 15


# ---------------------------------------------------------------------------------------------------
# config nodes


def test_every_dataset_option_is_a_registered_node(monkeypatch):
    monkeypatch.setenv("DSVDD_CIFAR10_ROOT", "/data/cifar")
    nodes = {name: ConfigStore.instance().load(f"dataset/{name}.yaml").node
             for name in ("cifar10", "voc2012", "wikiart", "folder", "fake")}
    assert {name: node.name for name, node in nodes.items()} == {name: name for name in nodes}
    cifar = nodes["cifar10"]
    assert cifar._target_ == "dsvdd_repro.data.cifar10.CIFAR10" and cifar.root == "/data/cifar"
    assert (cifar.image_size, cifar.download, cifar.cache_dir) == (32, False, None)
    # only the keys each source reads (the soft-boundary nu is the objective's, not the dataset's)
    file_keys = {"_target_", "name", "root", "download", "image_size", "cache_dir"}
    assert set(cifar) == set(nodes["voc2012"]) == file_keys
    assert set(nodes["wikiart"]) == set(cifar) | {"styles", "require_all_styles"}
    assert set(nodes["fake"]) == {
        "_target_", "name", "image_size", "n_classes", "n_train_per_class", "n_test_per_class"
    }
    assert set(nodes["folder"]) == {"_target_", "name", "root", "image_size", "test_fraction", "val_fraction",
                                    "cache_dir"}


def test_node_defaults_and_environment_roots(monkeypatch):
    for var in ("DSVDD_VOC2012_ROOT", "DSVDD_WIKIART_ROOT", "DSVDD_FOLDER_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DSVDD_WIKIART_ROOT", "/data/wikiart")
    wiki = OmegaConf.structured(WikiArtConfig)
    assert wiki.root == "/data/wikiart" and wiki.image_size == 224 and wiki.require_all_styles is False
    assert list(wiki.styles) == list(WIKIART_PAPER_STYLES)
    voc = OmegaConf.structured(VOC2012Config)
    assert voc.root is None and voc.image_size == 224
    folder = OmegaConf.structured(FolderConfig)
    assert folder.root is None
    assert (folder.image_size, folder.test_fraction, folder.val_fraction) == (32, 0.3, 0.2)
    fake = OmegaConf.to_object(OmegaConf.structured(FakeConfig))
    assert (fake.n_classes, fake.n_train_per_class, fake.n_test_per_class, fake.image_size) == (3, 40, 20, 32)


@pytest.mark.parametrize(
    ("config", "key", "value"),
    [
        (CIFAR10Config, "image_size", 0),
        (VOC2012Config, "image_size", -3),
        (WikiArtConfig, "image_size", 0),
        (WikiArtConfig, "styles", []),
        (WikiArtConfig, "styles", ["Symbolism", "Symbolism"]),
        (WikiArtConfig, "styles", ["Symbolism", ""]),
        (FolderConfig, "test_fraction", 1.0),
        (FolderConfig, "val_fraction", 0.0),
        (FolderConfig, "image_size", 0),
        (FakeConfig, "n_classes", 0),
        (FakeConfig, "n_train_per_class", 0),
        (FakeConfig, "n_test_per_class", 0),
        (FakeConfig, "image_size", 1),
    ],
)
def test_node_checks_raise_config_errors(config, key, value):
    node = OmegaConf.merge(OmegaConf.structured(config), {key: value})
    with pytest.raises(ConfigError) as exc:
        OmegaConf.to_object(node)  # what the config validation does for every node
    assert exc.value.key == key  # the caller prefixes the group: dataset.<key>
    assert str(exc.value.within("dataset")).startswith(f"invalid config: dataset.{key}=")
    OmegaConf.to_object(OmegaConf.structured(config))  # the defaults pass


def test_unset_root_says_how_to_get_the_data(monkeypatch):
    monkeypatch.delenv("DSVDD_CIFAR10_ROOT", raising=False)
    with pytest.raises(DatasetRootError) as exc:
        build(OmegaConf.structured(CIFAR10Config)).load(progress=False)
    msg = str(exc.value)
    assert msg.startswith("dataset.root is not set") and "DSVDD_CIFAR10_ROOT" in msg and "\n" not in msg
    assert "cifar-10-batches-py" in msg and "dataset.download=true" in msg


def test_root_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(DatasetRootError, match=f"dataset.root={target}: is not a folder; expected"):
        load_cifar10(str(target))


def test_fake_through_its_node_is_make_fake():
    keys = {"n_classes": 4, "n_train_per_class": 5, "n_test_per_class": 2, "image_size": 16}
    node = OmegaConf.structured(FakeConfig(**keys))
    data = build(node).load(progress=False)
    ref = make_fake(**keys)
    assert torch.equal(data.train_images, ref.train_images) and torch.equal(data.test_labels, ref.test_labels)
    assert data.name == "fake" and data.class_names == ref.class_names


# ---------------------------------------------------------------------------------------------------
# the data layer's own rules


@pytest.mark.slow
def test_data_layer_does_not_import_the_run_config():
    code = (
        "import sys, dsvdd_repro.data.protocols, dsvdd_repro.data; "
        "print('dsvdd_repro.runs.config' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_imports_private_names_of_another():
    package = pathlib.Path(dsvdd_repro.data.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


# ---------------------------------------------------------------------------------------------------
# the real offline copy (CI sets DSVDD_CIFAR10_ROOT)


@pytest.mark.skipif(not os.environ.get("DSVDD_CIFAR10_ROOT"), reason="DSVDD_CIFAR10_ROOT is not set")
@pytest.mark.slow
def test_real_cifar10(tmp_path):
    data = load_cifar10(os.environ["DSVDD_CIFAR10_ROOT"])  # DSVDD_CACHE_DIR: decoded once per machine
    assert data.train_images.shape == (50_000, 3, 32, 32) and data.test_images.shape == (10_000, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8
    assert data.train_labels.bincount(minlength=10).tolist() == [5_000] * 10
    assert data.test_labels.bincount(minlength=10).tolist() == [1_000] * 10
    assert data.class_names == list(CIFAR10_CLASSES)
    assert data.source["n_train"] == 50_000 and data.source["n_test"] == 10_000
