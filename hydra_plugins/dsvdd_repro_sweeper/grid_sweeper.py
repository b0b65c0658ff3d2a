"""A grid sweeper that launches each job of a Cartesian grid only with the axes that apply to it.

The paper's grids are Cartesian (`variant` x `regularizer.k` x `seed` ...), but an axis does not
apply to every row: OC-SVM has no regularizer (so no `regularizer.k`) and no objective. Hydra's basic
sweeper launches every product anyway, and overriding a key the job's config lacks either fails
(`regularizer.k` when `regularizer` is null) or silently puts a group back (`objective=one_class` on a
variant that removed its objective). This sweeper drops, per job, the axes its config does not have,
and launches each distinct remaining override list once, in grid order.

The axes are `params` (an experiment's grid) and the command line's sweeps; the command line wins for
a key params has, and `restrict` (a profile's values) replaces an axis's values, but adds no axis.

Whether an axis applies is decided on composed configs, but only once per distinct combination of
config-group choices (and once per "that combination without group G"), never per job: Table VI's
16,000-point grid needs a handful of compositions instead of 16,000 (0.1-0.2 s each).

Built on Hydra's public plugin API only (no `hydra._internal`): `hydra/sweeper=grid`.
"""

# No `from __future__ import annotations`: Hydra imports plugin modules without registering them in
# sys.modules, and OmegaConf cannot resolve the structured config's string annotations then.
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException, HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.dsvdd_repro_sweeper.grid_sweeper.GridSweeper"
    # jobs per launcher call (None: the whole grid in one call)
    max_batch_size: Optional[int] = None  # noqa: UP045 (OmegaConf's structured configs want Optional)
    # the experiment's axes: key -> sweep string ("a,b", "range(5)", "x")
    params: Optional[dict[str, str]] = None  # noqa: UP045
    # a profile's values for axes: replaces an axis's values, ignored for keys nothing sweeps
    restrict: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="dsvdd_repro")


@dataclass(frozen=True)
class Axis:
    """One key of the grid and its `key=value` overrides, in sweep order.

    `group`: the key is a config group (`variant`), else a config value (`regularizer.k`, `seed`).
    `checked`: the axis is dropped from the jobs whose config lacks it. False for a fixed command-line
    override and for `+key` / `++key` (they add what is missing): those apply to every job.
    """

    key: str
    overrides: tuple[str, ...]
    group: bool = False
    checked: bool = True


class Expansion(NamedTuple):
    jobs: list[list[str]]  # distinct override lists, in grid order
    points: int  # size of the Cartesian product
    compositions: int  # configs composed to decide which axes apply


def _has_group(cfg: DictConfig, key: str) -> bool:
    """Whether `cfg` chose an option of group `key` (null: no). Without Hydra's record of the choices
    (a test's fake composer), whether the group's node is there."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices")
    if choices is not None and key in choices:
        return choices[key] is not None
    return OmegaConf.select(cfg, key.replace("/", "."), default=None, throw_on_missing=False) is not None


def _has_value(cfg: DictConfig, key: str) -> bool:
    """Whether the dotted `key` exists in `cfg` (a mandatory `???` value exists too)."""
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, throw_on_missing=False) if parent_key else cfg
    if isinstance(parent, DictConfig):
        return last in parent.keys()
    if isinstance(parent, ListConfig):
        return last.isdigit() and int(last) < len(parent)
    return False


def expand_grid(axes: Sequence[Axis], compose: Callable[[list[str]], DictConfig]) -> Expansion:
    """The distinct jobs of the grid `axes` (see the module docstring).

    For each distinct combination of group choices, `compose` is called (once per distinct override
    list) on:
    - every group override but G's, for each checked group axis G: G does not apply iff that config
      chose no option of G while the config without swept groups does (a variant's
      `override /objective: null` removed the objective, and `objective=...` would put it back; a
      group that is null by default, like `variant`, is what its axis sets, so it applies). Value
      overrides are left out there: a fixed `regularizer.k=5` fails where G's default lacks `k`;
    - the fixed overrides and the group overrides that apply: a checked value axis applies iff its
      key exists there (`regularizer.k` does not when `regularizer` is null or `variance`).
    A job is the grid point without the axes that do not apply; the first of equal jobs is kept.
    """
    cache: dict[tuple[str, ...], DictConfig] = {}

    def composed(overrides: list[str]) -> DictConfig:
        key = tuple(overrides)
        if key not in cache:
            try:
                cache[key] = compose(overrides)
            except HydraException as e:
                raise ConfigCompositionException(f"grid sweeper: cannot compose {overrides}: {e}") from e
        return cache[key]

    groups = [i for i, axis in enumerate(axes) if axis.group]
    masks: dict[tuple[str, ...], tuple[bool, ...]] = {}

    def group_applies(i: int, chosen: dict[int, str]) -> bool:
        if not axes[i].checked:
            return True
        key = axes[i].key
        without_swept = composed([chosen[j] for j in groups if not axes[j].checked])
        return not _has_group(without_swept, key) or _has_group(
            composed([chosen[j] for j in groups if j != i]), key
        )

    def mask(choice: tuple[str, ...]) -> tuple[bool, ...]:
        """Which axes apply to the grid points with these group choices (one per group axis)."""
        chosen = dict(zip(groups, choice, strict=True))
        applies = {i: group_applies(i, chosen) for i in groups}
        settled = [
            chosen[i] if axis.group else axis.overrides[0]
            for i, axis in enumerate(axes)
            if (axis.group and applies[i])
            or (not axis.group and not axis.checked and len(axis.overrides) == 1)
        ]
        cfg = composed(settled)
        return tuple(
            applies[i] if axis.group else not axis.checked or _has_value(cfg, axis.key)
            for i, axis in enumerate(axes)
        )

    jobs: dict[tuple[str, ...], None] = {}  # insertion-ordered set
    points = 0
    for point in itertools.product(*(axis.overrides for axis in axes)):
        points += 1
        choice = tuple(point[i] for i in groups)
        if choice not in masks:
            masks[choice] = mask(choice)
        jobs.setdefault(tuple(o for o, m in zip(point, masks[choice], strict=True) if m))
    return Expansion([list(job) for job in jobs], points, len(cache))


def _values(override: Override) -> tuple[str, ...]:
    """`key=value` for each value of `override`, as Hydra's basic sweeper writes them."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        return (override.input_line or f"{key}={override.get_value_element_as_str()}",)
    if not override.is_discrete_sweep():
        assert override.value_type is not None
        raise HydraException(
            f"the grid sweeper cannot enumerate a {override.value_type.name} sweep: '{override.input_line}'"
        )
    return tuple(f"{key}={value}" for value in override.sweep_string_iterator())


def grid_axes(
    arguments: Sequence[str],
    params: Mapping[str, str],
    restrict: Mapping[str, str],
    parser: OverridesParser,
    is_group: Callable[[str], bool],
) -> list[Axis]:
    """The grid of `params` and the command line `arguments` (which win for the same key, in the
    params' position, as with the basic sweeper). The axes are params' keys and the command line's
    sweeps; `restrict[key]` (a profile's values) replaces the values of an axis that params sweeps,
    unless the command line gives that key (the user's explicit values win). A non-sweep
    command-line override of another key applies to every job."""

    def parse(entries: Mapping[str, str]) -> dict[str, Override]:
        parsed = parser.parse_overrides([f"{key}={value}" for key, value in entries.items()])
        return {override.get_key_element(): override for override in parsed}

    overrides = parse(params)
    swept = set(overrides)
    restrictable = set(overrides)
    for override in parser.parse_overrides(list(arguments)):
        overrides[override.get_key_element()] = override
        restrictable.discard(override.get_key_element())
        if override.is_sweep_override():
            swept.add(override.get_key_element())
    restricted = parse(restrict)
    axes = []
    for key, override in overrides.items():
        if key in restrictable and key in restricted:
            override = restricted[key]
        name = override.key_or_group
        adds = override.is_add() or override.is_force_add()
        axes.append(
            Axis(
                key=name if override.package is None else f"{name}@{override.package}",  # as in choices
                overrides=_values(override),
                group=not override.is_delete() and is_group(name),
                checked=key in swept and not adds,
            )
        )
    return axes


def sweep_jobs(
    arguments: Sequence[str],
    params: Mapping[str, str],
    restrict: Mapping[str, str],
    config_loader: ConfigLoader,
    master_config: DictConfig,
) -> Expansion:
    """The sweep's jobs, composed with Hydra's `config_loader` against the multirun's config."""
    tic = time.perf_counter()
    groups: dict[str, bool] = {}

    def is_group(key: str) -> bool:
        if key not in groups:
            groups[key] = bool(config_loader.get_group_options(key))
        return groups[key]

    parser = OverridesParser.create(config_loader=config_loader)
    axes = grid_axes(arguments, params, restrict, parser, is_group)
    expansion = expand_grid(axes, lambda overrides: config_loader.load_sweep_config(master_config, overrides))
    log.info(
        "sweep: %d grid points are %d distinct runs (%d compositions, %.1f s)",
        expansion.points,
        len(expansion.jobs),
        expansion.compositions,
        time.perf_counter() - tic,
    )
    return expansion


class GridSweeper(Sweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: Mapping[str, str] | None = None,
        restrict: Mapping[str, str] | None = None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.restrict = dict(restrict or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        """Launch the distinct jobs in batches of `max_batch_size`; the launcher's results per batch.
        A failed job raises once its batch is done (as with the basic sweeper)."""
        assert self.hydra_context is not None and self.config is not None and self.launcher is not None
        jobs = sweep_jobs(
            arguments, self.params, self.restrict, self.hydra_context.config_loader, self.config
        ).jobs

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else max(len(jobs), 1)
        returns = []
        for start in range(0, len(jobs), size):
            results = self.launcher.launch(jobs[start : start + size], initial_job_idx=start)
            for result in results:
                _ = result.return_value  # raises the job's exception, if it failed
            returns.append(results)
        return returns
