"""Measured rates of this device, the cost plan's prices (dsvdd_repro/sweeps/plan.py), cached per device.

Each entry is a short timed pass of the real thing on random uint8 images: the network built from
its config node (random initialisation) with the run's execution settings (dsvdd_repro/core/execution.py):
its training step (forward, a float32 loss, backward, Adam) at the run's batch size, its evaluation
forward at the evaluation batch, the autoencoder's step for pretraining, writing a checkpoint of
its network and optimiser, and the anomaly generators; the shallow models fitted on random features.
The network's steps and their timing (`NetworkSteps`, `steps_per_second`) are the ones
scripts/bench_throughput.py compares our epochs with.
Timed in as many processes at once as the launcher runs jobs (joblib: 2 on this machine), each
with the launcher's torch threads, so that the rates are those the runs will see. Entries are
cached in <cache root>/plan/calibration.json under the device, threads, parallelism and torch
version; `--recalibrate` measures again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dsvdd_repro.core.execution import Execution, device_name

MIN_SECONDS = 1.5  # each timed loop runs at least this long (after warm-up) ...
MIN_STEPS = 3  # ... and at least this many steps
FIT_ROWS = 1000  # the shallow models' calibration size (OC-SVM cost then scales as rows^2)
FIT_DIM = 128


def device_label(device: str) -> str:
    """The device as the plan names it (and keys its measurements): the GPU, or the CPU with its count."""
    name = device_name(device)
    return name if device.startswith("cuda") else f"{name} ({os.cpu_count()} CPUs)"


def steps_per_second(step: Callable[[], object], items_per_step: int, sync: Callable[[], object], warmup: int = 1,
                     min_steps: int = MIN_STEPS, min_seconds: float = MIN_SECONDS) -> float:
    """Items per second of `step` after `warmup` untimed steps, over at least `min_steps` steps and
    `min_seconds` (`sync` waits for the device's queued work)."""
    for _ in range(warmup):
        step()
    sync()
    n, start = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - start < min_seconds:
        step()
        n += 1
    sync()
    return n * items_per_step / (time.perf_counter() - start)


class NetworkSteps:
    """A network's bare steps under an execution's settings, on random uint8 images already on the
    device: `train_step` (forward, the float32 loss sum(phi^2).mean(), backward, Adam) at `batch`
    and `eval_step` (eval mode, no gradients) at the execution's evaluation batch; `rates()` times
    both in images/s. What the plan's calibration prices a run's passes with, and what
    scripts/bench_throughput.py compares our real epoch and evaluation to."""

    def __init__(self, net: nn.Module, execution: Execution, image_size: int, batch: int, lr: float = 1e-6):
        self.execution, self.batch = execution, batch
        self.net = execution.module(net)
        shape = (max(batch, execution.eval_batch_size), 3, image_size, image_size)
        self.images = execution.inputs(torch.randint(0, 256, shape, dtype=torch.uint8))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=5e-4)
        cuda = execution.device.type == "cuda"
        self.sync = (lambda: torch.cuda.synchronize(execution.device)) if cuda else (lambda: None)

    def train_step(self) -> None:
        self.net.train()
        with self.execution.autocast():
            features = self.net(self.images[: self.batch])
        loss = features.float().pow(2).sum(dim=1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def eval_step(self) -> None:
        self.net.eval()
        with self.execution.autocast():
            self.net(self.images[: self.execution.eval_batch_size]).float()

    def rates(self, **timing) -> dict:
        """{"train", "eval"} images/s (`timing`: steps_per_second's warmup, min_steps, min_seconds)."""
        return {"train": steps_per_second(self.train_step, self.batch, self.sync, **timing),
                "eval": steps_per_second(self.eval_step, self.execution.eval_batch_size, self.sync, **timing)}


def _network_rates(task: dict) -> dict:
    """One process's timed passes of one network (a task of `measure`)."""
    from dsvdd_repro.core.schema import build, with_node_defaults
    from dsvdd_repro.runs.config import register_configs

    register_configs()  # a fresh process: the nodes whose defaults complete the task's model

    if task["threads"]:
        torch.set_num_threads(task["threads"])
    execution = Execution(torch.device(task["device"]), precision=task["precision"],
                          channels_last=task["channels_last"], eval_batch_size=task["eval_batch"])
    torch.manual_seed(0)
    steps = NetworkSteps(build(with_node_defaults("model", task["model"])), execution, task["image_size"], task["batch"])
    net, images, batch = steps.net, steps.images, steps.batch
    if task["kind"] == "autoencoder":  # the pretraining step: the network as encoder, its decoder
        decoder = execution.module(net.decoder())
        ae_optimizer = torch.optim.Adam([*net.parameters(), *decoder.parameters()], lr=1e-6)

        def pretrain_step():
            inputs = net.inputs(images[:batch])
            error = ((decoder(net.encode(inputs)) - inputs) ** 2).flatten(1).sum(dim=1).mean()
            ae_optimizer.zero_grad(set_to_none=True)
            error.backward()
            ae_optimizer.step()

        return {"pretrain": steps_per_second(pretrain_step, batch, steps.sync)}
    rates = steps.rates()
    with tempfile.TemporaryDirectory() as folder:  # a checkpoint: network, optimiser, best state
        state = {"net": net.state_dict(), "optimizer": steps.optimizer.state_dict(), "best": net.state_dict()}
        path = Path(folder) / "checkpoint.pt"
        start = time.perf_counter()
        torch.save(state, path)
        rates["checkpoint_seconds"] = time.perf_counter() - start
    return rates


def _generator_rate(task: dict) -> dict:
    from dsvdd_repro.data.anomalies import make_generator

    images = torch.randint(0, 256, (64, 3, task["image_size"], task["image_size"]), dtype=torch.uint8)
    keys = np.arange(64)
    generator = make_generator(task["name"], **task["params"])
    return {"altered": steps_per_second(lambda: generator(images, keys, seed=0, split="test"), 64, lambda: None)}


def _fit_seconds(task: dict) -> dict:
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    x = np.random.default_rng(0).standard_normal((FIT_ROWS, FIT_DIM)).astype(np.float32)
    start = time.perf_counter()
    if task["name"] == "ocsvm":  # one grid point, fitted and scoring its rows
        OneClassSVM(kernel="rbf", nu=0.1, gamma=1.0 / FIT_DIM, cache_size=500).fit(x).decision_function(x)
    else:
        IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x).score_samples(x)
    return {"fit_seconds": time.perf_counter() - start}


def _startup_seconds(task: dict) -> dict:
    """A sweep's process start: Python, torch and the package imported."""
    import subprocess
    import sys

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dsvdd_repro.train"], check=True)
    return {"startup": time.perf_counter() - start}


KINDS = {"network": _network_rates, "autoencoder": _network_rates, "generator": _generator_rate, "fit": _fit_seconds,
         "startup": _startup_seconds}


def _run_all(tasks: list[dict]) -> list[dict]:
    """One process's measurements of `tasks`, in order (every process of a parallel calibration runs
    the same list, so that the same task runs in all of them at about the same time)."""
    return [KINDS[task["kind"]](task) for task in tasks]


class Calibration:
    """The cached measurements of one device setting: `get(task)` measures a task once."""

    def __init__(self, cache_root: Path, device: str, threads: int | None, parallel: int, recalibrate: bool = False):
        self.path = Path(cache_root) / "plan" / "calibration.json"
        self.device, self.threads, self.parallel = device, threads, max(1, parallel)
        self.prefix = (f"{device_label(device)} | {threads or torch.get_num_threads()} threads x {self.parallel} "
                       f"at once | torch {torch.__version__}")
        self.entries = {} if recalibrate or not self.path.is_file() else json.loads(self.path.read_text())
        self.measured: list[str] = []
        self.used: set[str] = set()  # the entries a plan priced with

    def key(self, task: dict) -> str:
        return f"{self.prefix} | {json.dumps({**task, 'device': self.device, 'threads': self.threads}, sort_keys=True)}"

    def measure(self, tasks: list[dict]) -> None:
        """Measure the tasks not measured yet: in `parallel` processes at once (the rates each of the
        launcher's jobs sees), the process start alone."""
        missing = list({self.key(task): {**task, "device": self.device, "threads": self.threads}
                        for task in tasks if self.key(task) not in self.entries}.items())
        if not missing:
            return
        timed = [(key, task) for key, task in missing if task["kind"] != "startup"]
        if timed:
            with multiprocessing.get_context("spawn").Pool(self.parallel) as pool:
                per_process = pool.map(_run_all, [[task for _, task in timed]] * self.parallel)
            for i, (key, _) in enumerate(timed):
                results = [process[i] for process in per_process]
                self.entries[key] = {name: float(np.mean([r[name] for r in results])) for name in results[0]}
        for key, task in missing:
            if task["kind"] == "startup":
                self.entries[key] = _startup_seconds(task)
        self.measured = sorted({task["kind"] for _, task in missing})
        self._save()

    def get(self, task: dict) -> dict:
        self.used.add(self.key(task))
        return self.entries[self.key(task)]

    def _save(self) -> None:
        from dsvdd_repro.storage.atomic import atomic_write_bytes

        atomic_write_bytes(self.path, json.dumps(self.entries, indent=1, sort_keys=True).encode())
