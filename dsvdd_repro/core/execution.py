"""How a run executes on its device: the GPU fast path, resolved once per run from the `trainer` node.

Every key is an execution key (EXECUTION_KEYS below): it changes speed, not what a
run is, so a finished run is found again whatever the device; what a run really used is recorded in
its metrics.json (`execution`). The defaults (null / auto) are right on a GPU and change nothing on a
CPU, where every run keeps float32, the default memory format, host-resident data and batches of 500:

- precision: bf16 autocast of the networks' forward passes (auto: on CUDA when the GPU supports
  bf16). Features and logits are cast back to float32 before any loss, distance, score or collapse
  diagnostic, so those stay float32; the weights and the optimiser stay float32 (autocast, not a
  bf16 copy of the model).
- channels_last: the networks and their input batches in NHWC (auto: on CUDA), what cuDNN's fast
  convolution kernels want.
- cudnn_benchmark: let cuDNN time its kernels for each new input shape (a run has two or three).
- data_on_device: the run's splits (only the uint8 images they use) copied to the device once, and
  every minibatch gathered there by index (auto: on CUDA). No augmentation exists to run on the host.
- eval_batch_size: evaluation batches (null: 500 on a CPU, 1024 on a GPU).

`device_name` names the hardware a device is (a run's provenance, the cost plan's calibration, the
benchmarks): the one place that asks torch or the operating system.
"""

from __future__ import annotations

import contextlib
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

# Keys that say where and how a run executes, not what it computes: left out of its identity, so
# moving the data or switching the device does not re-run finished work (dsvdd_repro/runs/folders.py).
EXECUTION_KEYS = (
    "dataset.root", "dataset.download", "dataset.cache_dir", "trainer.device", "trainer.num_threads",
    "trainer.progress", "trainer.eval_batch_size", "trainer.precision", "trainer.channels_last",
    "trainer.cudnn_benchmark", "trainer.data_on_device", "trainer.checkpoint_every_s", "features.cache",
    "profile.weights",
)

PRECISIONS = ("auto", "float32", "bf16")
EVAL_BATCH = {"cpu": 500, "cuda": 1024}


def device_name(device: torch.device | str) -> str:
    """The hardware `device` is: the GPU's name, else the CPU's model name (/proc/cpuinfo; elsewhere
    platform.processor(), or the machine type when that is empty)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Execution:
    """The resolved settings (see the module docstring); `Execution.resolve(trainer, device)`."""

    device: torch.device
    precision: str = "float32"
    channels_last: bool = False
    cudnn_benchmark: bool = False
    data_on_device: bool = False
    eval_batch_size: int = EVAL_BATCH["cpu"]

    @classmethod
    def resolve(cls, trainer, device: torch.device) -> Execution:
        """From a `trainer` node (DictConfig or TrainerConfig) on `device`."""
        cuda = device.type == "cuda"
        precision = getattr(trainer, "precision", "auto")
        if precision == "auto":
            precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "float32"

        def choice(key: str, default: bool) -> bool:
            value = getattr(trainer, key, None)
            return default if value is None else bool(value)

        eval_batch = getattr(trainer, "eval_batch_size", None)
        return cls(
            device=device,
            precision=precision,
            channels_last=choice("channels_last", cuda),
            cudnn_benchmark=cuda and choice("cudnn_benchmark", True),
            data_on_device=choice("data_on_device", cuda) and device.type != "cpu",
            eval_batch_size=int(eval_batch) if eval_batch else EVAL_BATCH.get(device.type, EVAL_BATCH["cuda"]),
        )

    def apply(self) -> None:
        """Process-wide settings (cuDNN's autotuner)."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' precision: bf16 autocast, or nothing."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def module(self, net: nn.Module) -> nn.Module:
        """`net` on the device, in the chosen memory format."""
        net = net.to(self.device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, in the chosen memory format."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def describe(self) -> dict:
        """For metrics.json: what the run really used."""
        return {**asdict(self), "device": str(self.device)}


def show_progress(trainer) -> bool:
    """Progress bars only when the `trainer` node asks (trainer.progress) and on a terminal: SLURM
    logs and pipes get the plain log lines."""
    return bool(trainer.progress) and sys.stderr.isatty()
