"""The one exception the dataset sources raise about the user's data, and its message form."""

from __future__ import annotations


class DatasetRootError(ValueError):
    """`dataset.root` does not hold the data a source expects (missing, incomplete, or unreadable).

    The message is one line that names `dataset.root`, the path, and what is expected there.
    """


def root_error(path, problem: str) -> DatasetRootError:
    """`dataset.root=<path>: <problem>`, the form of every message about a folder's content."""
    return DatasetRootError(f"dataset.root={path}: {problem}")
