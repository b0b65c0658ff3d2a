"""The Hydra config tree (package data; found by Hydra as pkg://dsvdd_repro.conf)."""
