"""The paper's experimental protocols (Section V-A): natural images -> train / val / test splits.

- `one_vs_all`: one class is normal. A seeded 80% of its train images form the training set, every
  other train image (the remaining 20% of the normal class and all other classes) the validation
  set, and the official test set the test set. Label 1 = any class but the normal one.
- `alteration`: all classes pooled as normal. A seeded share of one pool is moved to validation:
  the dataset says which (`NaturalImages.val_from`) and how much (`default_val_fraction`, unless
  `val_fraction` is given). CIFAR-10 and WikiArt: 20% of the given train set validates, the rest
  trains, the given test/val set tests (CIFAR-10: 40,000 / 20,000 / 20,000 rows; WikiArt: 7,856 /
  3,928 / 8,410). VOC2012: the whole given train set trains, 40% of the given val set validates and
  the other 60% tests (5,717 / 4,658 / 6,988). Every validation and test image gets one anomalous
  counterpart made by the split's anomaly generator, so validation and test are half normal, half
  anomalous.

Every share of a pool is `share_count` images (rounded half to even). A setup that would leave a
detector fewer than `MIN_TRAIN` training images, or a split with one label only where the protocol
needs two (a one-vs-all validation or test set, with `train_fraction` < 1 for validation: at 1 the
protocol has no validation split by design) or an empty validation set, is refused before any
work with one ConfigError naming the key, the class or pool, its image count and the count needed.

A split never copies the pools: it indexes the decoded natural images (torch tensors, possibly
memory-mapped, or numpy arrays) and stores only the altered counterparts, which are generated once
per run, deterministically per (seed, split, natural image index), so every method sees the same
anomalies for the same seed. Generating them once costs milliseconds per 224 px image for strokes,
too much to redo at every validation epoch; holding them costs 150 KB each, ~0.9 GB for VOC2012's
5,823 (val + test). So when the natural images carry an `mmap_dir` and the altered set exceeds
`_MMAP_MIN_BYTES`, it is written into an unlinked memory-mapped file there (file-backed pages the
kernel can write back and drop, freed when the run ends) instead of anonymous memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import tempfile
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.data.anomalies import AnomalyGenerator, generator_params, make_generator
from dsvdd_repro.data.images import NaturalImages, PoolCounts

# Seed-stream tags, so the split permutation, subsampling and labeled-anomaly choice draw
# independent random numbers.
_SPLIT_STREAM, _SUBSAMPLE_STREAM, _LABELED_STREAM = 1, 2, 4
_GENERATION_BATCH = 500
# Altered sets at least this large go to a memory-mapped file when the dataset gives an mmap_dir.
_MMAP_MIN_BYTES = 64 << 20
# The fewest images a detector is fitted on: a single image has no spread (PCA keeps no component,
# batch statistics are undefined), so a split that would train on one is refused.
MIN_TRAIN = 2

log = logging.getLogger(__name__)


def _gather(pool, index: np.ndarray) -> torch.Tensor:
    """pool[index] as a new uint8 tensor; `pool` is a torch tensor or a numpy array (e.g. a memory map),
    of which only the indexed rows are read."""
    index = np.asarray(index, dtype=np.int64)
    if isinstance(pool, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(pool[index]))
    return pool[torch.from_numpy(index).to(pool.device)]


@dataclass
class SplitData:
    """One split: rows index `pool` (natural images) and, for altered rows, `altered_images`.

    labels: 0 normal, 1 anomaly. semi_targets: 0 unlabeled, +1 labeled normal, -1 labeled anomaly.
    keys: the natural image index each row derives from (the anomaly generator's sample key).
    """

    name: str
    pool: torch.Tensor
    keys: np.ndarray
    labels: np.ndarray
    altered_slot: np.ndarray  # row -> index into altered_images, -1 for natural rows
    altered_images: torch.Tensor
    semi_targets: np.ndarray = None  # type: ignore[assignment]
    anomaly: dict | None = None
    info: dict = field(default_factory=dict)
    # row -> row of `pool` when the pool holds only this split's images (after `to`); None: `keys`
    pool_rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.semi_targets is None:
            self.semi_targets = np.zeros(len(self.keys), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def batch(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 images [len(rows), 3, H, W] for the given row positions (on the pool's device)."""
        rows = np.asarray(rows)
        images = _gather(self.pool, (self.keys if self.pool_rows is None else self.pool_rows)[rows])
        slots = self.altered_slot[rows]
        altered = slots >= 0
        if altered.any():
            images[torch.from_numpy(np.flatnonzero(altered)).to(images.device)] = _gather(self.altered_images,
                                                                                   slots[altered])
        return images

    def to(self, device: torch.device) -> SplitData:
        """This split with the uint8 images it uses (not the whole pool) copied to `device` once;
        batches are then gathered there (trainer.data_on_device)."""
        used = np.unique(self.keys if self.pool_rows is None else self.pool_rows)
        pool_rows = np.searchsorted(used, self.keys if self.pool_rows is None else self.pool_rows)
        return dataclasses.replace(self, pool=_gather(self.pool, used).to(device), pool_rows=pool_rows,
                                   altered_images=torch.as_tensor(self.altered_images).to(device))

    def iter_batches(self, batch_size: int, order: np.ndarray | None = None):
        order = np.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self.batch(rows)


@dataclass
class ProtocolSplits:
    train: SplitData
    val: SplitData
    test: SplitData

    def to(self, device: torch.device) -> ProtocolSplits:
        return ProtocolSplits(self.train.to(device), self.val.to(device), self.test.to(device))

    def sizes(self) -> dict:
        return {
            split.name: {"n": len(split), "n_anomalous": int(split.labels.sum())}
            for split in (self.train, self.val, self.test)
        }


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _natural_split(name: str, pool: torch.Tensor, keys: np.ndarray, labels: np.ndarray) -> SplitData:
    empty = torch.empty((0, *pool.shape[1:]), dtype=torch.uint8)
    return SplitData(
        name=name,
        pool=pool,
        keys=np.asarray(keys, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        altered_slot=np.full(len(keys), -1, dtype=np.int64),
        altered_images=empty,
    )


def _allocate(shape: tuple[int, ...], mmap_dir: str | None) -> torch.Tensor:
    """An uninitialised uint8 tensor: in RAM, or for a large one with `mmap_dir` backed by an unlinked
    temporary file there (no name on disk; its space is freed when the process ends)."""
    nbytes = math.prod(shape)
    if mmap_dir is None or nbytes < _MMAP_MIN_BYTES:
        return torch.empty(shape, dtype=torch.uint8)
    try:
        with tempfile.TemporaryFile(dir=mmap_dir, prefix=".altered-") as fh:
            fh.truncate(nbytes)
            mapped = np.memmap(fh, dtype=np.uint8, mode="r+", shape=shape)  # the map keeps its own fd
    except OSError as exc:
        log.warning("cannot map the altered images in %s (%s); keeping them in memory", mmap_dir, exc)
        return torch.empty(shape, dtype=torch.uint8)
    return torch.from_numpy(mapped)


def generate_anomalies(
    pool,
    keys: np.ndarray,
    generator: AnomalyGenerator,
    seed: int,
    split: str,
    progress: bool = True,
    mmap_dir: str | None = None,
) -> torch.Tensor:
    """The altered counterparts of pool[keys], generated in batches (deterministic per key)."""
    out = _allocate((len(keys), *pool.shape[1:]), mmap_dir)
    starts = range(0, len(keys), _GENERATION_BATCH)
    desc = f"{split} anomalies ({generator.name})"
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunk = keys[start : start + _GENERATION_BATCH]
        out[start : start + len(chunk)] = generator(_gather(pool, chunk), chunk, seed=seed, split=split)
    return out


def _paired_split(
    name: str, pool: torch.Tensor, keys: np.ndarray, spec: dict, seed: int, progress: bool,
    mmap_dir: str | None = None,
) -> SplitData:
    """Each natural image followed (as a block) by its one anomalous counterpart."""
    generator = make_generator(spec["name"], **generator_params(spec))
    keys = np.asarray(keys, dtype=np.int64)
    n = len(keys)
    return SplitData(
        name=name,
        pool=pool,
        keys=np.concatenate([keys, keys]),
        labels=np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]),
        altered_slot=np.concatenate([np.full(n, -1, dtype=np.int64), np.arange(n, dtype=np.int64)]),
        altered_images=generate_anomalies(pool, keys, generator, seed, name, progress, mmap_dir),
        anomaly=generator.describe(),
    )


def subsample_sizes(counts: list[int], limit: int | None, balanced: bool = False) -> list[int]:
    """How many rows of each label (`counts`, in label order) `_subsample` keeps (see there)."""
    if limit is None or sum(counts) <= limit:
        return list(counts)
    if balanced:
        sizes = [min(n, limit // len(counts)) for n in counts]
        for i, n in enumerate(counts):  # a short class leaves its share to the others
            sizes[i] += min(n - sizes[i], limit - sum(sizes))
        return sizes
    return [min(n, max(1, round(limit * n / sum(counts)))) for n in counts]


def _subsample(keys: np.ndarray, labels: np.ndarray, limit: int | None, rng: np.random.Generator,
               balanced: bool = False):
    """A seeded subsample of at most `limit` rows that keeps both classes.

    Stratified (the split's label ratio) by default, as a training set must keep its share of
    labeled anomalies. `balanced=True` (evaluation splits) takes up to limit // 2 rows per label and
    fills the rest from the other label: an AUC's noise is set by its rarer class, and a one-vs-all
    split is 90-98% anomalies, so a stratified 1,000-row subsample would keep only 22-100 normals.
    AUC does not depend on the class ratio, only its noise does.
    """
    if limit is None or len(keys) <= limit:
        return keys, labels
    classes = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    sizes = subsample_sizes([len(members) for members in classes], limit, balanced)
    chosen = [
        rng.choice(members, size=size, replace=False) for members, size in zip(classes, sizes, strict=True)
    ]
    rows = np.sort(np.concatenate(chosen))
    return keys[rows], labels[rows]


def share_count(fraction: float, n: int) -> int:
    """How many of `n` images a share `fraction` takes: round(fraction x n), halves to even (Python's
    round). The one rounding of every split: these protocols' and the sources' (source.seeded_split)."""
    return int(round(fraction * n))


def fewest_images(fraction: float, taken: int, left: int) -> int | None:
    """The fewest images whose `fraction` share takes at least `taken` and leaves at least `left`;
    every larger count does too (both parts grow with the count). None when none does (fraction 1
    leaves nothing)."""
    if (left > 0 and fraction >= 1.0) or (taken > 0 and fraction <= 0.0):
        return None
    # a rounded part reaches k from about (k - 1/2) / its share on: search from just below that
    n_taken = _least(lambda n: share_count(fraction, n) >= taken, (taken - 0.5) / fraction) if taken else 0
    n_left = _least(lambda n: n - share_count(fraction, n) >= left, (left - 0.5) / (1.0 - fraction)) if left else 0
    return max(n_taken, n_left)


def _least(holds, estimate: float) -> int:
    """The least n >= 0 for which `holds`, a condition that holds from about `estimate` on."""
    return next(n for n in itertools.count(max(0, math.floor(estimate) - 2)) if holds(n))


def _labeled_count(fraction: float, n_pool: int) -> int:
    """The labeled anomalies a semi-supervised one-vs-all run draws from a class of `n_pool` train images."""
    return min(n_pool, max(1, share_count(fraction, n_pool)))


def _plural(n: int, noun: str = "image") -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _check_one_vs_all(images: NaturalImages, normal_class: int, train_fraction: float,
                      labeled_anomaly_class: int | None, labeled_anomaly_fraction: float) -> None:
    """Refuse a normal class whose splits leave too little: fewer than MIN_TRAIN images to train, no
    normal image to validate (train_fraction < 1), no normal or no anomalous image to test, or no
    anomaly left to validate once the labeled anomalies are drawn (at train_fraction 1, an empty
    validation set)."""
    name, key = images.class_names[normal_class], "setup.normal_class"
    train_counts = np.bincount(np.asarray(images.train_labels), minlength=len(images.class_names))
    test_counts = np.bincount(np.asarray(images.test_labels), minlength=len(images.class_names))
    n_pool, validates = int(train_counts[normal_class]), train_fraction < 1.0
    n_train = share_count(train_fraction, n_pool)
    if n_train < MIN_TRAIN or (validates and n_pool - n_train < 1):
        need = fewest_images(train_fraction, MIN_TRAIN, int(validates))
        uses = f"{MIN_TRAIN} to train" + (", 1 to validate" if validates else "")
        raise ConfigError(key, normal_class, f"class {name} has {_plural(n_pool)} in the train pool; one_vs_all "
                          f"with train_fraction={train_fraction} needs at least {need} ({uses})")
    if test_counts[normal_class] < 1:
        raise ConfigError(key, normal_class, f"class {name} has 0 images in the test pool; one_vs_all needs "
                          "at least 1 normal image to test")
    if test_counts.sum() - test_counts[normal_class] < 1:
        raise ConfigError(key, normal_class, f"the classes other than {name} have 0 images in the test pool; "
                          "one_vs_all needs at least 1 anomaly to test")
    n_others = int(train_counts.sum() - n_pool)
    n_labeled = 0 if labeled_anomaly_class is None else _labeled_count(
        labeled_anomaly_fraction, int(train_counts[labeled_anomaly_class]))
    if n_others - n_labeled < 1:
        labeled = f", less {_plural(n_labeled, 'labeled anomaly')}," if n_labeled else ""
        raise ConfigError(key if labeled_anomaly_class is None else "setup.labeled_anomaly_class",
                          normal_class if labeled_anomaly_class is None else labeled_anomaly_class,
                          f"the classes other than {name} have {_plural(n_others)} in the train pool{labeled} "
                          "leaving no anomaly to validate; one_vs_all needs at least 1")


def _check_alteration(images: NaturalImages, fraction: float, val_fraction: float | None) -> None:
    """Refuse a pool too small to give validation 1 image and leave the rest its split's minimum
    (MIN_TRAIN to train, or 1 to test), or a train pool below MIN_TRAIN when validation comes from
    the test pool."""
    from_train = images.val_from == "train"
    n_pool = len(images.train_labels if from_train else images.test_labels)
    rest, rest_need = ("train", MIN_TRAIN) if from_train else ("test", 1)
    n_val = share_count(fraction, n_pool)
    if n_val < 1 or n_pool - n_val < rest_need:
        share = f"{fraction}" if val_fraction is not None else f"null: {images.name}'s {fraction}"
        raise ConfigError("setup.val_fraction", val_fraction, f"{share} of the {images.val_from} pool "
                          f"({_plural(n_pool)}) validates; alteration needs at least "
                          f"{fewest_images(fraction, 1, rest_need)} there (1 to validate, {rest_need} to {rest})")
    n_train = len(images.train_labels)
    if not from_train and n_train < MIN_TRAIN:
        raise ConfigError("setup", "alteration", f"the train pool of {images.name} has {_plural(n_train)}; "
                          f"alteration trains on all of it and needs at least {MIN_TRAIN}")


def _check_class(key: str, value: int, images: NaturalImages) -> None:
    n_classes = len(images.class_names)
    if not 0 <= value < n_classes:
        raise ConfigError(key, value, f"not a class of {images.name}; allowed: 0..{n_classes - 1}")


def one_vs_all(
    images: NaturalImages,
    normal_class: int,
    seed: int,
    train_fraction: float = 0.8,
    limits: dict | None = None,
    labeled_anomaly_class: int | None = None,
    labeled_anomaly_fraction: float = 0.1,
) -> ProtocolSplits:
    """With `labeled_anomaly_class`, the semi-supervised variant (Section V-A): a seeded
    `labeled_anomaly_fraction` of that class's train images join training as labeled anomalies
    (semi target -1) and leave validation; the other anomaly classes stay unseen in training."""
    if len(images.class_names) < 2:
        raise ConfigError(
            "setup", "one_vs_all", f"{images.name} has a single class ({', '.join(images.class_names)}): "
            "there is no other class to be anomalous; use setup=alteration"
        )
    _check_class("setup.normal_class", normal_class, images)
    if labeled_anomaly_class is not None:
        _check_class("setup.labeled_anomaly_class", labeled_anomaly_class, images)
    _check_one_vs_all(images, normal_class, train_fraction, labeled_anomaly_class, labeled_anomaly_fraction)
    limits = limits or {}
    train_labels = images.train_labels.numpy()
    normal = np.flatnonzero(train_labels == normal_class)
    normal = _rng(seed, _SPLIT_STREAM).permutation(normal)
    n_train = share_count(train_fraction, len(normal))
    train_keys = np.sort(normal[:n_train])
    labeled_keys = np.empty(0, dtype=np.int64)
    if labeled_anomaly_class is not None:
        pool = _rng(seed, _LABELED_STREAM).permutation(np.flatnonzero(train_labels == labeled_anomaly_class))
        labeled_keys = np.sort(pool[: _labeled_count(labeled_anomaly_fraction, len(pool))])
    val_keys = np.setdiff1d(np.arange(len(train_labels)), np.concatenate([train_keys, labeled_keys]))
    val_labels = (train_labels[val_keys] != normal_class).astype(np.int64)
    test_keys = np.arange(len(images.test_labels))
    test_labels = (images.test_labels.numpy() != normal_class).astype(np.int64)

    rng = _rng(seed, _SUBSAMPLE_STREAM)
    all_train = np.concatenate([train_keys, labeled_keys])
    all_train_labels = np.concatenate([np.zeros(len(train_keys)), np.ones(len(labeled_keys))])
    all_train_labels = all_train_labels.astype(np.int64)
    all_train, all_train_labels = _subsample(all_train, all_train_labels, limits.get("max_train"), rng)
    val_keys, val_labels = _subsample(val_keys, val_labels, limits.get("max_val"), rng, balanced=True)
    test_keys, test_labels = _subsample(test_keys, test_labels, limits.get("max_test"), rng, balanced=True)
    train = _natural_split("train", images.train_images, all_train, all_train_labels)
    train.semi_targets = -train.labels  # labeled anomalies -1, the normal class unlabeled (0)
    return ProtocolSplits(
        train=train,
        val=_natural_split("val", images.train_images, val_keys, val_labels),
        test=_natural_split("test", images.test_images, test_keys, test_labels),
    )


def labeled_anomaly_count(n_natural: int, fraction: float) -> int:
    """Labeled anomalies that make up `fraction` of a training set with `n_natural` natural images,
    rounded down as the paper's counts imply (VOC2012 5,717 + 635 = 6,352; WikiArt 7,856 + 872 = 8,728)."""
    return max(1, int(n_natural * fraction / (1.0 - fraction) + 1e-9))


def _semi_train_split(
    pool: torch.Tensor, keys: np.ndarray, spec: dict, seed: int, fraction: float, progress: bool,
    mmap_dir: str | None = None,
) -> SplitData:
    """All natural training images (unlabeled) plus altered counterparts of a seeded subset of them,
    labeled as anomalies, making up `fraction` of the whole (VOC2012: 5,717 + 635 = 6,352)."""
    n_labeled = labeled_anomaly_count(len(keys), fraction)
    chosen = np.sort(_rng(seed, _LABELED_STREAM).choice(keys, size=min(n_labeled, len(keys)), replace=False))
    paired = _paired_split("train", pool, chosen, spec, seed, progress, mmap_dir)
    n, m = len(keys), len(chosen)
    return SplitData(
        name="train",
        pool=pool,
        keys=np.concatenate([keys, chosen]),
        labels=np.concatenate([np.zeros(n, dtype=np.int64), np.ones(m, dtype=np.int64)]),
        altered_slot=np.concatenate([np.full(n, -1, dtype=np.int64), np.arange(m, dtype=np.int64)]),
        altered_images=paired.altered_images,
        semi_targets=np.concatenate([np.zeros(n, dtype=np.int64), -np.ones(m, dtype=np.int64)]),
        anomaly=paired.anomaly,
    )


def alteration(
    images: NaturalImages,
    anomaly_specs: dict[str, dict],
    seed: int,
    val_fraction: float | None = None,
    limits: dict | None = None,
    progress: bool = True,
    labeled_anomaly_fraction: float | None = None,
) -> ProtocolSplits:
    """`anomaly_specs[split]` = {"name", "n", "thickness"} for "val" and "test" (and "train" when
    semi-supervised: with `labeled_anomaly_fraction`, that share of the training set is labeled
    anomalies of the train spec, the rest unlabeled natural images). `val_fraction` None = the
    dataset's `default_val_fraction` of its `val_from` pool."""
    limits = limits or {}
    fraction = images.default_val_fraction if val_fraction is None else val_fraction
    _check_alteration(images, fraction, val_fraction)
    from_train = images.val_from == "train"
    n_pool = len(images.train_labels if from_train else images.test_labels)
    order = _rng(seed, _SPLIT_STREAM).permutation(n_pool)
    n_val = share_count(fraction, n_pool)
    val_keys, rest = np.sort(order[:n_val]), np.sort(order[n_val:])
    if from_train:
        train_keys, test_keys, val_pool = rest, np.arange(len(images.test_labels)), images.train_images
    else:
        train_keys, test_keys, val_pool = np.arange(len(images.train_labels)), rest, images.test_images
    log.info("alteration: validation = %d of %d %s-pool images (%.0f%%)",
             n_val, n_pool, images.val_from, 100 * fraction)

    rng = _rng(seed, _SUBSAMPLE_STREAM)
    # Limits count rows; val and test rows come in natural/altered pairs, so halve them.
    half = {key: None if value is None else max(1, value // 2) for key, value in limits.items()}
    train_keys, _ = _subsample(
        train_keys, np.zeros(len(train_keys), dtype=np.int64), limits.get("max_train"), rng
    )
    val_keys, _ = _subsample(val_keys, np.zeros(len(val_keys), dtype=np.int64), half.get("max_val"), rng)
    test_keys, _ = _subsample(test_keys, np.zeros(len(test_keys), dtype=np.int64), half.get("max_test"), rng)
    if labeled_anomaly_fraction:
        train = _semi_train_split(
            images.train_images, train_keys, anomaly_specs["train"], seed, labeled_anomaly_fraction, progress,
            images.mmap_dir,
        )
    else:
        train = _natural_split("train", images.train_images, train_keys, np.zeros(len(train_keys)))
    return ProtocolSplits(
        train=train,
        val=_paired_split("val", val_pool, val_keys, anomaly_specs["val"], seed, progress, images.mmap_dir),
        test=_paired_split("test", images.test_images, test_keys, anomaly_specs["test"], seed, progress,
                           images.mmap_dir),
    )


# -- the same protocols counted without images (the cost plan: dsvdd_repro/sweeps/plan.py) ------------------


def one_vs_all_sizes(counts: PoolCounts, normal_class: int, train_fraction: float = 0.8, limits: dict | None = None,
                     labeled_anomaly_class: int | None = None, labeled_anomaly_fraction: float = 0.1) -> dict:
    """The rows of `one_vs_all`'s train / val / test splits for pools of `counts` (as it draws them)."""
    limits = limits or {}
    train_pc, test_pc = counts.train_per_class, counts.test_per_class
    n_normal = train_pc[normal_class]
    n_train = int(round(train_fraction * n_normal))
    n_labeled = 0
    if labeled_anomaly_class is not None:
        n_labeled = max(1, int(round(labeled_anomaly_fraction * train_pc[labeled_anomaly_class])))
    val = [n_normal - n_train, sum(train_pc) - n_normal - n_labeled]
    test = [test_pc[normal_class], sum(test_pc) - test_pc[normal_class]]
    train = subsample_sizes([n for n in (n_train, n_labeled) if n], limits.get("max_train"))
    return {"train": sum(train), "labeled": train[1] if n_labeled else 0, "val_labels": sum(1 for n in val if n),
            "val": sum(subsample_sizes([n for n in val if n], limits.get("max_val"), balanced=True)),
            "test": sum(subsample_sizes([n for n in test if n], limits.get("max_test"), balanced=True)),
            "altered": 0}


def alteration_sizes(counts: PoolCounts, val_fraction: float | None = None, limits: dict | None = None,
                     labeled_anomaly_fraction: float | None = None) -> dict:
    """The rows of `alteration`'s splits for pools of `counts`, and how many altered images it generates."""
    limits = limits or {}
    fraction = counts.default_val_fraction if val_fraction is None else val_fraction
    n_train_pool, n_test_pool = sum(counts.train_per_class), sum(counts.test_per_class)
    n_pool = n_train_pool if counts.val_from == "train" else n_test_pool
    n_val = int(round(fraction * n_pool))
    if counts.val_from == "train":
        n_train, n_test = n_train_pool - n_val, n_test_pool
    else:
        n_train, n_test = n_train_pool, n_test_pool - n_val
    half = {key: None if value is None else max(1, value // 2) for key, value in limits.items()}
    n_train = subsample_sizes([n_train], limits.get("max_train"))[0]
    n_val = subsample_sizes([n_val], half.get("max_val"))[0]
    n_test = subsample_sizes([n_test], half.get("max_test"))[0]
    labeled = min(labeled_anomaly_count(n_train, labeled_anomaly_fraction), n_train) if labeled_anomaly_fraction else 0
    return {"train": n_train + labeled, "labeled": labeled, "val": 2 * n_val, "val_labels": 2, "test": 2 * n_test,
            "altered": labeled + n_val + n_test}
