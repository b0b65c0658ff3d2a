"""Run every experiment of the paper for one profile, then the report (`make reproduce-tables`).

    python -m dsvdd_repro.reproduce --profile smoke|quick|paper [--launcher local|joblib|slurm]
                                    [--experiments table1,table3] [--weights auto|imagenet|none|<path>]

Each experiment is `python -m dsvdd_repro.train -m experiment=<name> profile=<profile>
launcher=<launcher>`, with the profile's grid overrides below replacing parts of the paper grid
(command-line sweep values take precedence over an experiment's `hydra.sweeper.params`). Runs land
in runs/<profile>/ and finished ones are skipped, so the command can be relaunched after an
interruption. Cells whose data is not on the machine fail fast (one line each) and are reported as
missing. Finally `python -m dsvdd_repro.report runs/<profile> --out results/<profile>`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

EXPERIMENTS = ("table1", "table2", "table3", "table4", "table5", "table6", "table6_cifar10", "fig1", "fig2")

# Grid overrides per profile (paper = the experiments' own grids).
# quick fits every cell whose data exists into an hour on a 2-core CPU (conf/profile/quick.yaml caps
# the splits and epochs): one seed, k in {5, 50} (still chosen on validation), all ten normal
# classes, Table VI's CIFAR-10 column with airplane (0) as the labeled anomaly class of the nine
# other normal classes, 32 px everywhere, and GEO with 1 epoch of 5,000 (image, transform) pairs and
# its Dirichlets fitted on 500 training images.
# smoke proves the pipeline in minutes: one seed, one k, one normal / labeled class, GEO capped.
PROFILE_GRIDS: dict[str, list[str]] = {
    "paper": [],
    "quick": [
        "seed=0", "regularizer.k=5,50", "setup.normal_class=range(10)", "setup.labeled_anomaly_class=0",
        "dataset.image_size=32", "method.geo_epochs=1", "method.geo_max_samples_per_epoch=5000",
        "method.geo_fit_max_samples=500",
    ],
    "smoke": [
        "seed=0", "regularizer.k=5", "setup.normal_class=0", "setup.labeled_anomaly_class=1",
        "dataset.image_size=32", "method.geo_epochs=1", "method.geo_max_samples_per_epoch=200",
        "method.ocsvm_gamma_exponents=[-2,0,2]",
    ],
}
# auto = ImageNet when torchvision can load (or download) them, else random initialisation; the
# choice is printed and every run records the weights it used. paper insists on ImageNet.
DEFAULT_WEIGHTS = {"paper": "imagenet", "quick": "auto", "smoke": "none"}
ROOT = Path(__file__).resolve().parents[1]


def swept_keys(name: str) -> set[str]:
    """The keys experiment `name` sweeps (its `hydra.sweeper.params`)."""
    from omegaconf import OmegaConf

    experiment = OmegaConf.load(ROOT / "conf" / "experiment" / f"{name}.yaml")
    return set(OmegaConf.select(experiment, "hydra.sweeper.params", default={}) or {})


def profile_overrides(name: str, profile: str) -> list[str]:
    """The profile's grid overrides for experiment `name`. A sweep (`a,b`, `range(n)`) is kept only
    where the experiment sweeps that key: elsewhere (e.g. the normal class in an alteration table)
    it would multiply the jobs by duplicates, and Hydra composes every job's config even when the
    run is then skipped (~0.2 s each)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    swept = swept_keys(name)
    parsed = OverridesParser.create().parse_overrides(PROFILE_GRIDS[profile])
    return [
        text for text, override in zip(PROFILE_GRIDS[profile], parsed, strict=True)
        if not override.is_sweep_override() or override.key_or_group in swept
    ]


def experiment_command(name: str, profile: str, launcher: str, weights: str, runs_dir: Path | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "dsvdd_repro.train", "-m", f"experiment={name}", f"profile={profile}",
        f"launcher={launcher}", f"model.weights={weights}", "trainer.progress=false",
        *profile_overrides(name, profile),
    ]
    return command + ([f"hydra.sweep.dir={runs_dir}"] if runs_dir else [])


def resolve_weights(weights: str) -> str:
    """`auto` -> `imagenet` if the ImageNet ResNet-18 weights can be had here, else `none`."""
    if weights != "auto":
        return weights
    from .models.weights import WeightsError, load_imagenet_state

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

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"`python -m dsvdd_repro.reproduce --profile {args.profile} --launcher {args.launcher} "
            f"--experiments {args.experiments}` (weights: {weights}); the runs took {seconds:.0f} s wall "
            f"({seconds / 60:.1f} min; finished runs found in the runs folder are skipped, not re-timed) on "
            f"{platform.machine()} with {os.cpu_count()} CPU cores, {device}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the paper's experiments for a profile, then the report.")
    parser.add_argument("--profile", choices=sorted(PROFILE_GRIDS), default="quick")
    parser.add_argument("--launcher", choices=("local", "joblib", "slurm"), default="local")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS), help="comma-separated subset")
    parser.add_argument("--weights", help="model.weights for every run: auto, imagenet, none or a file "
                        "(default: imagenet for paper, auto for quick, none for smoke)")
    parser.add_argument("--report-only", action="store_true", help="skip the runs, only write the report")
    parser.add_argument("--runs-dir", type=Path, help="where the run folders go (default: runs/<profile>)")
    parser.add_argument("--results-dir", type=Path, help="where the report goes (default: results/<profile>)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.experiments.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(EXPERIMENTS))
    if unknown:
        print(f"error: unknown experiments {unknown}; allowed: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    weights = args.weights or DEFAULT_WEIGHTS[args.profile]
    if not args.report_only:
        weights = resolve_weights(weights)
    # given folders are taken relative to the caller's directory; defaults live in the repository
    runs_dir = args.runs_dir.resolve() if args.runs_dir else Path("runs") / args.profile
    results_dir = args.results_dir.resolve() if args.results_dir else Path("results") / args.profile
    start = time.perf_counter()
    failures = []
    if not args.report_only:
        for name in chosen:
            print(f"== {name} (profile={args.profile}, launcher={args.launcher}, weights={weights})", flush=True)
            command = experiment_command(name, args.profile, args.launcher, weights, runs_dir if args.runs_dir else None)
            result = subprocess.run(command, cwd=ROOT)
            if result.returncode != 0:
                failures.append(name)  # report what there is; say which sweeps broke
    command = [sys.executable, "-m", "dsvdd_repro.report", str(runs_dir), "--out", str(results_dir)]
    if not args.report_only:
        command += ["--produced-by", produced_by(args, weights, time.perf_counter() - start)]
    report = subprocess.run(command, cwd=ROOT)
    print(f"reproduce-tables ({args.profile}): {time.perf_counter() - start:.0f} s", flush=True)
    if failures:
        print(f"error: these sweeps exited with an error: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures or report.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
