"""Safe to share: nothing in a run folder runs code, files are checked by sha256, and the scorer fails
in one line (exit 2) and loses nothing. Crafted files carry a pickle that would create a marker file
when unpickled: the marker must never appear."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dsvdd_repro import score as scoring
from dsvdd_repro.runs.folders import METRICS_FILE, MODEL_FILE
from dsvdd_repro.storage.checkpoint import CHECKPOINT_FILE, Checkpoint
from dsvdd_repro.storage.integrity import file_record

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FAKE = ["dataset=fake", "dataset.n_classes=3", "dataset.n_train_per_class=30", "dataset.n_test_per_class=10",
        "profile=smoke", "profile.weights=none", "trainer.epochs=2", "trainer.batch_size=16",
        "trainer.num_threads=1", "trainer.progress=false"]


class Marker:
    """Unpickled, it opens (creates) `path`: what a malicious pickle could do instead."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def train(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DSVDD_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "dsvdd_repro.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished deep SVDD (LeNet) run, an OC-SVM on PCA run, and an Isolation Forest on the same
    PCA features (all read from the feature cache: its PCA is never fitted while it runs), on fake data."""
    base = tmp_path_factory.mktemp("finished")
    runs = {}
    for name, extra in {"dsvdd": ["variant=dsvdd_bias_noise", "model=lenet_cifar10"],
                        "ocsvm": ["variant=ocsvm_pca"], "iforest_cached": ["variant=iforest_pca"]}.items():
        result = train(*FAKE, *extra, f"hydra.run.dir={base / name}", cache=base / "cache")
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = base / name
    return runs


@pytest.fixture
def run_copy(finished_runs, tmp_path):
    def copy(name: str) -> Path:
        return Path(shutil.copytree(finished_runs[name], tmp_path / name))

    return copy


def make_images(tmp_path: Path, count: int = 4) -> Path:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def score_cli(*args: str) -> tuple[int, str, str]:
    """`dsvdd-score ARGS` in this process (its main is the command's; one real process below)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = scoring.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_the_command_exits_2_with_one_line(tmp_path):
    images = make_images(tmp_path, 1)
    result = subprocess.run([sys.executable, "-m", "dsvdd_repro.score", str(tmp_path / "nowhere"), str(images)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "no such file" in one_line_error(result.returncode, result.stderr)


def one_line_error(code: int, stderr: str) -> str:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def record_model(run_dir: Path) -> None:
    """metrics.json records model.pt's new hash, as whoever crafted the folder would make it."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    metrics["files"][MODEL_FILE] = file_record(run_dir / MODEL_FILE)
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics))


def edit_config(run_dir: Path, edit) -> None:
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    edit(metrics)
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics))


# -- nothing runs code ----------------------------------------------------------------------------


def test_a_crafted_model_file_is_refused_without_running_it(run_copy, tmp_path):
    run_dir, marker = run_copy("dsvdd"), tmp_path / "marker"
    state = torch.load(run_dir / MODEL_FILE, weights_only=True)
    torch.save({**state, "net": Marker(marker)}, run_dir / MODEL_FILE)
    record_model(run_dir)  # the hash matches: only the format refuses it
    line = one_line_error(*score_cli(run_dir, make_images(tmp_path))[::2])
    assert "io.open" in line and "could run code" in line and "--re-export" in line
    assert not marker.exists()


@pytest.mark.parametrize("where", ["method", "nested", "root"])
def test_a_crafted_target_in_metrics_json_is_refused_without_calling_it(run_copy, tmp_path, where):
    run_dir, marker = run_copy("dsvdd"), tmp_path / "marker"
    opener = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}

    def craft(metrics):
        if where == "method":
            metrics["config"]["method"]["_target_"] = "builtins.open"
        elif where == "nested":
            metrics["config"]["method"]["extra"] = opener
        else:
            metrics["config"]["_target_"] = "builtins.open"

    edit_config(run_dir, craft)
    line = one_line_error(*score_cli(run_dir, make_images(tmp_path))[::2])
    assert "_target_" in line and "received config" in line
    assert not marker.exists()


def test_an_interpolation_in_a_recorded_config_is_refused(run_copy, tmp_path):
    run_dir = run_copy("dsvdd")
    edit_config(run_dir, lambda m: m["config"]["trainer"].update(batch_size="${oc.env:HOME}"))
    line = one_line_error(*score_cli(run_dir, make_images(tmp_path))[::2])
    assert "trainer.batch_size" in line and "interpolation" in line


def test_a_crafted_checkpoint_is_ignored_in_one_line_and_users_files_are_kept(tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    run_dir.mkdir()
    torch.save({"format": 1, "stage": "svdd", "net": Marker(marker)}, run_dir / CHECKPOINT_FILE)
    result = train(*FAKE, "variant=dsvdd_bias_noise", "model=lenet_cifar10", f"hydra.run.dir={run_dir}",
                   cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "ignoring checkpoint" in line]
    assert len(warnings) == 1 and "io.open" in warnings[0] and "could run code" in warnings[0]
    assert json.loads((run_dir / METRICS_FILE).read_text())["status"] == "done"
    assert not marker.exists()


def test_checkpoint_load_reads_data_only(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"format": 1, "stage": "svdd", "x": Marker(marker)}, tmp_path / CHECKPOINT_FILE)
    assert Checkpoint(tmp_path).load("svdd") is None and not marker.exists()
    Checkpoint(tmp_path).save("svdd", {"net": {"w": torch.ones(2)}, "rng": {"state": 2**100}, "history": [{"a": 1.5}]})
    state = Checkpoint(tmp_path).load("svdd")
    assert state["rng"]["state"] == 2**100 and torch.equal(state["net"]["w"], torch.ones(2))


def test_a_crafted_plan_cache_is_recomputed_without_unpickling_it(tmp_path, monkeypatch):
    from dsvdd_repro.sweeps import plan

    marker = tmp_path / "marker"
    arguments = ["experiment=ruff2018", "profile=smoke", "launcher=local", "profile.weights=none"]
    path = tmp_path / "plan" / "sweeps" / f"{plan._sweep_key(arguments)}.json"
    path.parent.mkdir(parents=True)
    import pickle

    path.write_bytes(pickle.dumps(Marker(marker)))
    monkeypatch.setattr(plan, "_expand", lambda arguments, runs_dir: ((1, None), [("invalid", None)]))
    info, jobs, _ = plan.sweep_containers("ruff2018", "smoke", "local", "none", tmp_path / "runs", tmp_path)
    assert info == (1, None) and jobs == [("invalid", None, None)] and not marker.exists()
    assert json.loads(path.read_text())["expanded"] == [["invalid", None]]  # rewritten as JSON


# -- integrity by hash ----------------------------------------------------------------------------


def test_a_same_size_corrupted_model_is_refused(run_copy, tmp_path):
    run_dir = run_copy("dsvdd")
    data = bytearray((run_dir / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run_dir / MODEL_FILE).write_bytes(bytes(data))
    line = one_line_error(*score_cli(run_dir, make_images(tmp_path))[::2])
    assert f"{MODEL_FILE}: missing, or its sha256 differs" in line


def test_skip_if_done_checks_the_hash_and_remembers_verified_files(tmp_path):
    from dsvdd_repro.storage.integrity import changed_files

    run_dir, memo = tmp_path / "run", tmp_path / "memo"
    run_dir.mkdir()
    (run_dir / "scores.npz").write_bytes(b"0123456789")
    named = {"scores.npz": file_record(run_dir / "scores.npz")}
    assert changed_files(run_dir, named, memo) == [] and len(list(memo.rglob("*.json"))) == 1
    stat = (run_dir / "scores.npz").stat()
    (run_dir / "scores.npz").write_bytes(b"0123456780")  # same size; the mtime set back as a tamperer would
    os.utime(run_dir / "scores.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert changed_files(run_dir, named, memo) == ["scores.npz"]  # the ctime moved: hashed again


def test_a_relaunch_redoes_a_run_whose_scores_changed_at_the_same_size(run_copy, tmp_path):
    run_dir = run_copy("ocsvm")
    data = bytearray((run_dir / "scores.npz").read_bytes())
    data[-30] ^= 0xFF
    (run_dir / "scores.npz").write_bytes(bytes(data))
    result = train(*FAKE, "variant=ocsvm_pca", f"hydra.run.dir={run_dir}", cache=tmp_path / "cache")
    assert result.returncode == 0 and "scores.npz is missing or changed: the run is done again" in result.stdout


# -- the scorer: one line, nothing lost -----------------------------------------------------------


def scores_of(csv_text: str) -> dict[str, float]:
    return {Path(p).name: float(s) for p, s in (line.split(",") for line in csv_text.splitlines()[1:])}


def test_bad_images_are_named_and_skipped_only_when_asked(run_copy, tmp_path):
    run_dir, folder = run_copy("dsvdd"), make_images(tmp_path)
    png = (folder / "0.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "text.jpg").write_text("not an image")
    line = one_line_error(*score_cli(run_dir, folder)[::2])
    assert "2 of 6 images cannot be decoded" in line and "text.jpg" in line and "--skip-bad-images" in line
    code, out, err = score_cli(run_dir, folder, "--skip-bad-images")
    assert code == 0 and set(scores_of(out)) == {"0.png", "1.png", "2.png", "3.png"}
    assert "skipped 2 image(s)" in err and "truncated.png" in err and "text.jpg" in err


def test_hidden_files_and_folders_are_not_scored(run_copy, tmp_path):
    run_dir, folder = run_copy("dsvdd"), make_images(tmp_path, 2)
    (folder / ".git").mkdir()
    shutil.copy(folder / "0.png", folder / ".git" / "obj.png")
    shutil.copy(folder / "0.png", folder / ".thumb.png")
    code, out, _ = score_cli(run_dir, folder)
    assert code == 0 and set(scores_of(out)) == {"0.png", "1.png"}


@pytest.mark.parametrize("limit, kind", [(1500, "DecompressionBombError"), (3000, "DecompressionBombWarning")])
def test_a_decompression_bomb_is_a_named_bad_image(run_copy, tmp_path, monkeypatch, capsys, limit, kind):
    run_dir, folder = run_copy("dsvdd"), make_images(tmp_path, 2)
    Image.new("RGB", (64, 64)).save(folder / "bomb.png")  # 4,096 pixels: over 2 x 1,500, or over 3,000 (the others: 1,024)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    assert scoring.main([str(run_dir), str(folder)]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "bomb.png" in line and kind in line


def test_out_is_checked_before_scoring_and_written_atomically(run_copy, tmp_path, monkeypatch, capsys):
    run_dir, folder = run_copy("dsvdd"), make_images(tmp_path, 2)
    for out, expected in [(tmp_path / "missing" / "s.csv", "does not exist"), (tmp_path, "is a folder")]:
        assert scoring.main([str(run_dir), str(folder), "--out", str(out)]) == 2
        assert expected in capsys.readouterr().err
    monkeypatch.setattr(scoring.os, "access", lambda path, mode: False)  # a read-only folder (tests run as root)
    assert scoring.main([str(run_dir), str(folder), "--out", str(tmp_path / "s.csv")]) == 2
    assert "is not writable" in capsys.readouterr().err
    monkeypatch.undo()

    out = tmp_path / "scores.csv"
    out.write_text("earlier results\n")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("dsvdd_repro.storage.atomic.os.fsync", full_disk)
    assert scoring.main([str(run_dir), str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "No space left on device" in err and "unchanged" in err
    assert out.read_text() == "earlier results\n" and [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    monkeypatch.undo()
    assert scoring.main([str(run_dir), str(folder), "--out", str(out)]) == 0
    assert set(scores_of(out.read_text())) == {"0.png", "1.png"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the case of a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line(run_copy, tmp_path):
    run_dir, images = run_copy("dsvdd"), make_images(tmp_path)
    assert "no CUDA GPU is visible" in one_line_error(*score_cli(run_dir, images, "--device", "cuda")[::2])
    assert "is not a device" in one_line_error(*score_cli(run_dir, images, "--device", "tpu9")[::2])


def test_metrics_without_config_and_unfinished_runs_are_one_line(run_copy, tmp_path):
    run_dir, images = run_copy("dsvdd"), make_images(tmp_path)
    edit_config(run_dir, lambda m: m.pop("config"))
    assert "records no config" in one_line_error(*score_cli(run_dir, images)[::2])
    (run_dir / METRICS_FILE).write_text("{")
    assert "not valid JSON" in one_line_error(*score_cli(run_dir, images)[::2])
    assert "no such file" in one_line_error(*score_cli(tmp_path / "nowhere", images)[::2])


def test_a_16_bit_png_scores_like_its_8_bit_version(run_copy, tmp_path):
    run_dir, folder = run_copy("dsvdd"), tmp_path / "gray"
    folder.mkdir()
    gray = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "8bit.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "16bit.png")
    assert Image.open(folder / "16bit.png").mode.startswith("I")  # a real 16-bit PNG
    code, out, err = score_cli(run_dir, folder)
    scores = scores_of(out)
    assert code == 0, err
    assert scores["16bit.png"] == pytest.approx(scores["8bit.png"], rel=1e-4, abs=1e-5)


# -- the earlier, pickled model format ------------------------------------------------------------


def test_a_pickled_shallow_model_is_refused_then_re_exported_with_the_same_scores(run_copy, tmp_path):
    run_dir, folder = run_copy("ocsvm"), make_images(tmp_path)
    code, out, _ = score_cli(run_dir, folder)
    assert code == 0
    before = scores_of(out)
    detector, _ = scoring.load_detector(run_dir, torch.device("cpu"))
    # the format earlier versions wrote: the fitted extractor and scikit-learn model, pickled
    legacy = io.BytesIO()
    torch.save({"extractor": detector.features.extractor, "model": detector.model}, legacy)
    (run_dir / MODEL_FILE).write_bytes(legacy.getvalue())
    record_model(run_dir)

    line = one_line_error(*score_cli(run_dir, folder)[::2])
    assert "could run code" in line and f"dsvdd-score --re-export {run_dir}" in line and "--trust" in line
    code, out, _ = score_cli(run_dir, folder, "--trust")
    assert code == 0 and scores_of(out) == before
    run_copy("dsvdd")  # a run beside it whose model is data already
    code, _, err = score_cli(tmp_path, "--re-export")  # every run below a folder
    assert code == 0 and "same scores" in err and "2 runs: 1 re-exported, 1 already data only, 0 failed" in err
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["model_re_exported"]["same_scores"] and metrics["files"][MODEL_FILE] == file_record(run_dir / MODEL_FILE)
    code, out, _ = score_cli(run_dir, folder)
    assert code == 0 and scores_of(out) == before
    code, _, err = score_cli(run_dir, "--re-export")
    assert code == 0 and "nothing to do" in err


def test_a_shallow_model_file_holds_no_pickle(finished_runs):
    state = torch.load(finished_runs["ocsvm"] / MODEL_FILE, weights_only=True)
    assert state["format"] == 2 and isinstance(state["model"], bytes)
    assert all(isinstance(v, (torch.Tensor, float)) for v in state["extractor"].values())


def test_a_run_whose_pca_features_came_from_the_cache_saves_a_fitted_pca(finished_runs, tmp_path):
    run_dir = finished_runs["iforest_cached"]
    assert json.loads((run_dir / METRICS_FILE).read_text())["features_info"]["cache_hits"] == [True, True]
    state = torch.load(run_dir / MODEL_FILE, weights_only=True)
    assert state["extractor"]["components"].ndim == 2
    code, out, err = score_cli(run_dir, make_images(tmp_path))
    assert code == 0 and len(scores_of(out)) == 4, err


def test_re_export_fits_again_a_pca_saved_unfitted_and_checks_the_runs_test_scores(run_copy, tmp_path):
    """Earlier versions saved the PCA of such a run unfitted: re-export fits it on the run's own
    training split and writes it only if the run's test split then scores as its scores.npz."""
    run_dir = run_copy("iforest_cached")
    detector, _ = scoring.load_detector(run_dir, torch.device("cpu"))
    detector.features.extractor.state = None  # as the earlier versions saved it
    legacy = io.BytesIO()
    torch.save({"extractor": detector.features.extractor, "model": detector.model}, legacy)
    (run_dir / MODEL_FILE).write_bytes(legacy.getvalue())
    record_model(run_dir)
    code, _, err = score_cli(run_dir, "--re-export")
    assert code == 0 and "fitted again on the run's" in err and "gives its test scores" in err, err
    code, out, err = score_cli(run_dir, make_images(tmp_path))
    assert code == 0 and len(scores_of(out)) == 4, err
