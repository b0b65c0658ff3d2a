# The front door. `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
DATA_DIR ?= data
export DSVDD_CACHE_DIR ?= $(CURDIR)/.cache/dsvdd_repro

# CIFAR-10: the offline JPEG copy when this machine has it, else torchvision's download.
ifneq ($(wildcard $(SHARED_DATA)/cifar10-jpeg.tar.gz),)
CIFAR10_ROOT ?= $(DATA_DIR)/cifar10-jpeg
CIFAR10_DOWNLOAD ?= false
OFFLINE_CIFAR10 = $(abspath $(CIFAR10_ROOT))
else
CIFAR10_ROOT ?= $(DATA_DIR)/cifar10
CIFAR10_DOWNLOAD ?= true
endif

# WikiArt: the offline subset when this machine has it (WikiArt cannot be downloaded automatically).
ifneq ($(wildcard $(SHARED_DATA)/wikiart-subset.tar.gz),)
WIKIART_ROOT ?= $(DATA_DIR)/wikiart-subset
OFFLINE_WIKIART = $(abspath $(WIKIART_ROOT))
endif
# The default profile and launcher: conf/config.yaml's defaults list, the one place they are set (read
# after `install`, when a recipe runs; PROFILE=... or LAUNCHER=... choose another).
# pytest-xdist workers of `make test` / `make test-fast` (tests/scheduling.py)
TEST_WORKERS ?= 2
PROFILE ?= $(shell $(PY) -m dsvdd_repro.reproduce --print-default profile)
LAUNCHER ?= $(shell $(PY) -m dsvdd_repro.reproduce --print-default launcher)
WEIGHTS ?=

DEMO_ARGS ?= variant=dsvdd_bias setup=one_vs_all setup.normal_class=3 profile=paper model.weights=none trainer.epochs=2 seed=0

# What `dsvdd-train dataset=cifar10|wikiart` reads by default (your own copies win when set).
DATA_ENV = DSVDD_CIFAR10_ROOT=$${DSVDD_CIFAR10_ROOT:-$(abspath $(CIFAR10_ROOT))} \
	DSVDD_WIKIART_ROOT=$${DSVDD_WIKIART_ROOT:-$(if $(WIKIART_ROOT),$(abspath $(WIKIART_ROOT)))}
# The tests read real data only where the offline copies (or your own) are there; else they skip.
TEST_ENV = DSVDD_CIFAR10_ROOT=$${DSVDD_CIFAR10_ROOT:-$(OFFLINE_CIFAR10)} \
	DSVDD_WIKIART_ROOT=$${DSVDD_WIKIART_ROOT:-$(OFFLINE_WIKIART)}

.PHONY: help install data demo test test-fast lint clean reproduce-tables report plan ruff2018-ten-classes slurm-up slurm-down

## Show the targets and what they do.
help:
	@awk '/^## /{doc = doc substr($$0, 4) " "} /^[a-z-]+:/{if (doc) printf "  %-18s %s\n", substr($$1, 1, length($$1) - 1), doc; doc = ""}' $(MAKEFILE_LIST)

## Create .venv and install the package (editable) with its dev and SLURM extras.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev,slurm]'
	touch $@

## Extract the offline CIFAR-10 copy and WikiArt subset of ../shared/data into data/ (when present).
data: $(CIFAR10_ROOT)/.extracted $(if $(WIKIART_ROOT),$(WIKIART_ROOT)/.extracted)

$(DATA_DIR)/wikiart-subset/.extracted:
	mkdir -p $(DATA_DIR)
	tar xzf $(SHARED_DATA)/wikiart-subset.tar.gz -C $(DATA_DIR)
	touch $@

$(DATA_DIR)/cifar10-jpeg/.extracted:
	mkdir -p $(DATA_DIR)
	tar xzf $(SHARED_DATA)/cifar10-jpeg.tar.gz -C $(DATA_DIR)
	touch $@

$(DATA_DIR)/cifar10/.extracted:
	mkdir -p $(DATA_DIR)/cifar10
	touch $@

## One real CIFAR-10 run (one-vs-all, normal class cat, 2 epochs, full splits), ~2-3 min on 2 cores.
demo: install data
	$(PY) -m dsvdd_repro.train dataset=cifar10 dataset.root=$(CIFAR10_ROOT) dataset.download=$(CIFAR10_DOWNLOAD) $(DEMO_ARGS)

## Every experiment of the paper for PROFILE (smoke|quick|paper; default quick) with LAUNCHER
## (local|joblib|slurm; default local), then the report into results/$(PROFILE)/. Finished runs are
## skipped: relaunch after an interruption.
## WEIGHTS=auto|imagenet|none|<path> (default: imagenet for paper; auto for quick = ImageNet when it can
## be had, else random initialisation; none for smoke). VOC2012: set DSVDD_VOC2012_ROOT.
reproduce-tables: install data
	$(DATA_ENV) $(PY) -m dsvdd_repro.reproduce --profile $(PROFILE) --launcher $(LAUNCHER) $(if $(WEIGHTS),--weights $(WEIGHTS))

## The cost plan of PROFILE with LAUNCHER: distinct runs, their work and the estimated hours on this
## device (measured once, cached); runs nothing. Runs already done in runs/$(PROFILE)/ are not counted.
plan: install
	$(DATA_ENV) $(PY) -m dsvdd_repro.reproduce --profile $(PROFILE) --launcher $(LAUNCHER) --plan $(if $(WEIGHTS),--weights $(WEIGHTS))

## The original deep SVDD protocol (Ruff et al. 2018) for all ten CIFAR-10 classes with seed 0, and seeds
## 1 and 2 for classes 1 and 3 (14 runs; PROFILE=quick: the reduced schedule, ~1.5 h on 2 cores), into
## runs/ruff2018_ten_classes/ and results/ruff2018_ten_classes/. Relaunch to resume.
ruff2018-ten-classes: install data
	$(DATA_ENV) $(PY) -m dsvdd_repro.reproduce --profile $(PROFILE) --launcher $(LAUNCHER) --experiments ruff2018_ten_classes \
		--runs-dir runs/ruff2018_ten_classes --results-dir results/ruff2018_ten_classes

## Only the report of PROFILE, from the runs already in runs/$(PROFILE)/.
report: install
	$(PY) -m dsvdd_repro.report runs/$(PROFILE) --out results/$(PROFILE)

## The whole test suite (slow end-to-end tests included), on the offline data when ../shared/data has it.
test: install data
	$(TEST_ENV) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=20

## The tests without the slow end-to-end ones.
test-fast: install data
	$(TEST_ENV) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow" --durations=10

## A real single-node SLURM cluster on this machine (root, Debian/Ubuntu; installs slurm-wlm and munge if
## missing), all in SLURM_SCRATCH (default /tmp/dsvdd-slurm): run the `export SLURM_CONF=...` line it prints, then launcher=slurm_cpu.
slurm-up:
	@bash scripts/slurm_cluster.sh up

## Stop that cluster (scripts/slurm_cluster.sh status: its state; down --purge: also remove its folder).
slurm-down:
	@bash scripts/slurm_cluster.sh down

## ruff on the package, tests and scripts.
lint: install
	$(PY) -m ruff check dsvdd_repro tests scripts

## Remove run folders and tool caches (never results/).
clean:
	rm -rf runs outputs multirun .pytest_cache .ruff_cache
