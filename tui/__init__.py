"""The terminal front ends: the `trainrig` command line (and later the Textual app). Floor 3 of 3."""
