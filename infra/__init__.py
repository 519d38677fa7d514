"""What a run's cloud is made of: the run spec, names, the Pulumi program (floor 1 of 3)."""
