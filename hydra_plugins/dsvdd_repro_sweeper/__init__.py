"""dsvdd_repro's Hydra sweeper plugin (`hydra/sweeper=dedup`, the default in conf/config.yaml).

Hydra finds plugins only in the `hydra_plugins` namespace package, hence this folder beside
`dsvdd_repro/`; the run identity it uses is `dsvdd_repro.config.run_id`.
"""
