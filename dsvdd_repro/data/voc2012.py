"""PASCAL VOC2012 (Section V-A): the `dataset=voc2012` config node and its source.

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
decoded once into the cache (loader.py); the two list files are part of the cache key.
"""

from __future__ import annotations

import pathlib
from typing import ClassVar

import numpy as np

from dsvdd_repro.core.schema import config_node
from dsvdd_repro.data.errors import root_error
from dsvdd_repro.data.images import PoolCounts
from dsvdd_repro.data.source import FilesConfig, ImageSource, Pools, sub_folders

YEAR = "2012"
IMAGES_DIR = "JPEGImages"
LISTS_DIR = pathlib.Path("ImageSets") / "Main"
LISTS = {"train": "train.txt", "test": "val.txt"}  # pool -> list file
TAR_NAME = "VOCtrainval_11-May-2012.tar"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
VAL_FRACTION = 0.4  # of the given val set (the alteration protocol's default for VOC2012)


@config_node("dataset", "voc2012")
class VOC2012Config(FilesConfig):
    """PASCAL VOC2012: the standard VOCdevkit/VOC2012 layout (JPEGImages/, ImageSets/Main/{train,val}.txt),
    found at the root, under VOC2012/ or VOCdevkit/VOC2012/, or one folder further down. download=true
    fetches VOCtrainval_11-May-2012.tar (~2 GB) through torchvision. All images are natural (one class);
    the root defaults to $DSVDD_VOC2012_ROOT."""

    # one pooled class of natural images: the config refuses setup=one_vs_all before any data is read
    CLASS_LABELS: ClassVar[bool] = False

    _target_: str = "dsvdd_repro.data.voc2012.VOC2012"
    name: str = "voc2012"
    root: str | None = "${oc.env:DSVDD_VOC2012_ROOT,null}"  # download: VOCtrainval_11-May-2012.tar
    image_size: int = 224


def _looks_like_voc(folder: pathlib.Path) -> bool:
    return (folder / IMAGES_DIR).is_dir() or (folder / "ImageSets").is_dir()


def _read_list(folder: pathlib.Path, name: str, expected: str) -> list[str]:
    path = folder / LISTS_DIR / name
    if not path.is_file():
        raise root_error(folder, f"incomplete VOC2012: missing {LISTS_DIR.as_posix()}/{name}; {expected}")
    ids: dict[str, None] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields:
            ids[fields[0]] = None
    if not ids:
        raise root_error(folder, f"{LISTS_DIR.as_posix()}/{name} lists no image ids")
    return list(ids)


class VOC2012(ImageSource):
    """VOC2012's train (pool train_*) and val (pool test_*) images; see the module docstring."""

    name = "voc2012"
    title = "VOC2012"
    unset_root = (
        "dataset.root is not set: pass dataset.root=<folder holding VOCdevkit/VOC2012> or set "
        "DSVDD_VOC2012_ROOT; add dataset.download=true to download VOC2012 there with torchvision "
        "(~2 GB)"
    )
    can_download = True
    val_from = "test"
    default_val_fraction = VAL_FRACTION
    format_version = 2

    def planned_counts(self) -> PoolCounts:
        # train.txt 5,717 images, val.txt 5,823 (the paper's 4,658 validation and 6,988 test rows)
        return PoolCounts((5717,), (5823,), self.val_from, self.default_val_fraction)

    def expected(self) -> str:
        return (
            f"expected VOCdevkit/VOC2012/ with {IMAGES_DIR}/ and {LISTS_DIR.as_posix()}/train.txt, val.txt; "
            f"set dataset.download=true to download it with torchvision (~2 GB), or download {TAR_NAME} from "
            f"{VOC_URL} and extract it into dataset.root"
        )

    def locate(self, root: pathlib.Path) -> pathlib.Path | None:
        candidates = [root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"]
        for sub in sub_folders(root):
            candidates += [sub / "VOCdevkit" / "VOC2012", sub / "VOC2012"]
        return next((folder for folder in candidates if folder.is_dir() and _looks_like_voc(folder)), None)

    def fetch(self, root: pathlib.Path) -> None:
        import torchvision

        try:
            torchvision.datasets.VOCDetection(str(root), year=YEAR, image_set="train", download=True)
        except Exception as exc:  # noqa: BLE001 - network, checksum or disk: the same advice
            raise root_error(
                root,
                f"downloading VOC2012 failed ({type(exc).__name__}: {exc}); without internet, download "
                f"{TAR_NAME} from {VOC_URL} on a connected machine and extract it into {root} (giving "
                f"{root}/VOCdevkit/VOC2012/)",
            ) from exc

    def pools(self, folder: pathlib.Path) -> Pools:
        if not (folder / IMAGES_DIR).is_dir():
            raise root_error(folder, f"incomplete VOC2012: missing {IMAGES_DIR}/; {self.expected()}")
        ids = {pool: _read_list(folder, name, self.expected()) for pool, name in LISTS.items()}
        both = set(ids["train"]) & set(ids["test"])
        if both:
            raise root_error(
                folder, f"{len(both)} image id(s) are in both train.txt and val.txt, e.g. {sorted(both)[0]}"
            )
        files = {pool: [f"{IMAGES_DIR}/{i}.jpg" for i in pool_ids] for pool, pool_ids in ids.items()}
        for pool, rels in files.items():
            absent = [rel for rel in rels if not (folder / rel).is_file()]
            if absent:
                raise root_error(
                    folder,
                    f"{len(absent)} of the {len(rels)} images listed in {LISTS_DIR.as_posix()}/"
                    f"{LISTS[pool]} are missing (first: {absent[0]}); re-extract {TAR_NAME}",
                )
        lists = [f"{LISTS_DIR.as_posix()}/{name}" for name in LISTS.values()]
        return Pools(
            "vocdevkit",
            ["natural"],
            files=files,
            labels={pool: np.zeros(len(rels), dtype=np.int64) for pool, rels in files.items()},
            key_files=lists,
            source={
                "split_files": [str(folder / rel) for rel in lists],
                "pools": "train.txt -> train pool; val.txt -> val/test pool (40% validation, 60% test)",
            },
        )
