"""trainrig_helpers: the chores every training script repeats, standard library only.

On a trainrig machine this package is on the training's PYTHONPATH (after your own entries, and
after your script's folder, so a file of yours with the same name wins); where trainrig is
installed it imports too, so a script debugged on your own computer needs nothing else.

    import trainrig_helpers as th

    dirs = th.directories()                 # --dataset_directory ... or TRAINRIG_*_DIR, or defaults
    log = th.logger()                       # to stdout and to <logs>/script.log
    th.log_metrics(step, loss=0.3, accuracy=0.91)   # <logs>/metrics.jsonl (+ TensorBoard events)
    th.save_checkpoint(step, lambda path: torch.save(model.state_dict(), path), suffix=".pt")
    last = th.latest_checkpoint(suffix=".pt")       # resume from it (None when there is none)
"""

from .checkpoints import Checkpoint, all_checkpoints, latest_checkpoint, save_checkpoint
from .directories import Directories, add_directory_arguments, directories
from .logger import logger
from .metrics import MetricsWriter, log_metrics

__all__ = [
    "Checkpoint", "Directories", "MetricsWriter", "add_directory_arguments", "all_checkpoints", "directories", "latest_checkpoint",
    "log_metrics", "logger", "save_checkpoint",
]
