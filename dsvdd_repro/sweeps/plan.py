"""The cost plan of a profile: `python -m dsvdd_repro.reproduce --profile P --plan` (`make plan PROFILE=P`).

Per experiment and in total: the distinct runs (each experiment's sweep expanded and deduplicated
exactly as `reproduce` launches it, without composing a config per job; runs an earlier experiment
already has, and runs already done in the runs folder, are not counted again), the work they imply
(dsvdd_repro/sweeps/cost.py: training and evaluation image-passes, GEO's transformed passes, shallow fits,
as each run's setup and method state them; a method that states none stops the plan before any
measurement) and its price on this device (dsvdd_repro/sweeps/calibration.py: measured once per device,
then cached): run-hours (the runs' time one after another) and the wall time with the launcher's
parallelism (its jobs scheduled in order onto its workers), plus each sweep's start (the process
and the expansion, both measured).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf

from dsvdd_repro.core.execution import Execution
from dsvdd_repro.data.anomalies import generator_params
from dsvdd_repro.runs.config import register_configs
from dsvdd_repro.runs.folders import RunDirError, finished_run, identity_of, run_folder_of, verified_memo
from dsvdd_repro.storage.atomic import atomic_write_bytes
from dsvdd_repro.sweeps.calibration import FIT_ROWS, Calibration, device_label
from dsvdd_repro.sweeps.cost import RunWork, data_here, run_work
from dsvdd_repro.sweeps.filter import validation_error


@dataclass
class ExperimentPlan:
    name: str
    runs: list[tuple[RunWork, float]] = field(default_factory=list)  # (work, estimated seconds) per run to do
    done: int = 0
    shared: int = 0  # runs another experiment of the plan already has
    invalid: int = 0
    # runs whose dataset is not on this machine: they fail fast, as missing cells; priced apart
    no_data: list[tuple[RunWork, float]] = field(default_factory=list)
    expand_seconds: float = 0.0
    wall_seconds: float = 0.0

    def total(self, attribute: str) -> int:
        return sum(getattr(work, attribute) for work, _ in self.runs)

    @property
    def run_seconds(self) -> float:
        return sum(seconds for _, seconds in self.runs)


def sweep_containers(name: str, profile: str, launcher: str, weights: str, runs_dir: Path, cache_root: Path):
    """((jobs at once, torch threads) of the launcher, [(status, run folder, resolved config as plain
    dicts)] of the experiment's distinct jobs): the grid sweeper's own expansion and validation, as
    `reproduce` runs them, kept in <cache root>/plan/sweeps/ under a hash of the package's code and
    config tree and the arguments (an expansion composes once per group combination, ~0.1 s each);
    whether a run is done is read from the runs folder every time."""
    arguments = [f"experiment={name}", f"profile={profile}", f"launcher={launcher}", f"profile.weights={weights}"]
    path = Path(cache_root) / "plan" / "sweeps" / f"{_sweep_key(arguments)}.json"
    try:  # JSON, not a pickle: a cache folder may be shared or received, and is read as data only
        cached = json.loads(path.read_text())
        launcher_info, expanded, seconds = tuple(cached["launcher"]), cached["expanded"], float(cached["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        tic = time.perf_counter()
        launcher_info, expanded = _expand(arguments, runs_dir)
        seconds = time.perf_counter() - tic  # what the sweep itself will spend expanding
        text = json.dumps({"launcher": launcher_info, "expanded": expanded, "seconds": seconds})
        atomic_write_bytes(path, text.encode(), durable=False)
    jobs = []
    for error, container in expanded:
        if error is not None:
            jobs.append(("invalid", None, None))
            continue
        run_identity = identity_of(container)
        folder = str(Path(runs_dir) / run_folder_of(container, run_identity))
        try:
            status = "done" if finished_run(Path(folder), run_identity, verified_memo()) else "run"
        except RunDirError:  # the folder holds another configuration's finished run
            status = "invalid"
        jobs.append((status, folder, container))
    return launcher_info, jobs, seconds


def checkpoints_written(epochs: int, seconds: float, trainer: dict) -> int:
    """How many of a run's `epochs` checkpoints it writes in `seconds` of work: every epoch's with
    trainer.checkpoint_every_s = 0, else the first and one per interval (dsvdd_repro/storage/checkpoint.py)."""
    every = float(trainer.get("checkpoint_every_s") or 0.0)
    return epochs if every <= 0 else min(epochs, 1 + int(seconds // every))


def _sweep_key(arguments: list[str]) -> str:
    """The package's code and config tree, the hydra plugins, the dataset roots the configs read, the arguments."""
    digest = hashlib.sha256(json.dumps(arguments).encode())
    for package in (Path(__file__).parent, Path(grid_sweeper_module().__file__).parent):
        for file in sorted(package.rglob("*")):
            if file.suffix in (".py", ".yaml"):
                digest.update(str(file.relative_to(package)).encode() + file.read_bytes())
    for variable in sorted(k for k in os.environ if k.startswith("DSVDD_") and k.endswith("_ROOT")):
        digest.update(f"{variable}={os.environ[variable]}".encode())
    return digest.hexdigest()[:24]


def grid_sweeper_module():
    from hydra_plugins.dsvdd_repro_sweeper import grid_sweeper

    return grid_sweeper


def _expand(arguments: list[str], runs_dir: Path) -> tuple[tuple[int, int | None], list]:
    """The sweeper's distinct jobs as (validation error or None, resolved config or None)."""
    with initialize_config_module(config_module="dsvdd_repro.conf", version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        arguments = [*arguments, f"hydra.sweep.dir={runs_dir}"]
        master = loader.load_configuration("config", arguments, run_mode=RunMode.MULTIRUN)
        node = OmegaConf.to_container(master.hydra.sweeper, resolve=False)
        sweeper = grid_sweeper_module().GridSweeper(params=node.get("params"), restrict=node.get("restrict"),
                                                    exclude=node.get("exclude"))
        sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
        sweeper.config = master
        _, jobs = sweeper.prepare(arguments)
        expanded = []
        for job in jobs:
            error = job.error or validation_error(job)
            expanded.append((error, None if error else job.container()))
        return launcher_workers(master), expanded


class Pricer:
    """Estimated seconds of a run's work from the calibration's measured rates: `tasks` names the
    measurements a run needs, `seconds` prices it once they are measured."""

    def __init__(self, calibration: Calibration, device: torch.device):
        self.calibration, self.device = calibration, device
        self.features_seen: set[str] = set()

    def _network(self, c: dict, work: RunWork, kind: str = "network") -> dict:
        execution = Execution.resolve(SimpleNamespace(**c["trainer"]), self.device)
        # the model option's default network, random initialisation: its keys (bias, pooling) change
        # its cost by a few percent at most
        return {"kind": kind, "model": {"_target_": c["model"]["_target_"], "weights": "none"},
                "image_size": work.network[1], "batch": int(c["trainer"]["batch_size"]),
                "eval_batch": execution.eval_batch_size, "precision": execution.precision,
                "channels_last": execution.channels_last}

    def _generator(self, c: dict) -> dict:
        anomaly = c["anomaly"]
        return {"kind": "generator", "name": anomaly["name"], "params": generator_params(anomaly),
                "image_size": int(c["dataset"]["image_size"])}

    def tasks(self, c: dict, work: RunWork) -> list[dict]:
        tasks = []
        if work.network is not None:
            tasks.append(self._network(c, work))
            if work.pretrain:
                tasks.append(self._network(c, work, "autoencoder"))
        if work.altered:
            tasks.append(self._generator(c))
        if work.fits:
            tasks.append({"kind": "fit", "name": work.shallow})
        return tasks

    def seconds(self, c: dict, work: RunWork) -> float:
        get = self.calibration.get
        total = 0.0
        if work.network is not None:
            rates = get(self._network(c, work))
            passes = work.train / rates["train"] + work.eval / rates["eval"]
            if work.pretrain:
                passes += work.pretrain / get(self._network(c, work, "autoencoder"))["pretrain"]
            total += passes + checkpoints_written(work.checkpoints, passes, c["trainer"]) * rates["checkpoint_seconds"]
            if work.features_key in self.features_seen:
                work.feature_eval = 0  # the feature cache computed them for an earlier run
            elif work.features_key is not None:
                self.features_seen.add(work.features_key)
                total += work.feature_eval / rates["eval"]
        if work.altered:
            total += work.altered / get(self._generator(c))["altered"]
        if work.fits:
            fit = get({"kind": "fit", "name": work.shallow})["fit_seconds"]
            total += work.fits * fit * (work.fit_rows / FIT_ROWS) ** work.fit_power
        return total


def launcher_workers(master) -> tuple[int, int | None]:
    """(jobs at once, torch threads per job) of the master config's launcher."""
    target = str(master.hydra.launcher.get("_target_", ""))
    threads = master.trainer.get("num_threads")
    if "joblib" in target:
        workers = int(master.hydra.launcher.n_jobs)
    elif "submitit" in target.lower():
        workers = int(master.hydra.launcher.get("array_parallelism") or 1)
    else:
        workers = 1
    return workers, threads


def schedule(seconds: list[float], workers: int) -> float:
    """Wall time of jobs started in order, each on the first free worker."""
    if workers <= 1:
        return sum(seconds)
    free = [0.0] * workers
    for duration in seconds:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def make_plan(profile: str, experiments: list[str], launcher: str, weights: str, runs_dir: Path, cache_root: Path,
              recalibrate: bool = False) -> tuple[list[ExperimentPlan], dict]:
    register_configs()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    plans, seen, pending, launcher_info = [], set(), [], (1, None)
    for name in experiments:
        launcher_info, jobs, expand_seconds = sweep_containers(name, profile, launcher, weights, runs_dir, cache_root)
        plan = ExperimentPlan(name, expand_seconds=expand_seconds)
        for status, folder, container in jobs:
            if status == "invalid":
                plan.invalid += 1
            elif folder in seen:
                plan.shared += 1
            elif status == "done":
                plan.done += 1
                seen.add(folder)
            else:
                seen.add(folder)
                pending.append((plan, container, run_work(container), data_here(container)))
        plans.append(plan)
    workers, threads = launcher_info
    if device.type == "cpu":  # jobs at once on this machine: at most one per core
        workers = min(workers, os.cpu_count() or 1)
    calibration = Calibration(cache_root, str(device), threads, workers, recalibrate)
    pricer = Pricer(calibration, device)
    calibration.measure([{"kind": "startup"}] + [task for _, c, work, _ in pending for task in pricer.tasks(c, work)])
    for plan, container, work, here in pending:
        (plan.runs if here else plan.no_data).append((work, pricer.seconds(container, work)))
    for plan in plans:
        plan.wall_seconds = schedule([seconds for _, seconds in plan.runs], workers)
    info = {"workers": workers, "threads": threads or torch.get_num_threads(), "device": device_label(str(device)),
            "calibration": calibration, "startup": calibration.get({"kind": "startup"})["startup"]}
    return plans, info


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def render(plans: list[ExperimentPlan], info: dict, profile: str, launcher: str, weights: str) -> str:
    """The plan as a Markdown table with a header naming the device and the calibration."""
    lines = [
        f"Cost plan: profile {profile}, launcher {launcher} ({info['workers']} job(s) at once, {info['threads']} torch "
        f"thread(s) each), weights {weights}, on {info['device']}",
        "",
        "| experiment | runs to do | done | shared | invalid | no data here | train img-passes | eval img-passes "
        "| GEO transformed | shallow fits | run-hours | wall hours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    total_wall = 0.0
    for plan in plans:
        wall = plan.wall_seconds + info["startup"] + plan.expand_seconds
        total_wall += wall
        lines.append(
            f"| {plan.name} | {len(plan.runs)} | {plan.done} | {plan.shared} | {plan.invalid} | {len(plan.no_data)} | "
            f"{_count(plan.total('train') + plan.total('pretrain'))} | "
            f"{_count(plan.total('eval') + sum(w.feature_eval for w, _ in plan.runs))} | {_count(plan.total('geo'))} | "
            f"{plan.total('fits')} | {plan.run_seconds / 3600:.2f} | {wall / 3600:.2f} |"
        )
    run_hours = sum(plan.run_seconds for plan in plans) / 3600
    lines.append(
        f"| **total** | {sum(len(p.runs) for p in plans)} | {sum(p.done for p in plans)} | "
        f"{sum(p.shared for p in plans)} | {sum(p.invalid for p in plans)} | {sum(len(p.no_data) for p in plans)} | "
        f"{_count(sum(p.total('train') + p.total('pretrain') for p in plans))} | "
        f"{_count(sum(p.total('eval') + sum(w.feature_eval for w, _ in p.runs) for p in plans))} | "
        f"{_count(sum(p.total('geo') for p in plans))} | {sum(p.total('fits') for p in plans)} | "
        f"{run_hours:.2f} | {total_wall / 3600:.2f} |"
    )
    calibration = info["calibration"]
    missing = [seconds for p in plans for _, seconds in p.no_data]
    wall = f"{total_wall / 60:.0f} min" if total_wall < 7200 else f"{total_wall / 3600:,.1f} hours"
    lines += ["", f"Estimate: {wall} wall ({run_hours:,.2f} run-hours on this device; each sweep's "
              f"start {info['startup']:.1f} s + its expansion)."]
    if missing:
        lines.append(f"Not counted above: {len(missing)} runs whose dataset is not on this machine (they fail fast as "
                     f"missing cells); with their data here they would add {sum(missing) / 3600:,.2f} run-hours.")
    lines += [
              f"Calibration: {calibration.path} ({'measured now: ' + ', '.join(sorted(set(calibration.measured))) if calibration.measured else 'cached'}); "
              f"rates per network: " + "; ".join(_rates(calibration))]
    return "\n".join(lines)


def _rates(calibration: Calibration) -> list[str]:
    out = []
    for key in sorted(calibration.used):
        entry = calibration.entries[key]
        if "train" not in entry:
            continue
        task = json.loads(key[len(calibration.prefix) + 3:])
        model = task["model"]["_target_"].rsplit(".", 1)[-1]
        out.append(f"{model} {task['image_size']} px batch {task['batch']}: train {entry['train']:.0f} img/s, "
                   f"eval {entry['eval']:.0f} img/s")
    return out
