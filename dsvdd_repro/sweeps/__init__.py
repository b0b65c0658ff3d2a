"""Many runs: which jobs of a sweep still need running (`filter`), what a profile's sweeps cost
(`cost`, `plan`) and the measured speeds that price them (`calibration`).

May import: core, storage, data, models, methods, runs
"""
