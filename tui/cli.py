"""`trainrig`: the command line's entry point. Imports only argparse at start-up so `--help` stays fast;
the parser is tui/cli_args.py, the verbs tui/cli_commands.py and tui/cli_tools.py (the runner, asyncssh
and friends, are imported by the verb that needs them)."""

from __future__ import annotations

import errno
import os
import sys

from tui.cli_args import build_parser
from tui.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_READER_GONE


def _stdout_closed() -> bool:
    """Has the reader of our stdout gone away? (A pipe whose reader closed polls as an error.)"""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poll.poll(0))
    except (OSError, ValueError):
        return True


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from infra.errors import TrainrigError
    from tui.cli_commands import dispatch
    from tui.console import Console, ReaderGone

    console = Console()
    try:
        code = dispatch(args, console)
    except TrainrigError as e:
        console.say(f"error: {e}")
        code = e.exit_code
    except ReaderGone:  # `trainrig run ... | head`: the training started and goes on
        run = console.run_id
        console.say(f"stopped following: the reader of the log went away; the training goes on. "
                    f"`trainrig logs {run} -f` follows it, `trainrig stop {run}` stops it.")
        code = EXIT_READER_GONE
    except BrokenPipeError as e:
        if not _stdout_closed():  # a pipe to the machine, not the user's reader: a failure, never quiet
            where = f"trainrig status {console.run_id}" if console.run_id else "trainrig ls"
            console.say(f"error: the connection to the machine was lost ({e.strerror or e}); `{where}` tells where the run stands.")
            code = EXIT_FAILED
        else:  # `trainrig accelerators | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = EXIT_OK
    except Exception as e:  # a failure trainrig did not foresee: one line, the traceback on demand
        if os.environ.get("TRAINRIG_DEBUG"):
            raise
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # this computer's, e.g. the state folder's
            where = f" ({e.filename})" if e.filename else ""
            console.say(f"error: this computer's disk is full{where}: free some space, then run the same command again.")
        else:
            console.say(f"error: unexpected {type(e).__name__}: {e} (TRAINRIG_DEBUG=1 shows where)")
        code = EXIT_FAILED
    except KeyboardInterrupt:
        run = console.run_id
        if console.following:
            node = f" --node {args.node}" if args.cmd == "logs" and args.node != 0 else ""  # the log it followed
            console.say(f"\nstopped following; the training goes on. `trainrig logs {run}{node} -f` follows it again, "
                         f"`trainrig stop {run}` stops it.".replace("  ", " "))
        else:
            from runner.journal import Journal
            from runner.outcomes import after_interrupt

            console.say("\n" + after_interrupt(Journal(), run))
        code = EXIT_INTERRUPTED
    if args.cmd in ("up", "run", "start", "down"):  # a run got or lost its machine: `ssh trainrig-RUN` follows
        _sync_ssh_config(console)
    sys.exit(code)


def _sync_ssh_config(console) -> None:  # type: ignore[no-untyped-def]
    """Never changes the command's outcome: a config that cannot be written is a note."""
    from runner.ssh_config import sync_quietly

    problem = sync_quietly()
    if problem:
        console.say(f"note: {problem}")


if __name__ == "__main__":
    main()