"""Exceptions raised by the dataset sources."""

from __future__ import annotations


class DatasetRootError(ValueError):
    """`dataset.root` does not hold the data a source expects (missing, incomplete, or unreadable).

    The message is one line that names `dataset.root`, the path, and what is expected there.
    """
