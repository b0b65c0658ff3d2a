"""Image files -> uint8 arrays [n, 3, size, size], and resizing of decoded arrays.

- `iter_decoded`: decode files (JPEG, PNG, ...) to RGB in chunks, in a fork-based worker pool for
  large jobs, in order, behind one progress bar. By default each image is resized to a square
  `size x size` with PIL's antialiased bilinear filter (the aspect ratio is not kept: "resized to
  224 x 224", Section V-A); JPEGs are decoded with PIL's `draft` at the largest power-of-two
  reduction that stays >= `size` on both sides, which is faster and, after the antialiased resize,
  visually the same. An image that already has the target size is kept pixel for pixel. With
  `exact_name`, images must already be `size x size` (a dataset with a native size, CIFAR-10) and
  one that is not is an error.
- `decode_one`: one file as RGB uint8, the one decoder of the dataset loaders and the scorer. Every
  pixel mode is brought to 8 bits by scaling, never by clipping (PIL's own `convert("RGB")` clips
  16-bit grayscale at 255, turning most of an image white):
  * 16-bit integer grayscale (PIL modes I;16, I;16B, I;16L, I;16N, and I, as which Pillow opens
    some 16-bit PNGs and TIFFs): the high byte, x >> 8 = floor(x / 256), so 0..65535 maps onto
    0..255 with 256 values each. It is the rule Pillow itself applies to 16-bit RGB, RGBA and
    gray+alpha PNGs (which it opens as 8-bit modes), so every 16-bit file follows one rule, and an
    8-bit image stored as 16 bits the standard way (v * 257) decodes to exactly v. A mode-I image
    with values outside 0..65535 (a 32-bit image) is refused, not clipped.
  * 32-bit float (mode F): values are taken as [0, 1] and scaled to round(255 x); an image with a
    value outside [0, 1] (or not finite) is refused, as its range is unknown.
  * every other mode (1, L, LA, P, RGB, RGBA, CMYK, YCbCr, ...): PIL's standard conversion to RGB.
  A refused image raises `UnsupportedImage` (an OSError, as PIL's own unreadable-file errors).
- `resize_uint8`: antialiased bilinear resize of decoded arrays with torch (CIFAR-10 at another
  size than its native 32 px). Every output image depends on its input image only, so resizing in
  chunks gives the same bytes as resizing all at once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dsvdd_repro.core.faults import crash_point
from dsvdd_repro.data.errors import root_error

# Decoding a full-size JPEG costs milliseconds: a pool pays off from a few hundred images on.
POOL_MIN_IMAGES = 256
MAX_WORKERS = 8
# At most this many images per chunk of work; fewer when that gives each worker CHUNKS_PER_WORKER
# chunks (to balance large images), at least MIN_CHUNK (to keep the per-chunk cost small for tiny ones).
CHUNK = 1000
MIN_CHUNK = 16
CHUNKS_PER_WORKER = 8


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_chunks(
    func: Callable, chunks: Sequence, sizes: Sequence[int], desc: str, workers: int = 1, progress: bool = True
) -> Iterator:
    """`func(chunk)` for every chunk, in order; a pool of `workers` processes when > 1.

    The pool uses `fork` where available: workers need no re-import and only run PIL/numpy code.
    An exception raised in a worker is re-raised here.
    """
    workers = max(1, min(int(workers), len(chunks)))
    with tqdm(total=int(sum(sizes)), desc=desc, unit="img", leave=False, disable=not progress) as bar:
        if workers > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ctx.Pool(workers) as pool:
                for result, size in zip(pool.imap(func, chunks), sizes, strict=True):
                    bar.update(size)
                    yield result
        else:
            for chunk, size in zip(chunks, sizes, strict=True):
                result = func(chunk)
                bar.update(size)
                yield result


class _WrongSize(Exception):
    pass


class UnsupportedImage(OSError):
    """An image whose pixel values this decoder will not guess a scale for (one line)."""


# Pillow's modes for 16-bit integer grayscale; "I" (32-bit) is how it opens some 16-bit PNGs and TIFFs.
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_UINT16_MAX = 65535


def _gray_to_rgb(gray: np.ndarray):
    from PIL import Image

    return Image.fromarray(gray.astype(np.uint8)).convert("RGB")  # 2-D uint8: mode L


def to_rgb(im):
    """`im` (a PIL image of any mode) as an 8-bit RGB image, scaled as the module docstring says."""
    if im.mode in WIDE_GRAY_MODES:
        values = np.asarray(im).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > _UINT16_MAX):
            raise UnsupportedImage(f"mode {im.mode} values {values.min()}..{values.max()} are outside the "
                                   f"16-bit range 0..{_UINT16_MAX} that is scaled to 8 bits")
        return _gray_to_rgb(values >> 8)
    if im.mode == "F":
        values = np.asarray(im, dtype=np.float64)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise UnsupportedImage(f"mode F (float) values {values.min()}..{values.max()} are outside [0, 1], "
                                   "the only float range that is scaled to 8 bits")
        return _gray_to_rgb(np.rint(values * 255.0))
    return im.convert("RGB")


def decode_one(path: str, size: int, exact: bool = False) -> np.ndarray:
    """One image file as RGB uint8 [3, size, size] (see the module docstring)."""
    from PIL import Image

    with Image.open(path) as im:
        if not exact and im.format == "JPEG" and im.size != (size, size):
            im.draft("RGB", (size, size))
        rgb = to_rgb(im)
    if rgb.size != (size, size):
        if exact:
            raise _WrongSize(f"{rgb.size[0]}x{rgb.size[1]}")
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def _decode_chunk(args: tuple[str, list[str], int, str | None]) -> np.ndarray:
    folder, rel_paths, size, exact_name = args
    out = np.empty((len(rel_paths), 3, size, size), dtype=np.uint8)
    for i, rel in enumerate(rel_paths):
        try:
            out[i] = decode_one(os.path.join(folder, rel), size, exact=exact_name is not None)
        except _WrongSize as exc:
            raise root_error(folder, f"{rel} is {exc}, {exact_name} images must be {size}x{size}") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            raise root_error(folder, f"cannot decode {rel} ({type(exc).__name__}: {exc})") from exc
    return out


def iter_decoded(
    folder, rel_paths: Sequence[str], size: int, desc: str = "decoding", progress: bool = True,
    exact_name: str | None = None,
) -> Iterator[np.ndarray]:
    """`folder/rel_paths` decoded (and resized), in order, as uint8 chunks [n, 3, size, size]."""
    rel_paths = list(rel_paths)
    workers = min(MAX_WORKERS, available_cpus()) if len(rel_paths) >= POOL_MIN_IMAGES else 1
    rows = max(1, min(CHUNK, max(MIN_CHUNK, -(-len(rel_paths) // (workers * CHUNKS_PER_WORKER)))))
    starts = range(0, len(rel_paths), rows)
    chunks = [(str(folder), rel_paths[i : i + rows], size, exact_name) for i in starts]
    sizes = [len(c[1]) for c in chunks]
    for decoded in map_chunks(_decode_chunk, chunks, sizes, desc, workers, progress):
        crash_point("decode")  # fault-injection tests only (dsvdd_repro/core/faults.py)
        yield decoded


def resize_uint8(images: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """Antialiased bilinear resize of uint8 [N, 3, H, W] to [N, 3, size, size], in chunks."""
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for i in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + chunk])).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out
