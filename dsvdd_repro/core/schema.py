"""What every config node shares: the one-line input error, the value checks, registration of a
node in Hydra's ConfigStore, and building the object a node names (or finding its class).

A config node is a dataclass with a `_target_` (the class it builds), a `name` (the option's name,
recorded in metrics.json) and the keys that option reads, nothing else. Its value checks live in
its `__post_init__`, with the helpers below; `dsvdd_repro.runs.config.validate` runs them for every node
of a composed config (by converting it to its dataclass) and prefixes the group to the key. A
dataclass is optional for users' own options: a YAML file with `_target_` and `name` in a config
group folder (on Hydra's search path) is a node too; its class then checks its own arguments.

A node's dataclass also says what a run of it records and what is chosen on validation data, as
class attributes (not keys: they are no part of a run's identity):
- `SWEPT`: the hyper-parameters of this option that sweeps vary (e.g. the noise regularizer's `k`).
  Every key any option of a group declares is an axis of every run (metrics.json, contract C2;
  None where the run's option has no such key), so runs of different options stay comparable
  (`dsvdd_repro.runs.folders.run_axes`, the report's columns, the selection's cells).
- `SELECTED`: those of its swept keys the report chooses per cell by mean validation AUC over
  seeds (dsvdd_repro/report/selection.py), never by test AUC.
A node's declarations are its own and those of the node classes it extends (`declared`).

This module imports nothing of the package, so every layer (data, models, methods) may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

# The groups whose options are nodes; a group left null is not part of the run.
NODE_GROUPS = ("dataset", "setup", "anomaly", "method", "model", "objective", "regularizer", "features", "optim",
               "lr_schedule", "pretrain")

T = TypeVar("T")

# (group, option name) -> the `_target_` of every node registered with `config_node`: the only
# targets a config read back from a run folder may name (dsvdd_repro/storage/received.py)
NODE_TARGETS: dict[tuple[str, str], str | None] = {}
# (group, option name) -> the dataclass of every node registered with `config_node`, in the order
# they were registered: where `declared` reads what the nodes of a group record and select
NODE_CLASSES: dict[tuple[str, str], type] = {}


class ConfigError(ValueError):
    """A configuration value that cannot be run; the message is one line for the user."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"invalid config: {key}={value!r} ({allowed})")

    def within(self, group: str) -> ConfigError:
        """The same error with its key prefixed by the node's group, e.g. `regularizer.k`."""
        return ConfigError(f"{group}.{self.key}", self.value, self.allowed)


def config_node(group: str, name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make the class a dataclass and store it as option `name` of config group
    `group` (its keys' defaults are the option's defaults)."""

    def register(cls: type[T]) -> type[T]:
        node = dataclass(cls)
        ConfigStore.instance().store(group=group, name=name, node=node)
        NODE_TARGETS[(group, name)] = getattr(node, "_target_", None)
        NODE_CLASSES[(group, name)] = node
        return node

    return register


def declared(attribute: str, group: str | None = None) -> tuple[str, ...]:
    """The keys the registered nodes (of `group`, or of every group) declare in `attribute`
    (`SWEPT`, `SELECTED`; see the module docstring), each once: first the keys the node classes
    declare themselves, in the order they were registered, then those they inherit (e.g. the
    weighting keys every regularizer shares)."""
    own: dict[str, None] = {}
    inherited: dict[str, None] = {}
    for (node_group, _), node in NODE_CLASSES.items():
        if group is None or node_group == group:
            own.update(dict.fromkeys(vars(node).get(attribute, ())))
            for base in node.__mro__[1:]:
                inherited.update(dict.fromkeys(vars(base).get(attribute, ())))
    return (*own, *(key for key in inherited if key not in own))


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate the node's `_target_` with its keys (all but `name`) and `kwargs`. The objects
    in `kwargs` (a run context, a device) are passed as they are: Hydra would turn them into config
    if they went through instantiate's own kwargs."""
    params = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    params.pop("name", None)
    return instantiate(params, _partial_=True, _convert_="all")(**kwargs)


def target_owner(target: str) -> Any:
    """What a `_target_` names, as the holder of its class-level facts (`REQUIRES`, `planned_work`):
    the class itself, the class of a classmethod (e.g. `DeepSVDD.from_context`), else the function."""
    named = get_object(target)
    return getattr(named, "__self__", named)


def one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(key, value, "allowed: " + ", ".join(map(str, allowed)))


def _not_finite(value: Any) -> bool:
    """NaN or +-inf (what `optim.lr=nan` or `=inf` gives): no float key of a node accepts either."""
    return isinstance(value, float) and not math.isfinite(value)


def in_range(key: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    if (value is None or _not_finite(value) or (value <= low if low_open else value < low)
            or (value >= high if high_open else value > high)):
        raise ConfigError(key, value, f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def positive(key: str, value: float) -> None:
    if value is None or _not_finite(value) or value <= 0:
        raise ConfigError(key, value, "must be a finite number > 0" if isinstance(value, float) else "must be > 0")


def non_negative(key: str, value: float) -> None:
    if value is None or _not_finite(value) or value < 0:
        raise ConfigError(key, value, "must be a finite number >= 0" if isinstance(value, float) else "must be >= 0")


def at_least(key: str, value: int | None, low: int, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if value is None or _not_finite(value) or value < low:
        raise ConfigError(key, value, f"must be {'null or ' if nullable else ''}>= {low}")


def shorten(names: Iterable[str], limit: int = 16) -> str:
    """`a, b, c, ... (n in all)`: a list of allowed names short enough for a one-line message."""
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def with_node_defaults(group: str, node: Any) -> DictConfig:
    """`node` (a recorded or partial node of `group`: a run's identity leaves out execution keys and
    keys at their introduced value) over the dataclass of the registered option it names (by `name`,
    else by `_target_`), so that keys it lacks take the node's defaults, their one home. A node of no
    registered option, or one the dataclass no longer fits, is returned as it is."""
    from hydra.core.config_store import ConfigNode

    plain = OmegaConf.to_container(node) if isinstance(node, DictConfig) else dict(node)
    for entry in ConfigStore.instance().repo.get(group, {}).values():
        if not isinstance(entry, ConfigNode) or not isinstance(entry.node, DictConfig):
            continue
        schema = entry.node
        same = plain.get("name") is not None and schema.get("name") == plain.get("name")
        if same or (plain.get("name") is None and schema.get("_target_") == plain.get("_target_")):
            try:
                return OmegaConf.merge(schema, plain)
            except Exception:  # noqa: BLE001 (an older node the dataclass does not fit: kept as recorded)
                break
    return OmegaConf.create(plain)
