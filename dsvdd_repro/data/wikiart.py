"""WikiArt (Section V-A) from ArtGAN's layout in a user-given `dataset.root`.

Layout: ``<folder>/<Style_Name>/<file>.jpg`` (ArtGAN's ``wikiart/``), where ``<folder>`` is the root
itself, ``<root>/wikiart`` or another folder one level below the root. Split files: ArtGAN's
``style_train.csv`` and ``style_val.csv`` (rows ``Style_Name/file.jpg,class_index``), looked for in
``<folder>``, ``<folder>/wikiart_csv`` and ``<folder>/../wikiart_csv`` (ArtGAN ships ``wikiart.zip``
and ``wikiart_csv/`` side by side). WikiArt cannot be downloaded automatically.

Styles: ``dataset.styles`` (default: the paper's six). Styles without a folder are reported in one
warning line and skipped, or are an error with ``dataset.require_all_styles=true``. A style's class
index is its position among the styles used; `source` records the styles used and missing.

Pools (NaturalImages.train_* = "given train", test_* = "given val"), files sorted by path:

* ``artgan-csv`` (both CSVs present): the rows of the used styles in each file. Rows whose image is
  missing on disk are skipped with a warning and counted in `source`.
* ``style-folders`` (no CSVs; e.g. the offline subset): each style's images are split with a fixed
  seed (``SPLIT_SEED``, per style, independent of the run's seed, so the test pool is the same for
  every run, as with a given split) into ``1 - TEST_SHARE`` given train and ``TEST_SHARE`` given val.
  ``TEST_SHARE = 0.3`` is the paper's proportion: 4,205 given-val images of 14,025 (= 9,820 + 4,205).

The alteration protocol then moves a seeded 20% of the given train set to validation and tests on
the given val set (the paper: 7,856 training images, 3,928 validation and 8,410 test rows).

Images are resized to ``dataset.image_size`` (224 by default) and cached once; see imagefiles.py.
Cache key: format version, layout, resolved folder, image size, the styles used (in order), the
split rule (CSV listings, or seed and share) and a fingerprint of every image's (path, size, mtime).
"""

from __future__ import annotations

import csv
import logging
import os
import pathlib
import time
import zlib

import numpy as np

from ..config import WIKIART_PAPER_STYLES
from .cache import default_cache_root, fingerprint
from .errors import DatasetRootError
from .imagefiles import IMAGE_EXTENSIONS, file_listing, load_pools, pool_source, pooled_natural_images
from .images import NaturalImages

log = logging.getLogger(__name__)

TRAIN_CSV, VAL_CSV = "style_train.csv", "style_val.csv"
CSV_DIR = "wikiart_csv"
SPLIT_SEED = 0
TEST_SHARE = 0.3
VAL_FRACTION = 0.2  # of the given train set (the alteration protocol's default for WikiArt)
# Bump when the decoded content for the same files would change (decoder, ordering, resizing, split).
FORMAT_VERSION = 1
ARTGAN_URL = "https://github.com/cs-chan/ArtGAN/tree/master/WikiArt%20Dataset"


def _err(path, problem: str) -> DatasetRootError:
    return DatasetRootError(f"dataset.root={path}: {problem}")


def _expected(styles) -> str:
    return (
        "expected ArtGAN's WikiArt layout <root>/<Style_Name>/*.jpg with folders for "
        + ", ".join(styles)
        + f" (optionally {TRAIN_CSV}/{VAL_CSV}); WikiArt cannot be downloaded automatically: get wikiart.zip "
        f"and {CSV_DIR}/ from {ARTGAN_URL}"
    )


def _has_images(folder: pathlib.Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file() for e in it)


def _find_folder(root: pathlib.Path, styles: list[str]) -> pathlib.Path | None:
    """The folder holding the style folders: the root, root/wikiart, or another sub-folder."""

    def holds(folder: pathlib.Path) -> bool:
        return any((folder / s).is_dir() for s in styles)

    if holds(root):
        return root
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    subs.sort(key=lambda p: p.name != "wikiart")
    for sub in subs:
        if holds(sub):
            return sub
    return None


def _find_csvs(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path] | None:
    for place in (folder, folder / CSV_DIR, folder.parent / CSV_DIR):
        train, val = place / TRAIN_CSV, place / VAL_CSV
        if train.is_file() and val.is_file():
            return train, val
        if train.is_file() or val.is_file():
            present, absent = (train, val) if train.is_file() else (val, train)
            raise _err(
                folder,
                f"found {present} but not {absent.name} beside it; ArtGAN's split needs both "
                "(remove the one to use the seeded split)",
            )
    return None


def _read_csv(path: pathlib.Path, styles: set[str]) -> list[str]:
    """The relative image paths listed in `path` whose style folder is in `styles` (file order)."""
    rows: dict[str, None] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for line_no, row in enumerate(csv.reader(fh), 1):
                if not row or not row[0].strip():
                    continue
                rel = row[0].strip().replace("\\", "/")
                if "/" not in rel:
                    if line_no == 1:  # a header line
                        continue
                    raise _err(
                        path,
                        f"line {line_no}: {rel!r} is not <Style_Name>/<file> (ArtGAN's "
                        "'path/to/image.jpg,class_index' rows)",
                    )
                if rel.split("/", 1)[0] in styles:
                    rows[rel] = None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _err(path, f"cannot read ({type(exc).__name__}: {exc})") from exc
    return list(rows)


def _style_files(folder: pathlib.Path, style: str) -> list[str]:
    with os.scandir(folder / style) as it:
        names = [
            e.name
            for e in it
            if e.name.lower().endswith(IMAGE_EXTENSIONS) and not e.name.startswith(".") and e.is_file()
        ]
    return sorted(f"{style}/{n}" for n in names)


def _seeded_split(folder: pathlib.Path, styles: list[str]) -> dict[str, list[str]]:
    """Per style, a fixed-seed TEST_SHARE of its images -> given val, the rest -> given train."""
    pools: dict[str, list[str]] = {"train": [], "test": []}
    for style in styles:
        files = _style_files(folder, style)
        order = np.random.default_rng([SPLIT_SEED, zlib.crc32(style.encode("utf-8"))]).permutation(len(files))
        n_test = int(round(TEST_SHARE * len(files)))
        pools["test"].extend(files[i] for i in order[:n_test])
        pools["train"].extend(files[i] for i in order[n_test:])
    return {split: sorted(rels) for split, rels in pools.items()}


def load_wikiart(
    root: str,
    styles: list[str] | tuple[str, ...] = WIKIART_PAPER_STYLES,
    require_all_styles: bool = False,
    image_size: int = 224,
    cache_dir: str | None = None,
    download: bool = False,
) -> NaturalImages:
    """The given train / given val pools of the used styles as uint8 tensors; see the module docstring."""
    styles = [str(s) for s in styles]
    if not styles or len(set(styles)) != len(styles):
        raise ValueError(f"styles must be a non-empty list of distinct names, got {styles}")
    if root is None or str(root).strip() == "":
        raise _err(root, f"not set; {_expected(styles)}")
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    root_path = pathlib.Path(root).expanduser().resolve()
    if download:
        log.warning(
            "WikiArt: dataset.download=true has no effect (no automatic download); reading %s", root_path
        )
    if not root_path.is_dir():
        problem = "does not exist" if not root_path.exists() else "is not a folder"
        raise _err(root_path, f"{problem}; {_expected(styles)}")
    folder = _find_folder(root_path, styles)
    if folder is None:
        found = sorted(p.name for p in root_path.iterdir() if p.is_dir() and not p.name.startswith("."))[:8]
        raise _err(
            root_path,
            f"holds none of the style folders (found: {', '.join(found) or 'no folders'}); "
            + _expected(styles),
        )
    folder = folder.resolve()

    used = [s for s in styles if (folder / s).is_dir() and _has_images(folder / s)]
    missing = [s for s in styles if s not in used]
    if missing:
        if require_all_styles:
            raise _err(
                folder,
                f"missing style folder(s) with images: {', '.join(missing)} "
                "(dataset.require_all_styles=true); " + _expected(styles),
            )
        log.warning(
            "WikiArt: %d of %d styles missing under %s, skipped: %s (using %s)",
            len(missing),
            len(styles),
            folder,
            ", ".join(missing),
            ", ".join(used),
        )
    if not used:
        raise _err(folder, "none of the requested style folders holds images; " + _expected(styles))

    t0 = time.perf_counter()
    csvs = _find_csvs(folder)
    missing_files = 0
    if csvs is not None:
        layout = "artgan-csv"
        pools = {}
        for split, path in zip(("train", "test"), csvs, strict=True):
            listed = _read_csv(path, set(used))
            present = [rel for rel in listed if (folder / rel).is_file()]
            missing_files += len(listed) - len(present)
            pools[split] = sorted(present)
        if missing_files:
            log.warning(
                "WikiArt: %d image(s) listed in %s/%s are missing under %s and were skipped",
                missing_files,
                csvs[0].name,
                csvs[1].name,
                folder,
            )
        split_rule = {"csv": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in csvs]}
        overlap = set(pools["train"]) & set(pools["test"])
        if overlap:
            raise _err(
                folder,
                f"{len(overlap)} image(s) are in both {TRAIN_CSV} and {VAL_CSV}, e.g. {sorted(overlap)[0]}",
            )
    else:
        layout = "style-folders"
        pools = _seeded_split(folder, used)
        split_rule = {"seed": SPLIT_SEED, "test_share": TEST_SHARE}
    for split in ("train", "test"):
        if not pools[split]:
            raise _err(
                folder,
                f"the {'given train' if split == 'train' else 'given val'} set of styles "
                f"{', '.join(used)} is empty ({layout})",
            )
    index = {style: i for i, style in enumerate(used)}
    labels = {
        split: np.array([index[rel.split("/", 1)[0]] for rel in rels], dtype=np.int64)
        for split, rels in pools.items()
    }

    listing = file_listing(folder, [rel for split in ("train", "test") for rel in pools[split]])
    key = {
        "format_version": FORMAT_VERSION,
        "dataset": "wikiart",
        "layout": layout,
        "root": str(folder),
        "image_size": image_size,
        "styles": used,
        "split": split_rule,
        "pools": [len(pools["train"]), len(pools["test"])],
        "listing": fingerprint(listing),
    }
    cache_root = default_cache_root(cache_dir)
    arrays, info = load_pools("wikiart", folder, pools, labels, image_size, cache_root, key)
    seconds = time.perf_counter() - t0

    per_style = {
        s: {"train": int((labels["train"] == i).sum()), "test": int((labels["test"] == i).sum())}
        for s, i in index.items()
    }
    source = {
        "dataset": "wikiart",
        "layout": layout,
        "root": str(folder),
        "requested_root": str(root_path),
        "styles_used": used,
        "styles_missing": missing,
        "split_files": [str(p) for p in csvs] if csvs else None,
        "split_rule": (
            f"ArtGAN {TRAIN_CSV} = given train, {VAL_CSV} = given val"
            if csvs
            else f"no split files: per style a fixed-seed (seed {SPLIT_SEED}) {TEST_SHARE:.0%} given val"
        ),
        "missing_listed_files": missing_files,
        "per_style": per_style,
        **pool_source(pools, image_size, info, seconds),
    }
    log.info(
        "WikiArt: layout=%s root=%s styles=%s image_size=%d cache=%s (%s) given train=%d given val=%d in %.1fs",
        layout,
        folder,
        ",".join(used),
        image_size,
        info["cache_path"],
        "hit" if info["cache_hit"] else "miss",
        source["n_train"],
        source["n_test"],
        seconds,
    )
    return pooled_natural_images("wikiart", used, arrays, source, "train", VAL_FRACTION, cache_root)
