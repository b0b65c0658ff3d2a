"""The work one run implies, read from its resolved config alone (no image is read, nothing is built
but the dataset's source object, which only stores its keys): the cost plan's unit (dsvdd_repro/sweeps/plan.py).

Each part states its own share, beside the code that does the work; this module adds them up:
- the setup: its splits' rows and the altered images its protocol generates (`planned_sizes`,
  dsvdd_repro/data/setups.py, counted as dsvdd_repro/data/protocols.py draws them);
- the method: the class its node's `_target_` names counts the rest from the config and those sizes
  (`planned_work(config, sizes)`, a PlannedWork: dsvdd_repro/methods/base.py), e.g. deep SVDD's
  epochs, batch-norm calibration and validation passes, GEO's capped transformed passes, the
  shallow models' fits and their features' passes. A method whose class states none is refused
  before anything is priced (CostNotStated, one line).

The counts, per network (image-passes): train = forward + backward + optimiser step of one image,
eval = a forward pass without gradients, pretrain = the autoencoder's steps; altered = anomalies
generated; fits and their rows; checkpoints = the points that could write one, which the plan
prices at the run's trainer.checkpoint_every_s.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from dsvdd_repro.core.schema import build
from dsvdd_repro.data.images import PoolCounts
from dsvdd_repro.methods.base import CostNotStated, PlannedWork, stated_cost

__all__ = ["CostNotStated", "RunWork", "data_here", "run_work"]


@dataclass
class RunWork(PlannedWork):
    """A run's work: its method's PlannedWork, the altered images of its splits, and `network` =
    (model name, image size), what the calibration times (None: no network does the work)."""

    method: str = ""
    network: tuple[str, int] | None = None
    altered: int = 0


def _key(node) -> str:
    return json.dumps(node, sort_keys=True, default=str)


@cache
def _counts(dataset: str) -> PoolCounts | None:
    source = build(json.loads(dataset))  # a source only stores its keys (its cache_dir is not touched)
    planned = getattr(source, "planned_counts", None)
    return planned() if planned else None


@cache
def _sizes(setup: str, dataset: str, profile: str) -> dict | None:
    counts = _counts(dataset)
    if counts is None:
        return None
    setup_node = json.loads(setup)
    schema = ConfigStore.instance().repo["setup"][f"{setup_node['name']}.yaml"].node
    setup_object = OmegaConf.to_object(OmegaConf.merge(schema, setup_node))
    limits = {key: json.loads(profile).get(key) for key in ("max_train", "max_val", "max_test")}
    return setup_object.planned_sizes(counts, limits)


def data_here(c: dict) -> bool:
    """Whether the run's dataset is on this machine (its `root` an existing folder; a generated
    dataset always is): runs without it fail fast, as missing cells, and cost nothing."""
    root = c["dataset"].get("root", "generated")
    return bool(root) and Path(str(root)).expanduser().is_dir() if root != "generated" else True


def run_work(c: dict) -> RunWork:
    """The work of the run whose resolved config (plain dicts, as the sweeper's `job.container()`) is
    `c`: what its method's class states (CostNotStated when it states nothing) and its setup's sizes."""
    planned_work = stated_cost("method", c["method"], "planned_work", "planned_work(config, sizes)")
    model = c.get("model")
    network = (model["name"], int(c["dataset"]["image_size"])) if model else None
    sizes = _sizes(_key(c["setup"]), _key(c["dataset"]), _key(c["profile"]))
    if sizes is None:  # a dataset whose size the plan cannot know without reading it (a user's folder)
        return RunWork(method=c["method"]["name"], network=network)
    work = planned_work(c, sizes)
    return RunWork(**asdict(work), method=c["method"]["name"], network=network if work.uses_network else None,
                   altered=sizes["altered"])
