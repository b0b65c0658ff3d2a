"""The shared vocabulary every stage speaks: the config-node schema and registry (`schema`), the
anomaly node (`anomaly`), the keys that say how a run executes rather than what it is
(`execution`), the evaluation metrics (`evaluation`) and the named crash points of the fault tests
(`faults`).

May import: nothing
"""
