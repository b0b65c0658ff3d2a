"""GEO w/ Dirichlet: the 72 transformations, the Dirichlet fit, and an end-to-end run."""

import itertools
import json

import numpy as np
import pytest
import torch
from scipy.special import psi

from dsvdd_repro import train
from dsvdd_repro.methods.geo import (
    N_TRANSFORMS,
    PAPER_EPOCHS,
    apply_transforms,
    fit_dirichlet_samples,
    index_maps,
    inv_psi,
    transform_params,
    translation,
)
from tests.conftest import TINY, compose_config


def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _all(image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    return apply_transforms(image.expand(N_TRANSFORMS, -1, -1, -1), torch.arange(N_TRANSFORMS), maps)


def test_72_transforms_in_golans_order_with_translation_scaled_to_the_image():
    assert PAPER_EPOCHS == 3 and N_TRANSFORMS == 72
    assert (translation(32), translation(224), translation(16)) == (8, 56, 4)
    params = transform_params(32)
    assert params == list(itertools.product((False, True), (0, -8, 8), (0, -8, 8), range(4)))
    assert index_maps(32).shape == (72, 32 * 32)


def test_the_72_transforms_of_an_image_are_pairwise_distinct():
    out = _all(_image(), index_maps(16)).reshape(N_TRANSFORMS, -1)
    assert len({tuple(row.tolist()) for row in out}) == N_TRANSFORMS


def test_flips_and_rotations_are_exact_and_invertible_translations_reflect():
    size, t = 16, translation(16)
    image, maps = _image(size), index_maps(size)
    out = _all(image, maps)
    for i, (flip, tx, ty, k) in enumerate(transform_params(size)):
        if tx == 0 and ty == 0:  # a pixel permutation: nothing lost, and it is undone exactly
            expected = torch.rot90(torch.flip(image, dims=[3]) if flip else image, k, dims=(2, 3))
            assert torch.equal(out[i : i + 1], expected)
            assert sorted(maps[i].tolist()) == list(range(size * size))
            undone = torch.rot90(out[i : i + 1], -k, dims=(2, 3))
            assert torch.equal(torch.flip(undone, dims=[3]) if flip else undone, image)
        else:  # a translation drops t rows/columns: not a permutation
            assert len(set(maps[i].tolist())) < size * size
    # content moves by +t along x; the vacated columns mirror the edge (d c b a | a b c d)
    shifted = out[[i for i, p in enumerate(transform_params(size)) if p == (False, t, 0, 0)][0]]
    assert torch.equal(shifted[..., t:], image[0, ..., : size - t])
    assert torch.equal(shifted[..., :t], image[0, ..., :t].flip(-1))


def test_inverse_digamma():
    y = np.linspace(-10, 5, 50)
    np.testing.assert_allclose(psi(inv_psi(y)), y, atol=1e-8)


@pytest.mark.parametrize("alpha", [[2.0, 5.0, 0.5, 1.0], [0.3, 0.2, 0.1, 8.0, 1.5]])
def test_dirichlet_fit_recovers_known_parameters(alpha):
    samples = np.random.default_rng(0).dirichlet(alpha, size=20000)
    np.testing.assert_allclose(fit_dirichlet_samples(samples), alpha, rtol=0.05)


@pytest.mark.slow
def test_geo_end_to_end_writes_c2_outputs_and_nonconstant_scores(tmp_path):
    cfg = compose_config([
        *TINY, "variant=geo", "dataset.image_size=8", "dataset.n_train_per_class=10", "dataset.n_test_per_class=4",
        "trainer.epochs=2", "method.max_samples_per_epoch=70", "method.val_max_samples=12",
        "method.fit_max_samples=5",
    ])
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (1e-4, 5e-4)  # GEO's, from conf/method_settings/geo.yaml
    metrics = train.run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["status"] == "done" and on_disk["variant"] == "geo" and on_disk["epochs"] == 2
    assert on_disk["lr"] == 1e-4 and on_disk["features"] is None
    assert [entry["epoch"] for entry in on_disk["history"]] == [1, 2]
    assert {"loss", "train_acc", "n_samples", "val_auc"} <= set(on_disk["history"][0])
    assert on_disk["history"][0]["n_samples"] == 70 and on_disk["history"][-1]["val_auc"] == on_disk["val_auc"]
    assert on_disk["val_subsample"]["n"] <= 12 and on_disk["best_epoch"] == 2
    assert on_disk["dirichlet"]["n_images"] == 5  # of the 8 training images
    scores = np.load(tmp_path / "scores.npz")
    assert scores["score"].shape == (12,) and np.std(scores["score"]) > 0 and np.isfinite(scores["score"]).all()
    assert 0.0 <= metrics["test_auc"] <= 1.0


def test_independent_dirichlet_fits_at_once_match_one_at_a_time():
    rng = np.random.default_rng(1)
    alphas = [[1.0, 2.0, 3.0], [0.5, 0.5, 4.0]]
    samples = [rng.dirichlet(a, size=5000) for a in alphas]
    stats_p = np.stack([s.mean(axis=0) for s in samples])
    stats_log = np.stack([np.log(s).mean(axis=0) for s in samples])
    from dsvdd_repro.methods.geo import fit_dirichlet

    together = fit_dirichlet(stats_p, stats_log)
    np.testing.assert_allclose(together[1], fit_dirichlet(stats_p[1], stats_log[1]), rtol=1e-6)
    np.testing.assert_allclose(together, alphas, rtol=0.08)
