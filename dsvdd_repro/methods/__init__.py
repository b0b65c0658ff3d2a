"""Anomaly detectors. Each implements `Detector` (methods/base.py): fit on train/val, score a split,
and states what a run of it costs (the cost plan adds those up).

May import: core, storage, data, models
"""
