"""Alteration anomalies (paper Section V-A): turn natural images into anomalous counterparts.

The paper's "novel setup" pools the natural images of all classes as the normal set and creates
"an anomalous counterpart for each natural sample" with one of two methods:

``block_perm`` (:class:`BlockPermutation`, parameter N)
    "splitting the image into N x N blocks and permuting these blocks". Each image is cut into
    ``n x n`` equal blocks (the image side must be divisible by ``n``) and the ``n * n`` blocks are
    reordered with a per-sample random permutation that is never the identity (it is redrawn until
    it is not), so every anomaly really differs from its natural image unless blocks are identical.

``strokes`` (:class:`Strokes`, parameter M)
    "drawing with certain thickness M, a number of random strokes (one random color per image) of
    different lengths on various parts of the natural image". Each image gets one uniformly random
    RGB colour and a random number of straight strokes; a stroke starts at a uniformly random point
    of the image, has a uniformly random direction and a random length, and may leave the image
    (it is clipped naturally). A pixel is painted when the distance from its centre to a stroke's
    segment is at most ``M / 2``; the pixel containing each stroke's start point is always painted,
    so every image is changed even at ``M = 1``. All other pixels are left exactly unchanged.
    The paper does not give the number or the length of the strokes; our documented choices are
    the defaults ``min_strokes=1``, ``max_strokes=5`` strokes per image (uniform integer) and a
    length uniform in ``[0.1, 0.6] x`` the image side.

Larger N and M mean a larger distortion of the natural image. Anomalies are drawn on the images at
the resolution they have after resizing to the dataset's image size (e.g. 32 for CIFAR10, 224 for
VOC2012 and WikiArt), so M is a thickness in pixels at that resolution.

Scale (checked on a grid of 224 px WikiArt images at 32, 64 and 224 px): stroke start points and
lengths are fractions of the image side, so one (seed, split, key) draws the same strokes at every
resolution; only M is in pixels. Relative to the side, Strokes 1 at 32 px (CIFAR-10, Table III) is
3.1%, Strokes 5 and 9 at 224 px (Tables I-II, IV-VI) are 2.2% and 4.0%: the paper's M values give
comparably visible strokes when M counts pixels of the image as used, which is the reading taken
here. A reduced-resolution run (e.g. ``dataset.image_size=64`` on a CPU) keeps M in pixels, so its
strokes are 224/64 = 3.5x thicker relative to the image (an easier test); to mimic the 224 px look,
use M x size / 224 (Strokes 5 -> 1, Strokes 9 -> 3 at 64 px). Block permutation needs N to divide
the side: N = 2 and 8 give 112 and 28 px blocks at 224 px. Caveat of the offline WikiArt subset: its
images are letterboxed with black borders, so permuted blocks move black bars into the picture, an
easier cue than on the original WikiArt images.

Determinism: every random choice for a sample is drawn from :func:`sample_rng` ``(seed, split,
key)``, an independent numpy stream seeded with ``SeedSequence([seed, crc32(split), key])``, where
``key`` is the sample's stable id. A sample therefore gets exactly the same alteration whatever the
batch it is in, its position in that batch, the batch order or the process, and every method is
evaluated on the same test set. The rasterisation uses only elementwise tensor operations, so its
result for a sample does not depend on its neighbours in the batch either.
"""

from __future__ import annotations

import abc
import inspect
import math
import operator
import zlib
from collections.abc import Sequence

import numpy as np
import torch

from dsvdd_repro.core.anomaly import ANOMALIES

__all__ = [
    "ANOMALY_TYPES",
    "AnomalyGenerator",
    "BlockPermutation",
    "Strokes",
    "generator_params",
    "make_generator",
    "sample_rng",
]

# the anomaly node lists the kinds (one home: core/anomaly.py); each has its generator below
ANOMALY_TYPES: tuple[str, ...] = ANOMALIES

# Bound on the number of pixels rasterised at once (per stroke), to keep memory flat for big batches.
_STROKE_CHUNK_PIXELS = 1 << 22


def _as_int(value, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {type(value).__name__} {value!r}") from None


def sample_rng(seed: int, split: str, key: int) -> np.random.Generator:
    """Independent random stream for one sample, identified by ``(seed, split, key)``.

    The split name enters as its CRC-32 (stable across processes, unlike ``hash()``).
    """
    seed = _as_int(seed, "seed")
    key = _as_int(key, "key")
    if not isinstance(split, str):
        raise ValueError(f"split must be a str, got {type(split).__name__} {split!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if key < 0:
        raise ValueError(f"key must be >= 0, got {key}")
    split_id = zlib.crc32(split.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([seed, split_id, key]))


def _keys_to_list(keys, batch: int) -> list[int]:
    if isinstance(keys, torch.Tensor):
        if keys.dtype.is_floating_point or keys.dtype.is_complex or keys.dtype == torch.bool:
            raise ValueError(f"keys must be integers, got a tensor of dtype {keys.dtype}")
        arr = keys.detach().cpu().numpy()
    else:
        arr = np.asarray(keys)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"keys must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"keys must be 1-D, got shape {tuple(arr.shape)}")
    if arr.shape[0] != batch:
        raise ValueError(f"len(keys) = {arr.shape[0]} does not match the batch size B = {batch}")
    if batch and arr.min() < 0:
        raise ValueError(f"keys must be >= 0, got minimum {int(arr.min())}")
    return [int(k) for k in arr]


class AnomalyGenerator(abc.ABC):
    """Batched, deterministic alteration of uint8 images [B, 3, H, W] (H == W)."""

    name: str
    # the keys of an anomaly spec ({"name", "n", "thickness"}) the generator is built from
    SPEC_KEYS: tuple[str, ...]

    def __call__(self, images: torch.Tensor, keys, seed: int, split: str) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dtype != torch.uint8:
            raise ValueError(f"images must have dtype torch.uint8, got {images.dtype}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape [B, 3, H, W], got {tuple(images.shape)}")
        h, w = int(images.shape[2]), int(images.shape[3])
        if h != w or h < 1:
            raise ValueError(f"images must be square and non-empty (H == W), got H={h}, W={w}")
        key_list = _keys_to_list(keys, int(images.shape[0]))
        seed = _as_int(seed, "seed")
        if not isinstance(split, str):
            raise ValueError(f"split must be a str, got {type(split).__name__} {split!r}")
        self._check_size(h)
        if not key_list:
            return images.clone()
        rngs = [sample_rng(seed, split, k) for k in key_list]
        return self._alter(images, rngs)

    def _check_size(self, side: int) -> None:
        """Raise ValueError when this generator cannot handle images of this side (default: any side)."""
        return None

    @abc.abstractmethod
    def _alter(self, images: torch.Tensor, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
        """Return a new altered tensor; ``rngs[i]`` is sample i's stream (inputs already validated)."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """Name and all parameters, for provenance records."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({params})"


class BlockPermutation(AnomalyGenerator):
    """Cut each image into n x n equal blocks and shuffle them (never the identity order)."""

    name = "block_perm"
    SPEC_KEYS = ("n",)

    def __init__(self, n: int):
        n = _as_int(n, "n")
        if n < 2:
            raise ValueError(f"n (blocks per side) must be >= 2, got n={n}")
        self.n = n

    def describe(self) -> dict:
        return {"name": self.name, "n": self.n}

    def _check_size(self, side: int) -> None:
        if side % self.n != 0:
            raise ValueError(
                f"block_perm: image size {side}x{side} is not divisible by n={self.n} blocks per side"
            )

    def _draw_permutation(self, rng: np.random.Generator) -> np.ndarray:
        identity = np.arange(self.n * self.n)
        while True:
            perm = rng.permutation(self.n * self.n)
            if not np.array_equal(perm, identity):
                return perm

    def _alter(self, images: torch.Tensor, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
        b, c, side, _ = images.shape
        n, s = self.n, side // self.n
        perms = torch.from_numpy(np.stack([self._draw_permutation(r) for r in rngs])).to(images.device)
        # [B, C, n, s, n, s] -> [B, n*n, C, s, s]: one row per block, row-major block order.
        blocks = images.reshape(b, c, n, s, n, s).permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c, s, s)
        # Output block i is input block perm[i].
        shuffled = blocks[torch.arange(b, device=images.device)[:, None], perms]
        return shuffled.reshape(b, n, n, c, s, s).permute(0, 3, 1, 4, 2, 5).reshape(b, c, side, side)


class Strokes(AnomalyGenerator):
    """Draw random straight strokes of thickness M pixels, one random colour per image."""

    name = "strokes"
    SPEC_KEYS = ("thickness",)

    def __init__(
        self,
        thickness: int,
        min_strokes: int = 1,
        max_strokes: int = 5,
        min_length: float = 0.1,
        max_length: float = 0.6,
    ):
        thickness = _as_int(thickness, "thickness")
        if thickness < 1:
            raise ValueError(f"thickness must be >= 1 pixel, got thickness={thickness}")
        min_strokes = _as_int(min_strokes, "min_strokes")
        max_strokes = _as_int(max_strokes, "max_strokes")
        if min_strokes < 1:
            raise ValueError(f"min_strokes must be >= 1, got min_strokes={min_strokes}")
        if max_strokes < min_strokes:
            raise ValueError(
                "max_strokes must be >= min_strokes, got "
                f"min_strokes={min_strokes}, max_strokes={max_strokes}"
            )
        for what, value in (("min_length", min_length), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{what} must be a number, got {type(value).__name__} {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{what} must be finite, got {what}={value}")
        min_length, max_length = float(min_length), float(max_length)
        if min_length <= 0:
            raise ValueError(
                f"min_length must be > 0 (fraction of the image side), got min_length={min_length}"
            )
        if max_length < min_length:
            raise ValueError(
                f"max_length must be >= min_length, got min_length={min_length}, max_length={max_length}"
            )
        self.thickness = thickness
        self.min_strokes = min_strokes
        self.max_strokes = max_strokes
        self.min_length = min_length
        self.max_length = max_length

    def describe(self) -> dict:
        return {
            "name": self.name,
            "thickness": self.thickness,
            "min_strokes": self.min_strokes,
            "max_strokes": self.max_strokes,
            "min_length": self.min_length,
            "max_length": self.max_length,
        }

    def _draw_params(self, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
        """One sample's colour [3] and segments [k, 4] = (x0, y0, x1, y1) in pixel units."""
        colour = rng.integers(0, 256, size=3)
        k = int(rng.integers(self.min_strokes, self.max_strokes + 1))
        start = rng.random((k, 2)) * side  # uniform in [0, side)^2; pixel (i, j) spans [j, j+1) x [i, i+1)
        angle = rng.uniform(0.0, 2.0 * math.pi, size=k)
        length = rng.uniform(self.min_length, self.max_length, size=k) * side
        end = start + length[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return colour, np.concatenate([start, end], axis=1)

    def _alter(self, images: torch.Tensor, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
        b, _, side, _ = images.shape
        device = images.device
        colours = np.empty((b, 3), dtype=np.uint8)
        segments = np.empty((b, self.max_strokes, 4), dtype=np.float64)
        for i, rng in enumerate(rngs):
            colour, seg = self._draw_params(rng, side)
            colours[i] = colour
            segments[i, : len(seg)] = seg
            # Pad with copies of the first stroke: repainting it is a no-op, so no validity mask is needed.
            segments[i, len(seg) :] = seg[0]

        seg_t = torch.from_numpy(segments).to(device=device, dtype=torch.float32)
        centre = torch.arange(side, device=device, dtype=torch.float32) + 0.5
        gx = centre.view(1, 1, side)
        gy = centre.view(1, side, 1)
        radius2 = (self.thickness / 2.0) ** 2
        mask = torch.zeros((b, side, side), dtype=torch.bool, device=device)

        chunk = max(1, _STROKE_CHUNK_PIXELS // (side * side))
        for lo in range(0, b, chunk):
            hi = min(b, lo + chunk)
            for s in range(self.max_strokes):
                x0, y0, x1, y1 = (seg_t[lo:hi, s, j].view(-1, 1, 1) for j in range(4))
                dx, dy = x1 - x0, y1 - y0
                inv_len2 = 1.0 / (dx * dx + dy * dy)  # length > 0: min_length > 0
                rx, ry = gx - x0, gy - y0  # [b,1,W], [b,H,1]
                # Projection of each pixel centre onto the segment, clamped to its end points.
                t = ((rx * dx) + (ry * dy)) * inv_len2
                t = t.clamp_(0.0, 1.0)
                ex = rx - t * dx
                ey = ry - t * dy
                mask[lo:hi] |= (ex * ex + ey * ey) <= radius2

        # Always paint each stroke's start pixel, so thin strokes (M = 1) still leave a mark.
        start_px = (
            torch.from_numpy(np.floor(segments[:, :, :2]).astype(np.int64)).clamp_(0, side - 1).to(device)
        )
        rows = torch.arange(b, device=device)[:, None].expand(b, self.max_strokes)
        mask[rows, start_px[:, :, 1], start_px[:, :, 0]] = True

        colour_t = torch.from_numpy(colours).to(device).view(b, 3, 1, 1)
        return torch.where(mask[:, None], colour_t, images)


_REGISTRY: dict[str, type[AnomalyGenerator]] = {
    "block_perm": BlockPermutation,
    "strokes": Strokes,
}
assert tuple(_REGISTRY) == ANOMALY_TYPES


def generator_params(spec) -> dict:
    """The parameters of the generator an anomaly spec names (e.g. {"n": 8} for block_perm): what
    the protocols build it with and the cost plan's calibration times."""
    if spec["name"] not in _REGISTRY:
        raise ValueError(f"unknown anomaly type {spec['name']!r}; allowed: {', '.join(ANOMALY_TYPES)}")
    return {key: spec[key] for key in _REGISTRY[spec["name"]].SPEC_KEYS}


def make_generator(name: str, **params) -> AnomalyGenerator:
    """Build a generator by name, e.g. ``make_generator("strokes", thickness=5)``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown anomaly type {name!r}; allowed: {', '.join(ANOMALY_TYPES)}")
    cls = _REGISTRY[name]
    sig = inspect.signature(cls.__init__)
    accepted = [p for p in sig.parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"anomaly type {name!r} does not accept parameter(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    missing = [
        p
        for p, spec in sig.parameters.items()
        if p != "self" and spec.default is inspect.Parameter.empty and p not in params
    ]
    if missing:
        raise ValueError(f"anomaly type {name!r} requires parameter(s) {', '.join(missing)}")
    return cls(**params)
