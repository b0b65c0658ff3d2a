"""Several runs sharing one GPU: hydra-submitit-launcher's SLURM (and local) launcher with
`runs_per_job`, the number of a sweep's runs packed into one job of the array, and status polling
that works on clusters without accounting (`slurm_watcher.py`).

A 32 px ResNet-18 run at batch 50 leaves most of a modern GPU idle; packing N runs per job runs them
at once, each in its own process (its own CUDA context, torch threads from `trainer.num_threads`),
on the job's one GPU. Each run has its own process also with runs_per_job=1 (a job of one run). A run's own failure is its status (as
with one run per job); a run whose process dies (killed, out of memory) is reported failed without
taking the other runs of its job with it. A job that SLURM interrupts is requeued with all its runs:
on preemption or `scontrol requeue` by SLURM itself (SIGTERM, then SIGKILL after KillWait), on the
time limit by submitit (SIGUSR2 some seconds before, then the launcher's checkpoint()); the runs
write their checkpoint when signalled and resume from it; the runs that had finished are skipped
(their folders hold their finished runs).
"""

# No `from __future__ import annotations`: OmegaConf reads the structured config's annotations.
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence  # noqa: UP035 (OmegaConf's structured configs)

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

try:  # the `slurm` extra; without it this plugin registers nothing
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
except ImportError:  # pragma: no cover
    SlurmLauncher = None


def _run_one(payload: bytes) -> bytes:
    """One run of a pack, in its own process: (launcher, submitit job parameters) in, its JobReturn
    out, both cloudpickled (the JobReturn's config holds this plugin's structured config classes,
    which Hydra imports outside sys.modules: plain pickle cannot name them). SLURM's SIGTERM and
    submitit's SIGUSR2 reach this process too: they only make the run checkpoint after its epoch
    (dsvdd_repro/storage/preemption.py), so that the kill that follows them takes the whole job at once and
    SLURM requeues it, instead of this process dying alone and its pack reporting a failed run. If the
    job's own process dies (its step killed), this one dies with it instead of training on untracked."""
    import cloudpickle

    from dsvdd_repro.storage import preemption

    preemption.install()
    preemption.die_with_parent()
    launcher, params = cloudpickle.loads(payload)
    return cloudpickle.dumps(launcher(*params))


class Pack:
    """The callable of one job: its runs at once, one process each; submitit's checkpoint() requeues it."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def __call__(self, pack: list[tuple]) -> list[JobReturn]:
        import cloudpickle

        context = multiprocessing.get_context("spawn")  # a fresh process per run (CUDA cannot fork)
        with ProcessPoolExecutor(len(pack), mp_context=context) as pool:
            futures = [pool.submit(_run_one, cloudpickle.dumps((self.launcher, params))) for params in pack]
            results = []
            for params, future in zip(pack, futures, strict=True):
                try:
                    results.append(cloudpickle.loads(future.result()))
                except Exception as error:  # the run's process died: this run failed, not its pack
                    log.error("run %s: its process died: %s", " ".join(params[0]), error)
                    results.append(JobReturn(overrides=list(params[0]), status=JobStatus.FAILED, _return_value=error))
        return results

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _results(job: Any, pack: list[tuple]) -> list[JobReturn]:
    """The JobReturns of a job's runs; a job that ended without them (cancelled, its step killed, out
    of requeues) fails each of its runs in one line instead of ending the sweep with a traceback:
    the sweeper reports them failed and a relaunch runs them again (from their checkpoints)."""
    try:
        return job.results()[0]
    except Exception as error:  # submitit's UncompletedJobError, or the error the job raised
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        log.error("job %s ended without results (%s): its %d run(s) failed", job.job_id, first, len(pack))
        return [JobReturn(overrides=list(params[0]), status=JobStatus.FAILED, _return_value=error) for params in pack]


class PackedMixin:
    """`launch` packing `runs_per_job` runs into each job of the array (1: the stock launcher)."""

    def __init__(self, runs_per_job: int = 1, **params: Any) -> None:
        super().__init__(**params)
        if runs_per_job < 1:
            raise ValueError(f"hydra.launcher.runs_per_job={runs_per_job!r} (must be >= 1)")
        self.runs_per_job = runs_per_job

    def executor(self) -> Any:
        """The submitit executor with the launcher's parameters (as the stock launcher sets them)."""
        import submitit

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=self.params["submitit_folder"],
                                         **{f"{self._EXECUTOR}_max_num_timeout": self.params["max_num_timeout"]}
                                         if "max_num_timeout" in self.params else {})
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{key if key in shared else f"{self._EXECUTOR}_{key}": value
                                      for key, value in self.params.items() if key not in init_keys})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        # every job runs its runs in processes of their own, runs_per_job=1 included: one way to
        # survive a scheduler's signals (see _run_one)
        state = Singleton.get_state()
        params = []
        for index, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", index, " ".join(filter_overrides(overrides)))
            params.append((list(overrides), "hydra.sweep.dir", index, f"job_id_for_{index}", state))
        packs = [params[i : i + self.runs_per_job] for i in range(0, len(params), self.runs_per_job)]
        log.info("submitit '%s': %d runs in %d jobs of up to %d runs each", self._EXECUTOR, len(params), len(packs),
                 self.runs_per_job)
        jobs = self.executor().map_array(Pack(self), packs)
        return [result for job, pack in zip(jobs, packs, strict=True) for result in _results(job, pack)]


if SlurmLauncher is not None:

    class PackedSlurmLauncher(PackedMixin, SlurmLauncher):
        def executor(self) -> Any:
            import submitit

            from hydra_plugins.dsvdd_repro_launcher.slurm_watcher import QueueWatcher

            # the class attribute every SlurmJob of this process polls through (submitit has no other hook)
            if not isinstance(submitit.slurm.slurm.SlurmJob.watcher, QueueWatcher):
                submitit.slurm.slurm.SlurmJob.watcher = QueueWatcher(delay_s=60)
            return super().executor()

    class PackedLocalLauncher(PackedMixin, LocalLauncher):
        pass

    @dataclass
    class PackedSlurmConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.dsvdd_repro_launcher.packed_launcher.PackedSlurmLauncher"
        # runs of the sweep per job (per GPU), at once: 1 = one run per job
        runs_per_job: int = 1

    @dataclass
    class PackedLocalConf(LocalQueueConf):
        _target_: str = "hydra_plugins.dsvdd_repro_launcher.packed_launcher.PackedLocalLauncher"
        runs_per_job: int = 1

    ConfigStore.instance().store(group="hydra/launcher", name="packed_slurm", node=PackedSlurmConf,
                                 provider="dsvdd_repro")
    ConfigStore.instance().store(group="hydra/launcher", name="packed_local", node=PackedLocalConf,
                                 provider="dsvdd_repro")
