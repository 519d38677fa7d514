"""What happens to a run: lifecycle, SSH, transfers, targets (floor 2 of 3; never imports tui/)."""
