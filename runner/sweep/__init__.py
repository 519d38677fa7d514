"""Hyperparameter sweeps (`trainrig sweep`): Optuna chooses each trial's parameters, every trial is a
run of its own on one of the sweep's reused machines. Optuna is imported by this package only, so
`trainrig --help` and the other commands never load it."""
