"""A grid sweeper that launches each distinct job of a Cartesian grid, in grid order, with only the axes its
config has: overriding a group not chosen (OC-SVM's objective) or a key that does not exist (`regularizer.k`
without a regularizer) would fail or silently put a group back. Configs are composed (0.1-0.2 s each) once
per combination of group choices (Table VI's 16,000 grid points: 5); a job's config is its composition with
its swept values set by OmegaConf, or Hydra's own composition where that could differ. Grid points `exclude`
names, jobs that cannot be composed and those `job_filter` says are invalid or done are not launched; a
failed job stops no later batch. Hydra's public plugin API only (no `hydra._internal`)."""

# No `from __future__ import annotations`: Hydra imports plugin modules without registering them in
# sys.modules, and OmegaConf cannot resolve the structured config's string annotations then.
import copy
import functools
import itertools
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException, ConfigCompositionException, HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException)


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.dsvdd_repro_sweeper.grid_sweeper.GridSweeper"
    max_batch_size: int | None = None  # jobs per launcher call (None: the whole grid in one call)
    params: dict[str, str] | None = None  # the experiment's axes: key -> sweep ("a,b", "range(5)", "x")
    restrict: dict[str, str] | None = None  # a profile's values: replace an axis's values, add no axis
    job_filter: str | None = None  # `module.name(job: SweepJob) -> ("run" | "done" | "invalid", reason)`
    # grid points that are no job (neither launched nor counted): those with every override of an entry
    exclude: list[list[str]] | None = None  # e.g. [[setup.normal_class=0, setup.labeled_anomaly_class=0]]
    # invalid jobs make the exit status 1 (failed ones always do), unless false: `reproduce` reports them
    fail_on_invalid: bool = True


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="dsvdd_repro")


@dataclass(frozen=True)
class Axis:
    """A key of the grid and its `key=value` overrides. `group`: a config group (`variant`), else a value.
    `checked`: dropped from the jobs whose config lacks it (not a fixed override, nor `+key`/`++key`)."""
    key: str
    overrides: tuple[str, ...]
    group: bool = False
    checked: bool = True


class Expansion(NamedTuple):
    jobs: list[list[str]]  # distinct override lists, in grid order
    points: int  # size of the Cartesian product
    compositions: int  # configs composed to decide which axes apply
    invalid: tuple[tuple[list[str], str], ...] = ()  # group choices that cannot be composed, and why
    axes: tuple[Axis, ...] = ()
    excluded: int = 0  # grid points left out by `exclude`


def one_line(error: BaseException) -> str:
    """An error's first line, and its cause's (Hydra's `Error merging override x=y` says why only there)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    reason = str(error.__cause__ or "").strip().splitlines()[:1]
    return text if not reason or reason[0] in text else f"{text}: {reason[0]}"


def task_config(cfg: DictConfig, resolve: bool = True) -> DictConfig:
    """A copy of `cfg` without `hydra`, as Hydra's run_job hands it to the task, its interpolations
    resolved where they can be (an unresolvable one is left to fail where it is read, as in the job)."""
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    try:
        if resolve:
            OmegaConf.resolve(task)
    except OmegaConfBaseException:
        return task_config(cfg, resolve=False)  # not half resolved
    return task


def _parent(cfg: DictConfig, key: str) -> tuple[Any, str]:
    parent_key, _, last = key.rpartition(".")
    return (OmegaConf.select(cfg, parent_key, throw_on_missing=False) if parent_key else cfg), last


class Change(NamedTuple):  # a swept value set on a plain value of a composition
    key: str
    value: Any  # as the config holds it: the schema converts `lr=1` to 1.0
    previous: Any  # the composition's


class Composition:
    """The config Hydra composes for one override list, and what its jobs derive from it once.
    `memo` is for job filters: what is the same for every job of the composition (keyed as they like)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg, self.memo = cfg, {}

    @functools.cached_property
    def task_cfg(self) -> DictConfig:  # resolved once: OmegaConf parses an interpolation at each read
        return task_config(self.cfg)

    @functools.cached_property
    def container(self) -> dict:  # shared by the jobs: do not modify
        return OmegaConf.to_container(self.task_cfg, resolve=True)  # type: ignore[return-value]

    @functools.cached_property
    def sweep_dir(self) -> str:
        return str(self.cfg.hydra.sweep.dir)

    @functools.cached_property
    def names_read(self) -> frozenset | None:
        """The top-level keys the interpolations of the task config and `hydra.sweep.dir` may read: every
        word of a line of their JSON that holds one; None: any (a relative interpolation, `${.x}`)."""
        raw: dict = OmegaConf.to_container(self.cfg, resolve=False)  # type: ignore[assignment]
        text = json.dumps([raw.pop("hydra")["sweep"].get("dir"), raw], indent=0, default=str)
        texts = [line for line in text.splitlines() if "${" in line]  # indent=0: a value a line
        return None if any("${." in t for t in texts) else frozenset(re.findall(r"[\w\-]+", " ".join(texts)))

    def change(self, override: Override) -> Change | None:
        """`override` as a Change, or None where Hydra must compose the job: not a plain value set on an
        existing plain value, or refused by the schema. Checked by setting the value and setting it back."""
        key, value = override.key_or_group, override.value()
        parent, last = _parent(self.cfg, key)
        if (override.type is not OverrideType.CHANGE or override.package is not None
                or isinstance(value, dict | list) or not isinstance(parent, DictConfig)
                or last not in parent  # absent, or `???`
                or OmegaConf.is_interpolation(parent, last) or OmegaConf.is_config(parent[last])):
            return None
        previous = parent[last]
        try:  # as Hydra sets a value (`key=value`: OmegaConf.update, merge=True)
            OmegaConf.update(self.cfg, key, value, merge=True)
            return Change(key, parent[last], previous)  # `key=???` raises here
        except OmegaConfBaseException:
            return None  # `optim.lr=fast` on a float: Hydra's composition says why, in its words
        finally:
            OmegaConf.update(self.cfg, key, previous, merge=True)


class Composer:
    """`compose` (override list -> config) called once per distinct list: its Composition, or its error."""

    def __init__(self, compose: Callable[[list[str]], DictConfig]) -> None:
        self.compose, self.done = compose, {}  # override tuple -> its Composition, or its error

    def __call__(self, overrides: Sequence[str]) -> Composition:
        key = tuple(overrides)
        if key not in self.done:
            try:
                self.done[key] = Composition(self.compose(list(key)))
            except COMPOSE_ERRORS as e:
                self.done[key] = e
        if isinstance(self.done[key], Exception):
            raise self.done[key].with_traceback(None)  # not a traceback growing at each raise
        return self.done[key]


def expand_grid(axes: Sequence[Axis], compose: Callable[[list[str]], DictConfig] | Composer,
                exclude: Sequence[Sequence[str]] = ()) -> Expansion:
    """The distinct jobs of the grid `axes`, composed by `compose`. Per combination of group choices:
    - every group override but G's, for each checked group axis G: G does not apply iff that config
      chose no option of G while the config without swept groups does (a variant's `override
      /objective: null` removed it; a group null by default, like `variant`, is what its axis sets).
      No value overrides there: a fixed `regularizer.k=5` fails where G's default lacks `k`;
    - the fixed overrides and the group overrides that apply: a checked value axis applies iff its key
      exists there (`regularizer.k` does not when `regularizer` is null or `variance`; `???` exists).
    A job is the grid point without the axes that do not apply; the first of equal jobs is kept."""
    keys = {axis.overrides[0].split("=", 1)[0] for axis in axes if axis.overrides}
    for entry in exclude:
        if unknown := [o for o in entry if o.split("=", 1)[0] not in keys]:
            raise HydraException(f"grid sweeper: exclude entry {list(entry)}: "
                                 f"{unknown} sweeps no key of the grid")
    excluding = [frozenset(entry) for entry in exclude if entry]
    composer = compose if isinstance(compose, Composer) else Composer(compose)
    composed_before, groups = len(composer.done), [i for i, axis in enumerate(axes) if axis.group]

    def composed(overrides: list[str]) -> DictConfig:
        try:
            return composer(overrides).cfg
        except COMPOSE_ERRORS as e:
            raise ConfigCompositionException(f"cannot compose {' '.join(overrides)}: {one_line(e)}") from e

    def chose(overrides: list[str], group: str) -> bool:
        """Whether it chose an option of `group` (not null), or has its node (compose API: no choices)."""
        cfg = composed(overrides)
        if group in (choices := OmegaConf.select(cfg, "hydra.runtime.choices", default={})):
            return choices[group] is not None
        return OmegaConf.select(cfg, group.replace("/", "."), throw_on_missing=False) is not None

    def has(cfg: DictConfig, key: str) -> bool:  # `in parent` is False for `???`; Hydra checks a list's index
        parent, last = _parent(cfg, key)
        return isinstance(parent, ListConfig) or isinstance(parent, DictConfig) and last in parent.keys()

    @functools.cache
    def mask(choice: tuple[str, ...]) -> tuple[bool, ...] | str:
        """Whether each axis applies to the grid points with these group choices, or why they cannot."""
        chosen = dict(zip(groups, choice, strict=True))
        unswept = [chosen[i] for i in groups if not axes[i].checked]
        try:
            applies = {i: not axes[i].checked or not chose(unswept, axes[i].key)
                       or chose([chosen[j] for j in groups if j != i], axes[i].key) for i in groups}
            # the group choices that apply and the fixed values, in axis order: the jobs' compositions
            cfg = composed([chosen[i] if axis.group else axis.overrides[0] for i, axis in enumerate(axes)
                            if (applies[i] if axis.group else not axis.checked and len(axis.overrides) == 1)])
        except ConfigCompositionException as e:
            return one_line(e)
        return tuple(applies[i] if axis.group else not axis.checked or has(cfg, axis.key)
                     for i, axis in enumerate(axes))

    grid = list(itertools.product(*(axis.overrides for axis in axes)))
    kept = [point for point in grid if not any(entry.issubset(point) for entry in excluding)]
    masks = {point: mask(tuple(point[i] for i in groups)) for point in kept}  # its mask, or why it has none
    jobs = dict.fromkeys(tuple(o for o, applies in zip(point, m, strict=True) if applies)  # an ordered set
                         for point, m in masks.items() if not isinstance(m, str))
    invalid = {tuple(point[i] for i in groups): why for point, why in masks.items() if isinstance(why, str)}
    compositions = sum(isinstance(c, Composition) for c in list(composer.done.values())[composed_before:])
    return Expansion([list(job) for job in jobs], len(grid), compositions,
                     tuple((list(c), why) for c, why in invalid.items()), tuple(axes), len(grid) - len(kept))


def grid_axes(arguments: Sequence[str], params: Mapping[str, str], restrict: Mapping[str, str],
              parser: OverridesParser, is_group: Callable[[str], bool]) -> list[Axis]:
    """The axes: params' keys, then the command line's others (a non-sweep one fixed). The command line
    wins for a key params has, in params' position, as with the basic sweeper; so does `restrict`, for
    an axis params sweeps and the command line does not give."""

    def parse(lines: Sequence[str] | Mapping[str, str]) -> dict[str, Override]:
        lines = [f"{key}={value}" for key, value in lines.items()] if isinstance(lines, Mapping) else lines
        return {override.get_key_element(): override for override in parser.parse_overrides(list(lines))}

    from_params, given, restricted = parse(params), parse(arguments), parse(restrict)
    swept = {*from_params, *(key for key, override in given.items() if override.is_sweep_override())}
    axes = []
    for key, override in {**from_params, **given}.items():
        if key in restricted and override is from_params.get(key):  # params' axis, not the command line's
            override = restricted[key]
        if not override.is_sweep_override():
            values: tuple[str, ...] = (override.input_line,)  # type: ignore[assignment]
        elif override.is_discrete_sweep():  # `key=value` for each value, as Hydra's basic sweeper writes them
            values = tuple(f"{key}={value}" for value in override.sweep_string_iterator())
        else:
            sweep = f"a {override.value_type.name} sweep: '{override.input_line}'"  # type: ignore[union-attr]
            raise HydraException(f"the grid sweeper cannot enumerate {sweep}")
        name, adds = override.key_or_group, override.is_add() or override.is_force_add()
        key_in_choices = name if override.package is None else f"{name}@{override.package}"
        axes.append(Axis(key_in_choices, values, group=not override.is_delete() and is_group(name),
                         checked=key in swept and not adds))
    return axes


def sweep_jobs(arguments: Sequence[str], params: Mapping[str, str], restrict: Mapping[str, str],
               config_loader: ConfigLoader, master_config: DictConfig,
               compose: Callable[[list[str]], DictConfig] | Composer | None = None,
               exclude: Sequence[Sequence[str]] = ()) -> Expansion:
    """The sweep's jobs, composed by `compose`, else by Hydra's `config_loader` for the multirun's config."""
    tic = time.perf_counter()
    is_group = functools.cache(lambda key: bool(config_loader.get_group_options(key)))
    parser = OverridesParser.create(config_loader=config_loader)
    compose = compose or (lambda overrides: config_loader.load_sweep_config(master_config, overrides))
    expansion = expand_grid(grid_axes(arguments, params, restrict, parser, is_group), compose, exclude)
    log.info("sweep: %d grid points are %d distinct runs (%d compositions, %.1f s)%s", expansion.points,
             len(expansion.jobs), expansion.compositions, time.perf_counter() - tic,
             f"; {expansion.excluded} points excluded" if expansion.excluded else "")
    return expansion


class SweepJob:
    """One job before launching: its `overrides`, the `composition` of its group and single-valued ones
    (of all, where Hydra composes the job itself) and the `changes` its swept values make to it (None when
    `error` says why its config cannot be composed: the job is invalid). For job filters."""

    def __init__(self, overrides: list[str], composition: Composition | None,
                 changes: tuple[Change, ...] | None, error: str | None = None) -> None:
        self.overrides, self.composition, self.changes, self.error = overrides, composition, changes, error
        self.memo = composition.memo if composition is not None else {}

    @contextmanager
    def config(self, task: bool = False):
        """The job's config as Hydra composes it (`task`: as the task gets it), for the `with` block only:
        do not keep or modify it (it is the composition with the job's values set, set back afterwards)."""
        assert self.composition is not None and self.changes is not None
        cfg = self.composition.task_cfg if task else self.composition.cfg
        try:
            for change in self.changes:
                OmegaConf.update(cfg, change.key, change.value, merge=True)
            yield cfg
        finally:
            for change in reversed(self.changes):
                OmegaConf.update(cfg, change.key, change.previous, merge=True)

    def container(self) -> dict:
        """The job's task config, resolved, as plain containers, fast (parts shared: do not modify)."""
        assert self.composition is not None and self.changes is not None
        out = dict(self.composition.container)
        for key, value, _ in self.changes:
            *path, last = key.split(".")
            node = out
            for part in path:  # the dicts on the change's path copied, the rest shared
                node[part] = node = dict(node[part])
            node[last] = value
        return out

    def sweep_dir(self) -> str:
        return self.composition.sweep_dir  # type: ignore[union-attr]


class SweepError(CompactHydraException):
    """Some jobs of the sweep failed or were invalid; raised once every batch ran (exit status 1)."""


def job_outcome(result: Any) -> tuple[str, str | None]:
    """(status, error) of a launched job's JobReturn: "failed", a dict's "status" and "error", else "done"."""
    try:
        value = result.return_value  # raises the job's exception when it failed
    except Exception as e:
        return "failed", f"{type(e).__name__}: {one_line(e)}"
    if not (isinstance(value, Mapping) and value.get("status")):
        return "done", None
    # a launched job whose run an earlier attempt of its requeued SLURM job finished: what it finished as
    return str(value.get("finished_as") or value["status"]), value.get("error")


def summary(counts: Mapping[str, int]) -> str:
    """`sweep: 120 jobs: 80 done, 30 skipped (already done), 5 invalid, 3 failed, 2 diverged`, then others."""
    counts = {**dict.fromkeys(("done", "skipped", "invalid", "failed", "diverged"), 0), **counts}
    return f"sweep: {sum(counts.values())} jobs: " + ", ".join(
        f"{n} {'skipped (already done)' if status == 'skipped' else status}" for status, n in counts.items())


@dataclass
class GridSweeper(GridSweeperConf, Sweeper):  # constructed with GridSweeperConf's settings
    hydra_context = config = launcher = None  # set by setup()

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def prepare(self, arguments: Sequence[str]) -> tuple[Expansion, list[SweepJob]]:
        """The sweep's distinct jobs (`arguments`: the command line's overrides), each as a SweepJob."""
        loader, master = self.hydra_context.config_loader, self.config  # type: ignore[union-attr]
        composer = Composer(lambda overrides: loader.load_sweep_config(master, overrides))
        expansion = sweep_jobs(arguments, self.params or {}, self.restrict or {}, loader, master, composer,
                               self.exclude or ())
        axis_of = {override: axis for axis in expansion.axes for override in axis.overrides}
        parser = OverridesParser.create(config_loader=loader)
        parse = functools.cache(lambda line: parser.parse_overrides([line])[0])
        change = functools.cache(lambda composition, line: composition.change(parse(line)))  # once a pair

        def job(overrides: list[str]) -> SweepJob:
            # its swept values set on the composition of its other overrides; Hydra composes it where one is
            # no Change, an interpolation may read one, or its values' keys overlap (their order matters)
            values = [o for o in overrides if not axis_of[o].group]
            swept = [o for o in values if len(axis_of[o].overrides) > 1]
            keys = [parse(o).key_or_group for o in values]
            try:
                if not any(a == b or a.startswith(f"{b}.") for a, b in itertools.permutations(keys, 2)):
                    composition = composer([o for o in overrides if o not in swept])
                    changes, names = tuple(change(composition, o) for o in swept), composition.names_read
                    if None not in changes and names is not None and not any(
                            c.key.split(".", 1)[0] in names for c in changes):
                        return SweepJob(overrides, composition, changes)
                return SweepJob(overrides, composer(overrides), ())
            except COMPOSE_ERRORS as e:
                return SweepJob(overrides, None, None, one_line(e))

        return expansion, [job(overrides) for overrides in expansion.jobs]

    def select(self, jobs: Sequence[SweepJob], counts: Counter) -> list[list[str]]:
        """The jobs to launch: neither invalid (logged with why) nor done (counted as skipped)."""
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
            if status == "run":
                launch.append(job.overrides)
            elif status == "done":
                counts["skipped"] += 1
            elif status == "invalid":
                counts["invalid"] += 1
                log.info("sweep: invalid, not launched: %s: %s", " ".join(job.overrides), reason)
            else:
                raise HydraException(f"job filter {self.job_filter}: {status!r} is not run, done or invalid")
        return launch

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        """Launch the jobs neither invalid nor done, `max_batch_size` at a time: the launcher's results per
        batch; then one summary line, and SweepError if a job failed or (`fail_on_invalid`) was invalid."""
        assert self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        expansion, prepared = self.prepare(arguments)
        counts: Counter = Counter()
        invalid = [SweepJob(overrides, None, None, why) for overrides, why in expansion.invalid]  # groups
        jobs = self.select([*invalid, *prepared], counts)
        log.info("sweep: %d to launch, %d already done, %d invalid (%.1f s to expand and check)",
                 len(jobs), counts["skipped"], counts["invalid"], time.perf_counter() - tic)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else max(len(jobs), 1)
        returns = []
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            returns.append(self.launcher.launch(batch, initial_job_idx=start))
            for overrides, result in zip(batch, returns[-1], strict=True):
                status, error = job_outcome(result)
                counts[status] += 1
                if status in ("failed", "invalid"):
                    log.error("sweep: %s: %s: %s", status, " ".join(overrides), error)
        log.info("%s", summary(counts))
        if counts["failed"] or (counts["invalid"] and self.fail_on_invalid):
            raise SweepError(f"{counts['invalid']} invalid and {counts['failed']} failed of "
                             f"{sum(counts.values())} jobs (their reasons are logged above)")
        return returns
