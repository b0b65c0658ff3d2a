"""The sweeper tests' task: records the job's overrides, number and config in its output folder.

For the fault tests (tests/test_sweep_faults.py): `+optim=adam` adds a typed node (`optim.lr` is a
float, so `optim.lr=fast` cannot be composed); the job whose seed is `+crash_seed` raises after
recording nothing; the one whose seed is `+diverge_seed` returns status "diverged".
"""

import json
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@dataclass
class Adam:
    name: str = "adam"
    lr: float = 0.001


ConfigStore.instance().store(group="optim", name="adam", node=Adam)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    if cfg.get("crash_seed") is not None and cfg.seed == cfg.crash_seed:
        raise RuntimeError(f"seed {cfg.seed} crashes")
    hydra_cfg = HydraConfig.get()
    record = {
        "overrides": list(hydra_cfg.overrides.task),
        "num": hydra_cfg.job.num,
        "config": OmegaConf.to_container(cfg),
    }
    (Path(hydra_cfg.runtime.output_dir) / "job.json").write_text(json.dumps(record))
    return {"status": "diverged" if cfg.seed == cfg.get("diverge_seed") else "done"}


if __name__ == "__main__":
    main()
