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

A job's own fault never stops the sweep. Before launching, each job's config is derived from the
composition of its group choices by setting its swept values with OmegaConf (struct mode and the
structured schema apply, as in Hydra's composition, so `optim.lr=fast` on a float is refused): a job
whose config cannot be composed is invalid and not launched. An optional `job_filter` then says per job
"run", "done" (not launched, counted as skipped) or "invalid" (not launched, logged with its reason);
it gets a SweepJob, whose `container()` (the resolved config as plain dicts) costs microseconds
where composing a config costs 0.1-0.2 s and copying one milliseconds. Launched jobs that fail stop no
later batch; once all ran, one summary line (`sweep: 120 jobs: 80 done, 30 skipped (already done),
5 invalid, 3 failed, 2 diverged`), and SweepError (exit status 1) if a job failed or was invalid.

Built on Hydra's public plugin API only (no `hydra._internal`): `hydra/sweeper=grid`.
"""

# No `from __future__ import annotations`: Hydra imports plugin modules without registering them in
# sys.modules, and OmegaConf cannot resolve the structured config's string annotations then.
import copy
import itertools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException, ConfigCompositionException, HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

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
    # a function `module.name(job: SweepJob) -> ("run" | "done" | "invalid", reason)` deciding per job
    # whether the launcher gets it (None: every job whose config composes)
    job_filter: Optional[str] = None  # noqa: UP045
    # grid points that are no job (neither launched nor counted): each entry lists overrides, and a point
    # with all of them is left out, e.g. [setup.normal_class=0, setup.labeled_anomaly_class=0]
    exclude: Optional[list[list[str]]] = None  # noqa: UP045
    # whether invalid jobs (bad input, data not on this machine) make the sweep exit non-zero; failed
    # jobs always do. `reproduce` sets it false: its report shows such cells as missing, with reasons.
    fail_on_invalid: bool = True


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
    # combinations of group choices that cannot be composed (`variant=typo` in a sweep list): their
    # group overrides and why; they are no job of `jobs`
    invalid: tuple[tuple[list[str], str], ...] = ()
    axes: tuple[Axis, ...] = ()  # the grid (sweep_jobs sets it)
    excluded: int = 0  # grid points left out by `exclude`


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


def expand_grid(
    axes: Sequence[Axis],
    compose: Callable[[list[str]], DictConfig],
    exclude: Sequence[Sequence[str]] = (),
) -> Expansion:
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
    A job is the grid point without the axes that do not apply; the first of equal jobs is kept. A
    combination of group choices that cannot be composed is listed in `invalid` (once), not raised.
    A point that has every override of an `exclude` entry is left out before anything else.
    """
    keys = {axis.overrides[0].split("=", 1)[0] for axis in axes if axis.overrides}
    for entry in exclude:
        unknown = [o for o in entry if o.split("=", 1)[0] not in keys]
        if unknown:
            raise HydraException(f"grid sweeper: exclude entry {list(entry)}: {unknown} sweeps no key of the grid")
    excluding = [frozenset(entry) for entry in exclude if entry]
    cache: dict[tuple[str, ...], DictConfig] = {}

    def composed(overrides: list[str]) -> DictConfig:
        key = tuple(overrides)
        if key not in cache:
            try:
                cache[key] = compose(overrides)
            except (HydraException, OmegaConfBaseException) as e:
                raise ConfigCompositionException(f"cannot compose {' '.join(overrides)}: {one_line(e)}") from e
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
    invalid: dict[tuple[str, ...], str] = {}
    points = excluded = 0
    for point in itertools.product(*(axis.overrides for axis in axes)):
        points += 1
        if excluding and any(entry.issubset(point) for entry in excluding):
            excluded += 1
            continue
        choice = tuple(point[i] for i in groups)
        if choice not in masks and choice not in invalid:
            try:
                masks[choice] = mask(choice)
            except ConfigCompositionException as e:
                invalid[choice] = one_line(e)
        if choice in masks:
            jobs.setdefault(tuple(o for o, m in zip(point, masks[choice], strict=True) if m))
    return Expansion(
        [list(job) for job in jobs],
        points,
        len(cache),
        tuple((list(c), why) for c, why in invalid.items()),
        excluded=excluded,
    )


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
    compose: Callable[[list[str]], DictConfig] | None = None,
    exclude: Sequence[Sequence[str]] = (),
) -> Expansion:
    """The sweep's jobs, composed with Hydra's `config_loader` against the multirun's config (or
    with `compose`, e.g. a cached one)."""
    tic = time.perf_counter()
    groups: dict[str, bool] = {}

    def is_group(key: str) -> bool:
        if key not in groups:
            groups[key] = bool(config_loader.get_group_options(key))
        return groups[key]

    parser = OverridesParser.create(config_loader=config_loader)
    axes = grid_axes(arguments, params, restrict, parser, is_group)
    expansion = expand_grid(
        axes, compose or (lambda overrides: config_loader.load_sweep_config(master_config, overrides)), exclude
    )
    log.info(
        "sweep: %d grid points are %d distinct runs (%d compositions, %.1f s)%s",
        expansion.points,
        len(expansion.jobs),
        expansion.compositions,
        time.perf_counter() - tic,
        f"; {expansion.excluded} points excluded" if expansion.excluded else "",
    )
    return expansion._replace(axes=tuple(axes))


# ---------------------------------------------------------------------------------------------------
# Each job's config without composing it: the composition of its group choices plus its value overrides
# ---------------------------------------------------------------------------------------------------


def one_line(error: BaseException) -> str:
    """An error as one line: its first line, and its cause's (Hydra's `Error merging override x=y`
    says why only in the cause)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        reason = str(cause).strip().splitlines()[0]
        text += "" if reason in text else f": {reason}"
    return text


def apply_override(cfg: DictConfig, override: Override) -> None:
    """Apply a value override to a composed config as Hydra's composition does (set, `+` add, `++`
    force-add, `~` delete; struct mode and the structured schema apply): ConfigCompositionException
    where Hydra's composition of the job would fail."""
    key, value = override.key_or_group, override.value()
    try:
        if override.is_delete():
            parent_key, _, last = key.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key, throw_on_missing=False) if parent_key else cfg
            if OmegaConf.select(cfg, key, throw_on_missing=False) is None or not isinstance(parent, DictConfig):
                raise ConfigCompositionException(f"Could not delete from config. '{key}' does not exist.")
            if value is not None and value != OmegaConf.select(cfg, key):
                raise ConfigCompositionException(f"Could not delete from config. The value of '{key}' is not {value}.")
            with open_dict(parent):
                del parent[last]
        elif override.is_add():
            if OmegaConf.select(cfg, key, throw_on_missing=False) is not None and not isinstance(value, (dict, list)):
                raise ConfigCompositionException(
                    f"Could not append to config. An item is already at '{key}' (drop the + or use ++)"
                )
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        elif override.is_force_add():
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        else:
            OmegaConf.update(cfg, key, value, merge=True)
    except OmegaConfBaseException as e:
        raise ConfigCompositionException(f"Error merging override {override.input_line}") from e


@dataclass(frozen=True)
class Change:
    """A value override that sets an existing plain value (no interpolation, no node): `value` as the
    composed config holds it (converted by the schema: `lr=1` -> 1.0), `previous` the composition's."""

    override: Override
    key: str
    value: Any
    previous: Any


_PLAIN_KEY = re.compile(r"[A-Za-z_][\w\-]*(\.[A-Za-z_][\w\-]*)*")


class Composition:
    """The config Hydra composes for one combination of group choices and fixed value overrides,
    composed once; each of its jobs is this config plus the job's swept value overrides.

    `memo` is for job filters: what is the same for every job of the composition (keyed as they like).
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self._task_cfg: DictConfig | None = None
        self.memo: dict[Any, Any] = {}
        self._changes: dict[str, Change | str | None] = {}
        self._container: dict | None = None
        self._interpolations: list[str] | None = None
        self._depends: dict[str, bool] = {}
        self._sweep_dir: str | None = None
        self._sweep_dir_depends: dict[str, bool] = {}

    def change(self, override: Override) -> Change | str | None:
        """`override` as a Change, an error (it cannot apply: Hydra would refuse the job's config), or
        None (not a plain value on an existing plain node: the job is composed exactly instead).
        Checked once per composition by setting it on the composition and setting the value back."""
        line = override.input_line or ""
        if line not in self._changes:
            self._changes[line] = self._check(override)
        return self._changes[line]

    def _check(self, override: Override) -> Change | str | None:
        key = override.key_or_group
        value = override.value()
        if (
            override.is_delete() or override.is_add() or override.is_force_add() or override.package is not None
            or isinstance(value, (dict, list)) or value == "???" or not _PLAIN_KEY.fullmatch(key)
        ):
            return None
        parent_key, _, last = key.rpartition(".")
        parent = OmegaConf.select(self.cfg, parent_key, throw_on_missing=False) if parent_key else self.cfg
        if not isinstance(parent, DictConfig) or last not in parent or OmegaConf.is_interpolation(parent, last):
            return None
        if OmegaConf.is_missing(parent, last):
            return None
        previous = parent[last]
        if isinstance(previous, (DictConfig, ListConfig)):
            return None
        try:
            OmegaConf.update(self.cfg, key, value, merge=True)
        except OmegaConfBaseException as e:
            return f"Error merging override {override.input_line}: {one_line(e)}"
        try:
            now = parent[last]
        finally:
            OmegaConf.update(self.cfg, key, previous, merge=True)
        return Change(override, key, now, previous)

    def task_cfg(self) -> DictConfig:
        """The composed config without `hydra`, as Hydra's run_job hands it to the task, with its
        interpolations resolved (OmegaConf parses an interpolation each time it is read: 1-2 ms)."""
        if self._task_cfg is None:
            self._task_cfg = task_config(self.cfg)
        return self._task_cfg

    def container(self) -> dict:
        """The composed config without `hydra`, resolved, as plain containers (shared: do not modify)."""
        if self._container is None:
            self._container = OmegaConf.to_container(self.task_cfg(), resolve=True)  # type: ignore[assignment]
            raw = OmegaConf.to_container(self.cfg, resolve=False)
            raw.pop("hydra", None)  # type: ignore[union-attr]
            self._interpolations = [text for text in _strings(raw) if "${" in text]
        assert self._container is not None
        return self._container

    def depends(self, key: str) -> bool:
        """Whether an interpolation of the config may read `key` (its top-level name is in one, or one is
        relative): then a change of `key` changes more than `key`."""
        root = key.split(".", 1)[0]
        if root not in self._depends:
            self.container()
            assert self._interpolations is not None
            self._depends[root] = any("${." in text or _mentions(text, root) for text in self._interpolations)
        return self._depends[root]

    def sweep_dir(self) -> str:
        if self._sweep_dir is None:
            self._sweep_dir = str(self.cfg.hydra.sweep.dir)
        return self._sweep_dir

    def sweep_dir_depends(self, key: str) -> bool:
        """Whether `hydra.sweep.dir` may read `key` (`runs/${profile.name}` reads profile.name)."""
        root = key.split(".", 1)[0]
        if root not in self._sweep_dir_depends:
            raw = OmegaConf.to_container(self.cfg.hydra.sweep, resolve=False).get("dir")  # type: ignore[union-attr]
            self._sweep_dir_depends[root] = (
                isinstance(raw, str) and "${" in raw and ("${." in raw or _mentions(raw, root))
            )
        return self._sweep_dir_depends[root]


def _mentions(text: str, name: str) -> bool:
    """Whether `name` is a word of `text` (a key's top-level name in an interpolation)."""
    return re.search(rf"(?<![\w\-]){re.escape(name)}(?![\w\-])", text) is not None


def task_config(cfg: DictConfig) -> DictConfig:
    """A copy of `cfg` without `hydra`, as Hydra's run_job makes the task's config, its interpolations
    resolved where they can be (an unresolvable one is left to fail where it is read, as in the job)."""
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    try:
        OmegaConf.resolve(task)
    except OmegaConfBaseException:
        task = copy.deepcopy(cfg)
        with read_write(task), open_dict(task):
            del task["hydra"]
    return task


def _strings(tree: Any):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _strings(value)
    elif isinstance(tree, str):
        yield tree


def _with_changes(tree: dict, changes: Sequence[Change]) -> dict:
    """`tree` with each change's key set to its value; the dicts on the way are copied, the rest shared."""
    out = dict(tree)
    for change in changes:
        *path, last = change.key.split(".")
        node = out
        for part in path:
            node[part] = dict(node[part])
            node = node[part]
        node[last] = change.value
    return out


def _overlapping(keys: Sequence[str]) -> bool:
    return any(a == b or a.startswith(b + ".") for i, a in enumerate(keys) for j, b in enumerate(keys) if i != j)


class SweepJob:
    """One job of the sweep as the sweeper sees it before launching: its `overrides`, the
    `composition` of its group choices, and its `changes` (the swept value overrides: applied to the
    composition, they make the config Hydra would compose for the job).

    `error`: the job's config cannot be composed (a bad value in a sweep list: `optim.lr=fast` on a
    float) — the job is invalid. Otherwise a job filter reads it through `container()` (fast),
    `sweep_dir()` and `config()` (the exact composed config, in a `with` block).
    """

    def __init__(
        self,
        overrides: list[str],
        composition: Composition | None,
        values: list[Override],
        error: str | None = None,
    ) -> None:
        self.overrides = overrides
        self.composition = composition
        self.values = values  # the value overrides applied to the composition, in order
        self.error = error
        # None: the job's config is composed exactly (a copy of the composition and the overrides)
        self.changes: tuple[Change, ...] | None = None
        if composition is not None and error is None:
            checked = [composition.change(override) for override in values]
            errors = [c for c in checked if isinstance(c, str)]
            if all(c is not None for c in checked) and not _overlapping([o.key_or_group for o in values]):
                if errors:
                    self.error = errors[0]
                else:
                    self.changes = tuple(checked)  # type: ignore[arg-type]
            else:
                try:
                    with self.config():
                        pass
                except ConfigCompositionException as e:
                    self.error = one_line(e)

    @property
    def memo(self) -> dict:
        assert self.composition is not None
        return self.composition.memo

    @contextmanager
    def config(self, task: bool = False) -> Iterator[DictConfig]:
        """The job's config as Hydra composes it (with `hydra`; `task`: without, as the task gets it,
        and resolved), for the `with` block only: do not keep or modify it (it may be the composition
        with the job's values set, set back afterwards)."""
        assert self.composition is not None
        cfg = self.composition.task_cfg() if task else self.composition.cfg
        if self.changes is None or (task and any(self.composition.depends(c.key) for c in self.changes)):
            # the resolved task config holds values an interpolation computed from a changed key
            cfg = copy.deepcopy(self.composition.cfg)
            for override in self.values:
                apply_override(cfg, override)
            yield task_config(cfg) if task else cfg
            return
        applied: list[Change] = []
        try:
            for change in self.changes:
                OmegaConf.update(cfg, change.key, change.value, merge=True)
                applied.append(change)
            yield cfg
        finally:
            for change in reversed(applied):
                OmegaConf.update(cfg, change.key, change.previous, merge=True)

    def container(self) -> dict:
        """The job's config without `hydra`, resolved, as plain containers (shared parts: do not modify):
        OmegaConf.to_container of the composed config, without composing it when the changes are plain
        values no interpolation reads."""
        assert self.composition is not None and self.error is None
        if self.changes is not None and not any(self.composition.depends(c.key) for c in self.changes):
            return _with_changes(self.composition.container(), self.changes)
        with self.config(task=True) as cfg:
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]

    def sweep_dir(self) -> str:
        """The job's `hydra.sweep.dir`."""
        assert self.composition is not None and self.error is None
        if self.changes is not None and not any(self.composition.sweep_dir_depends(c.key) for c in self.changes):
            return self.composition.sweep_dir()
        with self.config() as cfg:
            return str(cfg.hydra.sweep.dir)


def prepare_jobs(
    jobs: Sequence[Sequence[str]],
    axes: Sequence[Axis],
    compose: Callable[[list[str]], DictConfig],
    parser: OverridesParser,
) -> list[SweepJob]:
    """Each job as a SweepJob: composed (with `compose`) once per combination of its group overrides
    and single-valued overrides; its other overrides, the swept values, are set on that composition."""
    axis_of = {override: axis for axis in axes for override in axis.overrides}
    parsed: dict[str, Override] = {}
    compositions: dict[tuple[str, ...], Composition | str] = {}

    def parse(line: str) -> Override:
        if line not in parsed:
            parsed[line] = parser.parse_overrides([line])[0]
        return parsed[line]

    prepared = []
    for overrides in jobs:
        fixed = [o for o in overrides if axis_of[o].group or len(axis_of[o].overrides) == 1]
        swept = [parse(o) for o in overrides if o not in fixed]
        keys = [o.key_or_group for o in swept]
        if any(not axis_of[o].group and _overlapping([parse(o).key_or_group, *keys]) for o in fixed):
            # a fixed value overlaps a swept one: the job's order of overrides matters, keep it
            fixed = [o for o in overrides if axis_of[o].group]
            swept = [parse(o) for o in overrides if o not in fixed]
        key = tuple(fixed)
        if key not in compositions:
            try:
                compositions[key] = Composition(compose(list(key)))
            except (HydraException, OmegaConfBaseException) as e:
                compositions[key] = one_line(e)
        composition = compositions[key]
        if isinstance(composition, str):
            prepared.append(SweepJob(list(overrides), None, swept, error=composition))
        else:
            prepared.append(SweepJob(list(overrides), composition, swept))
    return prepared


# ---------------------------------------------------------------------------------------------------
# The sweep: filter, launch in batches, count, report
# ---------------------------------------------------------------------------------------------------

# a job's outcome: what the task returned (dsvdd_repro's {"status": ...}) or what the sweeper decided
STATUSES = ("done", "skipped", "invalid", "failed", "diverged")
FILTER_STATUSES = {"run", "done", "invalid"}


class SweepError(CompactHydraException):
    """Some jobs of the sweep failed or were invalid; raised once every batch ran (exit status 1)."""


def job_outcome(result: Any) -> tuple[str, str | None]:
    """(status, error) of a launched job's JobReturn: FAILED (an exception escaped the task) is
    "failed"; a dict return value gives its "status" (and "error"); any other return value is "done"."""
    try:
        value = result.return_value  # raises the job's exception when it failed
    except Exception as e:
        return "failed", f"{type(e).__name__}: {one_line(e)}"
    if isinstance(value, Mapping) and value.get("status"):
        status = str(value["status"])
        if status == "skipped" and value.get("config_hash"):
            # a finished run's metrics from a launched job, which the filter found not done: the run
            # finished during this sweep, in an earlier attempt of its requeued SLURM job
            status = "done"
        return status, value.get("error")
    return "done", None


def summary(counts: Mapping[str, int]) -> str:
    """`sweep: 120 jobs: 80 done, 30 skipped (already done), 5 invalid, 3 failed, 2 diverged`."""
    names = {"skipped": "skipped (already done)"}
    parts = [f"{counts.get(status, 0)} {names.get(status, status)}" for status in STATUSES]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in STATUSES]
    return f"sweep: {sum(counts.values())} jobs: " + ", ".join(parts)


class GridSweeper(Sweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: Mapping[str, str] | None = None,
        restrict: Mapping[str, str] | None = None,
        job_filter: str | None = None,
        exclude: Sequence[Sequence[str]] | None = None,
        fail_on_invalid: bool = True,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.fail_on_invalid = fail_on_invalid
        self.params = dict(params or {})
        self.restrict = dict(restrict or {})
        self.job_filter = job_filter
        self.exclude = [list(entry) for entry in exclude or ()]
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def prepare(self, arguments: Sequence[str]) -> tuple[Expansion, list[SweepJob]]:
        """The sweep's distinct jobs (`arguments`: the command line's overrides), each as a SweepJob."""
        assert self.hydra_context is not None and self.config is not None
        loader, master = self.hydra_context.config_loader, self.config
        cache: dict[tuple[str, ...], DictConfig] = {}

        def compose(overrides: list[str]) -> DictConfig:
            key = tuple(overrides)
            if key not in cache:
                cache[key] = loader.load_sweep_config(master, list(overrides))
            return cache[key]

        expansion = sweep_jobs(arguments, self.params, self.restrict, loader, master, compose, self.exclude)
        parser = OverridesParser.create(config_loader=loader)
        return expansion, prepare_jobs(expansion.jobs, expansion.axes, compose, parser)

    def select(self, jobs: Sequence[SweepJob], counts: Counter) -> list[list[str]]:
        """The jobs to launch: not invalid (their config cannot be composed, or the job filter says so)
        and not done (the job filter). Each invalid job is logged with its reason, the done ones counted."""
        classify = get_method(self.job_filter) if self.job_filter else None
        launch = []
        for job in jobs:
            status, reason = ("invalid", job.error) if job.error else ("run", "")
            if classify is not None and job.error is None:
                try:
                    status, reason = classify(job)
                except Exception as e:  # a filter's bug must not stop the sweep: the job decides
                    log.warning("sweep: the job filter failed on %s (launching it): %s: %s",
                                " ".join(job.overrides), type(e).__name__, one_line(e))
                    status = "run"
                if status not in FILTER_STATUSES:
                    raise HydraException(
                        f"job filter {self.job_filter} returned {status!r}, not one of {sorted(FILTER_STATUSES)}"
                    )
            if status == "run":
                launch.append(job.overrides)
            elif status == "done":
                counts["skipped"] += 1
            else:
                counts["invalid"] += 1
                log.info("sweep: invalid, not launched: %s: %s", " ".join(job.overrides), reason)
        return launch

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        """Launch the distinct jobs that are neither invalid nor done, in batches of `max_batch_size`;
        the launcher's results per batch. A job's failure stops no other job: once every batch ran,
        one summary line, and SweepError (exit status 1) if a job failed or (with `fail_on_invalid`) was
        invalid."""
        assert self.hydra_context is not None and self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        expansion, prepared = self.prepare(arguments)
        counts: Counter = Counter()
        for overrides, reason in expansion.invalid:
            counts["invalid"] += 1
            log.info("sweep: invalid, not launched: %s: %s", " ".join(overrides), reason)
        jobs = self.select(prepared, counts)
        log.info(
            "sweep: %d to launch, %d already done, %d invalid (%.1f s to expand and check)",
            len(jobs), counts["skipped"], counts["invalid"], time.perf_counter() - tic,
        )

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else max(len(jobs), 1)
        returns = []
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            results = self.launcher.launch(batch, initial_job_idx=start)
            for overrides, result in zip(batch, results, strict=True):
                status, error = job_outcome(result)
                counts[status] += 1
                if status in ("failed", "invalid"):
                    log.error("sweep: %s: %s: %s", status, " ".join(overrides), error)
            returns.append(results)
        log.info("%s", summary(counts))
        if counts["failed"] or (counts["invalid"] and self.fail_on_invalid):
            raise SweepError(
                f"{counts['invalid']} invalid and {counts['failed']} failed of {sum(counts.values())} jobs "
                "(their reasons are logged above)"
            )
        return returns
