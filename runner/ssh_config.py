"""OpenSSH's view of the runs: `Host trainrig-<run>` entries, so plain `ssh`, `scp`, `rsync` and VS Code's
Remote-SSH reach a run's machine with its pinned host key and its key file, with no extra step.

trainrig owns one file, `<state dir>/ssh/config` (rewritten from the journal by `sync`, never edited by
hand), and one known_hosts file per run beside it. The user's `~/.ssh/config` (TRAINRIG_SSH_CONFIG names
another; set empty, none is touched) gets a single `Include` line at its top, once: ssh applies an
included file globally only before the first `Host` block, and the user's own lines are kept byte for byte.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.states import RunState

ENV = "TRAINRIG_SSH_CONFIG"
HEADER = ("# Written by trainrig from its run journal (`trainrig ssh RUN`, or `ssh trainrig-RUN`): every run\n"
          "# holding a machine. Rewritten by trainrig's commands: edits here are lost.\n")
INCLUDE_NOTE = "# Added by trainrig: a Host trainrig-<run> entry per run holding a machine (`trainrig ssh RUN`)\n"


@dataclass(frozen=True)
class Entry:
    """One run's `Host` entry: what `ssh trainrig-<run>` uses."""

    run_id: str
    host: str
    port: int
    user: str
    identity_file: str | None  # None: the user's agent and default keys
    known_hosts: Path  # the run's pinned host keys, and no other

    @property
    def alias(self) -> str:
        return host_alias(self.run_id)


@dataclass(frozen=True)
class Synced:
    config: Path  # trainrig's own file
    entries: tuple[Entry, ...]
    user_config: Path | None  # the file holding the Include line (None: none touched)
    problem: str = ""  # why the Include line could not be added ('' : it is there, or not needed yet)


def host_alias(run_id: str) -> str:
    return f"trainrig-{run_id}"


def ssh_dir(journal: Journal) -> Path:
    return journal.root.parent / "ssh"


def config_path(journal: Journal) -> Path:
    return ssh_dir(journal) / "config"


def known_hosts_path(journal: Journal, run_id: str) -> Path:
    return ssh_dir(journal) / "known_hosts" / run_id


def user_config_path() -> Path | None:
    """The user's ssh config that gets the Include line; None when TRAINRIG_SSH_CONFIG is set empty."""
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    return Path.home() / ".ssh" / "config"


def has_machine(record: RunRecord) -> bool:
    return record.machine is not None and record.state in (RunState.UP, RunState.STARTED, RunState.FINISHED)


def _quoted(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


def _arg(value: str) -> str:
    """A file name as ssh_config reads it: `%` starts a token there, and a space needs quotes."""
    return _quoted(value.replace("%", "%%"))


def known_hosts_text(run_id: str, machine: Machine) -> str:
    # Under the run's alias (HostKeyAlias): the key stays pinned when the address or port changes
    # (a local run's server restarted on another port), and no other host's key file is consulted.
    return "".join(f"{host_alias(run_id)} {key.strip()}\n" for key in machine.host_keys)


def entry_text(e: Entry) -> str:
    lines = [f"Host {e.alias}", f"HostName {e.host}", f"Port {e.port}", f"User {e.user}"]
    if e.identity_file:
        lines += [f"IdentityFile {_arg(e.identity_file)}", "IdentitiesOnly yes"]
    lines += [f"UserKnownHostsFile {_arg(str(e.known_hosts))}", "StrictHostKeyChecking yes",
              f"HostKeyAlias {e.alias}", "CheckHostIP no"]
    return lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])


def ssh_options(e: Entry) -> list[str]:
    """The same settings as command-line options of `ssh`, so `trainrig ssh` needs no Include."""
    opts = ["-p", str(e.port), "-l", e.user]
    if e.identity_file:
        opts += ["-o", f"IdentityFile={_arg(e.identity_file)}", "-o", "IdentitiesOnly=yes"]
    return opts + ["-o", f"UserKnownHostsFile={_arg(str(e.known_hosts))}", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"HostKeyAlias={e.alias}", "-o", "CheckHostIP=no"]


def _write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Temporary file beside it, then rename: a reader (ssh) sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == 0o600:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    _write_atomic(path, text.encode())


def include_line(config: Path) -> str:
    return f"Include {_quoted(str(config))}\n"


def add_include(user_config: Path, config: Path) -> bool:
    """Put the Include line at the top of the user's config once; True if it was added now. The
    file is made 0600 when missing (with its folder 0700); a link (a dotfiles manager's) is followed."""
    target = Path(os.path.realpath(user_config))
    try:
        old = target.read_bytes()
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        old, mode = b"", 0o600
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for line in old.decode(errors="replace").splitlines():
        words = line.strip().split(None, 1)
        if len(words) == 2 and words[0].lower() == "include" and str(config) in words[1]:
            return False  # there already (wherever the user moved it)
    _write_atomic(target, (INCLUDE_NOTE + include_line(config)).encode() + (b"\n" if old else b"") + old, mode)
    return True


def entry_for(journal: Journal, record: RunRecord) -> Entry:
    m = record.machine
    assert m is not None
    return Entry(record.run_id, m.host, m.port, m.user, m.client_key, known_hosts_path(journal, record.run_id))


def sync(journal: Journal | None = None) -> Synced:
    """Rewrite trainrig's ssh config and the runs' known_hosts files from the journal: one entry per
    run holding a machine, none for the others. Idempotent; holds a lock so two commands syncing at
    once leave the newer journal's view. Adds the Include line to the user's config the first time
    there is an entry; failing that (a read-only config) is reported in `problem`, never raised."""
    journal = journal or Journal()
    folder = ssh_dir(journal)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "known_hosts").mkdir(exist_ok=True, mode=0o700)
    with os.fdopen(os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = sorted((r for r in journal.all() if has_machine(r)), key=lambda r: r.run_id)
        entries = tuple(entry_for(journal, r) for r in records)
        for r, e in zip(records, entries):
            assert r.machine is not None
            _write_if_changed(e.known_hosts, known_hosts_text(r.run_id, r.machine))
        live = {e.known_hosts.name for e in entries}
        for stale in (folder / "known_hosts").iterdir():
            if stale.name not in live and not stale.name.startswith("."):
                stale.unlink(missing_ok=True)
        config = config_path(journal)
        _write_if_changed(config, HEADER + "".join("\n" + entry_text(e) for e in entries))
        user, problem = user_config_path(), ""
        if user is not None and entries:
            try:
                add_include(user, config)
            except OSError as e:
                problem = (f"could not add `{include_line(config).strip()}` at the top of {user} ({e.strerror or e}): "
                           f"add it there to reach runs with `ssh {entries[0].alias}`")
    return Synced(config, entries, user, problem)


def sync_quietly(journal: Journal | None = None) -> str:
    """`sync` for callers whose own work is done (a lifecycle step, a command): '' or why the entries
    could not all be written (a full disk, say), never an exception that would hide their outcome."""
    try:
        return sync(journal).problem
    except Exception as e:  # noqa: BLE001 (even a bug here must not undo a finished up or down)
        return f"the ssh config of the runs was not updated ({type(e).__name__}: {e})"
