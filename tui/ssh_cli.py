"""`trainrig ssh RUN [COMMAND...]`: OpenSSH's `ssh` to the run's machine, with its pinned host key and
its key file (runner/ssh_config.py), as SkyPilot's `ssh CLUSTER` does.

Without COMMAND: a login shell in the run's folder. With one argument: a shell command line, as `ssh
host 'nvidia-smi | head'` takes it; with several: each word quoted (shlex.join), so `ls "a b"` means
one file. The exit code is the command's (255: ssh itself failed, e.g. a host key that is not the
pinned one). The `local` target's machine is this computer, and its embedded server gives no terminals:
there a COMMAND still goes through ssh, and a plain `trainrig ssh RUN` is a shell here, in the run's
sandbox folder.
"""

from __future__ import annotations

import argparse
import os
import sys

def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    p = sub.add_parser("ssh", help="a shell on the run's machine (or run COMMAND there) with OpenSSH, its host key pinned; "
                       "`ssh trainrig-RUN` works too")
    p.add_argument("run")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="run this on the machine, in the run's folder once it has started, and exit with its code "
                   "(one argument: a shell command line, as with ssh; several: quoted word by word)")


def remote_command(words: list[str], run_dir: str | None) -> list[str]:
    """What the machine's shell runs: the user's command, in the run's folder when there is one (`cd`
    failing stops it: never the same command in another folder); without one, a login shell there
    (before `start` there is no run folder: ssh's own login)."""
    import shlex

    cmd = (words[0] if len(words) == 1 else shlex.join(words)) if words else 'exec "${SHELL:-/bin/sh}" -l'
    if run_dir:
        return [f"cd {shlex.quote(run_dir)} && {cmd}"]
    return [cmd] if words else []


def _run(argv: list[str], cwd: str | None = None) -> int:
    """The child owns the terminal; Ctrl-C is its to handle (as a shell leaves it to the command)."""
    import signal
    import subprocess

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
    return code if code >= 0 else 128 - code


def ssh(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    import asyncio
    import shutil

    from infra.errors import BadInput
    from infra.names import check_run_id
    from runner import ssh_config
    from runner.errors import NoMachine
    from runner.journal import Journal
    from runner.states import RunState
    from runner.targets import get_target

    run_id = check_run_id(a.run)
    console.run_id = run_id
    journal = Journal()
    record = journal.load(run_id)
    if not ssh_config.has_machine(record):
        raise NoMachine(run_id, record.state)
    local_shell = record.spec.target == "local" and not a.command
    ssh_bin = None if local_shell else shutil.which("ssh")
    if ssh_bin is None and not local_shell:  # bad input before a local run's server is started again
        raise BadInput("OpenSSH's ssh is not installed here (Debian: `apt-get install openssh-client`): install it, then try again.")
    # A local run's server is started again if it is gone (its port may change): then the entries.
    machine = asyncio.run(get_target(record.spec.target).reattach(record, journal))
    synced = ssh_config.sync(journal)
    if synced.problem:
        console.say(f"note: {synced.problem}")
    run_dir = machine.run_dir(run_id) if record.state in (RunState.STARTED, RunState.FINISHED) else None
    sys.stdout.flush()
    sys.stderr.flush()
    if local_shell:
        shell = os.environ.get("SHELL") or "/bin/sh"
        here = run_dir if run_dir and os.path.isdir(run_dir) else machine.root
        console.say(f"run {run_id}'s machine is this computer (its SSH server gives no terminals): "
                    f"a shell here in {here}; `exit` leaves it.")
        return _run([shell], cwd=here)
    assert ssh_bin is not None
    entry = ssh_config.entry_for(journal, record)
    tty = ["-t"] if not a.command and sys.stdin.isatty() else []
    return _run([ssh_bin, *ssh_config.ssh_options(entry), *tty, machine.host, *remote_command(a.command, run_dir)])
