"""The decoded-array cache's fault tolerance (dsvdd_repro/data/cache.py): corrupted, truncated,
missing and old-format entries are rebuilt with one warning, killed writers' temporary files are
removed (live ones kept), and concurrent builds of one entry build it once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dsvdd_repro.data import cache as cache_mod
from dsvdd_repro.data.cache import ImageArrays, cached_arrays, cached_image_arrays, fingerprint
from dsvdd_repro.storage.atomic import temporary_path

KEY = {"v": 1}
IMAGES = np.random.default_rng(0).integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
LABELS = np.arange(40, dtype=np.int64)


class Counted:
    """A build function that counts its calls."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays, self.calls = arrays, 0

    def __call__(self):
        self.calls += 1
        return {k: v.copy() for k, v in self.arrays.items()}


def _folder(root: Path, name: str = "thing") -> Path:
    return root / f"{name}-{fingerprint(KEY)}"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == cache_mod.__name__]


def _zero_data(path: Path) -> None:
    """Zero the array bytes of a .npy file in place (same size, header intact, so np.load succeeds)."""
    data_bytes = np.load(path, mmap_mode="r").nbytes
    with open(path, "r+b") as fh:
        fh.seek(-data_bytes, os.SEEK_END)
        fh.write(bytes(data_bytes))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 8)


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("damage", [_zero_data, _truncate, _remove])
def test_damaged_file_is_rebuilt_with_one_warning(tmp_path, caplog, damage):
    build = Counted({"x": np.arange(1, 101, dtype=np.float32), "y": np.ones(3)})
    cached_arrays(tmp_path, "thing", KEY, build)
    damage(_folder(tmp_path) / "x.npy")

    with caplog.at_level(logging.INFO, logger=cache_mod.__name__):
        out, info = cached_arrays(tmp_path, "thing", KEY, build, mmap=True)
    assert info["cache_hit"] is False and build.calls == 2
    np.testing.assert_array_equal(out["x"], build.arrays["x"])
    (message,) = _warnings(caplog)
    assert str(_folder(tmp_path)) in message and "x.npy" in message and "\n" not in message

    caplog.clear()
    out, info = cached_arrays(tmp_path, "thing", KEY, build, mmap=True)
    assert info["cache_hit"] is True and build.calls == 2 and not _warnings(caplog)
    np.testing.assert_array_equal(out["x"], build.arrays["x"])


def _image_build(calls: list) -> ImageArrays:
    calls.append(1)
    return ImageArrays(
        shapes={"train_images": IMAGES.shape},
        chunks=lambda name: (IMAGES[i:i + 16] for i in range(0, len(IMAGES), 16)),
        small={"train_labels": LABELS},
    )


def test_zeroed_image_entry_is_rebuilt(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(cache_mod, "MMAP_MIN_BYTES", 0)  # the small test images are memory-mapped too
    calls = []
    cached_image_arrays(tmp_path, "images", KEY, lambda: _image_build(calls))
    _zero_data(_folder(tmp_path, "images") / "train_images.npy")

    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        out, info = cached_image_arrays(tmp_path, "images", KEY, lambda: _image_build(calls))
    assert info["cache_hit"] is False and "build_seconds" in info and len(calls) == 2
    assert isinstance(out["train_images"], np.memmap)
    np.testing.assert_array_equal(out["train_images"], IMAGES)
    np.testing.assert_array_equal(out["train_labels"], LABELS)
    (message,) = _warnings(caplog)
    assert "train_images.npy" in message and str(_folder(tmp_path, "images")) in message

    out, info = cached_image_arrays(tmp_path, "images", KEY, lambda: _image_build(calls))
    assert info["cache_hit"] is True and len(calls) == 2
    np.testing.assert_array_equal(out["train_images"], IMAGES)


def test_entry_without_checksums_is_rebuilt_once(tmp_path, caplog):
    build = Counted({"x": np.arange(5.0)})
    cached_arrays(tmp_path, "thing", KEY, build)
    meta_path = _folder(tmp_path) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["arrays"] = {name: {"shape": s["shape"], "dtype": s["dtype"]} for name, s in meta["arrays"].items()}
    meta_path.write_text(json.dumps(meta))  # as the code before the checksums wrote it

    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        _, info = cached_arrays(tmp_path, "thing", KEY, build)
        (message,) = _warnings(caplog)
        assert info["cache_hit"] is False and build.calls == 2
        assert "older version" in message and "meta.json" in message
        caplog.clear()
        out, info = cached_arrays(tmp_path, "thing", KEY, build)
    assert info["cache_hit"] is True and build.calls == 2 and not _warnings(caplog)
    assert "crc32" in json.loads(meta_path.read_text())["arrays"]["x"]
    np.testing.assert_array_equal(out["x"], np.arange(5.0))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary(folder: Path, pid: int) -> Path:
    name = temporary_path(folder / "x.npy").name.replace(f".{os.getpid()}.", f".{pid}.", 1)
    path = folder / name
    path.write_bytes(b"partial")
    return path


def test_stale_temporaries_are_removed_live_ones_kept(tmp_path):
    build = Counted({"x": np.arange(3.0)})
    folder = _folder(tmp_path)
    folder.mkdir()
    dead = _dead_pid()
    dead_in_entry, dead_in_root = _temporary(folder, dead), _temporary(tmp_path, dead)
    live = _temporary(folder, os.getpid())
    old_live = _temporary(tmp_path, os.getpid())
    hours_ago = time.time() - cache_mod.STALE_TEMPORARY_SECONDS - 60
    os.utime(old_live, (hours_ago, hours_ago))
    other = folder / "notes.tmp"  # not a temporary name of atomic_write
    other.write_text("mine")

    _, info = cached_arrays(tmp_path, "thing", KEY, build)
    assert info["cache_hit"] is False
    assert not dead_in_entry.exists() and not dead_in_root.exists() and not old_live.exists()
    assert live.exists() and other.exists()

    live.unlink()
    _temporary(folder, dead)
    _, info = cached_arrays(tmp_path, "thing", KEY, build)  # a hit cleans up too
    assert info["cache_hit"] is True and sorted(p.name for p in folder.iterdir()) == ["meta.json", "notes.tmp", "x.npy"]


def test_builder_waits_for_the_lock_then_loads(tmp_path, caplog):
    build = Counted({"x": np.arange(4.0)})
    folder = _folder(tmp_path)
    results = []
    with caplog.at_level(logging.INFO, logger=cache_mod.__name__):
        with cache_mod._entry_lock(folder):  # another builder holds the lock
            waiter = threading.Thread(target=lambda: results.append(cached_arrays(tmp_path, "thing", KEY, build)))
            waiter.start()
            deadline = time.time() + 10
            while not any("waiting" in r.getMessage() for r in caplog.records) and time.time() < deadline:
                time.sleep(0.01)
            assert build.calls == 0 and not results
            cache_mod._store_entry(folder, KEY, {"x": cache_mod._in_memory(np.arange(4.0))})
        waiter.join(timeout=10)
    (out, info), = results
    assert info["cache_hit"] is True and build.calls == 0
    np.testing.assert_array_equal(out["x"], np.arange(4.0))
    assert [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()] == [
        f"cache entry {folder} is being built by another process; waiting for it"
    ]


_BUILDER = textwrap.dedent("""
    import logging, sys, time
    from pathlib import Path
    import numpy as np
    from dsvdd_repro.data.cache import cached_arrays

    root, me = Path(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.INFO)

    def build():
        with open(root / "builds.txt", "a") as fh:
            fh.write(me + "\\n")
        time.sleep(2)  # long enough for the other process to arrive while this one builds
        return {"x": np.arange(1000, dtype=np.int64) * 7, "y": np.full(5, 3.0)}

    (root / f"ready-{me}").touch()
    while not all((root / f"ready-{p}").exists() for p in ("a", "b")):
        time.sleep(0.005)
    arrays, info = cached_arrays(root / "cache", "race", {"v": "race"}, build)
    np.savez(root / f"out-{me}.npz", hit=info["cache_hit"], **arrays)
""")


@pytest.mark.slow
def test_two_processes_build_an_entry_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", _BUILDER, str(tmp_path), me], env=env,
                              stderr=subprocess.PIPE, text=True) for me in ("a", "b")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert len((tmp_path / "builds.txt").read_text().splitlines()) == 1
    a, b = np.load(tmp_path / "out-a.npz"), np.load(tmp_path / "out-b.npz")
    assert sorted([bool(a["hit"]), bool(b["hit"])]) == [False, True]
    for name in ("x", "y"):
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(a["x"], np.arange(1000) * 7)
    assert sum("waiting for it" in e for e in errors) == 1, errors
