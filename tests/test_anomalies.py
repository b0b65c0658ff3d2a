"""Behaviour of the alteration-anomaly generators (block permutation, strokes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsvdd_repro.data.anomalies import (
    ANOMALY_TYPES,
    AnomalyGenerator,
    BlockPermutation,
    Strokes,
    make_generator,
    sample_rng,
)


def noise_images(b: int, side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, side, side), dtype=torch.uint8, generator=g)


def blocks_of(images: torch.Tensor, n: int) -> torch.Tensor:
    """[B, n*n, 3*s*s] flattened blocks in row-major block order."""
    b, c, side, _ = images.shape
    s = side // n
    return images.reshape(b, c, n, s, n, s).permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c * s * s)


def sorted_blocks(images: torch.Tensor, n: int) -> list[list[tuple]]:
    return [sorted(tuple(blk.tolist()) for blk in sample) for sample in blocks_of(images, n)]


# ---------------------------------------------------------------- sample_rng


def test_sample_rng_is_reproducible_and_independent():
    a = sample_rng(3, "test", 7).random(5)
    assert np.array_equal(a, sample_rng(3, "test", 7).random(5))
    assert not np.array_equal(a, sample_rng(4, "test", 7).random(5))
    assert not np.array_equal(a, sample_rng(3, "val", 7).random(5))
    assert not np.array_equal(a, sample_rng(3, "test", 8).random(5))


@pytest.mark.slow
def test_sample_rng_is_stable_across_processes():
    # Differently salted hash() per process must not change the stream.
    import os
    import subprocess
    import sys

    code = (
        "from dsvdd_repro.data.anomalies import sample_rng; "
        "print(sample_rng(1, 'test', 2).integers(0, 2**31))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hs},
        ).stdout
        for hs in ("1", "2")
    }
    assert outs == {f"{sample_rng(1, 'test', 2).integers(0, 2**31)}\n"}


@pytest.mark.parametrize("seed,key", [(-1, 0), (0, -1)])
def test_sample_rng_rejects_negative(seed, key):
    with pytest.raises(ValueError, match="must be >= 0"):
        sample_rng(seed, "test", key)


# ---------------------------------------------------------------- block permutation


@pytest.mark.parametrize("side,n", [(32, 2), (32, 4), (32, 8), (224, 2), (224, 8)])
def test_block_perm_keeps_blocks_and_changes_image(side, n):
    x = noise_images(6, side)
    y = BlockPermutation(n)(x, list(range(6)), seed=0, split="test")
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert sorted_blocks(y, n) == sorted_blocks(x, n)
    assert all(not torch.equal(y[i], x[i]) for i in range(6))


def test_block_perm_moves_whole_blocks():
    n, x = 4, noise_images(3, 32)
    y = BlockPermutation(n)(x, [0, 1, 2], seed=1, split="test")
    bx, by = blocks_of(x, n), blocks_of(y, n)
    for i in range(3):
        for j in range(n * n):
            # Each output block equals exactly one input block.
            assert (by[i, j][None] == bx[i]).all(dim=1).sum() == 1


def test_block_perm_never_identity():
    # n = 2: 1 / 24 of the raw permutations are the identity, so 600 keys would hit it ~25 times.
    x = noise_images(600, 8)
    y = BlockPermutation(2)(x, np.arange(600), seed=0, split="test")
    changed = (y != x).flatten(1).any(dim=1)
    assert bool(changed.all())


@pytest.mark.parametrize("n,side", [(3, 32), (5, 32), (6, 224)])
def test_block_perm_indivisible_size_raises(n, side):
    with pytest.raises(ValueError, match=rf"n={n}") as info:
        BlockPermutation(n)(noise_images(2, side), [0, 1], seed=0, split="test")
    assert str(side) in str(info.value)


@pytest.mark.parametrize("n", [1, 0, -2])
def test_block_perm_n_below_two_raises(n):
    with pytest.raises(ValueError, match="n"):
        BlockPermutation(n)


def test_block_perm_n_must_be_int():
    with pytest.raises(ValueError, match="n must be an integer"):
        BlockPermutation(2.5)


# ---------------------------------------------------------------- strokes


def test_strokes_single_colour_and_untouched_rest():
    x = noise_images(40, 32)
    y = Strokes(thickness=5)(x, list(range(40)), seed=0, split="test")
    assert y.shape == x.shape and y.dtype == torch.uint8
    for i in range(40):
        changed = (y[i] != x[i]).any(dim=0)  # [H, W]
        assert changed.any()
        colours = y[i][:, changed].T.unique(dim=0)
        assert colours.shape[0] == 1  # one colour per image
        # Pixels the stroke covered but that happened to have the colour already are unchanged too;
        # everything not of the stroke colour must equal the input.
        colour = colours[0].view(3, 1, 1)
        not_colour = ~(y[i] == colour).all(dim=0)
        assert torch.equal(y[i][:, not_colour], x[i][:, not_colour])


def test_strokes_thickness_one_changes_at_least_one_pixel():
    x = noise_images(300, 32, seed=1)
    y = Strokes(thickness=1, min_length=0.1, max_length=0.1)(x, np.arange(300), seed=0, split="t")
    assert bool((y != x).flatten(1).any(dim=1).all())


def test_strokes_thicker_changes_more_pixels():
    x = noise_images(200, 32, seed=2)
    keys = np.arange(200)
    thin = (Strokes(1)(x, keys, seed=0, split="test") != x).any(dim=1).float().mean()
    thick = (Strokes(9)(x, keys, seed=0, split="test") != x).any(dim=1).float().mean()
    assert thick > 3 * thin


def test_strokes_thickness_one_is_one_pixel_wide():
    # Thin lines should cover about length pixels, not a wide band.
    x = torch.zeros(200, 3, 64, 64, dtype=torch.uint8)
    g = Strokes(1, min_strokes=1, max_strokes=1, min_length=0.25, max_length=0.25)
    y = g(x, np.arange(200), seed=0, split="test")
    painted = (y != x).any(dim=1).flatten(1).sum(dim=1).float()
    # A 16-px segment covers ~16 pixels; near 45 degrees the unit-wide band can hold two staircase
    # diagonals (~2 x 16 / sqrt(2) = 23). A 3-px-wide band would cover ~48.
    assert painted.max() <= 25
    assert painted.median() >= 10


def test_strokes_colours_differ_across_images():
    x = torch.zeros(30, 3, 32, 32, dtype=torch.uint8)
    y = Strokes(9)(x, np.arange(30), seed=0, split="test")
    colours = {tuple(y[i].flatten(1).max(dim=1).values.tolist()) for i in range(30)}
    assert len(colours) > 20


def test_strokes_number_of_strokes_respects_bounds():
    # With no strokes drawn beyond max_strokes, a single short thin stroke covers few pixels.
    x = torch.zeros(50, 3, 32, 32, dtype=torch.uint8)
    few = Strokes(1, 1, 1, 0.1, 0.1)(x, np.arange(50), seed=0, split="s")
    many = Strokes(1, 5, 5, 0.1, 0.1)(x, np.arange(50), seed=0, split="s")
    n_few = (few != x).any(dim=1).flatten(1).sum(dim=1).float().mean()
    n_many = (many != x).any(dim=1).flatten(1).sum(dim=1).float().mean()
    assert n_many > 3 * n_few


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"thickness": 0}, "thickness"),
        ({"thickness": 3, "min_strokes": 0}, "min_strokes"),
        ({"thickness": 3, "min_strokes": 4, "max_strokes": 2}, "max_strokes"),
        ({"thickness": 3, "min_length": 0.0}, "min_length"),
        ({"thickness": 3, "min_length": 0.5, "max_length": 0.2}, "max_length"),
        ({"thickness": 2.5}, "thickness"),
    ],
)
def test_strokes_parameter_validation(kwargs, param):
    with pytest.raises(ValueError, match=param):
        Strokes(**kwargs)


def test_strokes_224_resolution():
    x = noise_images(4, 224)
    y = Strokes(9)(x, [10, 11, 12, 13], seed=0, split="test")
    assert bool((y != x).flatten(1).any(dim=1).all())


# ---------------------------------------------------------------- determinism (both generators)

GENERATORS = [BlockPermutation(4), Strokes(5), Strokes(1)]


@pytest.mark.parametrize("gen", GENERATORS, ids=repr)
def test_same_key_same_output_regardless_of_batch(gen):
    x = noise_images(10, 32)
    keys = np.arange(100, 110)
    full = gen(x, keys, seed=7, split="test")
    order = np.random.default_rng(0).permutation(10)
    shuffled = gen(x[order], keys[order], seed=7, split="test")
    assert torch.equal(shuffled, full[order])
    alone = gen(x[3:4], [keys[3]], seed=7, split="test")
    assert torch.equal(alone[0], full[3])
    # Another batch composition: sample 3 together with unrelated images.
    mixed = torch.cat([noise_images(5, 32, seed=9), x[3:4]])
    out = gen(mixed, [1, 2, 3, 4, 5, int(keys[3])], seed=7, split="test")
    assert torch.equal(out[5], full[3])


@pytest.mark.parametrize("gen", GENERATORS, ids=repr)
def test_seed_and_split_change_the_alteration(gen):
    x = noise_images(8, 32)
    keys = list(range(8))
    base = gen(x, keys, seed=0, split="test")
    other_seed = gen(x, keys, seed=1, split="test")
    other_split = gen(x, keys, seed=0, split="val")
    assert not torch.equal(base, other_seed)
    assert not torch.equal(base, other_split)


@pytest.mark.parametrize("gen", GENERATORS, ids=repr)
def test_input_not_modified_and_output_is_new(gen):
    x = noise_images(5, 32)
    before = x.clone()
    y = gen(x, torch.arange(5), seed=0, split="test")
    assert torch.equal(x, before)
    assert y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("gen", GENERATORS, ids=repr)
def test_empty_batch(gen):
    x = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    assert gen(x, [], seed=0, split="test").shape == (0, 3, 32, 32)


# ---------------------------------------------------------------- input validation


@pytest.mark.parametrize("gen", [BlockPermutation(2), Strokes(3)], ids=repr)
def test_input_validation(gen):
    ok = noise_images(2, 32)
    with pytest.raises(ValueError, match="uint8"):
        gen(ok.float(), [0, 1], seed=0, split="test")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        gen(ok[:, :1], [0, 1], seed=0, split="test")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        gen(ok[0], [0, 1], seed=0, split="test")
    with pytest.raises(ValueError, match="square"):
        gen(ok[:, :, :16], [0, 1], seed=0, split="test")
    with pytest.raises(ValueError, match="len\\(keys\\)"):
        gen(ok, [0], seed=0, split="test")
    with pytest.raises(ValueError, match="integers"):
        gen(ok, [0.5, 1.5], seed=0, split="test")
    with pytest.raises(ValueError, match="1-D"):
        gen(ok, [[0, 1]], seed=0, split="test")
    with pytest.raises(ValueError, match="keys must be >= 0"):
        gen(ok, [0, -1], seed=0, split="test")


def test_keys_accept_list_array_tensor():
    x = noise_images(3, 32)
    gen = Strokes(3)
    ref = gen(x, [4, 5, 6], seed=0, split="test")
    assert torch.equal(ref, gen(x, np.array([4, 5, 6]), seed=0, split="test"))
    assert torch.equal(ref, gen(x, torch.tensor([4, 5, 6]), seed=0, split="test"))
    assert torch.equal(ref, gen(x, range(4, 7), seed=0, split="test"))


# ---------------------------------------------------------------- registry


def test_make_generator_builds_and_describes():
    assert ANOMALY_TYPES == ("block_perm", "strokes")
    bp = make_generator("block_perm", n=8)
    assert isinstance(bp, BlockPermutation) and isinstance(bp, AnomalyGenerator)
    assert bp.describe() == {"name": "block_perm", "n": 8}
    st = make_generator("strokes", thickness=5)
    assert isinstance(st, Strokes)
    assert st.describe() == {
        "name": "strokes",
        "thickness": 5,
        "min_strokes": 1,
        "max_strokes": 5,
        "min_length": 0.1,
        "max_length": 0.6,
    }
    for name in ANOMALY_TYPES:
        assert make_generator(name, **({"n": 2} if name == "block_perm" else {"thickness": 1})).name == name


def test_make_generator_unknown_name_lists_allowed():
    with pytest.raises(ValueError, match="unknown anomaly type") as info:
        make_generator("rotate", angle=90)
    assert "block_perm" in str(info.value) and "strokes" in str(info.value)


def test_make_generator_wrong_param():
    with pytest.raises(ValueError, match="thickness"):
        make_generator("block_perm", n=4, thickness=3)
    with pytest.raises(ValueError, match=r"parameter\(s\) n;"):
        make_generator("strokes", n=4)
    with pytest.raises(ValueError, match="requires parameter"):
        make_generator("strokes")
