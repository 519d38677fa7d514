"""The supervisor: runs one training on the machine, detached from any SSH connection.

Split by concern: supervisor_loop.py (the main loop and the run's outcome), supervisor_training.py
(the training's command line, its processes and their stop), supervisor_install.py (venv and install
script), supervisor_sync.py (dataset in, outputs/logs/status out), supervisor_launch.py (detached start,
restore, resync). This module keeps the names the rest of trainrig imports.
"""

from .supervisor_launch import launch, restore_logs, resync
from .supervisor_loop import FAILSAFE_MARGIN_MIN, Supervisor
from .supervisor_training import training_command

__all__ = ["FAILSAFE_MARGIN_MIN", "Supervisor", "launch", "restore_logs", "resync", "training_command"]
