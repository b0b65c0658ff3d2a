"""Where a ResNet-18 backbone's initial weights come from: torchvision's ImageNet weights, a file, or none.

`model.weights=imagenet` goes through torchvision's weights API (`ResNet18_Weights.IMAGENET1K_V1`),
which caches the file under `$TORCH_HOME/hub/checkpoints/`. Offline, a missing file fails at once
with a message saying where the file is expected and what the alternatives are. A path must hold a
state dict (a dict of tensors, or {"state_dict": ...}) that provides every backbone tensor with the
right shape and only finite values (the `fc.*` classifier is ignored). `check_weights` runs these
checks on a file before any data is read (dsvdd_repro/runs/config.py's `validate`); every failure is
one WeightsError line naming `model.weights`, the path and what is wrong.
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import torch
from torch import nn

from dsvdd_repro.storage.integrity import sha256_of
from dsvdd_repro.storage.received import one_line, refused_global, unpickler_reason

# A download that cannot connect should fail fast rather than hang a cluster job.
DOWNLOAD_TIMEOUT_S = 30


class WeightsError(ValueError):
    """Initial weights that cannot be had or do not fit the backbone; one line for the user."""


def imagenet_weights_path() -> Path:
    """Where torchvision keeps (or would download) the ImageNet ResNet-18 weights."""
    from torchvision.models import ResNet18_Weights  # here: torchvision takes ~1.5 s to import

    url = ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def resolve_weights(spec: str) -> str:
    """`auto` -> `imagenet` when torchvision's ImageNet file is already on this machine, else `none`;
    any other spec unchanged. A cheap check (no download), so that run folders and identities say
    what a run really uses; `reproduce` tries the download once before it launches a sweep.
    The resolver `${resolve_weights:...}` of the model nodes."""
    if spec != "auto":
        return spec
    return "imagenet" if imagenet_weights_path().is_file() else "none"


def load_imagenet_state() -> tuple[dict, dict]:
    from torchvision.models import ResNet18_Weights

    weights = ResNet18_Weights.IMAGENET1K_V1
    path = imagenet_weights_path()
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # URLError, timeout, hash mismatch: all mean "not available here"
        raise WeightsError(
            f"model.weights=imagenet: {weights} is not at {path} and could not be downloaded from "
            f"{weights.url} ({one_line(error)}). Copy that file to {path} (or set "
            "TORCH_HOME), pass model.weights=/path/to/resnet18_state_dict.pth, or use model.weights=none "
            "for random initialisation."
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return state, {"weights": "imagenet", "enum": str(weights), "file": str(path), "sha256": sha256_of(path)}


def _load_file(path_text: str, digest: bool = True) -> tuple[dict, dict]:
    """The state dict in the file `path_text` and its provenance; WeightsError when the file is
    missing, cannot be read with torch.load(weights_only=True) or is not a dict of tensors."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"model.weights={path_text!r}: no such file; allowed: imagenet, none, or a path to a "
            "ResNet-18 state dict saved with torch.save"
        )
    if path.stat().st_size == 0:
        raise WeightsError(f"model.weights={path_text!r}: empty file; expected a state dict saved with torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        refused = refused_global(error)
        if refused:
            problem = (f"holds objects other than tensors ({refused}), which a weights-only load "
                       "refuses; save net.state_dict(), a dict of tensors")
        else:
            problem = f"not a state dict saved with torch.save ({unpickler_reason(error)})"
        raise WeightsError(f"model.weights={path_text!r}: {problem}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"model.weights={path_text!r}: expected a dict of tensors, got {type(state).__name__}")
    not_tensors = [f"{key} ({type(value).__name__})" for key, value in state.items()
                   if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise WeightsError(f"model.weights={path_text!r}: expected a dict of tensors; not tensors: "
                           f"{_describe_keys(not_tensors)}")
    state = {str(key).removeprefix("module."): value for key, value in state.items()}
    return state, {"weights": "file", "file": str(path.resolve()), "sha256": sha256_of(path) if digest else None}


def _describe_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")


@functools.cache
def _backbone_shapes() -> dict[str, tuple[int, ...]]:
    """The shape of every ResNet-18 backbone tensor (all but `fc.*`), built without memory."""
    from torchvision.models import resnet18

    with torch.device("meta"):
        net = resnet18(weights=None)
    return {key: tuple(value.shape) for key, value in net.state_dict().items() if not key.startswith("fc.")}


def _check_state(state: dict, spec: str, expected: dict[str, tuple[int, ...]]) -> dict:
    """The backbone tensors of `state` (all but `fc.*`); WeightsError unless they are exactly the
    `expected` ones, with their shapes, holding only finite values."""
    given = {key: value for key, value in state.items() if not key.startswith("fc.")}
    missing = sorted(set(expected) - set(given))
    surplus = sorted(set(given) - set(expected))
    if missing:
        raise WeightsError(f"model.weights={spec!r}: missing backbone tensors: {_describe_keys(missing)}")
    if surplus:
        raise WeightsError(f"model.weights={spec!r}: tensors that ResNet-18 does not have: {_describe_keys(surplus)}")
    misshapen = [
        f"{key} {tuple(given[key].shape)} != {shape}"
        for key, shape in expected.items()
        if tuple(given[key].shape) != shape
    ]
    if misshapen:
        raise WeightsError(f"model.weights={spec!r}: wrong shapes: {_describe_keys(misshapen)}")
    not_finite = [key for key, value in given.items()
                  if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all())]
    if not_finite:
        raise WeightsError(f"model.weights={spec!r}: tensors holding NaN or inf values: {_describe_keys(not_finite)}; "
                           "expected finite weights")
    return given


def check_weights(spec: str) -> None:
    """The cheap check `validate` runs before any data is read: a path (anything but imagenet and
    none) must be a file that `load_backbone_weights` would accept (a dict of finite tensors that
    fits ResNet-18's backbone). ImageNet's availability is not checked here: getting it may mean a
    download, which `load_backbone_weights` tries."""
    if spec in ("none", "imagenet"):
        return
    state, _ = _load_file(spec, digest=False)
    _check_state(state, spec, _backbone_shapes())


def load_backbone_weights(net: nn.Module, spec: str) -> dict:
    """Load `spec` (imagenet | none | path) into a torchvision ResNet-18; return what was used.

    Every tensor of the backbone (all but `fc.*`) must be provided with the right shape and finite
    values; a file with missing, surplus, misshapen or non-finite tensors fails naming them.
    """
    if spec == "none":
        return {"weights": "none", "init": "random (torchvision's default initialisation, seeded)"}
    state, info = load_imagenet_state() if spec == "imagenet" else _load_file(spec)
    expected = {key: tuple(value.shape) for key, value in net.state_dict().items() if not key.startswith("fc.")}
    net.load_state_dict(_check_state(state, spec, expected), strict=False)
    return info
