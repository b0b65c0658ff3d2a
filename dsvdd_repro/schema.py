"""What every config node shares: the one-line input error, the value checks, registration of a
node in Hydra's ConfigStore, and building the object a node names.

A config node is a dataclass with a `_target_` (the class it builds), a `name` (the option's name,
recorded in metrics.json) and the keys that option reads, nothing else. Its value checks live in
its `__post_init__`, with the helpers below; `dsvdd_repro.config.validate` runs them for every node
of a composed config (by converting it to its dataclass) and prefixes the group to the key. A
dataclass is optional for users' own options: a YAML file with `_target_` and `name` in a config
group folder (on Hydra's search path) is a node too; its class then checks its own arguments.

This module imports nothing of the package, so every layer (data, models, methods) may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")

# (group, option name) -> the `_target_` of every node registered with `config_node`: the only
# targets a config read back from a run folder may name (dsvdd_repro/received.py)
NODE_TARGETS: dict[tuple[str, str], str | None] = {}


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
        return node

    return register


def build(node: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate the node's `_target_` with its keys (all but `name`) and `kwargs`. The objects
    in `kwargs` (a run context, a device) are passed as they are: Hydra would turn them into config
    if they went through instantiate's own kwargs."""
    params = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    params.pop("name", None)
    return instantiate(params, _partial_=True, _convert_="all")(**kwargs)


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
