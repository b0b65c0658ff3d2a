"""Collect runs, build the paper's tables and figures, compare with the published numbers."""
