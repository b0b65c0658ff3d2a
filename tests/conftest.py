"""Shared fixtures: compose configs through Hydra's compose API (no subprocess) and run them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from dsvdd_repro.runs.config import register_configs

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


# The profile a test composes or runs unless it names one: the paper's protocol, which the tests
# were written for (the package's default profile is `quick`: conf/config.yaml).
TEST_PROFILE = "profile=paper"


def with_profile(overrides: list[str]) -> list[str]:
    """`overrides` (a command line's: flags such as `-m` first), with TEST_PROFILE as the first
    override unless they choose a profile themselves."""
    if any(item.startswith("profile=") for item in overrides):
        return overrides
    flags = 0
    while flags < len(overrides) and overrides[flags].startswith("-"):
        flags += 1
    return [*overrides[:flags], TEST_PROFILE, *overrides[flags:]]


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=with_profile(overrides))


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
        [sys.executable, "-m", "dsvdd_repro.train", *with_profile(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- a real single-node SLURM (scripts/slurm_cluster.sh): tests/test_slurm_*.py ------------------

SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"


def cluster(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_env() -> dict:
    """The environment of a client of the cluster (SLURM_CONF set); brought up here, down at the end."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM cluster needs root (it starts munged, slurmctld and slurmd)")
    if not shutil.which("apt-get") and not all(shutil.which(d) for d in ("slurmctld", "slurmd", "munged")):
        pytest.skip("slurm and munge are not installed and there is no apt-get to install them")
    was_up = cluster("status", timeout=60).returncode == 0
    up = cluster("up")
    exports = re.findall(r"^export SLURM_CONF=(\S+)$", up.stdout, re.M)
    if up.returncode != 0 or len(exports) != 1:
        last = (up.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"scripts/slurm_cluster.sh up failed (rc {up.returncode}): {last}")
    yield {**os.environ, "SLURM_CONF": exports[0]}
    if not was_up:
        down = cluster("down", timeout=120)
        assert down.returncode == 0, down.stderr


