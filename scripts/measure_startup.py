"""Measure a run's data start-up (decode or cache load, protocol splits, anomaly generation) and memory.

    python scripts/measure_startup.py [--touch] [--hold=SECONDS] [train overrides ...]
    python scripts/measure_startup.py dataset=wikiart dataset.root=/tmp/dsvdd_data/wikiart-subset \
        setup=alteration anomaly=strokes anomaly.thickness=5 --touch

Composes the configuration exactly as `python -m dsvdd_repro.train` does, then times
`build(cfg.dataset).load()` (a first run decodes into the cache, a later run maps it) and the protocol
split, and with `--touch` reads every batch of every split once (what one epoch plus validation and
test scoring read, without a model); `--hold=S` then waits S seconds and measures again (start two
at once to see them share the cache's pages: Pss_File halves). Prints one JSON object: the times, the split sizes, whether the
cache was hit, and the process's memory from /proc/self/status at each step: `VmHWM` (peak resident
set), `RssAnon` (private memory) and `RssFile` (resident file-backed pages: the memory-mapped
dataset cache, shared with every other process that maps it, and the shared libraries).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402

from dsvdd_repro.core.schema import build  # noqa: E402
from dsvdd_repro.runs.config import validate  # noqa: E402
from dsvdd_repro.train import make_splits  # noqa: E402 (imports register the config nodes)

CONF = Path(__file__).resolve().parents[1] / "dsvdd_repro" / "conf"


def memory() -> dict:
    """VmHWM, VmRSS, RssAnon, RssFile (/proc/self/status) and Pss_File (/proc/self/smaps_rollup: the
    file-backed pages divided among the processes that map them), in MiB."""
    fields = {}
    for path, names in (("status", ("VmHWM", "VmRSS", "RssAnon", "RssFile")), ("smaps_rollup", ("Pss_File",))):
        try:
            lines = Path(f"/proc/self/{path}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, value = line.partition(":")
            if name in names:
                fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def main(argv: list[str]) -> dict:
    touch = "--touch" in argv
    hold = next((float(a.split("=", 1)[1]) for a in argv if a.startswith("--hold=")), 0.0)
    overrides = [a for a in argv if a != "--touch" and not a.startswith("--hold=")]
    start = time.perf_counter()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, "trainer.progress=false"])
    validate(cfg)
    report: dict = {"overrides": overrides, "memory": {"start": memory()}}

    t0 = time.perf_counter()
    images = build(cfg.dataset).load(progress=False)
    report["load_seconds"] = round(time.perf_counter() - t0, 3)
    report["cache_hit"] = images.source.get("cache_hit")
    report["cache_path"] = images.source.get("cache_path")
    report["pools"] = {"train": int(images.train_images.shape[0]), "test": int(images.test_images.shape[0])}
    report["decoded_mib"] = round(
        (images.train_images.numel() + images.test_images.numel()) / 2**20, 1
    )
    report["memory"]["after_load"] = memory()

    t0 = time.perf_counter()
    splits = make_splits(cfg, images)
    report["splits_seconds"] = round(time.perf_counter() - t0, 3)
    report["splits"] = splits.sizes()
    report["altered_mib"] = round(
        sum(s.altered_images.numel() for s in (splits.train, splits.val, splits.test)) / 2**20, 1
    )
    report["memory"]["after_splits"] = memory()
    report["startup_seconds"] = round(time.perf_counter() - start, 3)

    if touch:
        t0 = time.perf_counter()
        checksum = 0
        for split in (splits.train, splits.val, splits.test):
            for _, batch in split.iter_batches(cfg.trainer.batch_size):
                checksum += int(batch[:, 0, 0, 0].sum())
        report["touch_seconds"] = round(time.perf_counter() - t0, 3)
        report["memory"]["after_touch"] = memory()
    if hold:  # keep the maps alive, e.g. while a concurrent run measures its share of the page cache
        time.sleep(hold)
        report["memory"]["after_hold"] = memory()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
