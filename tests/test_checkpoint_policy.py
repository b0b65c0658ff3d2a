"""When a run writes its checkpoint: every `every_s` seconds, after every epoch at 0, at once after a
scheduler's stop signal (dsvdd_repro/storage/preemption.py)."""

import os
import signal

import pytest

from dsvdd_repro.storage import preemption
from dsvdd_repro.storage.checkpoint import Checkpoint


@pytest.fixture(autouse=True)
def _no_signal_noted(monkeypatch):
    monkeypatch.setattr(preemption, "_noted", [])


def test_an_interval_of_zero_checkpoints_every_epoch(tmp_path):
    assert Checkpoint(tmp_path, 0.0).due()


def test_an_interval_waits_for_its_seconds(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("dsvdd_repro.storage.checkpoint.time.monotonic", lambda: clock[0])
    checkpoint = Checkpoint(tmp_path, 300.0)
    assert not checkpoint.due()
    clock[0] += 299.0
    assert not checkpoint.due()
    clock[0] += 1.0
    assert checkpoint.due()
    checkpoint.save("svdd", {"epoch": 3})
    assert not checkpoint.due() and checkpoint.load("svdd")["epoch"] == 3


def test_a_stop_signal_makes_it_due_at_once_and_does_not_stop_the_process(tmp_path):
    checkpoint = Checkpoint(tmp_path, 3600.0)
    previous = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    try:
        preemption.install()
        assert not checkpoint.due()
        os.kill(os.getpid(), signal.SIGTERM)  # still running: only noted
        assert preemption.requested() and checkpoint.due()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_no_folder_never_checkpoints():
    assert not Checkpoint(None, 0.0).due()


def test_the_interval_is_validated_and_is_an_execution_key():
    from dsvdd_repro.core.execution import EXECUTION_KEYS
    from dsvdd_repro.core.schema import ConfigError
    from dsvdd_repro.runs.config import TrainerConfig

    assert "trainer.checkpoint_every_s" in EXECUTION_KEYS  # a finished run is found whatever the interval
    with pytest.raises(ConfigError, match="checkpoint_every_s"):
        TrainerConfig(checkpoint_every_s=-1.0)


def test_the_plan_prices_the_checkpoints_the_interval_writes():
    from dsvdd_repro.sweeps.plan import checkpoints_written

    assert checkpoints_written(31, 1000.0, {"checkpoint_every_s": 0}) == 31  # every epoch
    assert checkpoints_written(31, 1000.0, {"checkpoint_every_s": 300}) == 4  # the first, then 3 intervals
    assert checkpoints_written(31, 10.0, {"checkpoint_every_s": 300}) == 1
    assert checkpoints_written(3, 1e6, {"checkpoint_every_s": 300}) == 3  # never more than the epochs


def _orphan_probe(pid_file: str) -> None:
    """A pack's run process: dies with its parent, else it would outlive it (sleeps a minute)."""
    import time
    from pathlib import Path

    preemption.die_with_parent()
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def _pack_process(pid_file: str) -> None:
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_orphan_probe, args=(pid_file,))
    child.start()
    child.join()


@pytest.mark.slow
def test_a_run_process_dies_with_its_job_process(tmp_path):
    """kill -9 of a SLURM job's step kills its run processes too (no untracked orphan goes on
    training and writes `done` for a run the sweep reported failed)."""
    import multiprocessing
    import time
    from pathlib import Path

    pid_file = tmp_path / "child.pid"
    pack = multiprocessing.get_context("spawn").Process(target=_pack_process, args=(str(pid_file),))
    pack.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and pack.is_alive()
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(pack.pid, signal.SIGKILL)
    pack.join()

    def alive() -> bool:
        try:
            return Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while alive():
        assert time.monotonic() < deadline, "the run process outlived its job process"
        time.sleep(0.1)
