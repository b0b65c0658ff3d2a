"""A scheduler's warning that a job is about to stop: SLURM's SIGTERM (preemption, `scontrol requeue`,
`scancel`) and submitit's SIGUSR2 (before the time limit, or sent on preemption).

The run processes of a SLURM job (hydra_plugins/dsvdd_repro_launcher) call `install()`: such a signal
then only notes that a stop is coming, the run writes its checkpoint at the end of the current epoch
whatever its interval (dsvdd_repro/storage/checkpoint.py) and goes on until the scheduler kills the job
(KillWait after SIGTERM, the time limit after SIGUSR2); the requeued job resumes from that
checkpoint. A local run installs nothing: `kill` stops it as usual.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)
_noted: list[str] = []


def install() -> None:
    for signum in SIGNALS:
        signal.signal(signum, _note)


def _note(signum: int, frame) -> None:
    name = signal.Signals(signum).name
    if not _noted:
        log.warning("%s received: the job is about to stop; the run writes its checkpoint after this epoch", name)
    _noted.append(name)


def requested() -> bool:
    """A stop was signalled to this process."""
    return bool(_noted)


# how long a requeued job's attempt waits for a run folder's lock: its previous attempt's run process
# may still be leaving (killed in uninterruptible I/O) when SLURM starts the next attempt
REQUEUED_LOCK_WAIT_S = 120.0


def lock_wait_s() -> float:
    """Seconds to wait for a run held by another process: REQUEUED_LOCK_WAIT_S in a requeued SLURM
    job (SLURM_RESTART_COUNT > 0), where the holder is this job's previous attempt; none elsewhere
    (another sweep runs it: skip it at once)."""
    return REQUEUED_LOCK_WAIT_S if int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0 else 0.0


def die_with_parent() -> None:
    """End this process (SIGKILL) as soon as the process that started it dies. A job's step killed
    outright (kill -9, out of memory) would otherwise leave its runs training as orphans that the
    scheduler no longer tracks (proctrack/linuxproc loses reparented processes), and a run reported
    failed could still finish and write `done` later. Linux only; elsewhere a no-op."""
    parent = multiprocessing.parent_process()
    if not sys.platform.startswith("linux") or parent is None:
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os._exit(1)
