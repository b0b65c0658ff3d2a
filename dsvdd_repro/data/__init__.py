"""Data: natural image sources, the paper's protocols (splits and setups) and the anomaly generators.

Each source module (`cifar10`, `voc2012`, `wikiart`, `folder`, `fake`) defines its `dataset` config
node beside its `ImageSource`; `dsvdd_repro.runs.config.register_configs` imports every module of
this package, so a new source is one new module. `schema.build(cfg.dataset).load()` gives the
decoded images (NaturalImages); a setup (`setups`) turns them into the run's splits.

May import: core, storage
"""
