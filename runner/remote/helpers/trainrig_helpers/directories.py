"""The three folders of a run: from the entry point's arguments, else trainrig's environment
variables, else the defaults the caller gives (for a script run by hand)."""

import argparse
import os
import sys
from dataclasses import dataclass

# (argument, environment variable, default)
_FOLDERS = (
    ("dataset_directory", "TRAINRIG_DATASET_DIR", "data"),
    ("output_directory", "TRAINRIG_OUTPUT_DIR", "outputs"),
    ("logs_directory", "TRAINRIG_LOGS_DIR", "logs"),
)


@dataclass(frozen=True)
class Directories:
    dataset: str
    output: str
    logs: str


def add_directory_arguments(parser):
    """Add --dataset_directory, --output_directory and --logs_directory to your own parser, with
    trainrig's environment variables as defaults; `directories(args)` then reads them."""
    for name, env, default in _FOLDERS:
        parser.add_argument("--" + name, default=os.environ.get(env, default))
    return parser


def directories(args=None, dataset="data", output="outputs", logs="logs", create=True):
    """The run's folders. `args`: a namespace from a parser given add_directory_arguments, or a list
    of command-line words (default sys.argv[1:], where unknown words are left alone). The output
    and logs folders are created unless create=False."""
    defaults = {"dataset_directory": dataset, "output_directory": output, "logs_directory": logs}
    if args is None or isinstance(args, (list, tuple)):
        # allow_abbrev=False: the user's own --output/--data/--log must never be read as ours.
        parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        for name, env, _ in _FOLDERS:
            parser.add_argument("--" + name, default=os.environ.get(env, defaults[name]))
        args, _ = parser.parse_known_args(sys.argv[1:] if args is None else list(args))
    found = Directories(
        dataset=args.dataset_directory, output=args.output_directory, logs=args.logs_directory
    )
    if create:
        os.makedirs(found.output, exist_ok=True)
        os.makedirs(found.logs, exist_ok=True)
    return found
