"""Anomaly detectors. Each implements `Detector` (methods/base.py): fit on train/val, score a split."""
