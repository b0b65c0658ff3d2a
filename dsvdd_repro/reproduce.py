"""Run every experiment of the paper for one profile, then the report (`make reproduce-tables`).

    python -m dsvdd_repro.reproduce --profile smoke|quick|paper [--launcher local|joblib|slurm|slurm_local]
                                    [--experiments table1,table3] [--weights auto|imagenet|none|<path>]
    (also `dsvdd-reproduce`)

Without --profile / --launcher it uses conf/config.yaml's defaults (`config_default`: the quick
profile, the local launcher), the same a single `dsvdd-train` run gets, and what `make` asks for
(`--print-default profile|launcher`): one place sets them.

Each experiment is `dsvdd-train -m experiment=<name> profile=<profile> launcher=<launcher>`: the
experiment's sweep (conf/experiment/<name>.yaml) as the profile restricts it
(conf/profile/<profile>.yaml, `hydra.sweeper.restrict`), each axis only where it applies. Runs land
in <runs-dir> (default runs/<profile>) and finished ones are skipped, so the command can be
relaunched after an interruption. Cells whose data is not on the machine fail fast (one line each)
and are reported as missing. Finally `python -m dsvdd_repro.report <runs-dir> --out <results-dir>`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

CONF = resources.files("dsvdd_repro") / "conf"
# the order in which `reproduce` runs them (every conf/experiment/*.yaml is one)
EXPERIMENTS = tuple(sorted(entry.name.removesuffix(".yaml") for entry in (CONF / "experiment").iterdir()
                           if entry.name.endswith(".yaml")))
PROFILES = tuple(sorted(entry.name.removesuffix(".yaml") for entry in (CONF / "profile").iterdir()
                        if entry.name.endswith(".yaml")))
# run only when named (--experiments): checks beside the paper's tables, not part of reproduce-tables
EXTRA_EXPERIMENTS = ("ruff2018_ten_classes",)
DEFAULT_EXPERIMENTS = tuple(name for name in EXPERIMENTS if name not in EXTRA_EXPERIMENTS)
LAUNCHERS = tuple(sorted(entry.name.removesuffix(".yaml") for entry in (CONF / "launcher").iterdir()
                         if entry.name.endswith(".yaml")))
# the groups whose default option `--print-default` prints
DEFAULT_GROUPS = ("profile", "launcher")


def config_default(group: str) -> str:
    """The option conf/config.yaml's defaults list chooses for `group` (profile, launcher): the
    one place where the default of `dsvdd-train`, `dsvdd-reproduce` and `make` is set."""
    from omegaconf import OmegaConf

    with (CONF / "config.yaml").open() as handle:
        defaults = OmegaConf.to_container(OmegaConf.load(handle).defaults, resolve=False)
    chosen = [entry[group] for entry in defaults if isinstance(entry, dict) and group in entry]
    if len(chosen) != 1:
        raise KeyError(f"conf/config.yaml's defaults list chooses no single {group}: {chosen}")
    return chosen[0]


def profile_weights(profile: str) -> str:
    """The weights a profile asks for (its `profile.weights`: imagenet, none, auto or a path)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(str(CONF / "profile" / f"{profile}.yaml")).profile.weights


def experiment_command(name: str, profile: str, launcher: str, weights: str, runs_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "dsvdd_repro.train", "-m", f"experiment={name}", f"profile={profile}",
        f"launcher={launcher}", f"profile.weights={weights}", "trainer.progress=false",
        f"hydra.sweep.dir={runs_dir}",
        # runs whose data is not on this machine are missing cells of the report, with their reasons,
        # not a broken sweep; a failed run still is one
        "hydra.sweeper.fail_on_invalid=false",
    ]


def resolve_weights(weights: str) -> str:
    """`auto` -> `imagenet` if the ImageNet ResNet-18 weights can be had here (downloading them
    once if needed), else `none`."""
    if weights != "auto":
        return weights
    from dsvdd_repro.models.weights import WeightsError, load_imagenet_state

    try:
        load_imagenet_state()
    except WeightsError as error:
        print(f"weights=auto: ImageNet weights unavailable, every run uses random initialisation "
              f"(model.weights=none). {error}", flush=True)
        return "none"
    print("weights=auto: using the ImageNet ResNet-18 weights (model.weights=imagenet)", flush=True)
    return "imagenet"


def produced_by(args: argparse.Namespace, weights: str, seconds: float) -> str:
    """One line for REPORT.md: the command, the weights used, the runs' wall time and the machine."""
    import os
    import platform

    import torch

    from dsvdd_repro.core.execution import device_name

    device = device_name("cuda") if torch.cuda.is_available() else "no GPU"
    return (f"`python -m dsvdd_repro.reproduce --profile {args.profile} --launcher {args.launcher} "
            f"--experiments {args.experiments}` (weights: {weights}); the runs took {seconds:.0f} s wall "
            f"({seconds / 60:.1f} min; finished runs found in the runs folder are skipped, not re-timed) on "
            f"{platform.machine()} with {os.cpu_count()} CPU cores, {device}")


def print_plan(args: argparse.Namespace, chosen: list[str], weights: str) -> int:
    """`--plan`: the cost plan of the profile (dsvdd_repro/sweeps/plan.py); weights=auto as the runs would
    resolve it, without downloading anything."""
    from dsvdd_repro.models.weights import resolve_weights as resolve_cheaply
    from dsvdd_repro.storage.locations import default_cache_root
    from dsvdd_repro.sweeps.cost import CostNotStated
    from dsvdd_repro.sweeps.plan import make_plan, render

    start = time.perf_counter()
    weights = resolve_cheaply(weights)
    runs_dir = (args.runs_dir or Path("runs") / args.profile).resolve()
    try:
        plans, info = make_plan(args.profile, chosen, args.launcher, weights, runs_dir, default_cache_root(),
                                args.recalibrate)
    except CostNotStated as error:  # a method the plan cannot price: one line, nothing measured
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(plans, info, args.profile, args.launcher, weights))
    print(f"(plan made in {time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the paper's experiments for a profile, then the report.")
    parser.add_argument("--profile", choices=PROFILES, default=config_default("profile"),
                        help="default: conf/config.yaml's (%(default)s)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default=config_default("launcher"),
                        help="default: conf/config.yaml's (%(default)s)")
    parser.add_argument("--experiments", default=",".join(DEFAULT_EXPERIMENTS),
                        help=f"comma-separated subset (default: all but {', '.join(EXTRA_EXPERIMENTS)})")
    parser.add_argument("--weights", help="model.weights for every run: auto, imagenet, none or a file "
                        "(default: imagenet for paper, auto for quick, none for smoke)")
    parser.add_argument("--report-only", action="store_true", help="skip the runs, only write the report")
    parser.add_argument("--runs-dir", type=Path, help="where the run folders go (default: runs/<profile>)")
    parser.add_argument("--results-dir", type=Path, help="where the report goes (default: results/<profile>)")
    parser.add_argument("--plan", action="store_true", help="print the cost plan (runs, work, estimated hours on "
                        "this device) and run nothing")
    parser.add_argument("--recalibrate", action="store_true", help="with --plan: measure this device's rates again")
    parser.add_argument("--print-default", choices=DEFAULT_GROUPS, help="print the default option of a group "
                        "(conf/config.yaml's, what `make` uses) and exit")
    args = parser.parse_args(argv)
    if args.print_default:
        print(config_default(args.print_default))
        return 0
    chosen = [name.strip() for name in args.experiments.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(EXPERIMENTS))
    if unknown:
        print(f"error: unknown experiments {unknown}; allowed: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    weights = args.weights or profile_weights(args.profile)
    if args.plan:
        return print_plan(args, chosen, weights)
    if not args.report_only:
        weights = resolve_weights(weights)
    # as given (relative to the working folder): the report names it, and committed reports must not
    # name this machine's paths; the sweep gets it absolute
    runs_dir = args.runs_dir or Path("runs") / args.profile
    results_dir = args.results_dir or Path("results") / args.profile
    start = time.perf_counter()
    failures = []
    if not args.report_only:
        for name in chosen:
            print(f"== {name} (profile={args.profile}, launcher={args.launcher}, weights={weights})", flush=True)
            result = subprocess.run(experiment_command(name, args.profile, args.launcher, weights, runs_dir.resolve()))
            if result.returncode != 0:
                failures.append(name)  # report what there is; say which sweeps broke
    command = [sys.executable, "-m", "dsvdd_repro.report", str(runs_dir), "--out", str(results_dir)]
    if not args.report_only:
        command += ["--produced-by", produced_by(args, weights, time.perf_counter() - start)]
    report = subprocess.run(command)
    print(f"reproduce-tables ({args.profile}): {time.perf_counter() - start:.0f} s", flush=True)
    if failures:
        print(f"error: these sweeps exited with an error: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures or report.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
