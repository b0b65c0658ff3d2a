"""Where a ResNet-18 backbone's initial weights come from: torchvision's ImageNet weights, a file, or none.

`model.weights=imagenet` goes through torchvision's weights API (`ResNet18_Weights.IMAGENET1K_V1`),
which caches the file under `$TORCH_HOME/hub/checkpoints/`. Offline, a missing file fails at once
with a message saying where the file is expected and what the alternatives are. A path must hold a
state dict that provides every backbone tensor (the `fc.*` classifier is ignored).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights

# A download that cannot connect should fail fast rather than hang a cluster job.
DOWNLOAD_TIMEOUT_S = 30


class WeightsError(ValueError):
    """Initial weights that cannot be had or do not fit the backbone; one line for the user."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_weights_path() -> Path:
    """Where torchvision keeps (or would download) the ImageNet ResNet-18 weights."""
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
    weights = ResNet18_Weights.IMAGENET1K_V1
    path = imagenet_weights_path()
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # URLError, timeout, hash mismatch: all mean "not available here"
        raise WeightsError(
            f"model.weights=imagenet: {weights} is not at {path} and could not be downloaded from "
            f"{weights.url} ({type(error).__name__}: {error}). Copy that file to {path} (or set "
            "TORCH_HOME), pass model.weights=/path/to/resnet18_state_dict.pth, or use model.weights=none "
            "for random initialisation."
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return state, {"weights": "imagenet", "enum": str(weights), "file": str(path), "sha256": _sha256(path)}


def _load_file(path_text: str) -> tuple[dict, dict]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"model.weights={path_text!r}: no such file; allowed: imagenet, none, or a path to a "
            "ResNet-18 state dict saved with torch.save"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"model.weights={path_text!r}: not a loadable state dict ({error})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"model.weights={path_text!r}: expected a dict of tensors, got {type(state).__name__}")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    return state, {"weights": "file", "file": str(path.resolve()), "sha256": _sha256(path)}


def _describe_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")


def load_backbone_weights(net: nn.Module, spec: str) -> dict:
    """Load `spec` (imagenet | none | path) into a torchvision ResNet-18; return what was used.

    Every tensor of the backbone (all but `fc.*`) must be provided with the right shape; a file
    with missing, surplus or misshapen tensors fails naming them.
    """
    if spec == "none":
        return {"weights": "none", "init": "random (torchvision's default initialisation, seeded)"}
    state, info = load_imagenet_state() if spec == "imagenet" else _load_file(spec)
    expected = {key: value for key, value in net.state_dict().items() if not key.startswith("fc.")}
    given = {key: value for key, value in state.items() if not key.startswith("fc.")}
    missing = sorted(set(expected) - set(given))
    surplus = sorted(set(given) - set(expected))
    if missing:
        raise WeightsError(f"model.weights={spec!r}: missing backbone tensors: {_describe_keys(missing)}")
    if surplus:
        raise WeightsError(f"model.weights={spec!r}: tensors that ResNet-18 does not have: {_describe_keys(surplus)}")
    misshapen = [
        f"{key} {tuple(given[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if tuple(given[key].shape) != tuple(value.shape)
    ]
    if misshapen:
        raise WeightsError(f"model.weights={spec!r}: wrong shapes: {_describe_keys(misshapen)}")
    net.load_state_dict(given, strict=False)
    return info
