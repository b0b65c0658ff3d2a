"""Scheduling of the suite on pytest-xdist workers (`make test` and `make test-fast` run
`-n $(TEST_WORKERS) --dist loadgroup`, loaded with `-p tests.scheduling` from pyproject.toml).

- The SLURM tests share one worker: the cluster is a session fixture (tests/conftest.py
  `slurm_env`), brought up once per worker, and two workers must not start it twice.
- The longest tests are handed out first, so that the suite does not end with one of them running
  alone on one worker while the other waits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# about 11 minutes on 2 cores, a third of the suite: first, on a worker of its own
LONGEST = ("test_smoke_reproduction_end_to_end",)


def _is_slurm(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).name.startswith("test_slurm_")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slurm(item):
            item.add_marker(pytest.mark.xdist_group("slurm"))
    items.sort(key=lambda item: 0 if item.originalname in LONGEST else 1 if _is_slurm(item) else 2)
