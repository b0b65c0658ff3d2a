"""A user's own images, one sub-folder per class: the `dataset=folder` config node and its source.

Layouts of `dataset.root`:

* ``train-test``: `<root>/train/<class>/*` and `<root>/test/<class>/*` are the given train and test
  pools (both must hold the same class folders).
* ``class-folders``: `<root>/<class>/*`; each class's images are split with a fixed seed
  (``SPLIT_SEED`` = 0 with the class name as stream, independent of the run's seed, as WikiArt's
  seeded split) into ``1 - test_fraction`` given train and ``test_fraction`` given test (rounded
  as every split, protocols.share_count). Each class must get at least 1 image on each side, as
  the train-test layout's class folders must (a class folder too small for that is refused, naming
  it, its image count and the count needed); what a protocol needs beyond that (e.g. a one-vs-all
  normal class's validation image) is checked where the protocol splits (protocols.py).

Images are the files directly in a class folder with an extension of `source.IMAGE_EXTENSIONS`, in
any case; hidden files and folders (`source.is_hidden`) are ignored. Class names are
the sorted class folder names and labels their indices; files are sorted by name within a class,
and a pool lists class 0's files first. At least 2 classes are needed, none of them empty. Images are
decoded by `decode.decode_one` (16-bit images scaled to 8 bits) and resized to `image_size` as
VOC2012's and WikiArt's (a square, PIL bilinear, aspect ratio not kept).
The alteration protocol validates on `val_fraction` of the given train pool.
"""

from __future__ import annotations

import pathlib

import numpy as np

from dsvdd_repro.core.schema import config_node, in_range, positive
from dsvdd_repro.data.errors import root_error
from dsvdd_repro.data.protocols import fewest_images, share_count
from dsvdd_repro.data.source import (
    IMAGE_EXTENSIONS,
    ImageSource,
    Pools,
    image_files,
    seeded_split,
    sub_folders,
)

SPLIT_SEED = 0
SPLITS = ("train", "test")


@config_node("dataset", "folder")
class FolderConfig:
    """Your own images: <root>/<class>/<image files>, or <root>/{train,test}/<class>/<image files> for
    given splits (dsvdd_repro/data/folder.py; image files: the extensions of
    dsvdd_repro/data/source.py IMAGE_EXTENSIONS). The root defaults to $DSVDD_FOLDER_ROOT."""

    _target_: str = "dsvdd_repro.data.folder.ImageFolder"
    name: str = "folder"
    root: str | None = "${oc.env:DSVDD_FOLDER_ROOT,null}"
    image_size: int = 32
    # without train/ and test/: the share of each class's images in the test pool (fixed seed 0)
    test_fraction: float = 0.3
    # alteration protocol: the share of the train pool that validates (NaturalImages.default_val_fraction)
    val_fraction: float = 0.2
    # the decoded-image cache; null = $DSVDD_CACHE_DIR, else ~/.cache/dsvdd_repro
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        positive("image_size", self.image_size)
        in_range("test_fraction", self.test_fraction, 0.0, 1.0, low_open=True, high_open=True)
        in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)


class ImageFolder(ImageSource):
    """Images in class folders; see the module docstring."""

    name = "folder"
    title = "image folder"
    unset_root = (
        "dataset.root is not set: pass dataset.root=<folder with one sub-folder of images per class, "
        "or train/ and test/ holding such class folders> or set DSVDD_FOLDER_ROOT"
    )
    # 2: 16-bit images are scaled to 8 bits, no longer clipped (decode.py); more extensions are read
    format_version = 2

    def __init__(
        self, root: str | None, image_size: int, test_fraction: float, val_fraction: float, cache_dir: str | None,
    ):
        super().__init__(root, image_size, cache_dir, download=False)  # a folder of the user's: nothing to fetch
        self.test_fraction, self.default_val_fraction = float(test_fraction), float(val_fraction)

    def expected(self) -> str:
        return (
            "expected one sub-folder per class (at least 2) holding "
            + ", ".join("*" + x for x in IMAGE_EXTENSIONS)
            + " files, either directly in dataset.root or in dataset.root/train/ and dataset.root/test/"
        )

    def locate(self, root: pathlib.Path) -> pathlib.Path | None:
        return root if sub_folders(root) else None

    def no_layout(self, root: pathlib.Path) -> str:
        return "holds no class folders"

    def _classes(self, root: pathlib.Path, prefix: str) -> dict[str, list[str]]:
        """Class name -> its files (relative to the root) for the class folders in `root/prefix`."""
        classes = sub_folders(root / prefix)
        if len(classes) < 2:
            raise root_error(root, f"{prefix or 'the root'} holds {len(classes)} class folder(s), at least 2 "
                                   f"are needed; {self.expected()}")
        files = {c.name: image_files(c, prefix=f"{prefix}{c.name}/") for c in classes}
        empty = [f"{prefix}{name}/" for name, found in files.items() if not found]
        if empty:
            raise root_error(root, f"class folder(s) {', '.join(empty)} hold no images; {self.expected()}")
        return files

    def _check_split_sizes(self, root: pathlib.Path, classes: dict[str, list[str]]) -> None:
        """Every class folder must give the seeded split at least 1 train and 1 test image."""
        n_test = {name: share_count(self.test_fraction, len(found)) for name, found in classes.items()}
        small = [f"{name}/ has {len(found)} image{'' if len(found) == 1 else 's'}" for name, found in classes.items()
                 if not 1 <= n_test[name] <= len(found) - 1]
        if small:
            need = fewest_images(self.test_fraction, 1, 1)
            raise root_error(root, f"class folder {', '.join(small)}; the split needs at least {need} per class "
                                   f"(1 train, 1 test with test_fraction={self.test_fraction}): add images or "
                                   "change dataset.test_fraction")

    def pools(self, folder: pathlib.Path) -> Pools:
        given = [split for split in SPLITS if (folder / split).is_dir()]
        if len(given) == 1:
            other = next(s for s in SPLITS if s not in given)
            raise root_error(folder, f"found {given[0]}/ but not {other}/ beside it: give both (the given "
                                     "splits) or neither (a seeded split of each class folder)")
        if given:
            layout, split_rule = "train-test", "given"
            by_split = {split: self._classes(folder, f"{split}/") for split in SPLITS}
            if list(by_split["train"]) != list(by_split["test"]):
                train, test = ", ".join(by_split["train"]), ", ".join(by_split["test"])
                problem = f"train/ holds the classes {train} but test/ holds {test}; both need the same ones"
                raise root_error(folder, problem)
            class_names = list(by_split["train"])
        else:
            layout, split_rule = "class-folders", {"seed": SPLIT_SEED, "test_fraction": self.test_fraction}
            classes = self._classes(folder, "")
            class_names = list(classes)
            self._check_split_sizes(folder, classes)
            by_split = {split: {} for split in SPLITS}
            for name, found in classes.items():
                by_split["train"][name], by_split["test"][name] = seeded_split(
                    found, self.test_fraction, SPLIT_SEED, name
                )
        files = {s: [f for name in class_names for f in sorted(by_split[s][name])] for s in SPLITS}
        counts = {s: [len(by_split[s][name]) for name in class_names] for s in SPLITS}
        labels = {s: np.repeat(np.arange(len(class_names), dtype=np.int64), counts[s]) for s in SPLITS}
        per_class = {n: {s: len(by_split[s][n]) for s in SPLITS} for n in class_names}
        rule = ("train/ and test/ are the given pools" if given else
                f"per class a fixed-seed (seed {SPLIT_SEED}) {self.test_fraction:.0%} test pool")
        return Pools(layout, class_names, files=files, labels=labels, key={"split": split_rule},
                     source={"split_rule": rule, "per_class": per_class})
