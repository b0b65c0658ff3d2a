"""Run folders -> model selection (`selection`) -> the paper's tables and figures beside the
published numbers. Reads run folders (metrics.json) only: never the data layer.

May import: core, storage, runs
"""
