"""Benchmark: what the collapse regularizers cost per training step.

Prints images/s of a deep SVDD training step (ResNet-18, batch 50, 32 px by default) with no
regularizer, with noise injection and with the variance hinge, and each as a ratio to the
model-only rate (forward + backward + Adam step of the bare network on sum(phi^2)).

    python scripts/bench_regularizers.py [--device cpu|cuda] [--image-size 32] [--steps 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from dsvdd_repro.core.schema import build
from dsvdd_repro.methods.deep_svdd.objectives import one_class_loss, squared_distances
from dsvdd_repro.methods.deep_svdd.regularizers import NoiseConfig, VarianceConfig
from dsvdd_repro.models.resnet import ResNet18Config


def make_step(kind: str, net, device, image_size: int):
    center = torch.full((net.feature_dim(image_size),), 0.1, device=device)
    node = {"noise": NoiseConfig(k=50), "variance": VarianceConfig()}.get(kind)  # adaptive weighting
    regularizer = build(dataclasses.asdict(node), feature_dim=512, seed=0).to(device) if node else None
    weight = regularizer.weight if regularizer else None
    params = list(net.parameters()) + (list(regularizer.parameters()) if regularizer else [])
    optimizer = torch.optim.Adam(params, lr=1e-4, weight_decay=5e-4)

    def step(images):
        features = net(images)
        if kind == "model-only":
            loss = features.pow(2).sum(dim=1).mean()
        else:
            loss = one_class_loss(squared_distances(features, center))
            if regularizer is not None:
                loss_reg = regularizer(features)
                loss = loss + weight.update(loss, loss_reg) * loss_reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(kind: str, args, device) -> float:
    torch.manual_seed(0)
    net = build(dataclasses.asdict(ResNet18Config(bias=True, weights="none"))).to(device).train()
    step = make_step(kind, net, device, args.image_size)
    images = torch.randint(0, 256, (args.batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8)
    images = images.to(device)
    for _ in range(args.warmup):
        step(images)
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median taken)")
    args = parser.parse_args()
    device = torch.device(args.device)
    kinds = ["model-only", "none", "noise", "variance"]
    rates = {kind: [] for kind in kinds}
    for _ in range(args.rounds):  # interleave so drift in machine load hits every kind alike
        for kind in kinds:
            rates[kind].append(measure(kind, args, device))
    base = statistics.median(rates["model-only"])
    plain = statistics.median(rates["none"])
    print(f"device={device} torch_threads={torch.get_num_threads()} image_size={args.image_size} "
          f"batch={args.batch_size} steps={args.steps} rounds={args.rounds}")
    print(f"{'step':<12}{'images/s':>10}{'vs model-only':>15}{'vs no reg':>11}")
    for kind in kinds:
        rate = statistics.median(rates[kind])
        print(f"{kind:<12}{rate:>10.1f}{rate / base:>15.3f}{rate / plain:>11.3f}")


if __name__ == "__main__":
    main()
