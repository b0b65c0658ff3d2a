"""The optimiser nodes the trained methods share: `optim` (Adam, Section V-B) and `lr_schedule`
(a multistep decay, the original deep SVDD protocol's); built by the methods on their parameters."""

from __future__ import annotations

from dataclasses import field

from dsvdd_repro.core.schema import config_node, in_range, non_negative, positive


@config_node("optim", "adam")
class AdamConfig:
    """Section V-B: Adam with weight decay lambda; the head g at `lr`, every other layer at
    lr x backbone_lr_factor (0.1), no learning-rate schedule."""

    name: str = "adam"
    lr: float = 1e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        positive("lr", self.lr)
        positive("backbone_lr_factor", self.backbone_lr_factor)
        non_negative("weight_decay", self.weight_decay)


@config_node("lr_schedule", "multistep")
class MultiStepConfig:
    """The learning rate multiplied by `gamma` at each milestone epoch (Ruff et al.: / 10 at 50)."""

    _target_: str = "torch.optim.lr_scheduler.MultiStepLR"
    name: str = "multistep"
    milestones: list[int] = field(default_factory=lambda: [50])
    gamma: float = 0.1

    def __post_init__(self) -> None:
        in_range("gamma", self.gamma, 0.0, 1.0, low_open=True)
