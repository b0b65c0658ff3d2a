"""Job states for submitit on clusters without accounting.

submitit asks `sacct` for the state of a sweep's jobs. A cluster without accounting storage answers
every call with an error (submitit logs a warning per poll) and no state, so a job that dies
without writing its result (killed outright, `scancel`) stays UNKNOWN and the sweep waits for it
forever. `QueueWatcher` asks `sacct` once; when accounting is disabled it asks `squeue` instead
(every array task on its own line, `--states=all` to see jobs that ended within MinJobAge), and a
job that `squeue` no longer lists has left the queue: it counts as ended, so submitit then reads its
result, or reports in bounded time (its 15 s result timeout) that it produced none.
"""

from __future__ import annotations

import logging
import subprocess
import time

from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger(__name__)

# a state submitit's is_done does not count as incomplete
LEFT_THE_QUEUE = "ENDED_NOT_LISTED"
# the states in which a job is over for good; squeue also shows transient ones submitit does not know
# (CONFIGURING, REQUEUE_FED, REQUEUE_HOLD, SIGNALING, ...: a requeued job passes through them) and
# would take for ended, so every other state is reported to it as RUNNING
TERMINAL = frozenset(("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                      "DEADLINE", "SPECIAL_EXIT", "REVOKED", LEFT_THE_QUEUE))


def accounting_works() -> bool:
    try:
        done = subprocess.run(["sacct", "--noheader", "-j", "1"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "disabled" not in done.stderr.lower()


def parse_squeue(text: str) -> dict[str, dict[str, str]]:
    """`squeue --noheader --array --format=%i|%T` lines -> {job id: {"JobID", "State" (as submitit
    reads it: terminal states as they are, others RUNNING), "squeue" (the state squeue gave)}}."""
    info = {}
    for line in text.splitlines():
        if "|" in line:
            job_id, state = (part.strip() for part in line.split("|", 1))
            info[job_id] = {"JobID": job_id, "State": state if state in TERMINAL else "RUNNING", "squeue": state}
    return info


class QueueWatcher(SlurmInfoWatcher):
    """submitit's SLURM watcher, with `squeue` where `sacct` does not work (see the module docstring)."""

    def __init__(self, delay_s: int = 60) -> None:
        super().__init__(delay_s)
        self.accounting: bool | None = None  # asked on the first update

    def update(self) -> None:
        if self.accounting is None:
            self.accounting = accounting_works()
            if not self.accounting:
                log.info("sacct does not answer (no accounting storage): job states come from squeue")
        if self.accounting:
            super().update()
            return
        pending = self._registered - self._finished
        if not pending:
            return
        self._num_calls += 1
        ids = sorted({job_id.split("_")[0] for job_id in pending})
        command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", "--jobs", ",".join(ids)]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.warning("squeue failed (%s): job states not updated", error)
            return
        # squeue exits 1 when none of the ids is known any more (all purged): they all left the queue
        if out.returncode != 0 and "invalid job id" not in out.stderr.lower():
            log.warning("squeue failed (%s): job states not updated", out.stderr.strip().splitlines()[:1])
            return
        info = parse_squeue(out.stdout)
        for job_id in pending:
            info.setdefault(job_id, {"JobID": job_id, "State": LEFT_THE_QUEUE})
        self._info_dict.update(info)
        self._last_status_check = time.time()
        for job_id in pending:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)
