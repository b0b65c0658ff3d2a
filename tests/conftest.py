"""Shared fixtures: compose configs through Hydra's compose API (no subprocess) and run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from dsvdd_repro.config import register_configs

register_configs()  # the nodes' options, for the compose API (the entrypoint does it on import)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "dsvdd_repro" / "conf"

# A fake-data run small enough for a unit test (seconds on a 2-core CPU).
TINY = [
    "variant=dsvdd_bias",
    "dataset=fake",
    "dataset.n_classes=3",
    "dataset.n_train_per_class=30",
    "dataset.n_test_per_class=10",
    "profile.weights=none",
    "trainer.epochs=2",
    "trainer.batch_size=16",
    "trainer.progress=false",
]


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Never write decoded datasets into the user's home during tests (CI sets its own folder).
    if "DSVDD_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("DSVDD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def run_cli(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m dsvdd_repro.train ARGS` as a user would type it."""
    return subprocess.run(
        [sys.executable, "-m", "dsvdd_repro.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
