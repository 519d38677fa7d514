"""A logger that writes to stdout (which trainrig streams as the training log) and to a file in
the logs folder (which stays with the run's logs when it is run by hand)."""

import logging
import os
import sys

from .directories import directories

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def logger(name="script", logs_dir=None, level=logging.INFO):
    """The logger `name`, writing to stdout and to <logs>/<name>.log. Calling it again returns the
    same logger without adding handlers twice (so each line is written once)."""
    log = logging.getLogger("trainrig_helpers." + name)
    if getattr(log, "_trainrig_ready", False):
        return log
    folder = logs_dir or directories().logs
    os.makedirs(folder, exist_ok=True)
    formatter = logging.Formatter(FORMAT)
    # Not "train.log": trainrig already writes stdout there, and the lines would appear twice.
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(os.path.join(folder, name + ".log"))):
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False  # a root logger the script configured must not print each line again
    log._trainrig_ready = True
    return log
