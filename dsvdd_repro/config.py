"""Structured configs (the schema behind `conf/`) and the value checks that run before any work.

Hydra merges every YAML file of `conf/` into these dataclasses, so an unknown key or a value of the
wrong type is refused by Hydra itself. `validate` adds the range and consistency checks that types
cannot express; each failure is one `ConfigError` line naming the key, the bad value and what is
allowed (contract C1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

DATASETS = ("cifar10", "voc2012", "wikiart", "fake")
# Section V-A: the six WikiArt styles the paper uses (ArtGAN folder names)
WIKIART_PAPER_STYLES = (
    "Art_Nouveau_Modern", "Contemporary_Realism", "Fauvism", "High_Renaissance", "Naive_Art_Primitivism",
    "Symbolism",
)
SETUPS = ("one_vs_all", "alteration")
ANOMALIES = ("block_perm", "strokes")
METHODS = ("dsvdd", "ocsvm", "iforest", "geo")
SHALLOW_METHODS = ("ocsvm", "iforest")
FEATURES = ("pca", "cnn")
MODELS = ("resnet18",)
POOLINGS = ("max", "none")
OBJECTIVES = ("one_class", "soft_boundary")
REGULARIZERS = ("none", "noise", "variance")
WEIGHTINGS = ("adaptive", "fixed")
OPTIMIZERS = ("adam",)
DEVICES = ("auto", "cpu", "cuda")
SPLITS = ("train", "val", "test")


class ConfigError(ValueError):
    """A configuration value that cannot be run; the message is one line for the user."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"invalid config: {key}={value!r} ({allowed})")


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str | None = None
    download: bool = False
    image_size: int = 32
    cache_dir: str | None = None
    # only for the generated `fake` dataset
    n_classes: int = 3
    n_train_per_class: int = 40
    n_test_per_class: int = 20
    # only for wikiart: the styles to read (ArtGAN folder names); styles absent on disk are skipped
    # with a warning unless require_all_styles
    styles: list[str] = field(default_factory=lambda: list(WIKIART_PAPER_STYLES))
    require_all_styles: bool = False
    # Section V-B: the soft-boundary objective uses nu = 0.2 on VOC2012 and 0.1 on WikiArt (the
    # paper gives none for CIFAR-10, where it reports one-class results only: 0.1 here).
    # objective/soft_boundary.yaml reads it; `objective.nu=...` still overrides.
    soft_boundary_nu: float = 0.1


@dataclass
class SetupConfig:
    name: str = MISSING
    normal_class: int = 0
    # one_vs_all: share of the normal class's train images used for training (rest -> validation)
    train_fraction: float = 0.8
    # alteration: share of the validation pool moved to validation; null = the dataset's own rule
    # (CIFAR-10, WikiArt: 20% of the given train set; VOC2012: 40% of the given val set)
    val_fraction: float | None = None
    # Semi-supervised deep SVDD (Eq. 3, Table VI). one_vs_all: labeled_anomaly_fraction of ONE
    # anomaly class's train images (labeled_anomaly_class) join the training set as labeled
    # anomalies; alteration: labeled anomalies (altered training images, anomaly.train) make up
    # labeled_anomaly_fraction of the training set.
    semi_supervised: bool = False
    labeled_anomaly_class: int | None = None
    labeled_anomaly_fraction: float = 0.1


@dataclass
class AnomalySplitOverride:
    """Per-split anomaly settings; a key left null takes the group's own value."""

    name: str | None = None
    n: int | None = None
    thickness: int | None = None


@dataclass
class AnomalyConfig:
    name: str = "strokes"
    n: int = 2
    thickness: int = 5
    # Table VI trains, validates and tests on different anomaly types, e.g.
    # anomaly.train.name=block_perm anomaly.train.n=8 anomaly.test.thickness=5
    train: AnomalySplitOverride = field(default_factory=AnomalySplitOverride)
    val: AnomalySplitOverride = field(default_factory=AnomalySplitOverride)
    test: AnomalySplitOverride = field(default_factory=AnomalySplitOverride)


@dataclass
class MethodConfig:
    name: str = "dsvdd"
    # |c_j| < center_eps is pushed to +-center_eps (Ruff et al.'s reference implementation)
    center_eps: float = 0.1
    # Re-estimate batch norm's running statistics on the training set (a train-mode pass without
    # gradients) before c is computed: null = only for random initialisation (model.weights=none),
    # whose running statistics (0, 1) make the eval-mode features that fix c unlike the trained ones.
    calibrate_bn: bool | None = None
    # Baselines (dsvdd_repro/methods/shallow.py, geo.py). Seeded validation subsample (at most half
    # per label) for OC-SVM's selection and the baselines' val AUC; null = the whole split.
    val_max_samples: int | None = 2000
    # OC-SVM grid: nu x gamma = 2^k * gamma_scale (scikit-learn's "scale"); best val AUC wins
    ocsvm_nus: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.2, 0.5])
    ocsvm_gamma_exponents: list[int] = field(default_factory=lambda: [-8, -6, -4, -2, 0, 2, 4, 6])
    # kernel SVMs scale quadratically: train on a seeded subsample of at most this many rows
    ocsvm_max_train: int | None = 10000
    iforest_trees: int = 100
    iforest_max_samples: int = 256
    # GEO (Golan & El-Yaniv; Section V-B): ceil(200/72) epochs of all 72 transforms of each image
    geo_epochs: int = 3
    geo_batch_size: int = 35
    geo_lr: float = 1e-4
    geo_weight_decay: float = 5e-4
    # a seeded random subset of the n_train x 72 (image, transform) pairs per epoch; null = all
    geo_max_samples_per_epoch: int | None = None
    # the Dirichlets are fitted on a seeded subsample of at most this many training images; null = all
    geo_fit_max_samples: int | None = None


@dataclass
class FeaturesConfig:
    """Inputs of the shallow baselines (method=ocsvm|iforest); see dsvdd_repro/methods/features.py."""

    name: str = "pca"
    # pca: Deep SVDD's protocol: l1 global contrast normalisation, [0, 1] min-max, PCA keeping 95%
    pca_variance: float = 0.95
    gcn: bool = True
    # cnn: ResNet-18 of model.weights / model.pooling. Extracted features are cached on disk.
    cache: bool = True


@dataclass
class ModelConfig:
    name: str = "resnet18"
    bias: bool = True
    pooling: str = "max"
    weights: str = "imagenet"


@dataclass
class ObjectiveConfig:
    name: str = "one_class"
    nu: float = 0.1
    eta: float = 1.0


@dataclass
class RegularizerConfig:
    name: str = "none"
    k: int = 5
    d0: float = 0.1
    r: int = 3
    weighting: str = "adaptive"
    alpha: float = 0.9
    beta: float = 0.5
    c0: float = 0.0


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 1e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 5e-4


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 50
    eval_batch_size: int = 500
    device: str = "auto"
    num_threads: int | None = None
    # an epoch counts as collapsed when the validation features' variance falls below
    # collapse_ratio x their mean second moment (see dsvdd_repro/evaluation.py)
    collapse_ratio: float = 1e-3
    progress: bool = True


@dataclass
class ProfileConfig:
    name: str = "paper"
    # seeded subsampling of the splits (None = the protocol's full split)
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None


@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    setup: SetupConfig = field(default_factory=SetupConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    seed: int = 0


def run_id(*, _root_: DictConfig) -> str:
    """The run folder's name (resolver `${run_id:}` in conf/config.yaml): readable and bounded,
    e.g. `dsvdd_bias_noise/wikiart_alteration/3f2a9c81d0e4_s0`. The hash is that of the run's
    semantic config, so overrides a run does not read (e.g. `objective` for OC-SVM) map to the same
    folder, and a relaunch finds the finished run there."""
    job = OmegaConf.masked_copy(_root_, [key for key in _root_.keys() if key != "hydra"])
    try:
        semantic = semantic_config(job)
        seed = semantic.pop("seed", 0)
        variant = variant_name(job)
    except Exception:  # invalid configs are reported by validate(); still give them a folder
        semantic, seed, variant = OmegaConf.to_container(job, resolve=False), job.get("seed", 0), "invalid"
    text = json.dumps(semantic, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    setup = job.setup.name + (f"_c{job.setup.normal_class}" if job.setup.name == "one_vs_all" else "")
    semi = "_semi" if job.setup.get("semi_supervised") else ""
    return f"{variant}/{job.dataset.name}_{setup}{semi}/{digest}_s{seed}"


def register_configs() -> None:
    """Make the schema known to Hydra as `base_config` (first entry of conf/config.yaml's defaults)."""
    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id)


register_configs()


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, value, "allowed: " + ", ".join(allowed))


def _in_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    below = value <= low if low_open else value < low
    if below or value > high:
        raise ConfigError(key, value, f"must be in {'(' if low_open else '['}{low}, {high}]")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(key, value, "must be > 0")


def split_anomaly(cfg: DictConfig, split: str) -> dict:
    """The anomaly spec a split uses: each per-split key that is set, else the group's own key."""
    override = cfg.anomaly[split]
    spec = {key: cfg.anomaly[key] if override[key] is None else override[key] for key in ("name", "n", "thickness")}
    return {"name": spec["name"], "n": int(spec["n"]), "thickness": int(spec["thickness"])}


def _validate_anomaly(cfg: DictConfig, split: str) -> None:
    spec = split_anomaly(cfg, split)
    override = cfg.anomaly[split]

    def key(name: str) -> str:
        return f"anomaly.{split}.{name}" if override[name] is not None else f"anomaly.{name}"

    _one_of(key("name"), spec["name"], ANOMALIES)
    size = int(cfg.dataset.image_size)
    if spec["name"] == "block_perm":
        if spec["n"] < 2:
            raise ConfigError(key("n"), spec["n"], "blocks per side must be >= 2")
        if size % spec["n"]:
            divisors = [d for d in range(2, size + 1) if size % d == 0]
            raise ConfigError(key("n"), spec["n"], f"must divide dataset.image_size={size}; allowed: {divisors}")
    elif spec["thickness"] < 1:
        raise ConfigError(key("thickness"), spec["thickness"], "stroke thickness in pixels must be >= 1")


def _at_least(key: str, value: int | None, low: int, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if value is None or value < low:
        raise ConfigError(key, value, f"must be {'null or ' if nullable else ''}>= {low}")


def _validate_baselines(cfg: DictConfig) -> None:
    method, features = cfg.method, cfg.features
    _one_of("features", features.name, FEATURES)
    _in_range("features.pca_variance", features.pca_variance, 0.0, 1.0, low_open=True)
    _at_least("method.val_max_samples", method.val_max_samples, 2, nullable=True)
    if not method.ocsvm_nus:
        raise ConfigError("method.ocsvm_nus", list(method.ocsvm_nus), "must be a non-empty list")
    for nu in method.ocsvm_nus:
        _in_range("method.ocsvm_nus", nu, 0.0, 1.0, low_open=True)
    if not method.ocsvm_gamma_exponents:
        raise ConfigError("method.ocsvm_gamma_exponents", list(method.ocsvm_gamma_exponents), "must be a non-empty list")
    _at_least("method.ocsvm_max_train", method.ocsvm_max_train, 2, nullable=True)
    _at_least("method.iforest_trees", method.iforest_trees, 1)
    _at_least("method.iforest_max_samples", method.iforest_max_samples, 2)
    _at_least("method.geo_epochs", method.geo_epochs, 1)
    _at_least("method.geo_batch_size", method.geo_batch_size, 2)
    _positive("method.geo_lr", method.geo_lr)
    if method.geo_weight_decay < 0:
        raise ConfigError("method.geo_weight_decay", method.geo_weight_decay, "must be >= 0")
    _at_least("method.geo_max_samples_per_epoch", method.geo_max_samples_per_epoch, 2, nullable=True)
    _at_least("method.geo_fit_max_samples", method.geo_fit_max_samples, 2, nullable=True)


def validate(cfg: DictConfig) -> None:
    """Check every value that types alone cannot; raise ConfigError on the first bad one."""
    _one_of("dataset", cfg.dataset.name, DATASETS)
    _positive("dataset.image_size", cfg.dataset.image_size)
    _one_of("setup", cfg.setup.name, SETUPS)
    _one_of("method", cfg.method.name, METHODS)
    _validate_baselines(cfg)
    _one_of("model", cfg.model.name, MODELS)
    _one_of("model.pooling", cfg.model.pooling, POOLINGS)
    _one_of("objective", cfg.objective.name, OBJECTIVES)
    _in_range("objective.nu", cfg.objective.nu, 0.0, 1.0, low_open=True)
    if cfg.objective.eta <= 0:
        raise ConfigError("objective.eta", cfg.objective.eta, "must be > 0")
    _one_of("regularizer", cfg.regularizer.name, REGULARIZERS)
    if cfg.regularizer.k < 1:
        raise ConfigError("regularizer.k", cfg.regularizer.k, "number of random-label tasks must be >= 1")
    _positive("regularizer.d0", cfg.regularizer.d0)
    if cfg.regularizer.r < 1:
        raise ConfigError("regularizer.r", cfg.regularizer.r, "epochs between threshold steps must be >= 1")
    _one_of("regularizer.weighting", cfg.regularizer.weighting, WEIGHTINGS)
    _in_range("regularizer.alpha", cfg.regularizer.alpha, 0.0, 1.0)
    _in_range("regularizer.beta", cfg.regularizer.beta, 0.0, 1.0)
    _one_of("optim", cfg.optim.name, OPTIMIZERS)
    _positive("optim.lr", cfg.optim.lr)
    _positive("optim.backbone_lr_factor", cfg.optim.backbone_lr_factor)
    if cfg.optim.weight_decay < 0:
        raise ConfigError("optim.weight_decay", cfg.optim.weight_decay, "must be >= 0")
    if cfg.trainer.epochs < 1:
        raise ConfigError("trainer.epochs", cfg.trainer.epochs, "must be >= 1")
    if cfg.trainer.batch_size < 2:
        raise ConfigError("trainer.batch_size", cfg.trainer.batch_size, "must be >= 2 (batch statistics)")
    _positive("trainer.eval_batch_size", cfg.trainer.eval_batch_size)
    _one_of("trainer.device", cfg.trainer.device, DEVICES)
    _in_range("trainer.collapse_ratio", cfg.trainer.collapse_ratio, 0.0, 1.0, low_open=True)
    _in_range("setup.train_fraction", cfg.setup.train_fraction, 0.0, 1.0, low_open=True)
    if cfg.setup.val_fraction is not None:
        if not 0.0 < cfg.setup.val_fraction < 1.0:
            raise ConfigError(
                "setup.val_fraction", cfg.setup.val_fraction, "must be null (the dataset's default) or in (0, 1)"
            )
    if cfg.dataset.name == "wikiart":
        styles = list(cfg.dataset.styles)
        if not styles or len(set(styles)) != len(styles) or not all(isinstance(s, str) and s for s in styles):
            raise ConfigError(
                "dataset.styles", styles,
                "a non-empty list of distinct style folder names, e.g. " + ",".join(WIKIART_PAPER_STYLES[:2]),
            )
    if cfg.dataset.name == "voc2012" and cfg.setup.name == "one_vs_all":
        raise ConfigError(
            "setup", "one_vs_all", "voc2012 images have no single class label; use setup=alteration"
        )
    if cfg.setup.semi_supervised:
        fraction = cfg.setup.labeled_anomaly_fraction
        _in_range("setup.labeled_anomaly_fraction", fraction, 0.0, 1.0, low_open=True)
        if cfg.setup.name == "alteration" and fraction >= 1.0:
            raise ConfigError("setup.labeled_anomaly_fraction", fraction, "must be < 1 for alteration")
        if cfg.setup.name == "one_vs_all":
            labeled = cfg.setup.labeled_anomaly_class
            if labeled is None or labeled == cfg.setup.normal_class:
                raise ConfigError(
                    "setup.labeled_anomaly_class", labeled, "semi-supervised one_vs_all needs a class other than "
                    f"setup.normal_class={cfg.setup.normal_class}"
                )
    if cfg.setup.name == "alteration":
        for split in SPLITS:
            _validate_anomaly(cfg, split)
    for key in ("max_train", "max_val", "max_test"):
        value = cfg.profile[key]
        if value is not None and value < 2:
            raise ConfigError(f"profile.{key}", value, "must be null or >= 2")


def run_axes(cfg: DictConfig) -> dict:
    """The experimental axes of a run, as recorded in metrics.json (contract C2)."""
    alteration = cfg.setup.name == "alteration"
    geo, shallow = cfg.method.name == "geo", cfg.method.name in SHALLOW_METHODS
    return {
        "method": cfg.method.name,
        "variant": variant_name(cfg),
        "dataset": cfg.dataset.name,
        "setup": cfg.setup.name,
        "normal_class": None if alteration else int(cfg.setup.normal_class),
        "semi_supervised": bool(cfg.setup.semi_supervised),
        "labeled_anomaly_class": (
            int(cfg.setup.labeled_anomaly_class)
            if cfg.setup.semi_supervised and not alteration and cfg.setup.labeled_anomaly_class is not None
            else None
        ),
        "anomaly": {s: split_anomaly(cfg, s) for s in SPLITS} if alteration else None,
        "objective": cfg.objective.name,
        "nu": float(cfg.objective.nu) if cfg.objective.name == "soft_boundary" else None,
        "regularizer": cfg.regularizer.name,
        "k": int(cfg.regularizer.k) if cfg.regularizer.name == "noise" else None,
        "d0": float(cfg.regularizer.d0) if cfg.regularizer.name == "variance" else None,
        "r": int(cfg.regularizer.r) if cfg.regularizer.name == "variance" else None,
        "weighting": cfg.regularizer.weighting if cfg.regularizer.name != "none" else None,
        "bias": bool(cfg.model.bias),
        "pooling": cfg.model.pooling,
        "weights": cfg.model.weights,
        "lr": float(cfg.method.geo_lr if geo else cfg.optim.lr),
        "backbone_lr_factor": float(cfg.optim.backbone_lr_factor),
        "image_size": int(cfg.dataset.image_size),
        "epochs": None if shallow else int(cfg.method.geo_epochs if geo else cfg.trainer.epochs),
        "features": cfg.features.name if shallow else None,
        "seed": int(cfg.seed),
        "profile": cfg.profile.name,
    }


def variant_name(cfg: DictConfig) -> str:
    """The paper's table row this configuration belongs to."""
    if cfg.method.name in SHALLOW_METHODS:
        return f"{cfg.method.name}_{cfg.features.name}"
    if cfg.method.name == "geo":
        return "geo"
    if not cfg.model.bias:
        return "dsvdd" if cfg.regularizer.name == "none" else f"dsvdd_nobias_{cfg.regularizer.name}"
    return {"none": "dsvdd_bias", "noise": "dsvdd_bias_noise", "variance": "dsvdd_bias_var"}[cfg.regularizer.name]


# Keys that change where or how fast a run executes but not its result: left out of the run's
# identity so that moving the data or switching the device does not re-run finished work.
NON_SEMANTIC_KEYS = (
    "dataset.root",
    "dataset.download",
    "dataset.cache_dir",
    "trainer.device",
    "trainer.num_threads",
    "trainer.progress",
    "trainer.eval_batch_size",
    "features.cache",
)


# Which keys of the method group each method reads (the rest of `method` is another method's).
_METHOD_KEYS = {
    "dsvdd": ("center_eps", "calibrate_bn"),
    "ocsvm": ("val_max_samples", "ocsvm_nus", "ocsvm_gamma_exponents", "ocsvm_max_train"),
    "iforest": ("val_max_samples", "iforest_trees", "iforest_max_samples"),
    "geo": ("val_max_samples", "geo_epochs", "geo_batch_size", "geo_lr", "geo_weight_decay",
            "geo_max_samples_per_epoch", "geo_fit_max_samples"),
}
_REGULARIZER_KEYS = {"none": (), "noise": ("k",), "variance": ("d0", "r")}


def semantic_config(cfg: DictConfig) -> dict:
    """The configuration that determines a run's result: the keys its method, setup and
    regularizer actually read, without where/how it executes (NON_SEMANTIC_KEYS). Two runs with the
    same semantic config are the same run, so a key that does not apply (e.g. `objective` for
    OC-SVM, `regularizer.k` without the noise regularizer) never makes a finished run look different.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    for dotted in NON_SEMANTIC_KEYS:
        group, key = dotted.split(".")
        container.get(group, {}).pop(key, None)
    method = container["method"]["name"]
    container["method"] = {"name": method, **{k: container["method"][k] for k in _METHOD_KEYS.get(method, ())}}
    if method != "dsvdd":
        for group in ("objective", "regularizer", "optim"):
            container.pop(group, None)
        container["trainer"] = {}  # the baselines take their settings from `method`
        if method in SHALLOW_METHODS and container["features"]["name"] == "pca":
            container.pop("model", None)
        elif method in SHALLOW_METHODS:
            container["model"].pop("bias", None)  # CNN features come from the intact network
    else:
        reg = container["regularizer"]
        if reg["name"] == "none":
            container["regularizer"] = {"name": "none"}
        else:
            keep = ("name", "weighting", "alpha", "beta", "c0", *_REGULARIZER_KEYS[reg["name"]])
            container["regularizer"] = {k: reg[k] for k in keep}
        if container["objective"]["name"] == "one_class":
            container["objective"].pop("nu", None)
    container["dataset"].pop("soft_boundary_nu", None)  # it only feeds objective.nu, compared there
    if method not in SHALLOW_METHODS:
        container.pop("features", None)
    setup = container["setup"]
    if setup["name"] == "one_vs_all":
        container.pop("anomaly", None)
        setup.pop("val_fraction", None)
    else:
        for key in ("normal_class", "train_fraction", "labeled_anomaly_class"):
            setup.pop(key, None)
    if not setup.get("semi_supervised"):
        for key in ("labeled_anomaly_class", "labeled_anomaly_fraction"):
            setup.pop(key, None)
        if "anomaly" in container:
            container["anomaly"].pop("train", None)  # only labeled anomalies use the train spec
    if container["dataset"]["name"] != "fake":
        for key in ("n_classes", "n_train_per_class", "n_test_per_class"):
            container["dataset"].pop(key, None)
    if container["dataset"]["name"] != "wikiart":
        for key in ("styles", "require_all_styles"):
            container["dataset"].pop(key, None)
    return container
