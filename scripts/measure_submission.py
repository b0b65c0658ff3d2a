"""Benchmark: seconds from the command to the first run's start, for a paper-scale sweep.

Launches `python -m dsvdd_repro.train -m experiment=<name> profile=paper` (every job expanded,
deduplicated, validated and checked against the runs folder's finished runs by the grid sweeper) and
times, from the command's start, the moment the first run writes its `.hydra/config.yaml` (the run
has started: nothing before it is training); then stops the sweep. Random initialisation
(`profile.weights=none`) so that no run waits for the ImageNet download; the sweep is the same.

    python scripts/measure_submission.py [--experiments table6_cifar10,table3] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_run_seconds(experiment: str, runs_dir: Path, timeout: float = 300) -> tuple[float, str]:
    command = [sys.executable, "-m", "dsvdd_repro.train", "-m", f"experiment={experiment}", "profile=paper",
               "profile.weights=none", "trainer.progress=false", f"hydra.sweep.dir={runs_dir}"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    output = []
    try:
        for line in process.stdout:  # the sweeper's own lines come before any run's
            output.append(line)
            if "sweep: " in line and "to launch" in line:
                break
        while time.perf_counter() - start < timeout:
            started = [p for p in runs_dir.rglob("config.yaml") if p.parent.name == ".hydra"]
            if started:
                return time.perf_counter() - start, "".join(output)
            time.sleep(0.02)
        raise TimeoutError(f"no run of {experiment} started within {timeout:.0f} s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default="table6_cifar10,table3")
    parser.add_argument("--runs-dir", type=Path, help="a runs folder to check against (default: a new, empty one)")
    args = parser.parse_args()
    for experiment in args.experiments.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            runs_dir = args.runs_dir or Path(scratch) / "runs"
            seconds, output = first_run_seconds(experiment, runs_dir)
        expanded = re.search(r"sweep: (\d+) grid points are (\d+) distinct runs.*", output)
        checked = re.search(r"sweep: (\d+) to launch.*\((.*) s to expand and check\)", output)
        print(f"{experiment}: first run started {seconds:.1f} s after the command; "
              f"{expanded.group(0).split('] ')[-1] if expanded else '?'}; "
              f"{checked.group(0).split('] ')[-1] if checked else '?'}")


if __name__ == "__main__":
    main()
