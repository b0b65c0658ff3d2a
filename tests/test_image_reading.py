"""Images read faithfully by the one decoder of the loaders and the scorer (decode.decode_one):
16-bit and float images scaled to 8 bits, never clipped; every other mode as PIL converts it; every
accepted extension decodable."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dsvdd_repro.data.decode import UnsupportedImage, decode_one, to_rgb
from dsvdd_repro.data.source import IMAGE_EXTENSIONS

# 16-bit values and their high bytes: the 8-bit value each decodes to
WIDE = np.array([0, 255, 256, 511, 32767, 32768, 65534, 65535], dtype=np.uint16)
HIGH = [0, 0, 1, 1, 127, 128, 255, 255]


def picture(seed: int, shape=(8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def hwc(decoded: np.ndarray) -> np.ndarray:
    return decoded.transpose(1, 2, 0)


def png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): uint16 [h, w] gray (colour
    type 0) or [h, w, 3] RGB (colour type 2), big-endian rows, filter 0."""
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_16_bit_gray_png_decodes_as_its_8_bit_version(tmp_path):
    gray8 = picture(0, (8, 8))
    Image.fromarray(gray8).save(tmp_path / "8.png")
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "16.png")
    with Image.open(tmp_path / "16.png") as im:
        assert im.mode == "I;16"  # the mode PIL's convert("RGB") clips
    wide, narrow = decode_one(str(tmp_path / "16.png"), 8), decode_one(str(tmp_path / "8.png"), 8)
    assert wide.dtype == np.uint8 and wide.shape == (3, 8, 8)
    assert np.abs(wide.astype(int) - narrow.astype(int)).max() <= 1
    assert np.array_equal(wide, narrow)  # v * 257 >> 8 = v exactly


def test_16_bit_gray_takes_the_high_byte(tmp_path):
    (tmp_path / "wide.png").write_bytes(png16(WIDE.reshape(1, -1)))
    assert hwc(decode_one(str(tmp_path / "wide.png"), len(WIDE)))[0, :, 0].tolist() == HIGH


def test_the_share_of_white_pixels_is_not_inflated(tmp_path):
    ramp = np.arange(256, dtype=np.uint16).reshape(16, 16) * 257  # every 8-bit value once
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    decoded = decode_one(str(tmp_path / "ramp.png"), 16)
    assert (decoded == 255).mean() == 1 / 256  # only the brightest pixel (PIL's clipping: 255/256)
    assert sorted(decoded[0].ravel().tolist()) == list(range(256))


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N", "I"])
def test_every_16_bit_mode_scales_the_same(mode):
    if mode == "I":  # 32-bit: how Pillow opens some 16-bit PNGs and TIFFs
        im = Image.fromarray(WIDE.astype(np.int32).reshape(1, -1))
    else:
        order = {"I;16B": ">u2", "I;16L": "<u2"}.get(mode, "=u2")
        im = Image.frombytes(mode, (len(WIDE), 1), WIDE.astype(order).tobytes())
    assert im.mode == mode
    rgb = np.asarray(to_rgb(im))
    assert rgb.dtype == np.uint8 and rgb[0, :, 0].tolist() == HIGH
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_16_bit_rgb_png_decodes_as_its_8_bit_version(tmp_path):
    rgb8 = picture(1)
    Image.fromarray(rgb8).save(tmp_path / "8.png")
    (tmp_path / "16.png").write_bytes(png16(rgb8.astype(np.uint16) * 257))
    wide, narrow = decode_one(str(tmp_path / "16.png"), 8), decode_one(str(tmp_path / "8.png"), 8)
    assert np.abs(wide.astype(int) - narrow.astype(int)).max() <= 1
    assert np.array_equal(wide, narrow)
    # the same high-byte rule as 16-bit gray, in every channel
    (tmp_path / "wide.png").write_bytes(png16(np.stack([WIDE, WIDE[::-1], WIDE], axis=-1).reshape(1, -1, 3)))
    decoded = hwc(decode_one(str(tmp_path / "wide.png"), len(WIDE)))[0]
    assert decoded[:, 0].tolist() == HIGH and decoded[:, 1].tolist() == HIGH[::-1]


def test_wide_values_beyond_16_bits_are_refused_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "big.tiff")
    with pytest.raises(UnsupportedImage, match=r"^mode I values 0\.\.70000 are outside the 16-bit range 0\.\.65535"):
        decode_one(str(tmp_path / "big.tiff"), 2)
    with pytest.raises(UnsupportedImage, match=r"values -1\.\.0 are outside"):
        to_rgb(Image.fromarray(np.array([[-1, 0]], dtype=np.int32)))
    assert issubclass(UnsupportedImage, OSError)  # reported as PIL's own unreadable files are


def test_float_images_are_taken_as_0_to_1(tmp_path):
    values = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "float.tiff")
    assert hwc(decode_one(str(tmp_path / "float.tiff"), 4))[0, :, 1].tolist() == [0, 64, 128, 255]  # rint(255 x)
    for bad, shown in ((2.0, r"0\.0\.\.2\.0"), (-0.5, r"-0\.5\.\.0\.0"), (np.nan, "nan")):
        with pytest.raises(UnsupportedImage, match=rf"^mode F \(float\) values {shown}.* outside \[0, 1\]"):
            to_rgb(Image.fromarray(np.array([[0.0, bad]], dtype=np.float32)))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK"])
def test_other_modes_keep_pils_conversion(tmp_path, mode):
    im = Image.fromarray(picture(2, (8, 8, 4) if "A" in mode else (8, 8, 3))).convert(mode)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    im.save(path)
    with Image.open(path) as reread:
        assert reread.mode == mode
        expected = np.asarray(reread.convert("RGB"))
    assert np.array_equal(hwc(decode_one(str(path), 8)), expected)


@pytest.mark.parametrize("extension", IMAGE_EXTENSIONS)
def test_every_accepted_extension_decodes(tmp_path, extension):
    gray = picture(3, (8, 8))  # gray: a GIF's palette holds it exactly
    path = tmp_path / f"x{extension}"
    Image.fromarray(gray).save(path, **({"lossless": True} if extension == ".webp" else {}))
    decoded = hwc(decode_one(str(path), 8)).astype(int)
    lossy = extension in (".jpg", ".jpeg")
    assert np.abs(decoded - gray[..., None]).max() <= (40 if lossy else 0)
