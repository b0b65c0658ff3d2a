"""Hydra's basic sweeper that launches every distinct run of a sweep once.

The paper's grids are Cartesian (`regularizer.k` x every variant, `objective` x the baselines, ...),
and keys a run does not read map to the same run folder (`dsvdd_repro.config.run_id`): Table VI's
CIFAR-10 sweep is 16,000 jobs but about 4,950 runs. The basic sweeper launches every job; each
duplicate then finds its folder taken and skips itself, but only after the launcher composed it
again and, with SLURM, after it took an array slot on the cluster. This sweeper composes each job
once (the basic sweeper composes every job too, to validate it before launching), keeps the first
job of each run identity and hands only those to the launcher. Everything else (`params`,
`max_batch_size`, the sweep folder, `multirun.yaml`) is the basic sweeper's.
"""

# No `from __future__ import annotations`: Hydra imports plugin modules without registering them in
# sys.modules, and dataclasses cannot resolve string annotations then.
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

log = logging.getLogger(__name__)


@dataclass
class DedupSweeperConf:
    _target_: str = "hydra_plugins.dsvdd_repro_sweeper.dedup_sweeper.DedupSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045 (OmegaConf's structured configs want Optional)
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(group="hydra/sweeper", name="dedup", node=DedupSweeperConf, provider="dsvdd_repro")


class _SkipEmptyBatches:
    """The sweep's launcher, not called for a batch left empty by deduplication (the submitit
    launcher cannot submit an empty array)."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        return self.launcher.launch(job_overrides, initial_job_idx) if job_overrides else []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.launcher, name)


class DedupSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[dict[str, str]] = None) -> None:  # noqa: UP045
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.seen: set[str] = set()
        self.n_jobs = 0

    def setup(self, **kwargs: Any) -> None:
        super().setup(**kwargs)
        self.launcher = _SkipEmptyBatches(self.launcher)

    def _run_identity(self, overrides: Sequence[str]) -> str:
        from dsvdd_repro.config import run_id

        config = self.hydra_context.config_loader.load_sweep_config(
            master_config=self.config, sweep_overrides=list(overrides)
        )
        return run_id(_root_=config)

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        """The next batch's jobs whose run was not launched before in this sweep (in grid order).
        A batch of duplicates only is passed over, unless it is the sweep's last."""
        while True:
            distinct = []
            for overrides in super().get_job_batch():
                self.n_jobs += 1
                identity = self._run_identity(overrides)
                if identity not in self.seen:
                    self.seen.add(identity)
                    distinct.append(overrides)
            if distinct or self.is_done():
                log.info("sweep: %d jobs so far are %d distinct runs; launching %d", self.n_jobs, len(self.seen),
                         len(distinct))
                return distinct

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> Any:
        """Nothing left to check: get_job_batch composed every job (a broken one raised there)."""
        return None
