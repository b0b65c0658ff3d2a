"""A grid sweeper that launches each job of a Cartesian grid only with the axes that apply to it.

The paper's grids are Cartesian (`variant` x `regularizer.k` x `seed` ...), but OC-SVM has no regularizer
(so no `regularizer.k`) and no objective; overriding a key a config lacks fails or silently puts a group
back (`objective=one_class` on a variant that removed it). So each job drops the axes its config lacks (a
group axis where the group is not chosen, a value axis where the key does not exist), the grid points
`exclude` names are left out, and each distinct job is launched once, in grid order. The axes are `params`
(an experiment's grid) and the command line's sweeps; the command line wins for a key params has, and
`restrict` (a profile's values) replaces an axis's values, but adds no axis.

Configs are composed (0.1-0.2 s each) once per distinct override list, per combination of group choices:
Table VI's 16,000 grid points need 5. A job's config is its composition with its swept values set by
OmegaConf (the schema applies: `optim.lr=fast` on a float is refused, as by Hydra); only a job whose swept
values are not plain values, or are read by an interpolation, is composed by Hydra itself. A job whose
config cannot be composed is invalid: logged in one line, not launched. An optional `job_filter` says per
job "run", "done" (counted as skipped) or "invalid"; it gets a SweepJob, whose `container()` costs
microseconds. A failed job stops no later batch; once all ran, one summary line (`sweep: 120 jobs: 80
done, 30 skipped (already done), 5 invalid, 3 failed, 2 diverged`), and SweepError (exit status 1) if a
job failed or was invalid. Hydra's public plugin API only (no `hydra._internal`).
"""

# No `from __future__ import annotations`: Hydra imports plugin modules without registering them in
# sys.modules, and OmegaConf cannot resolve the structured config's string annotations then.
import copy
import functools
import itertools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

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
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w\-]*(\.[A-Za-z_][\w\-]*)*")


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.dsvdd_repro_sweeper.grid_sweeper.GridSweeper"
    # jobs per launcher call (None: the whole grid in one call)
    max_batch_size: Optional[int] = None  # noqa: UP045 (OmegaConf's structured configs want Optional)
    # the experiment's axes: key -> sweep string ("a,b", "range(5)", "x")
    params: Optional[dict[str, str]] = None  # noqa: UP045
    # a profile's values for axes: replaces an axis's values, ignored for keys nothing sweeps
    restrict: Optional[dict[str, str]] = None  # noqa: UP045
    # `module.name(job: SweepJob) -> ("run" | "done" | "invalid", reason)`: whether the launcher gets a job
    job_filter: Optional[str] = None  # noqa: UP045
    # grid points that are no job (neither launched nor counted): those with every override of an entry,
    # e.g. [setup.normal_class=0, setup.labeled_anomaly_class=0]
    exclude: Optional[list[list[str]]] = None  # noqa: UP045
    # whether invalid jobs (bad input, data not on this machine) make the sweep exit non-zero; failed
    # jobs always do. `reproduce` sets it false: its report shows such cells as missing, with reasons.
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
    if error.__cause__ is not None and str(error.__cause__).strip():
        reason = str(error.__cause__).strip().splitlines()[0]
        text += "" if reason in text else f": {reason}"
    return text


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


class Change(NamedTuple):
    """A swept value set on a plain value of a composition."""
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
    def _names_read(self) -> frozenset | None:
        """The top-level keys the interpolations of the task config and `hydra.sweep.dir` may read (every
        word of them); None: any (a relative interpolation, `${.x}`)."""
        raw: dict = OmegaConf.to_container(self.cfg, resolve=False)  # type: ignore[assignment]
        texts, nodes = [], [raw.pop("hydra")["sweep"].get("dir"), raw]
        while nodes:
            node = nodes.pop()
            if isinstance(node, dict | list):
                nodes.extend(node.values() if isinstance(node, dict) else node)
            elif isinstance(node, str) and "${" in node:
                texts.append(node)
        return None if any("${." in t for t in texts) else frozenset(re.findall(r"[\w\-]+", " ".join(texts)))

    def reads(self, changes: Sequence[Change]) -> bool:
        """Whether an interpolation may read a changed key: then a change changes more than its key."""
        names = self._names_read
        return names is None or any(change.key.split(".", 1)[0] in names for change in changes)

    def change(self, override: Override) -> Change | str | None:
        """`override` as a Change, an error (Hydra would refuse it), or None: not a plain value set on an
        existing plain value. Checked by setting the value on the config and setting it back."""
        key, value = override.key_or_group, override.value()
        if (override.type is not OverrideType.CHANGE or override.package is not None
                or isinstance(value, dict | list) or value == "???" or not _PLAIN_KEY.fullmatch(key)):
            return None
        parent, last = _parent(self.cfg, key)
        if not isinstance(parent, DictConfig) or last not in parent:
            return None
        if OmegaConf.is_interpolation(parent, last) or OmegaConf.is_missing(parent, last):
            return None
        previous = parent[last]
        if OmegaConf.is_config(previous):
            return None
        try:
            OmegaConf.update(self.cfg, key, value, merge=True)
        except OmegaConfBaseException as e:
            return f"Error merging override {override.input_line}: {one_line(e)}"
        try:
            return Change(key, parent[last], previous)
        finally:
            OmegaConf.update(self.cfg, key, previous, merge=True)


class Composer:
    """`compose` (override list -> config) called once per distinct list: its Composition, or its error
    raised again. One serves the expansion and the jobs."""

    def __init__(self, compose: Callable[[list[str]], DictConfig]) -> None:
        self.compose = compose
        self.done: dict[tuple[str, ...], Composition | Exception] = {}

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


def _has_group(cfg: DictConfig, key: str) -> bool:
    """Whether `cfg` chose an option of group `key` (null: no); without Hydra's record of the choices
    (a test's fake composer), whether the group's node is there."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices")
    if choices is not None and key in choices:
        return choices[key] is not None
    return OmegaConf.select(cfg, key.replace("/", "."), default=None, throw_on_missing=False) is not None


def _has_value(cfg: DictConfig, key: str) -> bool:
    """Whether the dotted `key` exists in `cfg` (a mandatory `???` value exists too)."""
    parent, last = _parent(cfg, key)
    if isinstance(parent, ListConfig):
        return last.isdigit() and int(last) < len(parent)
    return isinstance(parent, DictConfig) and last in parent.keys()


def expand_grid(axes: Sequence[Axis], compose: Callable[[list[str]], DictConfig] | Composer,
                exclude: Sequence[Sequence[str]] = ()) -> Expansion:
    """The distinct jobs of the grid `axes`, composed by `compose`. Per combination of group choices:
    - every group override but G's, for each checked group axis G: G does not apply iff that config
      chose no option of G while the config without swept groups does (a variant's `override
      /objective: null` removed it; a group null by default, like `variant`, is what its axis sets).
      No value overrides there: a fixed `regularizer.k=5` fails where G's default lacks `k`;
    - the fixed overrides and the group overrides that apply: a checked value axis applies iff its key
      exists there (`regularizer.k` does not when `regularizer` is null or `variance`).
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

    def group_applies(i: int, chosen: dict[int, str]) -> bool:
        if not axes[i].checked:
            return True
        key, others = axes[i].key, [chosen[j] for j in groups if j != i]
        without_swept = composed([chosen[j] for j in groups if not axes[j].checked])
        return not _has_group(without_swept, key) or _has_group(composed(others), key)

    def mask(choice: tuple[str, ...]) -> tuple[bool, ...]:
        """Which axes apply to the grid points with these group choices (one per group axis)."""
        chosen = dict(zip(groups, choice, strict=True))
        applies = {i: group_applies(i, chosen) for i in groups}
        # the group choices that apply and the fixed values, in axis order: the jobs' compositions
        cfg = composed([chosen[i] if axis.group else axis.overrides[0] for i, axis in enumerate(axes)
                        if (applies[i] if axis.group else not axis.checked and len(axis.overrides) == 1)])
        return tuple(applies[i] if axis.group else not axis.checked or _has_value(cfg, axis.key)
                     for i, axis in enumerate(axes))

    masks: dict[tuple[str, ...], tuple[bool, ...] | str] = {}  # a combination's mask, or why it has none
    jobs: dict[tuple[str, ...], None] = {}  # an insertion-ordered set
    points = excluded = 0
    for point in itertools.product(*(axis.overrides for axis in axes)):
        points += 1
        if any(entry.issubset(point) for entry in excluding):
            excluded += 1
            continue
        choice = tuple(point[i] for i in groups)
        if choice not in masks:
            try:
                masks[choice] = mask(choice)
            except ConfigCompositionException as e:
                masks[choice] = one_line(e)
        if not isinstance(masks[choice], str):
            jobs.setdefault(tuple(o for o, applies in zip(point, masks[choice], strict=True) if applies))
    invalid = tuple((list(choice), why) for choice, why in masks.items() if isinstance(why, str))
    compositions = sum(isinstance(c, Composition) for c in list(composer.done.values())[composed_before:])
    return Expansion([list(job) for job in jobs], points, compositions, invalid, tuple(axes), excluded)


def _values(override: Override) -> tuple[str, ...]:
    """`key=value` for each value of `override`, as Hydra's basic sweeper writes them."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        return (override.input_line or f"{key}={override.get_value_element_as_str()}",)
    if not override.is_discrete_sweep():
        sweep = override.value_type.name  # type: ignore[union-attr]
        raise HydraException(f"the grid sweeper cannot enumerate a {sweep} sweep: '{override.input_line}'")
    return tuple(f"{key}={value}" for value in override.sweep_string_iterator())


def grid_axes(arguments: Sequence[str], params: Mapping[str, str], restrict: Mapping[str, str],
              parser: OverridesParser, is_group: Callable[[str], bool]) -> list[Axis]:
    """The axes: params' keys, then the command line's others. The command line wins for a key params
    has (in params' position, as with the basic sweeper); `restrict[key]` replaces the values of an axis
    params sweeps unless the command line gives the key. A non-sweep command-line override is fixed."""

    def parse(lines: Sequence[str]) -> dict[str, Override]:
        return {override.get_key_element(): override for override in parser.parse_overrides(list(lines))}

    from_params = parse([f"{key}={value}" for key, value in params.items()])
    given = parser.parse_overrides(list(arguments))
    restricted = parse([f"{key}={value}" for key, value in restrict.items()])
    overrides = {**from_params, **{override.get_key_element(): override for override in given}}
    swept = {*from_params, *(o.get_key_element() for o in given if o.is_sweep_override())}
    axes = []
    for key, override in overrides.items():
        if key in restricted and override is from_params.get(key):  # params' axis, not the command line's
            override = restricted[key]
        name, adds = override.key_or_group, override.is_add() or override.is_force_add()
        key_in_choices = name if override.package is None else f"{name}@{override.package}"
        axes.append(Axis(key_in_choices, _values(override), group=not override.is_delete() and is_group(name),
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
    `error` says why its config cannot be composed: the job is invalid). A job filter reads `container()`
    (fast), `sweep_dir()`, `config()` and `memo`."""

    def __init__(self, overrides: list[str], composition: Composition | None,
                 changes: tuple[Change, ...] | None, error: str | None = None) -> None:
        self.overrides, self.composition, self.changes, self.error = overrides, composition, changes, error
        self.memo = composition.memo if composition is not None else {}

    @contextmanager
    def config(self, task: bool = False):
        """The job's config as Hydra composes it (`task`: without `hydra` and resolved, as the task gets
        it), for the `with` block only: do not keep or modify it (it is the composition with the job's
        values set, set back afterwards)."""
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
        """The job's task config, resolved, as plain containers (parts shared: do not modify)."""
        assert self.composition is not None and self.changes is not None
        out = dict(self.composition.container)  # the dicts on the changes' paths copied, the rest shared
        for key, value, _ in self.changes:
            *path, last = key.split(".")
            node = out
            for part in path:
                node[part] = dict(node[part])
                node = node[part]
            node[last] = value
        return out

    def sweep_dir(self) -> str:
        assert self.composition is not None and self.changes is not None
        return self.composition.sweep_dir


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
    if not (isinstance(value, Mapping) and value.get("status")):
        return "done", None
    # a finished run's metrics (its config_hash) from a launched job, which the filter found not done:
    # the run finished during this sweep, in an earlier attempt of its requeued SLURM job
    status = str(value["status"])
    return "done" if status == "skipped" and value.get("config_hash") else status, value.get("error")


def summary(counts: Mapping[str, int]) -> str:
    """`sweep: 120 jobs: 80 done, 30 skipped (already done), 5 invalid, 3 failed, 2 diverged`."""
    parts = [f"{counts.get(s, 0)} {'skipped (already done)' if s == 'skipped' else s}" for s in STATUSES]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in STATUSES]
    return f"sweep: {sum(counts.values())} jobs: " + ", ".join(parts)


class GridSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: Mapping[str, str] | None = None,
                 restrict: Mapping[str, str] | None = None, job_filter: str | None = None,
                 exclude: Sequence[Sequence[str]] | None = None, fail_on_invalid: bool = True) -> None:
        self.max_batch_size, self.job_filter = max_batch_size, job_filter
        self.fail_on_invalid = fail_on_invalid
        self.params, self.restrict = dict(params or {}), dict(restrict or {})
        self.exclude = [list(entry) for entry in exclude or ()]
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def prepare(self, arguments: Sequence[str]) -> tuple[Expansion, list[SweepJob]]:
        """The sweep's distinct jobs (`arguments`: the command line's overrides), each as a SweepJob."""
        assert self.hydra_context is not None and self.config is not None
        loader, master = self.hydra_context.config_loader, self.config
        composer = Composer(lambda overrides: loader.load_sweep_config(master, overrides))
        expansion = sweep_jobs(arguments, self.params, self.restrict, loader, master, composer, self.exclude)
        axis_of = {override: axis for axis in expansion.axes for override in axis.overrides}
        parser = OverridesParser.create(config_loader=loader)
        parse = functools.cache(lambda line: parser.parse_overrides([line])[0])
        change = functools.cache(lambda composition, line: composition.change(parse(line)))  # once a pair

        def job(overrides: list[str]) -> SweepJob:
            """The changes its swept values make to the composition of its group and single-valued
            overrides. Hydra composes the job itself where they are not plain values set on plain values,
            an interpolation may read them, or the keys of its values overlap (their order matters)."""
            values = [o for o in overrides if not axis_of[o].group]
            swept = [o for o in values if len(axis_of[o].overrides) > 1]
            keys = [parse(o).key_or_group for o in values]
            overlap = any(a == b or a.startswith(f"{b}.") for a, b in itertools.permutations(keys, 2))
            try:
                if not overlap:
                    composition = composer([o for o in overrides if o not in swept])
                    changes = [change(composition, o) for o in swept]
                    if all(c is not None for c in changes):
                        if error := next((c for c in changes if isinstance(c, str)), None):
                            return SweepJob(overrides, composition, None, error)
                        if not composition.reads(changes):
                            return SweepJob(overrides, composition, tuple(changes))
                return SweepJob(overrides, composer(overrides), ())
            except COMPOSE_ERRORS as e:
                return SweepJob(overrides, None, None, one_line(e))

        return expansion, [job(overrides) for overrides in expansion.jobs]

    def select(self, jobs: Sequence[SweepJob], counts: Counter) -> list[list[str]]:
        """The jobs to launch: neither invalid (their config cannot be composed, or the job filter says
        so; each logged with its reason) nor done (says the job filter; counted as skipped)."""
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
                    raise HydraException(f"job filter {self.job_filter} returned {status!r}, "
                                         f"not one of {sorted(FILTER_STATUSES)}")
            if status == "run":
                launch.append(job.overrides)
            elif status == "done":
                counts["skipped"] += 1
            else:
                counts["invalid"] += 1
                log.info("sweep: invalid, not launched: %s: %s", " ".join(job.overrides), reason)
        return launch

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        """Launch the jobs that are neither invalid nor done, in batches of `max_batch_size`; the
        launcher's results per batch. Once every batch ran, one summary line, and SweepError if a job
        failed or (with `fail_on_invalid`) was invalid."""
        assert self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        expansion, prepared = self.prepare(arguments)
        counts: Counter = Counter()
        # the group choices that cannot be composed, then the jobs
        invalid = [SweepJob(overrides, None, None, why) for overrides, why in expansion.invalid]
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
            results = self.launcher.launch(batch, initial_job_idx=start)
            for overrides, result in zip(batch, results, strict=True):
                status, error = job_outcome(result)
                counts[status] += 1
                if status in ("failed", "invalid"):
                    log.error("sweep: %s: %s: %s", status, " ".join(overrides), error)
            returns.append(results)
        log.info("%s", summary(counts))
        if counts["failed"] or (counts["invalid"] and self.fail_on_invalid):
            raise SweepError(f"{counts['invalid']} invalid and {counts['failed']} failed of "
                             f"{sum(counts.values())} jobs (their reasons are logged above)")
        return returns
