"""PASCAL VOC2012 (Section V-A) from a user-given `dataset.root`, or downloaded by torchvision.

Layout: the standard ``VOCdevkit/VOC2012/`` folder with ``JPEGImages/<id>.jpg`` and
``ImageSets/Main/train.txt`` / ``val.txt`` (one image id per line). It is found at the root itself,
at ``<root>/VOC2012``, at ``<root>/VOCdevkit/VOC2012`` (torchvision's and the tar file's layout) or
one folder further down (e.g. ``<root>/VOCtrainval_11-May-2012/VOCdevkit/VOC2012``). With
``download=True`` and no layout present, torchvision's ``VOCDetection(root, year="2012",
image_set="train", download=True)`` downloads and extracts ``VOCtrainval_11-May-2012.tar`` (~2 GB,
MD5-checked) into the root; the detection variant is used because it reads ``ImageSets/Main``.

All images are natural images of one pooled class (labels 0, class name "natural"): the one-vs-all
protocol does not apply. Pools: the ``train.txt`` images are NaturalImages.train_* (5,717 in the
full dataset), the ``val.txt`` images test_* (5,823). The alteration protocol trains on the whole
train pool and moves a seeded 40% of the val pool to validation, the rest tests: 2,329 and 3,494
natural images, i.e. 4,658 validation and 6,988 test rows with their altered counterparts (the
paper's numbers).

Images are resized to ``dataset.image_size`` (224 by default; a square, aspect ratio not kept) and
decoded once into the cache (imagefiles.py). Cache key: format version, the resolved VOC2012
folder, image size, and a fingerprint of the two list files and every listed image's (path, size,
mtime).
"""

from __future__ import annotations

import logging
import pathlib
import time

import numpy as np

from .cache import default_cache_root, fingerprint
from .errors import DatasetRootError
from .imagefiles import file_listing, load_pools, locate_root, pool_source, pooled_natural_images
from .images import NaturalImages

log = logging.getLogger(__name__)

YEAR = "2012"
IMAGES_DIR = "JPEGImages"
LISTS_DIR = pathlib.Path("ImageSets") / "Main"
LISTS = {"train": "train.txt", "test": "val.txt"}  # pool -> list file
TAR_NAME = "VOCtrainval_11-May-2012.tar"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
VAL_FRACTION = 0.4  # of the given val set (the alteration protocol's default for VOC2012)
FORMAT_VERSION = 1

_EXPECTED = (
    f"expected VOCdevkit/VOC2012/ with {IMAGES_DIR}/ and {LISTS_DIR.as_posix()}/train.txt, val.txt; set "
    f"dataset.download=true to download it with torchvision (~2 GB), or download {TAR_NAME} from {VOC_URL} "
    "and extract it into dataset.root"
)


def _err(path, problem: str) -> DatasetRootError:
    return DatasetRootError(f"dataset.root={path}: {problem}")


def _looks_like_voc(folder: pathlib.Path) -> bool:
    return (folder / IMAGES_DIR).is_dir() or (folder / "ImageSets").is_dir()


def _find_voc(root: pathlib.Path) -> pathlib.Path | None:
    candidates = [root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"]
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            candidates += [sub / "VOCdevkit" / "VOC2012", sub / "VOC2012"]
    for folder in candidates:
        if folder.is_dir() and _looks_like_voc(folder):
            return folder
    return None


def _download(root: pathlib.Path) -> None:
    import torchvision

    try:
        torchvision.datasets.VOCDetection(str(root), year=YEAR, image_set="train", download=True)
    except Exception as exc:  # noqa: BLE001 - network, checksum or disk: the same advice
        raise _err(
            root,
            f"downloading VOC2012 failed ({type(exc).__name__}: {exc}); without internet, download {TAR_NAME} "
            f"from {VOC_URL} on a connected machine and extract it into {root} (giving {root}/VOCdevkit/VOC2012/)",
        ) from exc


def _read_list(folder: pathlib.Path, name: str) -> list[str]:
    path = folder / LISTS_DIR / name
    if not path.is_file():
        raise _err(folder, f"incomplete VOC2012: missing {LISTS_DIR.as_posix()}/{name}; {_EXPECTED}")
    ids: dict[str, None] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields:
            ids[fields[0]] = None
    if not ids:
        raise _err(folder, f"{LISTS_DIR.as_posix()}/{name} lists no image ids")
    return list(ids)


def load_voc2012(
    root: str,
    download: bool = False,
    image_size: int = 224,
    cache_dir: str | None = None,
) -> NaturalImages:
    """VOC2012's train (pool train_*) and val (pool test_*) images; see the module docstring."""
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    root_path, folder = locate_root(root, _find_voc, _download if download else None, _err, _EXPECTED, "VOC2012")
    folder = folder.resolve()
    if not (folder / IMAGES_DIR).is_dir():
        raise _err(folder, f"incomplete VOC2012: missing {IMAGES_DIR}/; {_EXPECTED}")

    t0 = time.perf_counter()
    ids = {pool: _read_list(folder, name) for pool, name in LISTS.items()}
    both = set(ids["train"]) & set(ids["test"])
    if both:
        raise _err(
            folder, f"{len(both)} image id(s) are in both train.txt and val.txt, e.g. {sorted(both)[0]}"
        )
    pools = {pool: [f"{IMAGES_DIR}/{i}.jpg" for i in pool_ids] for pool, pool_ids in ids.items()}
    for pool, rels in pools.items():
        absent = [rel for rel in rels if not (folder / rel).is_file()]
        if absent:
            raise _err(
                folder,
                f"{len(absent)} of the {len(rels)} images listed in {LISTS_DIR.as_posix()}/"
                f"{LISTS[pool]} are missing (first: {absent[0]}); re-extract {TAR_NAME}",
            )
    lists = [LISTS_DIR.as_posix() + "/" + name for name in LISTS.values()]
    listing = file_listing(folder, lists + pools["train"] + pools["test"])
    key = {
        "format_version": FORMAT_VERSION,
        "dataset": "voc2012",
        "layout": "vocdevkit",
        "root": str(folder),
        "image_size": image_size,
        "pools": [len(pools["train"]), len(pools["test"])],
        "listing": fingerprint(listing),
    }
    labels = {pool: np.zeros(len(rels), dtype=np.int64) for pool, rels in pools.items()}
    cache_root = default_cache_root(cache_dir)
    arrays, info = load_pools("voc2012", folder, pools, labels, image_size, cache_root, key)
    seconds = time.perf_counter() - t0

    source = {
        "dataset": "voc2012",
        "layout": "vocdevkit",
        "root": str(folder),
        "requested_root": str(root_path),
        "split_files": [str(folder / rel) for rel in lists],
        "pools": "train.txt -> train pool; val.txt -> val/test pool (40% validation, 60% test)",
        **pool_source(pools, image_size, info, seconds),
    }
    log.info(
        "VOC2012: root=%s image_size=%d cache=%s (%s) train.txt=%d val.txt=%d in %.1fs",
        folder,
        image_size,
        info["cache_path"],
        "hit" if info["cache_hit"] else "miss",
        source["n_train"],
        source["n_test"],
        seconds,
    )
    return pooled_natural_images("voc2012", ["natural"], arrays, source, "test", VAL_FRACTION, cache_root)
