"""When a run writes its checkpoint: every `every_s` seconds, after every epoch at 0, at once after a
scheduler's stop signal (dsvdd_repro/preemption.py)."""

import os
import signal

import pytest

from dsvdd_repro import preemption
from dsvdd_repro.checkpoint import Checkpoint


@pytest.fixture(autouse=True)
def _no_signal_noted(monkeypatch):
    monkeypatch.setattr(preemption, "_noted", [])


def test_an_interval_of_zero_checkpoints_every_epoch(tmp_path):
    assert Checkpoint(tmp_path, 0.0).due()


def test_an_interval_waits_for_its_seconds(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("dsvdd_repro.checkpoint.time.monotonic", lambda: clock[0])
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
    from dsvdd_repro.config import EXECUTION_KEYS, TrainerConfig
    from dsvdd_repro.schema import ConfigError

    assert "trainer.checkpoint_every_s" in EXECUTION_KEYS  # a finished run is found whatever the interval
    with pytest.raises(ConfigError, match="checkpoint_every_s"):
        TrainerConfig(checkpoint_every_s=-1.0)


def test_the_plan_prices_the_checkpoints_the_interval_writes():
    from dsvdd_repro.plan import checkpoints_written

    assert checkpoints_written(31, 1000.0, {"checkpoint_every_s": 0}) == 31  # every epoch
    assert checkpoints_written(31, 1000.0, {"checkpoint_every_s": 300}) == 4  # the first, then 3 intervals
    assert checkpoints_written(31, 10.0, {"checkpoint_every_s": 300}) == 1
    assert checkpoints_written(3, 1e6, {"checkpoint_every_s": 300}) == 3  # never more than the epochs
