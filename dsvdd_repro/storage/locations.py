"""Where the package keeps what it can rebuild: decoded datasets, features, the verified-file memo,
the plan's measurements. One folder, chosen by the user once ($DSVDD_CACHE_DIR)."""

from __future__ import annotations

import os
import pathlib


def default_cache_root(configured: str | None = None) -> pathlib.Path:
    """`configured` if given, else $DSVDD_CACHE_DIR, else ~/.cache/dsvdd_repro."""
    if configured:
        return pathlib.Path(configured).expanduser()
    env = os.environ.get("DSVDD_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "dsvdd_repro"
