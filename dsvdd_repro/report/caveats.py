"""What changes how a cell of the tables and figures reads, computed from the runs: REPORT.md's
"Read the cells with these caveats" (`reading_caveats`, one Markdown line each).

Every line is derived from the runs frame (`collect.collect_runs`), the tables' cells and, where
runs.csv has no column for it, the runs' metrics.json (`runs.folders.collect_metrics`: the method
node's caps and the counts a method records); the paper's values come from the package's
configuration composed with `profile=paper` and from its grid and experiments (`report.protocol`),
never restated here. A line appears only where the runs depart from what the paper ran:
- regularizers that never switched on (`regularizer_never_on`): per variant and epochs how many
  runs, per table which cells rest only on such runs and which of them print the value of their
  twin without the regularizer (D. SVDD w/ bias), rows that differ only in their weighting alike;
- cells resting on a single run (no spread);
- the values of the swept axes actually run (k, seeds) against the paper's grid, and the labeled
  anomaly classes of the semi-supervised one-vs-all cells against the paper's sweep;
- deep SVDD epochs per table and for the runs outside the tables, each against the paper's;
- GEO's and the shallow baselines' caps: their epochs and method options that differ from the
  paper's, and the counts they recorded (pairs per epoch, images of the Dirichlet fit, rows fitted
  and scored);
- the data copies read (layout and folder, how images were resized), the image sizes and what a
  stroke's thickness and a permuted block span at that size against the paper's;
- the wall time of one run per method and epochs (runs.csv `seconds`).
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

import numpy as np
import pandas as pd
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from dsvdd_repro.report.protocol import PAPER_GRID, PAPER_PROFILE, paper_image_size
from dsvdd_repro.report.tables import cell_mask, finished, select
from dsvdd_repro.runs.config import selected_axes

EXPERIMENTS = files("dsvdd_repro") / "conf" / "experiment"
# the sweep axes of the semi-supervised one-vs-all cells (Table VI's CIFAR-10 column)
NORMAL_AXIS, LABELED_AXIS = "setup.normal_class", "setup.labeled_anomaly_class"
# A line names its cells when there are at most this many (else it counts them).
MAX_NAMED = 6
# What a method records in metrics.json about how much of the data it used: dotted key -> words.
RECORDED_COUNTS = {
    "samples_per_epoch": "(image, transformation) pairs per epoch",
    "dirichlet.n_images": "images in the Dirichlet fit",
    "selection.n_train_used": "training rows fitted",
    "features_info.n_fit": "rows the PCA was fitted on",
    "val_subsample.n": "validation rows scored",
}
# The method options that are not caps (how the node is built, its grids): never compared.
NOT_CAPS = ("_target_", "name")


# -- the runs of a cell and their regularizer ---------------------------------------------------

def regularizer_never_on(runs: pd.DataFrame) -> pd.Series:
    """Which runs have a regularizer that never contributed: L_reg = 0 in every epoch (runs.csv
    `reg_active` False; for the variance regularizer its hinge max(0, d_t - variance) stayed 0, so
    the run trained as the variant without it). False for runs without a regularizer or history."""
    return runs["reg_active"].map(lambda active: isinstance(active, (bool, np.bool_)) and not active).astype(bool)


def _has_activity(runs: pd.DataFrame) -> pd.Series:
    """Which runs recorded whether their regularizer switched on (True or False, not unknown)."""
    return runs["reg_active"].map(lambda active: isinstance(active, (bool, np.bool_))).astype(bool)


def cell_runs(runs: pd.DataFrame, cell: pd.Series, backbone_lr_factor: float | None = None,
              pooling: str | None = None) -> pd.DataFrame:
    """The finished runs a table cell aggregates, k chosen on validation as `tables.table_cells`
    chooses it (the paper's scheme unless another is given)."""
    matched = runs[cell_mask(runs, cell, backbone_lr_factor, pooling)]
    return select(matched[finished(matched)], selected_axes())


def _in_tables(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.Series:
    """Which runs belong to any of `cells` (under the paper's scheme, every value of k)."""
    inside = pd.Series(False, index=runs.index)
    for _, cell in cells.iterrows():
        inside |= cell_mask(runs, cell)
    return inside


# -- the paper's values, from the package's configuration -----------------------------------------

@functools.cache
def paper_variant_config(variant: str) -> DictConfig | None:
    """A run of `variant` composed with the paper profile (None for a variant the package lacks)."""
    from hydra import compose, initialize_config_module

    from dsvdd_repro.runs.config import register_configs

    register_configs()
    try:
        with initialize_config_module(config_module="dsvdd_repro.conf", version_base="1.3"):
            return compose(config_name="config", overrides=[f"profile={PAPER_PROFILE}", f"variant={variant}"])
    except HydraException:
        return None


def _paper_epochs(variant: str) -> int | None:
    config = paper_variant_config(variant)
    return None if config is None else int(config.trainer.epochs)


def _sweep_values(text) -> list:
    """The values of one sweep override's value ("5,30,50", "range(5)", "0")."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_override(f"axis={text}")
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


@functools.cache
def _sweeper(path) -> dict:
    """hydra.sweeper of a grid or experiment file, as plain data."""
    with path.open() as handle:
        sweeper = OmegaConf.load(handle).get("hydra", {}).get("sweeper", {})
    return OmegaConf.to_container(sweeper) if isinstance(sweeper, DictConfig) else {}


def _sweep_sources():
    return (PAPER_GRID, *sorted((p for p in EXPERIMENTS.iterdir() if p.name.endswith(".yaml")), key=str))


def paper_sweep(axis: str) -> list:
    """The values the paper sweeps `axis` over (a dotted key or its last part: "k", "seed"): its
    grid's (conf/grid/paper.yaml), else the first experiment's that sweeps it; [] when none does."""
    for path in _sweep_sources():
        for key, text in (_sweeper(path).get("params") or {}).items():
            if axis in (key, key.split(".")[-1]):
                return _sweep_values(text)
    return []


def paper_labeled_per_normal() -> int:
    """How many labeled anomaly classes the paper's semi-supervised one-vs-all sweep runs per normal
    class (its `exclude` drops the pairs with labeled = normal class); 0 when no experiment sweeps them."""
    for path in _sweep_sources():
        sweeper = _sweeper(path)
        params = sweeper.get("params") or {}
        if LABELED_AXIS in params and NORMAL_AXIS in params:
            excluded = {frozenset(pair) for pair in sweeper.get("exclude") or []}
            labeled, normals = _sweep_values(params[LABELED_AXIS]), _sweep_values(params[NORMAL_AXIS])
            return min(sum(frozenset((f"{NORMAL_AXIS}={n}", f"{LABELED_AXIS}={c}")) not in excluded for c in labeled)
                       for n in normals)
    return 0


# -- words -------------------------------------------------------------------------------------

def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _listed(values) -> str:
    """Distinct values, sorted: "5, 50"; runs of consecutive integers as ranges: "0-4"."""
    values = sorted({v.item() if isinstance(v, np.generic) else v for v in values if not pd.isna(v)})
    integral = len(values) > 2 and all(float(v).is_integer() for v in values)
    if integral and values == list(np.arange(values[0], values[-1] + 1)):
        return f"{_number(values[0])}-{_number(values[-1])}"
    return ", ".join(_number(value) for value in values)


def _duration(low: float, high: float) -> str:
    """A range of seconds in one unit: "15-35 s", "13.1-13.9 min", "0.2-2.3 s"."""
    if low >= 120:
        return f"{low / 60:.1f}-{high / 60:.1f} min"
    digits = 0 if low >= 10 else 1
    return f"{low:.{digits}f}-{high:.{digits}f} s"


def _epochs(value) -> str:
    return f"{_number(value)} epoch" + ("" if value == 1 else "s")


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


def _classes(count: int) -> str:
    return f"{count} labeled class" + ("" if count == 1 else "es")


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _row_labels(cells_by_table: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Per variant the published row label (the paper's name for it)."""
    labels = {}
    for cells in cells_by_table.values():
        labels.update(dict(zip(cells["variant"], cells["row_label"], strict=True)))
    return {variant: re.sub(r"\s*\((proposed|\w+)\)$", "", label) for variant, label in labels.items()}


def _cell_name(cell: pd.Series, objective: bool) -> str:
    """"wikiart Strokes 5 [adaptive]", with the objective where a table has several."""
    weighting = f" [{cell['weighting']}]" if cell["weighting"] else ""
    kind = f" {cell['objective'].replace('_', '-')}" if objective and cell["objective"] else ""
    return f"{cell['dataset']} {cell['column_label']}{kind}{weighting}"


def _names(cells: pd.DataFrame) -> str:
    """The cells' names in parentheses when they are few, else ""."""
    objective = cells["objective"].nunique() > 1
    names = ", ".join(_cell_name(cell, objective) for _, cell in cells.iterrows())
    return f" ({names})" if 0 < len(cells) <= MAX_NAMED else ""


# -- the caveats ---------------------------------------------------------------------------------

def _activity_lines(done: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """Per regularized variant with runs whose regularizer never switched on: how many, per epochs."""
    known = done[_has_activity(done)]
    lines = []
    for variant, group in known.groupby("variant"):
        off = regularizer_never_on(group)
        if not off.any():
            continue
        counts = " and ".join(f"{int((~off[runs.index]).sum())} of {len(runs)} {_number(epochs)}-epoch runs"
                              for epochs, runs in group.groupby("epochs"))
        regularizer = _listed(group["regularizer"])
        lines.append(f"- {labels.get(variant, variant)}: its regularizer ({regularizer}) switched on in {counts}; "
                     "in the others L_reg was 0 in every epoch, so they trained as the variant without it")
    return lines


def _twins(done: pd.DataFrame) -> dict[str, str]:
    """Per regularized variant the variant without a regularizer that trains alike (same method and
    bias term): what a run whose regularizer never switched on trained as (dsvdd_bias_var -> dsvdd_bias)."""
    plain = done[done["regularizer"].astype(str) == "none"]
    twins = {}
    for variant, group in done[done["regularizer"].notna() & (done["regularizer"].astype(str) != "none")].groupby(
            "variant"):
        same = plain[(plain["method"] == group["method"].iloc[0]) & (plain["bias"] == group["bias"].iloc[0])]
        if len(same):
            twins[variant] = same["variant"].value_counts().index[0]
    return twins


TWIN_KEY = ("dataset", "setup", "semi_supervised", "train_anomaly", "val_anomaly", "test_anomaly", "objective", "lr")


def _printed(value: float) -> str:
    return f"{value:.1f}"


def _twin_value(cell: pd.Series, twin: str, every_cell: pd.DataFrame) -> str | None:
    """The printed value of `cell`'s twin cell (variant `twin`, same key but the weighting), if any."""
    same = every_cell[(every_cell["variant"] == twin) & (every_cell["status"] == "ok")]
    for key in TWIN_KEY:
        same = same[np.isclose(same[key], cell[key], equal_nan=True)] if key == "lr" else same[same[key] == cell[key]]
    return _printed(same["ours_mean"].iloc[0]) if len(same) else None


def _weighting_twins(cells: pd.DataFrame) -> int:
    """In how many columns rows that differ only in their weighting print the same value."""
    if cells.empty:
        return 0
    groups = cells.assign(printed=cells["ours_mean"].map(_printed)).groupby(["variant", *TWIN_KEY], dropna=False)
    return sum(len(group) > 1 and group["printed"].nunique() == 1 for _, group in groups)


def _table_regularizer_lines(runs: pd.DataFrame, cells_by_table: dict[str, pd.DataFrame],
                             labels: dict[str, str], twins: dict[str, str]) -> list[str]:
    """Per table and regularized variant: its cells resting only on runs whose regularizer never
    switched on, and which of them print their twin's (w/ bias) value."""
    every_cell = pd.concat(list(cells_by_table.values()), ignore_index=True) if cells_by_table else pd.DataFrame()
    lines = []
    for table, cells in cells_by_table.items():
        for variant, group in cells[(cells["status"] == "ok") & cells["variant"].isin(list(twins))].groupby("variant"):
            off = pd.Series({index: regularizer_never_on(cell_runs(runs, cell)).mean() for index, cell in group.iterrows()})
            never, partly = group.loc[off.index[off == 1.0]], group.loc[off.index[(off > 0) & (off < 1)]]
            if never.empty and partly.empty:
                continue
            twin = twins[variant]
            same = sum(_twin_value(cell, twin, every_cell) == _printed(cell["ours_mean"]) for _, cell in never.iterrows())
            line = (f"- Table {table}: {len(never)} of {len(group)} {labels.get(variant, variant)} cells rest only on "
                    f"runs whose regularizer never switched on{_names(never)}; {same} of them print the value of "
                    f"their {labels.get(twin, twin)} cell")
            alike = _weighting_twins(never)
            if alike:
                line += f"; its rows that differ only in the weighting print the same value in {alike} column(s)"
            if len(partly):
                line += f"; {len(partly)} more rest partly on such runs{_names(partly)}"
            lines.append(line)
    return lines


def _single_run_lines(cells_by_table: dict[str, pd.DataFrame]) -> list[str]:
    """How many reproduced cells per table rest on one run (no spread to judge a difference by)."""
    parts = []
    for table, cells in cells_by_table.items():
        ok = cells[cells["status"] == "ok"]
        single = int((ok["n_runs"] == 1).sum())
        if single:
            parts.append(f"Table {table} {single} of {len(ok)}")
    if not parts:
        return []
    return [f"- single runs: {', '.join(parts)} reproduced cells rest on one run (n=1): they have no spread of "
            "their own, so a difference between two such cells cannot be told from seed noise, and one to the "
            "paper is judged against the paper's spread alone"]


def _grid_lines(done: pd.DataFrame) -> list[str]:
    """The values of the validation-selected axes and of the seeds run, against the paper's grid."""
    lines = []
    for axis in selected_axes():
        run, paper = set(done[axis].dropna()), set(paper_sweep(axis))
        if run and paper and run != paper:
            lines.append(f"- {axis} (chosen on validation per cell): {_listed(run)} run, {len(run)} of the paper's "
                         f"{len(paper)} values ({_listed(paper)})")
    seeds, paper_seeds = set(done["seed"].dropna()), set(paper_sweep("seed"))
    if seeds and paper_seeds and seeds != paper_seeds:
        lines.append(f"- seeds: {_listed(seeds)} ({len(seeds)} per cell at most) of the paper's {_listed(paper_seeds)} "
                     f"({len(paper_seeds)} per cell): a cell's ± is over seeds only where it has several")
    return lines


def _labeled_class_lines(done: pd.DataFrame, cells_by_table: dict[str, pd.DataFrame]) -> list[str]:
    """The labeled anomaly classes of the semi-supervised one-vs-all runs, against the paper's."""
    semi = done[done["semi_supervised"].astype(bool) & (done["setup"] == "one_vs_all")
                & done["labeled_anomaly_class"].notna()]
    paper_classes, per_normal = set(paper_sweep(LABELED_AXIS)), paper_labeled_per_normal()
    if semi.empty or not paper_classes:
        return []
    run_per_normal = int(semi.groupby(["variant", "normal_class"])["labeled_anomaly_class"].nunique().max())
    if set(semi["labeled_anomaly_class"]) == paper_classes and run_per_normal == per_normal:
        return []
    tables = [t for t, cells in cells_by_table.items() if (cells["semi_supervised"] & (cells["setup"] == "one_vs_all")).any()]
    where = f"Table {', '.join(tables)}" if tables else "semi-supervised one-vs-all runs"
    return [f"- {where} ({_listed(semi['dataset'])}, semi-supervised one-vs-all): labeled anomaly class "
            f"{_listed(semi['labeled_anomaly_class'])}, {run_per_normal} per normal class (normal classes "
            f"{_listed(semi['normal_class'])}); the paper: classes {_listed(paper_classes)}, {per_normal} per normal "
            f"class, so each of our cells averages {_classes(run_per_normal)} where the paper's averages "
            f"{_classes(per_normal)}"]


def _epoch_lines(done: pd.DataFrame, cells_by_table: dict[str, pd.DataFrame]) -> list[str]:
    """Deep SVDD epochs per table and for the runs outside the tables, against the paper's."""
    deep = done[done["objective"] != ""]
    if deep.empty:
        return []
    paper = {variant: _paper_epochs(variant) for variant in deep["variant"].unique()}
    if all(paper[v] is None or e == paper[v] for v, e in zip(deep["variant"], deep["epochs"], strict=True)):
        return []
    per_table, outside = {}, pd.Series(True, index=deep.index)
    for table, cells in cells_by_table.items():
        inside = _in_tables(deep, cells)
        outside &= ~inside
        if inside.any():
            per_table.setdefault(_listed(deep.loc[inside, "epochs"]), []).append(table)
    parts = [f"Table {', '.join(tables)}: {epochs}" for epochs, tables in per_table.items()]
    table_paper = _listed({paper[v] for v in deep.loc[~outside, "variant"] if paper[v] is not None})
    text = "; ".join(parts) + (f" (paper: {table_paper})" if parts and table_paper else "")
    others = []
    for epochs, group in deep[outside].groupby("epochs"):
        variants = sorted(group["variant"].unique())
        theirs = _listed({paper[v] for v in variants if paper[v] is not None})
        others.append(f"{_number(epochs)} ({_runs(len(group))} of {', '.join(variants)}; paper: {theirs or 'n/a'})")
    if others:
        text += ("; " if text else "") + f"runs in no table: {'; '.join(others)}"
    return [f"- deep SVDD epochs per experiment: {text}"]


def _dotted(tree: dict, key: str):
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _shown(value) -> str:
    return "all" if value is None else _number(value)


def _option_differences(variant: str, records: list[dict]) -> list[str]:
    """The variant's method options whose recorded values differ from the paper's composition."""
    config = paper_variant_config(variant)
    paper = OmegaConf.to_container(config.method) if config is not None and records else {}
    parts = []
    for key, paper_value in paper.items():
        values = {str(_dotted(record.get("config") or {}, f"method.{key}")) for record in records}
        recorded = [_dotted(record.get("config") or {}, f"method.{key}") for record in records]
        if key in NOT_CAPS or values == {"None"} and paper_value is None or values == {str(paper_value)}:
            continue
        if any(value is not None for value in recorded) or paper_value is not None:
            shown = ", ".join(sorted({_shown(value) for value in recorded}))
            parts.append(f"method.{key} {shown} (paper: {_shown(paper_value)})")
    return parts


def _recorded_counts(records: list[dict]) -> list[str]:
    """The counts of the data used that the variant's runs recorded (`RECORDED_COUNTS`)."""
    parts = []
    for key, words in RECORDED_COUNTS.items():
        values = [_dotted(record, key) for record in records]
        values = [value for value in values if value is not None]
        if values:
            parts.append(f"{_listed(values)} {words}")
    return parts


def _cap_lines(done: pd.DataFrame, metrics: list[dict] | None) -> list[str]:
    """GEO's and the shallow baselines' caps: epochs against the paper's, method options that differ
    from the paper's and the counts recorded; variants with the same text share a line."""
    baselines = done[done["objective"] == ""]
    texts: dict[str, list[str]] = {}
    for variant, group in baselines.groupby("variant"):
        records = [m for m in metrics or [] if m.get("variant") == variant and m.get("test_auc") is not None]
        capped = f" (profile {_listed(group['profile'])}; paper: every one)" if (group["profile"] != PAPER_PROFILE).any() \
            else ""
        parts = [f"training rows {_listed(group['n_train'])}{capped}"]
        paper_epochs = _paper_epochs(variant)
        if group["epochs"].notna().any() and paper_epochs is not None:
            parts.append(f"{_listed(group['epochs'])} {'epoch' if set(group['epochs']) == {1} else 'epochs'} "
                         f"(paper: {paper_epochs})")
        parts += _option_differences(variant, records) + _recorded_counts(records)
        texts.setdefault("; ".join(parts), []).append(f"{variant} ({_runs(len(group))})")
    return [f"- {', '.join(variants)}: {text}" for text, variants in texts.items()]


def _data_lines(done: pd.DataFrame, metrics: list[dict] | None) -> list[str]:
    """Per dataset the data copy read (layout: folder) and how its images were resized."""
    lines = []
    for dataset, group in done.groupby("dataset"):
        layouts = _listed(group["data_layout"].dropna())
        if not layouts:
            continue
        jpeg = " (JPEG files, as the folder's name says: re-encoded, not the original images)" \
            if re.search(r"jpe?g", layouts, re.IGNORECASE) else ""
        resize = {_dotted(m, "data.source.resize") for m in metrics or [] if m.get("dataset") == dataset} - {None}
        how = f"; resized: {'; '.join(sorted(resize))}" if resize else ""
        lines.append(f"- {dataset}: read from the copy `{layouts}`{jpeg}{how}")
    return lines


def _anomaly_sizes(group: pd.DataFrame, name: str) -> list[int]:
    """The sizes of anomaly `name` ("strokes": thickness, "block_perm": n) among the runs' splits."""
    keys = pd.concat([group[column] for column in ("train_anomaly", "val_anomaly", "test_anomaly")])
    return sorted({int(key.split(":")[1]) for key in keys if key.startswith(f"{name}:")})


def _size_lines(done: pd.DataFrame) -> list[str]:
    """Per dataset the image size against the paper's and what a stroke and a permuted block span there."""
    lines = []
    for dataset, group in done.groupby("dataset"):
        try:
            paper = paper_image_size(dataset)
        except HydraException:  # a dataset the package has no node for: no paper size to compare
            continue
        for size in sorted(group["image_size"].dropna().astype(int).unique()):
            runs = group[group["image_size"] == size]
            strokes, blocks = _anomaly_sizes(runs, "strokes"), _anomaly_sizes(runs, "block_perm")
            if size == paper and not strokes:
                continue
            parts = []
            if strokes:
                parts.append(f"a stroke of thickness {' / '.join(map(str, strokes))} px spans "
                             f"{' / '.join(_percent(t, size) for t in strokes)} of the side"
                             + (f" (paper: {' / '.join(_percent(t, paper) for t in strokes)})" if size != paper else ""))
            if blocks and size != paper:
                parts.append(f"block permutation {' / '.join(f'{n}x{n}' for n in blocks)} moves blocks of "
                             f"{' / '.join(f'{size // n}' for n in blocks)} px (paper: "
                             f"{' / '.join(f'{paper // n}' for n in blocks)} px)")
            lines.append(f"- {dataset} at {size} px (paper: {paper} px)" + (f": {'; '.join(parts)}" if parts else ""))
    return lines


def _wall_time_lines(done: pd.DataFrame) -> list[str]:
    """The wall time of one run (runs.csv `seconds`) per method and epochs."""
    timed = done[pd.to_numeric(done["seconds"], errors="coerce").notna()]
    if timed.empty:
        return []
    lines = ["- wall time of one run (runs.csv `seconds`), per method and epochs:"]
    for (method, epochs), group in timed.groupby(["method", timed["epochs"].fillna(-1)]):
        seconds = group["seconds"].astype(float)
        variants = sorted(group["variant"].unique())
        named = ", ".join(variants) if len(variants) <= 4 else f"{len(variants)} variants"
        trained = f", {_epochs(epochs)}" if epochs >= 0 else ""
        median = _duration(seconds.median(), seconds.median()).split("-")[1]
        lines.append(f"  - {method} ({named}{trained}; {_runs(len(group))}): {_duration(seconds.min(), seconds.max())}, "
                     f"median {median}")
    return lines


def reading_caveats(runs: pd.DataFrame, cells_by_table: dict[str, pd.DataFrame],
                    metrics: list[dict] | None = None) -> list[str]:
    """REPORT.md's "Read the cells with these caveats", one Markdown line each (module docstring).
    `runs`: `collect_runs`'s frame; `cells_by_table`: table -> `table_cells`; `metrics`: the runs'
    metrics.json (`collect_metrics`), for the caps runs.csv has no column for (optional)."""
    done = runs[finished(runs)]
    if done.empty:
        return ["- no finished runs"]
    labels, twins = _row_labels(cells_by_table), _twins(done)
    lines = [*_activity_lines(done[done["variant"].isin(list(twins))], labels),
             *_table_regularizer_lines(runs, cells_by_table, labels, twins),
             *_single_run_lines(cells_by_table), *_grid_lines(done), *_labeled_class_lines(done, cells_by_table),
             *_epoch_lines(done, cells_by_table), *_cap_lines(done, metrics), *_data_lines(done, metrics),
             *_size_lines(done), *_wall_time_lines(done)]
    return lines or ["- none: the runs ran the paper's protocol as recorded"]
