"""The sweeper tests' task: records the job's overrides, number and config in its output folder."""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    record = {
        "overrides": list(hydra_cfg.overrides.task),
        "num": hydra_cfg.job.num,
        "config": OmegaConf.to_container(cfg),
    }
    (Path(hydra_cfg.runtime.output_dir) / "job.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
