"""The paper's protocol (Section V) as this package's configuration states it, for REPORT.md's
"where these runs depart from the paper's protocol" and for the scheme every table cell is matched
under: a run composed with `profile=paper` (conf/profile/paper.yaml) gives the deep models' epochs
(the trainer node), the pooling layer (the model node) and the backbone's learning-rate factor (the
optim node), and each dataset's image size and WikiArt's styles (the dataset nodes); the paper's grid
(conf/grid/paper.yaml) gives the seeds per cell. No number of the protocol is restated here.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from omegaconf import DictConfig, OmegaConf

PAPER_PROFILE = "paper"
PAPER_GRID = files("dsvdd_repro") / "conf" / "grid" / f"{PAPER_PROFILE}.yaml"


@functools.cache
def paper_config(dataset: str | None = None) -> DictConfig:
    """A run of `dataset` (None: the default one) composed with the paper profile."""
    from hydra import compose, initialize_config_module

    from dsvdd_repro.runs.config import register_configs

    register_configs()
    overrides = [f"profile={PAPER_PROFILE}", *([f"dataset={dataset}"] if dataset else [])]
    with initialize_config_module(config_module="dsvdd_repro.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def paper_epochs() -> int:
    """The deep SVDD epochs of the paper's protocol."""
    return int(paper_config().trainer.epochs)


def paper_pooling() -> str:
    """The pooling layer of the paper's networks (global max pooling)."""
    return str(paper_config().model.pooling)


def paper_backbone_lr_factor() -> float:
    """The backbone's learning rate as a factor of the head's in the paper (0.1)."""
    return float(paper_config().optim.backbone_lr_factor)


def paper_image_size(dataset: str) -> int:
    """The image size of `dataset` in the paper's protocol."""
    return int(paper_config(dataset).dataset.image_size)


def paper_styles(dataset: str) -> int | None:
    """How many styles (WikiArt) the paper's `dataset` uses; None for a dataset without styles."""
    styles = paper_config(dataset).dataset.get("styles")
    return None if styles is None else len(styles)


@functools.cache
def paper_seeds() -> int:
    """How many seeds a cell of the paper's grid has (its `seed` axis, e.g. `range(5)`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with PAPER_GRID.open() as handle:
        seeds = OmegaConf.load(handle).hydra.sweeper.params.seed
    override = OverridesParser.create().parse_override(f"seed={seeds}")
    return len(list(override.sweep_iterator())) if override.is_sweep_override() else 1
