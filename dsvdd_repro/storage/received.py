"""What a run folder holds, read as data only: nothing received runs code.

Run folders travel (a colleague's `runs/paper/`, a model to score new images with), so every file
in one is read in a way that cannot run code, whoever made it:

- `model.pt`, `checkpoint.pt`: `load_data`, i.e. `torch.load(weights_only=True)`: tensors, numbers,
  strings, bytes, lists and dicts only. A scikit-learn model inside model.pt is skops bytes, loaded
  with only the types its algorithm needs trusted (dsvdd_repro/methods/shallow.py).
- the config recorded in `metrics.json`: `check_recorded_config` before it is rebuilt, so that it
  builds only the package's own node classes: each group's `_target_` must be the one its option
  registered (dsvdd_repro/core/schema.py `NODE_TARGETS`); a `_target_` anywhere else, any other Hydra
  key (`_args_`, `_partial_`, ...) and any interpolation (`${...}`: a recorded config is resolved;
  a resolver may read the environment or files) are refused.
- `scores.npz`: numpy's `allow_pickle=False`; the plan's cache is JSON (dsvdd_repro/sweeps/plan.py).

Each file is also checked against the sha256 metrics.json recorded (dsvdd_repro/storage/integrity.py).
A file in the format of an earlier version that pickled Python objects (model.pt of a shallow
baseline before MODEL_FORMAT 2) is refused, with how to re-export it from a copy you trust; only
`dsvdd-score --trust` loads it as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from dsvdd_repro.core.schema import NODE_TARGETS

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_convert_", "_recursive_")


class UnsafeFileError(ValueError):
    """A received file that is not loaded because loading it could run code (one line)."""


def refused_global(error: BaseException) -> str | None:
    """The Python object a weights-only load refused (`collections.Counter`, ...), else None."""
    match = re.search(r"Unsupported global: GLOBAL (\S+)", _ANSI.sub("", str(error)))
    return match.group(1) if match else None


def one_line(error: BaseException) -> str:
    """`Type: first line of the message` (torch's and urllib's messages can span many lines)."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    return type(error).__name__ + (f": {lines[0]}" if lines else "")


def unpickler_reason(error: BaseException) -> str:
    """One line of why torch.load failed: the weights-only unpickler's own line when it has one."""
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", _ANSI.sub("", str(error)))
    return f"{type(error).__name__}: {detail.group(1).strip()}" if detail else one_line(error)


def load_data(path: Path, map_location: Any = "cpu", trust: bool = False) -> Any:
    """`torch.load(path)` of tensors and plain values only; UnsafeFileError (one line) for a file
    holding any other object, ValueError for one that is not a torch file. `trust=True` unpickles
    anything: only for a file you made yourself or got from someone you trust."""
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        name = refused_global(error)
        if name is not None:
            raise UnsafeFileError(f"{path}: holds a Python object ({name}) besides tensors and plain values; "
                                  "it is not loaded, since unpickling it could run code") from None
        raise ValueError(f"{path}: not a readable torch file ({unpickler_reason(error)})") from None


def check_recorded_config(config: Any, where: str) -> None:
    """Refuse (UnsafeFileError, one line naming the key) a recorded config that would build anything
    but the package's own nodes (see the module docstring)."""
    if not isinstance(config, dict):
        raise UnsafeFileError(f"{where}: the recorded config is not a mapping")
    for group, node in config.items():
        if group in _HYDRA_KEYS:
            raise UnsafeFileError(f"{where}: {group} is not allowed in a received config (only each group's own _target_ is)")
        if isinstance(node, dict) and "_target_" in node:
            allowed = NODE_TARGETS.get((group, node.get("name")))
            if allowed is None or node["_target_"] != allowed:
                raise UnsafeFileError(
                    f"{where}: {group}._target_={node['_target_']!r} is not the target of the package's "
                    f"{group} option {node.get('name')!r}; a received config builds only the package's own nodes")
        _refuse_inside(node, group, where, top=True)


def _refuse_inside(value: Any, key: str, where: str, top: bool = False) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            if name in _HYDRA_KEYS and not (top and name == "_target_"):
                raise UnsafeFileError(f"{where}: {key}.{name} is not allowed in a received config "
                                      "(only each group's own _target_ is)")
            _refuse_inside(item, f"{key}.{name}", where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_inside(item, f"{key}[{index}]", where)
    elif isinstance(value, str) and "${" in value:
        raise UnsafeFileError(f"{where}: {key}={value!r} is an interpolation; a recorded config is resolved, "
                              "so a received one may hold none")
