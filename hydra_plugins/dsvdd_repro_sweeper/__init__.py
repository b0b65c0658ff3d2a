"""dsvdd_repro's Hydra sweeper plugin: `hydra/sweeper=grid` (grid_sweeper.py).

Hydra finds plugins only in the `hydra_plugins` namespace package, hence this folder beside
`dsvdd_repro/`. The sweeper launches a Cartesian grid without the axes a job's config does not have
(`regularizer.k` for a variant without a regularizer), each distinct job once, none whose config
cannot be composed or that its `job_filter` says is done or invalid; a job's failure stops no other.
"""
