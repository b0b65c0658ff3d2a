"""Autoencoder pretraining of the deep SVDD network (Ruff et al., ICML 2018; `pretrain=autoencoder`).

The network's decoder (`net.decoder()`, e.g. the LeNet's) is trained with the network as encoder
(`net.encode` on `net.inputs(images)`) on the squared reconstruction error of the network's
preprocessed inputs (summed over pixels, averaged over the minibatch), with Adam, weight decay as Adam's L2 term, and the learning rate
divided by 10 at each milestone epoch. The encoder's weights then initialise deep SVDD; the decoder
is discarded. Batches follow `seed` (their own stream) and the trainer's batch size. The passes run
in the run's precision (`execution`: float32 unless a run asks for bf16; the original-protocol
variants pin float32); the reconstruction error is taken in float32.
"""

from __future__ import annotations

import logging
import time
from dataclasses import field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dsvdd_repro.core.execution import Execution
from dsvdd_repro.core.schema import at_least, config_node, non_negative, positive
from dsvdd_repro.data.protocols import SplitData
from dsvdd_repro.storage.checkpoint import Checkpoint, restore_rng, rng_state

log = logging.getLogger(__name__)

# seed stream of the pretraining batch order (the deep SVDD epochs use stream 3)
_ORDER_STREAM = 5


@config_node("pretrain", "autoencoder")
class AutoencoderConfig:
    """Ruff et al.'s CIFAR-10 schedule: 350 epochs, Adam 1e-4, divided by 10 at epoch 250, weight
    decay 0.5e-6; the batch size is trainer.batch_size."""

    _target_: str = "dsvdd_repro.methods.deep_svdd.pretrain.AutoencoderPretraining"
    name: str = "autoencoder"
    epochs: int = 350
    lr: float = 1e-4
    milestones: list[int] = field(default_factory=lambda: [250])
    weight_decay: float = 0.5e-6

    def __post_init__(self) -> None:
        at_least("epochs", self.epochs, 1)
        positive("lr", self.lr)
        non_negative("weight_decay", self.weight_decay)


class AutoencoderPretraining:
    def __init__(self, epochs: int, lr: float, milestones: list[int], weight_decay: float):
        self.epochs, self.lr, self.milestones, self.weight_decay = epochs, lr, list(milestones), weight_decay

    def __call__(self, net: nn.Module, train: SplitData, batch_size: int, device: torch.device, seed: int,
                 progress: bool, checkpoint: Checkpoint | None = None,
                 execution: Execution | None = None) -> dict:
        """Train `net` as the encoder of its decoder on `train`; return the per-epoch losses. With a
        `checkpoint`, every epoch is saved and a relaunch resumes after the last one."""
        checkpoint = checkpoint or Checkpoint(None)
        execution = execution or Execution(device)
        start = time.perf_counter()
        decoder = execution.module(net.decoder())
        parameters = [p for p in (*net.parameters(), *decoder.parameters()) if p.requires_grad]
        optimizer = torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, self.milestones, gamma=0.1)
        rng = np.random.default_rng([seed, _ORDER_STREAM])
        losses = []
        saved = checkpoint.load("pretrain")
        if saved is not None:
            for module, key in ((net, "net"), (decoder, "decoder"), (optimizer, "optimizer"), (schedule, "schedule")):
                module.load_state_dict(saved[key])
            restore_rng(rng, saved["rng"])
            losses = saved["loss"]
            log.info("autoencoder: resumed after epoch %d of %d", len(losses), self.epochs)
        for epoch in tqdm(range(len(losses) + 1, self.epochs + 1), desc="autoencoder", disable=not progress,
                          initial=len(losses), total=self.epochs):
            net.train()
            decoder.train()
            total, n = torch.zeros((), dtype=torch.float64, device=device), 0
            for rows, images in train.iter_batches(batch_size, rng.permutation(len(train))):
                if len(rows) < 2:
                    continue
                inputs = net.inputs(execution.inputs(images))
                with execution.autocast():
                    reconstruction = decoder(net.encode(inputs))
                error = ((reconstruction.float() - inputs) ** 2).flatten(1).sum(dim=1).mean()
                optimizer.zero_grad(set_to_none=True)
                error.backward()
                optimizer.step()
                total += error.detach().double() * len(rows)
                n += len(rows)
            schedule.step()
            losses.append(float(total) / max(n, 1))
            log.info("autoencoder epoch %d/%d: reconstruction error %.5g", epoch, self.epochs, losses[-1])
            if checkpoint.due():
                checkpoint.save("pretrain", {"net": net.state_dict(), "decoder": decoder.state_dict(),
                                             "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                                             "rng": rng_state(rng), "loss": losses})
        return {"epochs": self.epochs, "loss": losses, "seconds": time.perf_counter() - start}
