"""A job filter for the sweeper tests' app (`hydra.sweeper.job_filter=tests.sweeper_conf.app_filter.classify`):
the seeds in `+done_seeds` are done, those in `+invalid_seeds` invalid."""


def classify(job) -> tuple[str, str]:
    cfg = job.container()
    if cfg["seed"] in cfg.get("done_seeds", []):
        return "done", f"seed {cfg['seed']} is done"
    if cfg["seed"] in cfg.get("invalid_seeds", []):
        return "invalid", f"seed {cfg['seed']} is refused by the test filter"
    return "run", ""
