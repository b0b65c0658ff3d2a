"""The package as a user installs it (`pip install .`, not editable): a wheel holding the Hydra
config tree and the published tables, whose console scripts work from any folder."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_a_non_editable_install_trains_and_reports_from_an_empty_folder(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in ("dsvdd_repro", "hydra_plugins"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("dsvdd_repro-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"dsvdd_repro/conf/config.yaml", "dsvdd_repro/conf/variant/geo.yaml", "dsvdd_repro/published/tables.csv",
            "hydra_plugins/dsvdd_repro_sweeper/grid_sweeper.py"} <= names

    # A fresh venv with the wheel; its dependencies come from this environment (a .pth file), so the
    # test needs no package index. The source tree is nowhere on its path.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "zz_dependencies.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["DSVDD_CACHE_DIR"] = str(tmp_path / "cache")
    bin_dir = env_dir / "bin"
    where = subprocess.run([str(python), "-c", "import dsvdd_repro; print(dsvdd_repro.__file__)"], cwd=empty,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in where and str(ROOT) not in where

    train = subprocess.run([str(bin_dir / "dsvdd-train"), "dataset=fake", "trainer.epochs=1", "trainer.progress=false"],
                           cwd=empty, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    metrics = list((empty / "runs").rglob("metrics.json"))
    assert len(metrics) == 1 and '"status": "done"' in metrics[0].read_text()

    # a run without profile= is of the default profile, quick (conf/config.yaml), and lands in runs/quick
    report = subprocess.run([str(bin_dir / "dsvdd-report"), "runs/quick", "--out", "report"], cwd=empty, env=env,
                            capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (empty / "report" / "runs.csv").is_file() and (empty / "report" / "tableII.md").is_file()
