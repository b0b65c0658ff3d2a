"""WikiArt (Section V-A) in ArtGAN's layout: the `dataset=wikiart` config node and its source.

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

Images are resized to ``dataset.image_size`` (224 by default) and cached once (loader.py); the styles
used and the split rule (CSV files, or seed and share) are part of the cache key.
"""

from __future__ import annotations

import csv
import logging
import pathlib
from dataclasses import field

import numpy as np

from dsvdd_repro.core.schema import ConfigError, config_node
from dsvdd_repro.data.errors import root_error
from dsvdd_repro.data.images import PoolCounts
from dsvdd_repro.data.source import FilesConfig, ImageSource, Pools, image_files, seeded_split, sub_folders

log = logging.getLogger(__name__)

# Section V-A: the six WikiArt styles the paper uses (ArtGAN folder names)
WIKIART_PAPER_STYLES = (
    "Art_Nouveau_Modern", "Contemporary_Realism", "Fauvism", "High_Renaissance", "Naive_Art_Primitivism",
    "Symbolism",
)
TRAIN_CSV, VAL_CSV = "style_train.csv", "style_val.csv"
CSV_DIR = "wikiart_csv"
SPLIT_SEED = 0
TEST_SHARE = 0.3
VAL_FRACTION = 0.2  # of the given train set (the alteration protocol's default for WikiArt)
ARTGAN_URL = "https://github.com/cs-chan/ArtGAN/tree/master/WikiArt%20Dataset"


@config_node("dataset", "wikiart")
class WikiArtConfig(FilesConfig):
    """WikiArt in ArtGAN's layout: <root>/<Style_Name>/*.jpg, with style_train.csv / style_val.csv (at
    the root or in wikiart_csv/ beside or below it) when present, else a documented seeded 70/30 split
    per style. The root defaults to $DSVDD_WIKIART_ROOT."""

    _target_: str = "dsvdd_repro.data.wikiart.WikiArt"
    name: str = "wikiart"
    root: str | None = "${oc.env:DSVDD_WIKIART_ROOT,null}"  # download=true only warns: no automatic download
    image_size: int = 224
    # the styles to read (ArtGAN folder names); styles absent on disk are skipped with a warning
    # unless require_all_styles
    styles: list[str] = field(default_factory=lambda: list(WIKIART_PAPER_STYLES))
    require_all_styles: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        styles = list(self.styles)
        if not styles or len(set(styles)) != len(styles) or not all(isinstance(s, str) and s for s in styles):
            raise ConfigError(
                "styles", styles,
                "a non-empty list of distinct style folder names, e.g. " + ",".join(WIKIART_PAPER_STYLES[:2]),
            )


def _find_csvs(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path] | None:
    for place in (folder, folder / CSV_DIR, folder.parent / CSV_DIR):
        train, val = place / TRAIN_CSV, place / VAL_CSV
        if train.is_file() and val.is_file():
            return train, val
        if train.is_file() or val.is_file():
            present, absent = (train, val) if train.is_file() else (val, train)
            raise root_error(
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
                    raise root_error(
                        path,
                        f"line {line_no}: {rel!r} is not <Style_Name>/<file> (ArtGAN's "
                        "'path/to/image.jpg,class_index' rows)",
                    )
                if rel.split("/", 1)[0] in styles:
                    rows[rel] = None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise root_error(path, f"cannot read ({type(exc).__name__}: {exc})") from exc
    return list(rows)


class WikiArt(ImageSource):
    """The given train / given val pools of the used styles; see the module docstring."""

    name = "wikiart"
    title = "WikiArt"
    unset_root = (
        "dataset.root is not set: pass dataset.root=<folder holding the WikiArt style folders> or "
        f"set DSVDD_WIKIART_ROOT (WikiArt cannot be downloaded automatically: see {ARTGAN_URL})"
    )
    default_val_fraction = VAL_FRACTION
    format_version = 2
    # the paper's six styles: 9,820 given-train and 4,205 given-val images (7,856 training, 3,928
    # validation and 8,410 test rows)
    PAPER_POOLS = (9820, 4205)

    def planned_counts(self) -> PoolCounts:
        """The paper's six styles' pools; other style lists scaled by their number (an estimate)."""
        share = len(self.styles) / len(WIKIART_PAPER_STYLES)
        train, test = (int(round(n * share)) for n in self.PAPER_POOLS)
        return PoolCounts((train,), (test,), self.val_from, self.default_val_fraction)

    def __init__(
        self, root: str | None, image_size: int, styles: list[str], require_all_styles: bool, cache_dir: str | None,
        download: bool,
    ):
        super().__init__(root, image_size, cache_dir, download)
        self.styles, self.require_all_styles = [str(s) for s in styles], bool(require_all_styles)

    def expected(self) -> str:
        return (
            "expected ArtGAN's WikiArt layout <root>/<Style_Name>/*.jpg with folders for "
            + ", ".join(self.styles)
            + f" (optionally {TRAIN_CSV}/{VAL_CSV}); WikiArt cannot be downloaded automatically: get "
            f"wikiart.zip and {CSV_DIR}/ from {ARTGAN_URL}"
        )

    def locate(self, root: pathlib.Path) -> pathlib.Path | None:
        """The folder holding the style folders: the root, root/wikiart, or another sub-folder."""

        def holds(folder: pathlib.Path) -> bool:
            return any((folder / s).is_dir() for s in self.styles)

        if holds(root):
            return root
        subs = sorted(sub_folders(root), key=lambda p: p.name != "wikiart")
        return next((sub for sub in subs if holds(sub)), None)

    def no_layout(self, root: pathlib.Path) -> str:
        found = [p.name for p in sub_folders(root)][:8]
        return f"holds none of the style folders (found: {', '.join(found) or 'no folders'})"

    def _used_styles(self, folder: pathlib.Path) -> tuple[list[str], list[str]]:
        used = [s for s in self.styles if (folder / s).is_dir() and image_files(folder / s)]
        missing = [s for s in self.styles if s not in used]
        if missing:
            if self.require_all_styles:
                raise root_error(
                    folder,
                    f"missing style folder(s) with images: {', '.join(missing)} "
                    "(dataset.require_all_styles=true); " + self.expected(),
                )
            log.warning(
                "WikiArt: %d of %d styles missing under %s, skipped: %s (using %s)",
                len(missing), len(self.styles), folder, ", ".join(missing), ", ".join(used),
            )
        if not used:
            raise root_error(folder, "none of the requested style folders holds images; " + self.expected())
        return used, missing

    def _csv_pools(self, folder: pathlib.Path, csvs, used: list[str]) -> tuple[dict[str, list[str]], int]:
        pools, missing_files = {}, 0
        for split, path in zip(("train", "test"), csvs, strict=True):
            listed = _read_csv(path, set(used))
            present = [rel for rel in listed if (folder / rel).is_file()]
            missing_files += len(listed) - len(present)
            pools[split] = sorted(present)
        if missing_files:
            log.warning(
                "WikiArt: %d image(s) listed in %s/%s are missing under %s and were skipped",
                missing_files, csvs[0].name, csvs[1].name, folder,
            )
        overlap = set(pools["train"]) & set(pools["test"])
        if overlap:
            raise root_error(
                folder,
                f"{len(overlap)} image(s) are in both {TRAIN_CSV} and {VAL_CSV}, e.g. {sorted(overlap)[0]}",
            )
        return pools, missing_files

    def pools(self, folder: pathlib.Path) -> Pools:
        used, missing = self._used_styles(folder)
        csvs = _find_csvs(folder)
        missing_files = 0
        if csvs is not None:
            layout = "artgan-csv"
            pools, missing_files = self._csv_pools(folder, csvs, used)
            split_rule = {"csv": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in csvs]}
        else:
            layout = "style-folders"
            pools = {"train": [], "test": []}
            for style in used:
                files = image_files(folder / style, prefix=f"{style}/")
                train, test = seeded_split(files, TEST_SHARE, SPLIT_SEED, style)
                pools["train"] += train
                pools["test"] += test
            pools = {split: sorted(rels) for split, rels in pools.items()}
            split_rule = {"seed": SPLIT_SEED, "test_share": TEST_SHARE}
        for split in ("train", "test"):
            if not pools[split]:
                raise root_error(
                    folder,
                    f"the {'given train' if split == 'train' else 'given val'} set of styles "
                    f"{', '.join(used)} is empty ({layout})",
                )
        index = {style: i for i, style in enumerate(used)}
        labels = {
            split: np.array([index[rel.split("/", 1)[0]] for rel in rels], dtype=np.int64)
            for split, rels in pools.items()
        }
        per_style = {
            s: {"train": int((labels["train"] == i).sum()), "test": int((labels["test"] == i).sum())}
            for s, i in index.items()
        }
        source = {
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
        }
        return Pools(layout, used, files=pools, labels=labels, key={"styles": used, "split": split_rule},
                     source=source, log=f"styles={','.join(used)}")
