"""A run's checkpoint: what the run needs to go on, in one file of its folder, written at the end of
an epoch when due: at most every `trainer.checkpoint_every_s` seconds (300: a ResNet-18 checkpoint
is ~170 MB, 0.6 s on this CPU, which would double a short GPU epoch if written after each), at once
after a scheduler's stop signal (dsvdd_repro/storage/preemption.py), and after every epoch when the
interval is 0.

`checkpoint.pt` holds a dictionary with a `stage` (e.g. "pretrain", "svdd") and whatever that stage
needs to resume bit-identically (network, optimizer, schedule, regularizer head, c, R, c_t, the
random generators' states, the history, the best state so far). It is written atomically
(dsvdd_repro/storage/atomic.py), so a kill leaves the previous complete checkpoint, never half of one;
without fsync, so a power cut may damage it, and an unreadable one is ignored with a warning. It is
read as data only (dsvdd_repro/storage/received.py): one holding any object besides tensors and plain values
is ignored with a one-line warning, never unpickled, and the run starts over. It is removed when
the run is done; a finished run keeps only its selected model (`model.pt`).
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import numpy as np
import torch

from dsvdd_repro.storage import preemption
from dsvdd_repro.storage.atomic import atomic_write_bytes
from dsvdd_repro.storage.received import load_data

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1


class Checkpoint:
    """The checkpoint file of one run folder (`folder=None`: checkpointing off), written when `due()`:
    `every_s` seconds after the last one (0: after every epoch), or at once after a scheduler's
    signal (dsvdd_repro/storage/preemption.py)."""

    def __init__(self, folder: Path | None, every_s: float = 0.0):
        self.path = None if folder is None else Path(folder) / CHECKPOINT_FILE
        self.every_s = float(every_s)
        self.last = time.monotonic()
        self.written, self.seconds = 0, 0.0  # what checkpointing cost this process (metrics.json)

    @classmethod
    def of_run(cls, run_dir: Path | None, trainer) -> Checkpoint:
        """The run folder's checkpoint at the run's `trainer.checkpoint_every_s`."""
        return cls(run_dir, float(trainer.get("checkpoint_every_s") or 0.0))

    def due(self) -> bool:
        return self.path is not None and (preemption.requested() or time.monotonic() - self.last >= self.every_s)

    def load(self, stage: str) -> dict | None:
        """The saved state of `stage`, or None (no file, another stage, or an unreadable file)."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = load_data(self.path)  # tensors and plain values only: a received folder runs no code
        except ValueError as error:  # crafted, from another version or damaged: never used, start over
            log.warning("ignoring checkpoint: %s", error)
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("stage") != stage:
            return None
        return state

    def save(self, stage: str, state: dict) -> None:
        if self.path is None:
            return
        tic = time.perf_counter()
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, "stage": stage, **state}, buffer)
        # no fsync: a ResNet-18 checkpoint is ~180 MB every epoch; a kill keeps the page cache, and a
        # file a power cut damaged is refused on load (the run then starts over)
        atomic_write_bytes(self.path, buffer.getvalue(), durable=False)
        self.last = time.monotonic()
        self.written, self.seconds = self.written + 1, self.seconds + time.perf_counter() - tic

    def summary(self) -> dict:
        return {"every_s": self.every_s, "written": self.written, "seconds": self.seconds}

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def rng_state(generator: np.random.Generator) -> dict:
    return generator.bit_generator.state


def restore_rng(generator: np.random.Generator, state: dict) -> None:
    generator.bit_generator.state = state


def torch_rng_state() -> dict:
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_torch_rng(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
