"""dsvdd_repro's Hydra launcher plugin: submitit launchers that pack several runs into one job
(`hydra/launcher=packed_slurm`, `packed_local` to rehearse on one machine): packed_launcher.py."""
