"""Benchmark: our training epoch, evaluation and GEO scoring against the bare network, and a run's fixed costs.

Prints, in one run, images/s of
- the bare model's training step (ResNet-18 features, random init, forward + sum(phi^2).mean() +
  backward + Adam, batch --batch-size, uint8 images already on the device) and its evaluation
  (eval-mode no-grad forward, batch --eval-batch), both under the run's execution settings
  (dsvdd_repro/core/execution.py: precision, channels_last), timed by the cost plan's own harness
  (dsvdd_repro/sweeps/calibration.py `NetworkSteps`: the steps its measured speeds come from);
- our real training epoch (`DeepSVDD._train_epoch`, variant dsvdd_bias_noise, on --rows CIFAR-10
  training rows), our evaluation (`DeepSVDD.embed` of the validation split) and GEO's transformed
  scoring (`GEO._normality`, counted in transformed images, 72 per image), each as a ratio to the
  bare step / the bare evaluation;
then a run's fixed costs in seconds and as a share of one epoch: imports, cache load, splits,
batch-norm calibration + c (`_begin`), one checkpoint write (with a best state, as after a selected
epoch; paid every epoch) and writing the results (model.pt + scores.npz). Rates are medians over
--rounds interleaved rounds, so drift in machine load hits every kind alike.

    DSVDD_CIFAR10_ROOT=<cifar10 folder> python scripts/bench_throughput.py [--device cpu|cuda] \
        [--precision auto|float32|bf16] [--channels-last auto|on|off] [--image-size 32] [--rows 1000] \
        [--batch-size 50] [--eval-batch N] [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module

import dsvdd_repro
from dsvdd_repro.core.execution import device_name
from dsvdd_repro.core.schema import build
from dsvdd_repro.methods.base import RunContext
from dsvdd_repro.methods.geo import N_TRANSFORMS
from dsvdd_repro.models.resnet import ResNet18Config
from dsvdd_repro.runs.config import validate
from dsvdd_repro.runs.folders import write_model, write_scores
from dsvdd_repro.storage.checkpoint import Checkpoint
from dsvdd_repro.storage.locations import default_cache_root
from dsvdd_repro.sweeps.calibration import NetworkSteps
from dsvdd_repro.train import make_splits, resolve_device, seed_everything


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn, *args):
    """(seconds, result) of fn(*args), the device synchronised on both sides."""
    sync(device)
    start = time.perf_counter()
    result = fn(*args)
    sync(device)
    return time.perf_counter() - start, result


def compose_run(overrides: list[str]):
    with initialize_config_module(config_module="dsvdd_repro.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    validate(cfg)
    return cfg


def head(split, n: int):
    """The first n rows of a split (same pool)."""
    n = min(n, len(split))
    rows = None if split.pool_rows is None else split.pool_rows[:n]
    return dataclasses.replace(split, keys=split.keys[:n], labels=split.labels[:n], altered_slot=split.altered_slot[:n],
                               semi_targets=split.semi_targets[:n], pool_rows=rows)


def import_seconds() -> float:
    """A fresh interpreter importing the entrypoint (what every run pays before any work)."""
    env = dict(os.environ)
    package_parent = str(Path(dsvdd_repro.__file__).resolve().parents[1])  # this checkout's package
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dsvdd_repro.train"], check=True, env=env)
    return time.perf_counter() - start


def write_results(folder: Path, detector, split, scores: np.ndarray) -> None:
    """What a finished run writes (train.py `_write_results`): scores.npz and model.pt."""
    write_scores(folder / "scores.npz", score=scores, label=split.labels, index=split.keys,
                 altered=split.altered_slot >= 0)
    write_model(folder / "model.pt", detector.export())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bf16"])
    parser.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=1000, help="training rows (one epoch)")
    parser.add_argument("--val-rows", type=int, default=2000, help="validation rows (our evaluation)")
    parser.add_argument("--geo-rows", type=int, default=100, help="images GEO scores (x72 transformed)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--eval-batch", type=int, default=None, help="default: the execution's (500 CPU, 1024 CUDA)")
    parser.add_argument("--steps", type=int, default=20, help="timed bare steps per round (their mean rate)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed bare steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median taken)")
    parser.add_argument("--root", default=os.environ.get("DSVDD_CIFAR10_ROOT"), help="default: $DSVDD_CIFAR10_ROOT")
    args = parser.parse_args()
    if not args.root or not Path(args.root).is_dir():
        sys.exit(f"error: CIFAR-10 not found at {args.root!r}: set DSVDD_CIFAR10_ROOT=<folder with "
                 "cifar-10-batches-py/ or train/ and test/ class folders> (or pass --root)")

    seconds = {"imports": import_seconds()}
    channels_last = {"auto": "null", "on": "true", "off": "false"}[args.channels_last]
    common = [
        "dataset=cifar10", f"dataset.root={args.root}", f"dataset.image_size={args.image_size}", "setup=one_vs_all",
        "model.weights=none", f"profile.max_train={args.rows}", f"profile.max_val={args.val_rows}",
        f"profile.max_test={args.val_rows}", f"trainer.batch_size={args.batch_size}", "trainer.progress=false",
        f"trainer.device={args.device}", f"trainer.precision={args.precision}",
        f"trainer.channels_last={channels_last}",
        *([f"trainer.eval_batch_size={args.eval_batch}"] if args.eval_batch else []),
    ]
    cfg = compose_run([*common, "variant=dsvdd_bias_noise"])
    geo_cfg = compose_run([*common, "variant=geo"])
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)
    seconds["cache load"], images = timed(device, lambda: build(cfg.dataset).load(progress=False))
    seconds["splits"], splits = timed(device, make_splits, cfg, images)
    cache_root = default_cache_root(cfg.dataset.get("cache_dir"))
    context = RunContext(cfg, images.image_size, device, cache_root, None)
    execution = context.execution
    execution.apply()
    if execution.data_on_device:  # as train.py: copied once, minibatches gathered on the device
        splits = splits.to(device)
    detector = build(cfg.method, context=context)
    geo = build(geo_cfg.method, context=RunContext(geo_cfg, images.image_size, device, cache_root, None))
    geo.alpha = torch.full((N_TRANSFORMS, N_TRANSFORMS), 2.0, dtype=torch.float64)  # as fitted; no training
    geo_split = head(splits.val, args.geo_rows)
    torch.manual_seed(0)
    network = build(dataclasses.asdict(ResNet18Config(bias=True, weights="none")))
    bare = NetworkSteps(network, execution, args.image_size, args.batch_size)
    timing = {"warmup": args.warmup, "min_steps": args.steps, "min_seconds": 0.0}  # --steps, however long
    train, val = splits.train, splits.val
    optimizer = detector._optimizer()
    rng = np.random.default_rng(0)

    rates = {key: [] for key in ("bare train", "bare eval", "epoch", "embed", "geo")}
    costs = {key: [] for key in ("begin", "checkpoint", "results")}
    ckpt_mb = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        detector.checkpoint = Checkpoint(Path(tmp))
        for epoch in range(1, args.rounds + 1):
            bare_rates = bare.rates(**timing)
            rates["bare train"].append(bare_rates["train"])
            rates["bare eval"].append(bare_rates["eval"])
            begin_s, progress = timed(device, detector._begin, train)
            costs["begin"].append(begin_s)
            rates["epoch"].append(len(train) / timed(device, detector._train_epoch, train, optimizer, rng, epoch)[0])
            embed_s, features = timed(device, detector.embed, val)
            rates["embed"].append(len(val) / embed_s)
            rates["geo"].append(N_TRANSFORMS * len(geo_split) / timed(device, geo._normality, geo_split, "bench")[0])
            detector.best_state = copy.deepcopy(detector.net.state_dict())  # as after a selected epoch
            costs["checkpoint"].append(timed(device, detector._save, epoch, optimizer, None, rng, progress)[0])
            ckpt_mb = detector.checkpoint.path.stat().st_size / 2**20
            scores = detector._scores(features, 0.0)
            costs["results"].append(timed(device, write_results, Path(tmp), detector, val, scores)[0])

    rate = {key: statistics.median(values) for key, values in rates.items()}
    seconds.update({key: statistics.median(values) for key, values in costs.items()})
    epoch_s = len(train) / rate["epoch"]
    print(f"device={device} ({device_name(device)}) torch_threads={torch.get_num_threads()} precision={execution.precision} "
          f"channels_last={execution.channels_last} image_size={images.image_size} batch={args.batch_size} "
          f"eval_batch={execution.eval_batch_size} data_on_device={execution.data_on_device}")
    print(f"rows: train={len(train)} val={len(val)} geo={len(geo_split)}x{N_TRANSFORMS}  "
          f"steps={args.steps} rounds={args.rounds}")
    print(f"\n{'throughput':<38}{'img/s':>10}{'ratio':>8}")
    table = [
        ("bare train step", "bare train", "bare train"),
        ("our epoch (_train_epoch)", "epoch", "bare train"),
        ("bare eval", "bare eval", "bare eval"),
        ("our eval (embed val)", "embed", "bare eval"),
        (f"GEO scoring (x{N_TRANSFORMS} transformed)", "geo", "bare eval"),
    ]
    for label, key, base in table:
        print(f"{label:<38}{rate[key]:>10.1f}{rate[key] / rate[base]:>8.3f}")
    print(f"\n{'fixed cost':<38}{'seconds':>10}{'/ epoch':>8}   (one epoch: {epoch_s:.2f} s)")
    labels = {"imports": "imports (fresh interpreter)", "cache load": "cache load", "splits": "splits",
              "begin": "BN calibration + c (_begin)", "checkpoint": f"checkpoint write ({ckpt_mb:.0f} MB, per epoch)",
              "results": "results (model.pt + scores.npz)"}
    for key, label in labels.items():
        print(f"{label:<38}{seconds[key]:>10.2f}{seconds[key] / epoch_s:>8.2f}")


if __name__ == "__main__":
    main()
