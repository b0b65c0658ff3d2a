"""VOC2012 and WikiArt: layouts on generated miniature trees, the paper's split rules and sizes,
error messages, the memory-mapped decode-once cache, and the pools the protocols split. Datasets are
built and loaded through their config nodes, as the entrypoint does: `build(node).load()`."""

from __future__ import annotations

import json
import logging
import os
import urllib.error

import numpy as np
import pytest
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from PIL import Image

from dsvdd_repro import train
from dsvdd_repro.core.schema import ConfigError, build
from dsvdd_repro.data import cache as cache_mod
from dsvdd_repro.data import decode, protocols
from dsvdd_repro.data.errors import DatasetRootError
from dsvdd_repro.data.images import NaturalImages
from dsvdd_repro.data.voc2012 import VOC2012Config
from dsvdd_repro.data.wikiart import WIKIART_PAPER_STYLES, WikiArtConfig
from tests.conftest import compose_config, run_cli

STROKES = {"name": "strokes", "n": 2, "thickness": 1}
BLOCKS = {"name": "block_perm", "n": 2, "thickness": 1}
QUICK = [
    "model.weights=none",
    "trainer.epochs=1",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "dataset.image_size=32",
]


def load_voc2012(root, **keys) -> NaturalImages:
    return build(OmegaConf.structured(VOC2012Config(root=root, **keys))).load(progress=False)


def load_wikiart(root, **keys) -> NaturalImages:
    return build(OmegaConf.structured(WikiArtConfig(root=root, **keys))).load(progress=False)


def _picture(seed: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth, distinct RGB picture (JPEG-friendly) per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    channels = [
        127 + 120 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy + rng.uniform()))
        for _ in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------
# fixtures: a miniature VOCdevkit and ArtGAN trees

VOC_TRAIN, VOC_VAL = 10, 15


def make_voc(base, n_train=VOC_TRAIN, n_val=VOC_VAL):
    voc = base / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    ids = [f"2008_{i:06d}" for i in range(n_train + n_val)]
    for k, image_id in enumerate(ids):  # VOC images are landscape or portrait, never square
        width, height = (64, 48) if k % 2 else (40, 56)
        Image.fromarray(_picture(k, width, height)).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("\n".join(ids[n_train:]) + "\n")
    # per-class lists, as in the real ImageSets/Main: never read
    (voc / "ImageSets" / "Main" / "aeroplane_train.txt").write_text(f"{ids[0]} -1\n")
    return voc


@pytest.fixture
def voc_root(tmp_path):
    make_voc(tmp_path / "voc")
    return tmp_path / "voc"


WIKI_STYLES = {"Art_Nouveau_Modern": 10, "Symbolism": 7, "Fauvism": 5, "Impressionism": 4}


@pytest.fixture
def wiki_root(tmp_path):
    """ArtGAN's wikiart/ with three of the paper's styles (and one other), no split files."""
    root = tmp_path / "wikiart"
    for s, (style, n) in enumerate(WIKI_STYLES.items()):
        (root / style).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_picture(100 * s + i, 56, 56)).save(
                root / style / f"artist_work-{i}.jpg", quality=90
            )
    return root


def write_artgan_csvs(root, where="wikiart_csv_beside"):
    """ArtGAN-style split files: rows `Style/file.jpg,class_index`."""
    train_rows = [f"Art_Nouveau_Modern/artist_work-{i}.jpg,3" for i in range(8)]
    train_rows += [f"Symbolism/artist_work-{i}.jpg,24" for i in range(5)]
    train_rows += ["Impressionism/artist_work-0.jpg,12", "Symbolism/not-on-disk.jpg,24"]
    val_rows = [f"Art_Nouveau_Modern/artist_work-{i}.jpg,3" for i in (8, 9)]
    val_rows += [f"Symbolism/artist_work-{i}.jpg,24" for i in (5, 6)] + [
        f"Fauvism/artist_work-{i}.jpg,9" for i in range(5)
    ]
    folder = {"wikiart_csv_beside": root.parent / "wikiart_csv", "root": root}[where]
    folder.mkdir(exist_ok=True)
    (folder / "style_train.csv").write_text("\n".join(train_rows) + "\n")
    (folder / "style_val.csv").write_text("\n".join(val_rows) + "\n")


def _no_decode(*args, **kwargs):
    raise AssertionError("decoded images although the cache should have been used")


# ---------------------------------------------------------------------------------------------------
# the paper's split sizes (Section V-A), with the full datasets' pool sizes


def _pools(n_train: int, n_test: int, val_from: str, fraction: float) -> NaturalImages:
    return NaturalImages(
        name="sized",
        class_names=["natural"],
        train_images=torch.zeros((n_train, 3, 4, 4), dtype=torch.uint8),
        train_labels=torch.zeros(n_train).long(),
        test_images=torch.zeros((n_test, 3, 4, 4), dtype=torch.uint8),
        test_labels=torch.zeros(n_test).long(),
        val_from=val_from,
        default_val_fraction=fraction,
    )


@pytest.mark.parametrize(
    ("pools", "sizes"),
    [
        ((5_717, 5_823, "test", 0.4), (5_717, 4_658, 6_988)),  # VOC2012: train.txt, val.txt
        ((9_820, 4_205, "train", 0.2), (7_856, 3_928, 8_410)),  # WikiArt: the six styles' given train, val
        ((50_000, 10_000, "train", 0.2), (40_000, 20_000, 20_000)),  # CIFAR-10
    ],
)
@pytest.mark.slow
def test_alteration_split_sizes_match_the_paper(pools, sizes):
    images = _pools(*pools)
    splits = protocols.alteration(images, {"val": BLOCKS, "test": BLOCKS}, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == sizes
    assert splits.val.labels.sum() == sizes[1] // 2 and splits.test.labels.sum() == sizes[2] // 2


def test_voc_semi_supervised_training_set_matches_the_paper():
    splits = protocols.alteration(
        _pools(5_717, 5_823, "test", 0.4),
        {s: BLOCKS for s in ("train", "val", "test")},
        seed=0,
        progress=False,
        labeled_anomaly_fraction=0.1,
    )
    assert len(splits.train) == 6_352 and splits.train.labels.sum() == 635


def test_validation_from_the_test_pool():
    gen = torch.Generator().manual_seed(0)
    images = NaturalImages(
        name="voc_like",
        class_names=["natural"],
        train_images=torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=gen),
        train_labels=torch.zeros(20).long(),
        test_images=torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8, generator=gen),
        test_labels=torch.zeros(30).long(),
        val_from="test",
        default_val_fraction=0.4,
    )
    splits = protocols.alteration(images, {"val": STROKES, "test": BLOCKS}, seed=3, progress=False)
    assert np.array_equal(splits.train.keys, np.arange(20)) and splits.train.pool is images.train_images
    assert splits.val.pool is images.test_images and splits.test.pool is images.test_images
    val_natural, test_natural = (
        splits.val.keys[splits.val.labels == 0],
        splits.test.keys[splits.test.labels == 0],
    )
    assert len(val_natural) == 12 and len(test_natural) == 18
    assert sorted([*val_natural, *test_natural]) == list(range(30))
    rows = np.flatnonzero(splits.val.labels == 0)[:3]
    assert torch.equal(splits.val.batch(rows), images.test_images[val_natural[:3]])
    # an explicit setup.val_fraction overrides the dataset's default
    other = protocols.alteration(
        images, {"val": STROKES, "test": BLOCKS}, seed=3, val_fraction=0.2, progress=False
    )
    assert (len(other.val), len(other.test)) == (12, 48)


def test_numpy_and_memory_mapped_pools_batch_like_torch_pools(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(1)
    pool = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=gen)

    def images(train, mmap_dir=None):
        return NaturalImages(
            name="x",
            class_names=["natural"],
            train_images=train,
            train_labels=torch.zeros(40).long(),
            test_images=pool[:10],
            test_labels=torch.zeros(10).long(),
            mmap_dir=mmap_dir,
        )

    specs = {"val": STROKES, "test": STROKES}
    ref = protocols.alteration(images(pool), specs, seed=0, progress=False)
    monkeypatch.setattr(protocols, "_MMAP_MIN_BYTES", 0)
    mapped = protocols.alteration(images(pool.numpy(), str(tmp_path)), specs, seed=0, progress=False)
    assert isinstance(mapped.val.altered_images, torch.Tensor)
    assert not list(tmp_path.iterdir())  # the altered images' file is unlinked
    for a, b in ((ref.val, mapped.val), (ref.test, mapped.test), (ref.train, mapped.train)):
        rows = np.arange(len(a))[::-1].copy()
        assert torch.equal(a.batch(rows), b.batch(rows))


def test_one_vs_all_refuses_a_single_class_dataset(voc_root, tmp_path):
    with pytest.raises(ConfigError, match="setup=alteration"):
        protocols.one_vs_all(_pools(10, 10, "test", 0.4), normal_class=0, seed=0)
    voc = load_voc2012(str(voc_root), image_size=16, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="voc2012 has a single class \\(natural\\)") as exc:
        protocols.one_vs_all(voc, normal_class=0, seed=0)
    assert exc.value.key == "setup"


# ---------------------------------------------------------------------------------------------------
# VOC2012


def test_voc_layout_pools_and_source(voc_root, tmp_path):
    data = load_voc2012(str(voc_root), image_size=32, cache_dir=str(tmp_path / "cache"))
    assert data.train_images.shape == (VOC_TRAIN, 3, 32, 32) and data.test_images.shape == (
        VOC_VAL,
        3,
        32,
        32,
    )
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert data.class_names == ["natural"] and not data.train_labels.any() and not data.test_labels.any()
    assert data.val_from == "test" and data.default_val_fraction == 0.4
    src = data.source
    assert src["root"] == str((voc_root / "VOCdevkit" / "VOC2012").resolve())
    assert src["n_train"] == VOC_TRAIN and src["n_test"] == VOC_VAL and src["cache_hit"] is False
    assert src["split_files"][1].endswith("ImageSets/Main/val.txt")
    # the list order is kept, and the first val.txt image is the 11th file: a resized copy of it
    first_val = np.asarray(
        Image.open(voc_root / "VOCdevkit/VOC2012/JPEGImages/2008_000010.jpg").resize((32, 32))
    )
    assert np.abs(data.test_images[0].permute(1, 2, 0).numpy().astype(int) - first_val).mean() < 6


@pytest.mark.parametrize("given", ["VOCdevkit", "VOCdevkit/VOC2012", "..", "."])
def test_voc_found_at_every_documented_level(tmp_path, given):
    base = tmp_path / "outer" / "VOCtrainval_11-May-2012"
    make_voc(base)
    root = {"..": tmp_path / "outer", ".": base}.get(given, base / given)
    data = load_voc2012(str(root), image_size=16, cache_dir=str(tmp_path / "cache"))
    assert (
        data.source["root"] == str((base / "VOCdevkit" / "VOC2012").resolve())
        and len(data.test_labels) == VOC_VAL
    )


def test_voc_missing_root_and_layout_messages(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetRootError) as exc:
        load_voc2012(str(missing), cache_dir=str(tmp_path / "cache"))
    msg = str(exc.value)
    assert "does not exist" in msg and str(missing) in msg and "\n" not in msg
    assert "dataset.download=true" in msg and "VOCtrainval_11-May-2012.tar" in msg and "JPEGImages" in msg
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(DatasetRootError, match="holds no VOC2012 layout.*VOCdevkit/VOC2012"):
        load_voc2012(str(tmp_path / "empty"), cache_dir=str(tmp_path / "cache"))


def test_voc_incomplete_tree_messages(voc_root, tmp_path):
    voc = voc_root / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages" / "2008_000003.jpg").unlink()
    with pytest.raises(
        DatasetRootError,
        match=r"1 of the 10 images listed in ImageSets/Main/train.txt are missing "
        r"\(first: JPEGImages/2008_000003.jpg\)",
    ):
        load_voc2012(str(voc_root), cache_dir=str(tmp_path / "cache"))
    (voc / "ImageSets" / "Main" / "val.txt").unlink()
    with pytest.raises(DatasetRootError, match="missing ImageSets/Main/val.txt"):
        load_voc2012(str(voc_root), cache_dir=str(tmp_path / "cache"))


def test_voc_download_goes_through_torchvision(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def fake_download(root, year="2012", image_set="train", download=False, **kwargs):
        calls.append((root, year, image_set, download))
        make_voc(tmp_path / "dl")  # what extracting VOCtrainval_11-May-2012.tar into root gives

    monkeypatch.setattr(torchvision.datasets, "VOCDetection", fake_download)
    data = load_voc2012(str(tmp_path / "dl"), download=True, image_size=16, cache_dir=str(tmp_path / "cache"))
    assert calls == [(str((tmp_path / "dl").resolve()), "2012", "train", True)]
    assert len(data.train_labels) == VOC_TRAIN
    # present data is never downloaded again
    load_voc2012(str(tmp_path / "dl"), download=True, image_size=16, cache_dir=str(tmp_path / "cache"))
    assert len(calls) == 1


def test_voc_download_without_network_says_how_to_get_it(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "VOCDetection", offline)
    with pytest.raises(DatasetRootError) as exc:
        load_voc2012(str(tmp_path / "dl"), download=True, cache_dir=str(tmp_path / "cache"))
    msg = str(exc.value)
    assert "downloading VOC2012 failed" in msg and "name resolution" in msg and "\n" not in msg
    assert "VOCtrainval_11-May-2012.tar" in msg and "VOCdevkit/VOC2012" in msg


def test_unset_roots_name_the_environment_variables(tmp_path, monkeypatch):
    hints = {"voc2012": "download=true to download VOC2012", "wikiart": "github.com/cs-chan/ArtGAN"}
    for name, var in (("voc2012", "DSVDD_VOC2012_ROOT"), ("wikiart", "DSVDD_WIKIART_ROOT")):
        monkeypatch.delenv(var, raising=False)
        node = ConfigStore.instance().load(f"dataset/{name}.yaml").node
        with pytest.raises(DatasetRootError, match=f"dataset.root is not set.*{var}") as exc:
            build(node).load(progress=False)
        assert hints[name] in str(exc.value) and "\n" not in str(exc.value)
    assert not list(tmp_path.iterdir())  # nothing decoded or cached


# ---------------------------------------------------------------------------------------------------
# WikiArt


def test_wikiart_seeded_split_without_csvs(wiki_root, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dsvdd_repro.data.wikiart"):
        data = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(tmp_path / "cache"))
    assert data.class_names == [
        "Art_Nouveau_Modern",
        "Fauvism",
        "Symbolism",
    ]  # the paper's order, present ones
    # 30% of each style (rounded) is the given val set: 10 -> 3, 5 -> 2, 7 -> 2
    assert data.source["per_style"] == {
        "Art_Nouveau_Modern": {"train": 7, "test": 3},
        "Fauvism": {"train": 3, "test": 2},
        "Symbolism": {"train": 5, "test": 2},
    }
    assert data.train_images.shape == (15, 3, 32, 32) and data.test_images.shape == (7, 3, 32, 32)
    assert data.train_labels.tolist() == [0] * 7 + [1] * 3 + [2] * 5
    src = data.source
    assert src["layout"] == "style-folders" and src["split_files"] is None and "seed 0" in src["split_rule"]
    assert src["styles_missing"] == ["Contemporary_Realism", "High_Renaissance", "Naive_Art_Primitivism"]
    missing_lines = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert (
        len(missing_lines) == 1
        and "Contemporary_Realism, High_Renaissance, Naive_Art_Primitivism" in missing_lines[0]
    )
    assert "\n" not in missing_lines[0]
    # a fixed split (not the run's seed): the same pools every time
    again = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(tmp_path / "other"))
    assert torch.equal(again.test_images, data.test_images)
    splits = protocols.alteration(data, {"val": STROKES, "test": STROKES}, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 6, 14)  # 20% of 15 -> 3 validate


def test_wikiart_artgan_csvs(wiki_root, tmp_path, caplog):
    write_artgan_csvs(wiki_root)
    with caplog.at_level(logging.WARNING, logger="dsvdd_repro.data.wikiart"):
        data = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(tmp_path / "cache"))
    src = data.source
    assert src["layout"] == "artgan-csv" and src["split_files"][0].endswith("wikiart_csv/style_train.csv")
    assert src["missing_listed_files"] == 1
    assert any(
        "1 image(s) listed in style_train.csv/style_val.csv are missing" in r.getMessage()
        for r in caplog.records
    )
    assert src["per_style"] == {
        "Art_Nouveau_Modern": {"train": 8, "test": 2},
        "Fauvism": {"train": 0, "test": 5},
        "Symbolism": {"train": 5, "test": 2},
    }
    assert len(data.train_labels) == 13 and len(data.test_labels) == 9  # Impressionism is not requested
    splits = protocols.alteration(data, {"val": STROKES, "test": STROKES}, seed=0, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 6, 18)


def test_wikiart_csvs_at_the_root_and_only_one_csv(wiki_root, tmp_path):
    write_artgan_csvs(wiki_root, where="root")
    data = load_wikiart(
        str(wiki_root.parent), image_size=16, cache_dir=str(tmp_path / "cache")
    )  # one level down
    assert data.source["layout"] == "artgan-csv" and data.source["root"] == str(wiki_root.resolve())
    (wiki_root / "style_val.csv").unlink()
    with pytest.raises(DatasetRootError, match="style_train.csv but not style_val.csv"):
        load_wikiart(str(wiki_root), image_size=16, cache_dir=str(tmp_path / "cache"))


def test_wikiart_style_selection_and_errors(wiki_root, tmp_path):
    cache = str(tmp_path / "cache")
    data = load_wikiart(str(wiki_root), styles=["Symbolism", "Impressionism"], image_size=16, cache_dir=cache)
    assert data.class_names == ["Symbolism", "Impressionism"] and data.source["styles_missing"] == []
    with pytest.raises(DatasetRootError) as exc:
        load_wikiart(str(wiki_root), require_all_styles=True, cache_dir=cache)
    msg = str(exc.value)
    assert (
        "missing style folder(s) with images: Contemporary_Realism, High_Renaissance, Naive_Art_Primitivism"
        in msg
    )
    assert "require_all_styles=true" in msg and "\n" not in msg
    with pytest.raises(DatasetRootError, match="holds none of the style folders.*ArtGAN"):
        load_wikiart(str(wiki_root), styles=["Cubism"], cache_dir=cache)
    with pytest.raises(DatasetRootError) as exc:
        load_wikiart(str(tmp_path / "nope"), cache_dir=cache)
    msg = str(exc.value)
    assert (
        "does not exist" in msg
        and "cannot be downloaded automatically" in msg
        and "github.com/cs-chan/ArtGAN" in msg
    )
    with pytest.raises(ConfigError, match="styles=\\[\\]"):
        OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(WikiArtConfig), {"styles": []}))


def test_config_defaults_for_the_new_datasets(monkeypatch):
    monkeypatch.setenv("DSVDD_WIKIART_ROOT", "/data/wikiart")
    wiki = ConfigStore.instance().load("dataset/wikiart.yaml").node
    assert wiki.root == "/data/wikiart" and wiki.image_size == 224 and wiki.name == "wikiart"
    assert list(wiki.styles) == list(WIKIART_PAPER_STYLES) and wiki.require_all_styles is False
    voc = ConfigStore.instance().load("dataset/voc2012.yaml").node
    assert voc.image_size == 224 and voc.name == "voc2012"


# ---------------------------------------------------------------------------------------------------
# the decode-once cache


def test_cache_is_reused_then_rebuilt_when_the_source_changes(wiki_root, voc_root, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first = load_wikiart(str(wiki_root), image_size=32, cache_dir=cache)
    voc_first = load_voc2012(str(voc_root), image_size=32, cache_dir=cache)
    with monkeypatch.context() as patch:
        patch.setattr(decode, "iter_decoded", _no_decode)
        second = load_wikiart(str(wiki_root), image_size=32, cache_dir=cache)
        voc_second = load_voc2012(str(voc_root), image_size=32, cache_dir=cache)
    assert second.source["cache_hit"] and voc_second.source["cache_hit"]
    assert second.source["cache_path"] == first.source["cache_path"]
    assert torch.equal(first.train_images, second.train_images) and torch.equal(
        first.test_labels, second.test_labels
    )
    assert torch.equal(voc_first.test_images, voc_second.test_images)

    # an image replaced (new size and mtime): decoded again, into a new entry
    target = wiki_root / "Symbolism" / "artist_work-0.jpg"
    Image.fromarray(np.full((56, 56, 3), 200, dtype=np.uint8)).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    changed = load_wikiart(str(wiki_root), image_size=32, cache_dir=cache)
    assert not changed.source["cache_hit"] and changed.source["cache_path"] != first.source["cache_path"]
    # an added style folder, a different image size, split files appearing: each a new entry
    write_artgan_csvs(wiki_root)
    assert not load_wikiart(str(wiki_root), image_size=32, cache_dir=cache).source["cache_hit"]
    assert not load_wikiart(str(wiki_root), image_size=16, cache_dir=cache).source["cache_hit"]
    # VOC: a changed list file
    lst = voc_root / "VOCdevkit/VOC2012/ImageSets/Main/train.txt"
    lst.write_text("\n".join(lst.read_text().split()[:-1]) + "\n")
    shorter = load_voc2012(str(voc_root), image_size=32, cache_dir=cache)
    assert not shorter.source["cache_hit"] and len(shorter.train_labels) == VOC_TRAIN - 1
    assert not [p for p in (tmp_path / "cache").rglob("*.tmp")]  # no temporary files left


def test_cached_images_are_copy_on_write_memory_maps(wiki_root, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "MMAP_MIN_BYTES", 0)
    cache = tmp_path / "cache"
    built = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(cache))
    path = built.source["cache_path"]
    shapes = {"train_images": (15, 3, 32, 32), "test_images": (7, 3, 32, 32)}
    key = json.loads((cache / os.path.basename(path) / "meta.json").read_text())["key"]
    assert os.path.basename(path).rsplit("-", 1)[0] == "wikiart-32" and key["styles"] == built.class_names
    arrays, info = cache_mod.cached_image_arrays(cache, "wikiart-32", key, _no_decode)
    assert {k: v.shape for k, v in arrays.items() if k.endswith("images")} == shapes
    assert info["cache_hit"] and isinstance(arrays["train_images"], np.memmap)
    assert arrays["train_images"].mode == "c" and arrays["train_images"].flags.writeable
    tensor = torch.from_numpy(arrays["train_images"])  # no copy, no read-only warning
    tensor[0].zero_()  # a private page: the cache file is unchanged
    fresh = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(cache))
    assert torch.equal(fresh.train_images, built.train_images) and fresh.train_images[0].any()


def test_unwritable_cache_still_loads(wiki_root, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    data = load_wikiart(str(wiki_root), image_size=16, cache_dir=str(blocker))
    assert data.source["cache_hit"] is False and data.train_images.shape == (15, 3, 16, 16)
    assert data.train_images.float().mean() > 10


def test_already_sized_png_is_kept_exactly(tmp_path):
    root = tmp_path / "w"
    (root / "Symbolism").mkdir(parents=True)
    pictures = [np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(4)]
    for i, pic in enumerate(pictures):
        Image.fromarray(pic).save(root / "Symbolism" / f"{i}.png")
    data = load_wikiart(str(root), image_size=16, cache_dir=str(tmp_path / "cache"))
    got = {bytes(x.permute(1, 2, 0).numpy()) for x in torch.cat([data.train_images, data.test_images])}
    assert got == {bytes(p) for p in pictures}


def test_pool_decode_matches_serial_and_reports_bad_files(wiki_root, tmp_path, monkeypatch):
    serial = load_wikiart(str(wiki_root), image_size=16, cache_dir=str(tmp_path / "c1"))
    monkeypatch.setattr(decode, "POOL_MIN_IMAGES", 1)
    monkeypatch.setattr(decode, "CHUNK", 3)
    pooled = load_wikiart(str(wiki_root), image_size=16, cache_dir=str(tmp_path / "c2"))
    assert torch.equal(serial.train_images, pooled.train_images) and torch.equal(
        serial.test_images, pooled.test_images
    )
    (wiki_root / "Fauvism" / "zz-broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetRootError, match="cannot decode Fauvism/zz-broken.jpg"):
        load_wikiart(str(wiki_root), image_size=16, cache_dir=str(tmp_path / "c2"))


# ---------------------------------------------------------------------------------------------------
# the pools the alteration protocol splits (what a run gets)


def test_voc2012_pools_give_the_alteration_splits(voc_root, tmp_path):
    data = load_voc2012(str(voc_root), image_size=32, cache_dir=str(tmp_path / "cache"))
    blocks = {"name": "block_perm", "n": 8, "thickness": 5}
    specs = {"val": blocks, "test": blocks}
    splits = protocols.alteration(data, specs, seed=0, progress=False)
    # 10 train; val.txt's 15: 40% -> 6 validate, 9 test, each with its altered counterpart
    assert splits.sizes() == {"train": {"n": 10, "n_anomalous": 0}, "val": {"n": 12, "n_anomalous": 6},
                              "test": {"n": 18, "n_anomalous": 9}}
    assert data.source["n_test"] == VOC_VAL and data.source["layout"] == "vocdevkit"
    assert data.mmap_dir == str(tmp_path / "cache")  # large altered sets are mapped beside the cache


def test_wikiart_pools_record_the_styles_used(wiki_root, tmp_path):
    data = load_wikiart(str(wiki_root), image_size=32, cache_dir=str(tmp_path / "cache"))
    strokes = {"name": "strokes", "n": 2, "thickness": 5}
    splits = protocols.alteration(data, {"val": strokes, "test": strokes}, seed=0, progress=False)
    assert data.source["styles_used"] == ["Art_Nouveau_Modern", "Fauvism", "Symbolism"]
    missing = ["Contemporary_Realism", "High_Renaissance", "Naive_Art_Primitivism"]
    assert data.source["styles_missing"] == missing
    assert len(splits.test) == 14
    json.dumps(data.source)  # recorded in metrics.json as it is


REAL_WIKIART = os.environ.get("DSVDD_WIKIART_ROOT")


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_WIKIART, reason="DSVDD_WIKIART_ROOT (the extracted offline WikiArt subset) not set"
)
@pytest.mark.parametrize(
    "anomaly", [{"name": "strokes", "n": 2, "thickness": 5}, {"name": "block_perm", "n": 8, "thickness": 5}]
)
def test_real_wikiart_subset(anomaly):
    data = load_wikiart(REAL_WIKIART, image_size=64)  # DSVDD_CACHE_DIR: decoded once per machine
    source = data.source
    assert {"Art_Nouveau_Modern", "Symbolism"} <= set(source["styles_used"])
    if source["layout"] == "style-folders" and len(source["styles_used"]) == 2:  # the offline subset
        assert source["n_train"] + source["n_test"] == 7_930 and source["n_test"] == 2_379
    limits = {"max_train": 300, "max_val": 200, "max_test": 200}
    specs = {"val": anomaly, "test": anomaly}
    splits = protocols.alteration(data, specs, seed=0, limits=limits, progress=False)
    assert {k: v["n"] for k, v in splits.sizes().items()} == {"train": 300, "val": 200, "test": 200}
    altered = splits.test.batch(np.flatnonzero(splits.test.labels == 1))
    natural = splits.test.batch(np.flatnonzero(splits.test.labels == 0))
    assert altered.shape == (100, 3, 64, 64) and (altered != natural).flatten(1).any(dim=1).all()


# ---------------------------------------------------------------------------------------------------
# end to end: the dataset node composed into a run


def test_run_refuses_bad_dataset_settings(voc_root, wiki_root, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="setup=.one_vs_all.*voc2012.*single class.*use setup=alteration"):
        train.run(
            compose_config(["dataset=voc2012", f"dataset.root={voc_root}", "setup=one_vs_all", *QUICK]),
            tmp_path / "run",
        )
    with pytest.raises(ConfigError, match="dataset.styles"):
        train.run(
            compose_config(["dataset=wikiart", f"dataset.root={wiki_root}", "dataset.styles=[]", *QUICK]),
            tmp_path / "run",
        )
    monkeypatch.delenv("DSVDD_VOC2012_ROOT", raising=False)
    with pytest.raises(DatasetRootError, match="dataset.root is not set.*DSVDD_VOC2012_ROOT"):
        train.run(compose_config(["dataset=voc2012", "setup=alteration", *QUICK]), tmp_path / "voc")
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.slow
def test_voc2012_runs_end_to_end_from_the_command_line(voc_root, tmp_path):
    result = run_cli(
        [
            "dataset=voc2012",
            f"dataset.root={voc_root}",
            "setup=alteration",
            "anomaly=block_perm",
            "anomaly.n=8",
            *QUICK,
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["dataset"] == "voc2012"
    # 10 train; val.txt's 15: 40% -> 6 validate, 9 test, each with its altered counterpart
    assert {k: v["n"] for k, v in metrics["data"]["splits"].items()} == {"train": 10, "val": 12, "test": 18}
    source = metrics["data"]["source"]
    assert source["n_test"] == VOC_VAL and source["layout"] == "vocdevkit"
    scores = np.load(tmp_path / "run" / "scores.npz")
    assert scores["score"].shape == (18,) and scores["label"].sum() == 9


def test_wikiart_strokes_run_records_the_styles_used(wiki_root, tmp_path):
    overrides = [
        "dataset=wikiart",
        f"dataset.root={wiki_root}",
        "setup=alteration",
        "anomaly=strokes",
        "anomaly.thickness=5",
        *QUICK,
    ]
    metrics = train.run(compose_config(overrides), tmp_path / "run")
    assert metrics["status"] == "done"
    source = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]["source"]
    assert source["styles_used"] == ["Art_Nouveau_Modern", "Fauvism", "Symbolism"]
    assert source["styles_missing"] == ["Contemporary_Realism", "High_Renaissance", "Naive_Art_Primitivism"]
    assert metrics["data"]["splits"]["test"]["n"] == 14


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_WIKIART, reason="DSVDD_WIKIART_ROOT (the extracted offline WikiArt subset) not set"
)
@pytest.mark.parametrize(
    "anomaly", [["anomaly=strokes", "anomaly.thickness=5"], ["anomaly=block_perm", "anomaly.n=8"]]
)
def test_real_wikiart_subset_end_to_end(tmp_path, anomaly):
    result = run_cli(
        [
            "dataset=wikiart",
            f"dataset.root={REAL_WIKIART}",
            "dataset.image_size=64",
            "setup=alteration",
            *anomaly,
            "model.weights=none",
            "trainer.epochs=1",
            "profile.max_train=300",
            "profile.max_val=200",
            "profile.max_test=200",
            "trainer.progress=false",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    source = metrics["data"]["source"]
    assert {"Art_Nouveau_Modern", "Symbolism"} <= set(source["styles_used"])
    if source["layout"] == "style-folders" and len(source["styles_used"]) == 2:  # the offline subset
        assert source["n_train"] + source["n_test"] == 7_930 and source["n_test"] == 2_379
    assert {k: v["n"] for k, v in metrics["data"]["splits"].items()} == {
        "train": 300,
        "val": 200,
        "test": 200,
    }
    assert 0.0 < metrics["test_auc"] < 1.0
