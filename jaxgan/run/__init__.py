"""The training run: the loop (train.py) and its actions, checkpoints, resume, sweeps and
populations, writers, the run directory, and the config validation before anything runs."""
