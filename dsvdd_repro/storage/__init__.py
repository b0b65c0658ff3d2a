"""Files that survive crashes and can be shared: atomic writes (`atomic`), content hashes and the
verified-file memo (`integrity`), received files loaded as data only (`received`), a run's
checkpoint (`checkpoint`) and the scheduler's stop signals that make it write one (`preemption`).

May import: core
"""
