"""One run: its configuration composed and checked (`config`), its identity, folder, files and
provenance (`folders`). The entry points (train, score) drive a run through these.

May import: core, storage, data, models, methods
"""
