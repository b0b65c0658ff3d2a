"""Which jobs of a sweep the launcher gets (`hydra.sweeper.job_filter` in conf/config.yaml).

The grid sweeper (hydra_plugins/dsvdd_repro_sweeper) calls `classify(job)` for each distinct job
before launching anything: "invalid" (validate() refuses its config, or its run folder holds a
finished run of another configuration), "done" (its run folder holds its finished run: relaunching a
sweep runs only what is missing) or "run". It decides exactly as `train.run` would, without composing
each job: Table VI's 4,950 CIFAR-10 jobs are classified in seconds.

- The run folder is `hydra.sweep.dir` / run_folder(config): runs/folders.py's identity_of() and
  run_folder_of() on the job's resolved config as plain dicts (`job.container()`), the functions
  behind runs.identity() and runs.run_folder() themselves.
- validate() runs on the exact task config, once per distinct value of the nodes it checks: its
  result is remembered per composition and swept values of those nodes, so Table VI's 5 seeds are
  validated once (an error of a root value such as `seed` is not shared; see validation_error).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dsvdd_repro.core.schema import NODE_GROUPS, ConfigError
from dsvdd_repro.models.weights import WeightsError
from dsvdd_repro.runs.config import validate
from dsvdd_repro.runs.folders import RunDirError, finished_run, identity_of, run_folder_of, verified_memo

log = logging.getLogger(__name__)

# the nodes validate() reads: a swept value outside them (seed, data_seed) does not change its result
VALIDATED = frozenset((*NODE_GROUPS, "trainer", "profile"))


def classify(job: Any) -> tuple[str, str]:
    """("invalid", the one-line reason) | ("done", run folder) | ("run", run folder) for a grid
    sweeper's SweepJob (hydra_plugins/dsvdd_repro_sweeper/grid_sweeper.py)."""
    error = validation_error(job)
    if error is not None:
        return "invalid", error
    folder, run_identity = job_run_folder(job)
    run_dir = Path(job.sweep_dir()) / folder
    try:
        if finished_run(run_dir, run_identity, verified_memo()):
            return "done", str(run_dir)
    except RunDirError as error:
        return "invalid", str(error)
    return "run", str(run_dir)


def validation_error(job: Any) -> str | None:
    """validate()'s one-line message for the job's task config, or None.

    Remembered per composition and swept values of the nodes validate() checks (VALIDATED): an error
    of such a node is the same for every job with those values; "valid" is too, but for a swept root
    value validate() may refuse (a `seed` out of range), which the job itself then reports. An error
    of a root value (`seed`) is not shared: each such job is validated on its own."""
    key = None
    if job.changes is not None:
        key = ("validate", tuple((c.key, c.value) for c in job.changes if c.key.split(".", 1)[0] in VALIDATED))
        if key in job.memo:
            return job.memo[key]
    with job.config(task=True) as cfg:
        try:
            validate(cfg)
            error, shared = None, True
        except (ConfigError, WeightsError) as e:
            error = str(e)
            shared = isinstance(e, WeightsError) or str(e.key).split(".", 1)[0] in VALIDATED
    if key is not None and shared:
        job.memo[key] = error
    return error


def job_run_folder(job: Any) -> tuple[str, dict]:
    """(run folder below hydra.sweep.dir, identity) of the job, computed by runs/folders.py on its resolved
    config as plain containers (OmegaConf's DictConfig path costs 1.5 ms a job)."""
    container = job.container()
    run_identity = identity_of(container)
    return run_folder_of(container, run_identity), run_identity
