"""Benchmark: the original deep SVDD protocol's three phases against the bare networks, per thread count and precision.

For each --threads and --precision, in one process, images/s of
- the autoencoder pretraining: our real epoch (`AutoencoderPretraining`, one epoch over the normal
  class's 5,000 CIFAR-10 training images: batch order, uint8 gather, GCN + min-max, encoder and
  decoder, Adam) against the bare autoencoder step (`net.encode` + decoder + loss + backward + Adam
  on a batch already preprocessed, in the same memory format and precision);
- the deep SVDD epoch: our `DeepSVDD._train_epoch` against the bare step (`net.encode`,
  ||phi - c||^2, backward, Adam);
- scoring: our `DeepSVDD.embed` + scores of the 10,000 test images against the bare eval-mode
  forward of a preprocessed batch;
each ours / bare as a ratio, and our epochs in seconds per 5,000 images beside the authors' code
(Deep-SVDD-PyTorch) on this machine kind, 2 threads, idle: 10-14 s per autoencoder epoch,
5.1-5.3 s per deep SVDD epoch. Rates are medians over --rounds interleaved rounds. The execution is
the variant's (`variant=dsvdd_ruff2018`: float32, channels-last) unless --precision says otherwise.

    DSVDD_CIFAR10_ROOT=<cifar10 folder> python scripts/bench_lenet.py [--threads 1,2] \
        [--precision float32,bf16] [--normal-class 3] [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import compose_run, timed  # noqa: E402  (the same composition and timing)

from dsvdd_repro.core.execution import device_name  # noqa: E402
from dsvdd_repro.core.schema import build  # noqa: E402
from dsvdd_repro.methods.base import RunContext  # noqa: E402
from dsvdd_repro.methods.deep_svdd.objectives import initial_center  # noqa: E402
from dsvdd_repro.methods.deep_svdd.pretrain import AutoencoderPretraining  # noqa: E402
from dsvdd_repro.methods.deep_svdd.trainer import INPUT_FIT_BATCH  # noqa: E402
from dsvdd_repro.train import make_splits, resolve_device, seed_everything  # noqa: E402

AUTHORS_SECONDS = {"autoencoder": "10-14", "deep SVDD": "5.1-5.3"}  # per 5,000-image epoch, 2 threads


class Bare:
    """The same networks on a batch already preprocessed: what the phases cannot beat."""

    def __init__(self, detector, train, batch: int, eval_batch: int):
        execution, net = detector.execution, detector.net
        self.execution, self.net, self.center = execution, net, detector.center
        self.decoder = execution.module(net.decoder())
        with torch.no_grad():
            self.train_inputs = net.inputs(execution.inputs(train.batch(np.arange(batch))))
            rows = np.arange(eval_batch) % len(train)
            self.eval_inputs = net.inputs(execution.inputs(train.batch(rows)))
        self.ae_optimizer = torch.optim.Adam([*net.parameters(), *self.decoder.parameters()], lr=1e-6)
        self.svdd_optimizer = torch.optim.Adam(net.parameters(), lr=1e-6)

    def autoencoder_step(self) -> None:
        self.net.train()
        self.decoder.train()
        with self.execution.autocast():
            reconstruction = self.decoder(self.net.encode(self.train_inputs))
        error = ((reconstruction.float() - self.train_inputs) ** 2).flatten(1).sum(dim=1).mean()
        self.ae_optimizer.zero_grad(set_to_none=True)
        error.backward()
        self.ae_optimizer.step()

    def svdd_step(self) -> None:
        self.net.train()
        with self.execution.autocast():
            features = self.net.encode(self.train_inputs)
        loss = ((features.float() - self.center) ** 2).sum(dim=1).mean()
        self.svdd_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.svdd_optimizer.step()

    @torch.no_grad()
    def eval_step(self) -> None:
        self.net.eval()
        with self.execution.autocast():
            self.net.encode(self.eval_inputs).float()

    def rate(self, fn, n_images: int, steps: int, device: torch.device) -> float:
        fn()  # warm-up
        return n_images / statistics.median(timed(device, fn)[0] for _ in range(steps))


def measure(args, threads: int, precision: str, images) -> dict:
    torch.set_num_threads(threads)
    cfg = compose_run([
        "variant=dsvdd_ruff2018", "profile=quick", "dataset=cifar10", f"dataset.root={args.root}",
        f"setup.normal_class={args.normal_class}", "trainer.progress=false", f"trainer.num_threads={threads}",
        f"trainer.precision={precision}",
    ])
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)
    splits = make_splits(cfg, images)
    context = RunContext(cfg, images.image_size, device, None, None)
    detector = build(cfg.method, context=context)
    train, test = splits.train, splits.test
    detector.net.fit_inputs(images for _, images in train.iter_batches(INPUT_FIT_BATCH))
    detector.center = initial_center(detector.embed(train).mean(dim=0), detector.center_eps)
    batch, eval_batch = int(cfg.trainer.batch_size), detector.execution.eval_batch_size
    bare = Bare(detector, train, batch, eval_batch)
    one_epoch = AutoencoderPretraining(epochs=1, lr=float(cfg.pretrain.lr), milestones=[],
                                       weight_decay=float(cfg.pretrain.weight_decay))
    optimizer = detector._optimizer()
    rng = np.random.default_rng(0)
    rates = {key: [] for key in ("bare autoencoder", "autoencoder", "bare deep SVDD", "deep SVDD", "bare scoring",
                                 "scoring")}
    for round_ in range(1, args.rounds + 1):
        rates["bare autoencoder"].append(bare.rate(bare.autoencoder_step, batch, args.steps, device))
        pretrain = lambda: one_epoch(detector.net, train, batch, device, 0, False, execution=detector.execution)  # noqa: E731
        rates["autoencoder"].append(len(train) / timed(device, pretrain)[0])
        rates["bare deep SVDD"].append(bare.rate(bare.svdd_step, batch, args.steps, device))
        rates["deep SVDD"].append(len(train) / timed(device, detector._train_epoch, train, optimizer, rng, round_)[0])
        rates["bare scoring"].append(bare.rate(bare.eval_step, eval_batch, args.steps, device))
        rates["scoring"].append(len(test) / timed(device, lambda: detector._scores(detector.embed(test), 0.0))[0])
    rate = {key: statistics.median(values) for key, values in rates.items()}
    rate.update(execution=detector.execution, train=len(train), test=len(test), batch=batch, eval_batch=eval_batch)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--precision", default="float32,bf16", help="comma-separated: float32, bf16")
    parser.add_argument("--normal-class", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median taken)")
    parser.add_argument("--steps", type=int, default=6, help="timed bare steps per round (median taken)")
    parser.add_argument("--root", default=os.environ.get("DSVDD_CIFAR10_ROOT"), help="default: $DSVDD_CIFAR10_ROOT")
    args = parser.parse_args()
    if not args.root or not Path(args.root).is_dir():
        sys.exit(f"error: CIFAR-10 not found at {args.root!r}: set DSVDD_CIFAR10_ROOT=<folder with "
                 "cifar-10-batches-py/ or train/ and test/ class folders> (or pass --root)")
    cfg = compose_run(["variant=dsvdd_ruff2018", "dataset=cifar10", f"dataset.root={args.root}"])
    images = build(cfg.dataset).load(progress=False)
    print(f"{device_name('cpu')}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"normal class {args.normal_class}; rounds={args.rounds} steps={args.steps}")
    print(f"\n{'threads':>7} {'precision':>9} {'phase':<12}{'ours img/s':>11}{'bare img/s':>11}{'ratio':>7}"
          f"{'s / 5,000':>10}  authors' code")
    for threads in (int(t) for t in args.threads.split(",")):
        for precision in args.precision.split(","):
            rate = measure(args, threads, precision, images)
            for phase in ("autoencoder", "deep SVDD", "scoring"):
                ours, bare = rate[phase], rate[f"bare {phase}"]
                authors = AUTHORS_SECONDS.get(phase, "") if threads == 2 and precision == "float32" else ""
                print(f"{threads:>7} {precision:>9} {phase:<12}{ours:>11.0f}{bare:>11.0f}{ours / bare:>7.2f}"
                      f"{5000 / ours:>10.1f}  {authors}", flush=True)
    execution = rate["execution"]
    print(f"\nchannels_last={execution.channels_last}, batch {rate['batch']}, eval batch {rate['eval_batch']}, "
          f"train {rate['train']} rows, test {rate['test']} rows")


if __name__ == "__main__":
    main()
