"""Named crash points for the fault-injection tests: `DSVDD_CRASH_AT=<point>[:<n>]` kills the process
(SIGKILL, no cleanup, as a preemption or the OOM killer would) the n-th time (default 1) it reaches
`crash_point(<point>)`; `DSVDD_FAIL_AT=<point>[:<n>]` raises OSError(ENOSPC) there instead, as a
full disk would. Points: `decode` (a dataset's decoding), `mid_epoch` (after a training
step), `atomic_write:<file name>` (a complete temporary file written, before it is renamed over
<file name>: `checkpoint.pt`, `scores.npz`, `metrics.json`, a cache array). Unset, a crash point
costs one dictionary lookup."""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

ENV, FAIL_ENV = "DSVDD_CRASH_AT", "DSVDD_FAIL_AT"
_reached: Counter[tuple[str, str]] = Counter()


def _due(variable: str, name: str) -> bool:
    spec = os.environ.get(variable)
    if not spec:
        return False
    point, _, nth = spec.rpartition(":") if spec.rpartition(":")[2].isdigit() else (spec, "", "1")
    if point != name:
        return False
    _reached[variable, name] += 1
    return _reached[variable, name] == int(nth)


def crash_point(name: str) -> None:
    if _due(ENV, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if _due(FAIL_ENV, name):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
