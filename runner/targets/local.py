"""Target `local`: this computer is the machine, behind an embedded SSH server on loopback.

Each run gets its own sandbox folder (the machine's disk), a fresh host key (pinned at once, since
trainrig made it) and a per-run client key. The venv cache is shared by all local runs, as a real
machine's would be across runs. A run with `--nodes N` gets N such machines on loopback: node 0 where
a one-node run's is, node K in the run's folder node-K/, each with its own server, port and host key.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import asyncssh

from runner.errors import RemoteFailed
from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.remote.main import stop_run
from runner.remote.procs import alive, command_lines
from runner.states import RunState

START_TIMEOUT_S = 20
LOCK_TIMEOUT_S = 60  # a holder starts a server (at most START_TIMEOUT_S) or stops one


def _is_our_server(pid: int, sandbox: Path) -> bool:
    """The pid still runs our server for this sandbox (pids get reused after a reboot)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return str(sandbox).encode() in f.read()
    except OSError:
        return alive(pid)


def servers_of(sandbox: Path) -> list[int]:
    """Every live local server of this sandbox, recorded or not (one started by a command whose
    record was overwritten is still found)."""
    want = [b"runner.targets.local_server", b"--sandbox", str(sandbox).encode()]
    return [pid for pid, args in command_lines()
            if want[0] in args and want[1:] in (args[i:i + 2] for i in range(len(args) - 1))]


def _stop_servers(sandbox: Path) -> None:
    pids = servers_of(sandbox)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 2
        while time.monotonic() < end and any(alive(p) for p in pids):
            time.sleep(0.02)
        pids = [p for p in pids if alive(p)]


class LocalTarget:
    name = "local"

    def _paths(self, journal: Journal, run_id: str, node: int = 0) -> tuple[Path, Path, Path, Path]:
        """Sandbox, host key, the client's public key (one for all nodes), ready file of node `node`."""
        d = journal.dir(run_id)
        n = d / f"node-{node}" if node else d
        return n / "sandbox", n / "host_key", d / "client_key.pub", n / "server.json"

    @asynccontextmanager
    async def _server_lock(self, journal: Journal, run_id: str) -> AsyncIterator[None]:
        """Held while the run's server is started or stopped: two commands reconnecting at once
        start one server, and none starts while `down` stops it."""
        d = journal.dir(run_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(d / "server.lock", "w") as f:
            end = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise RemoteFailed(f"another trainrig command has been starting run {run_id}'s local "
                                           f"SSH server for {LOCK_TIMEOUT_S} s; try again.") from None
                    await asyncio.sleep(0.02)
            yield  # the lock goes with the file's closing

    async def _start_server(self, record: RunRecord, journal: Journal, node: int = 0) -> tuple[int, int]:
        sandbox, host_key, client_pub, ready = self._paths(journal, record.run_id, node)
        ready.unlink(missing_ok=True)
        log_path = ready.parent / "server.log"
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.targets.local_server", "--sandbox", str(sandbox),
             "--host-key", str(host_key), "--authorized-key", str(client_pub), "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        log.close()
        if node == 0:
            # Recorded before it is ready: an interrupt from here on still finds it to stop (another
            # node's is found by its sandbox in its command line).
            record.local_server_pid = proc.pid
            journal.save(record)
        end = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > end:
                proc.kill()
                tail = log_path.read_text(errors="replace").strip().splitlines()
                raise RemoteFailed(f"the local SSH server did not start: {tail[-1] if tail else 'no output'}")
            await asyncio.sleep(0.02)
        info = json.loads(ready.read_text())
        return info["port"], info["pid"]

    def _machine(self, record: RunRecord, journal: Journal, port: int, host_pub: str, node: int = 0) -> Machine:
        sandbox = self._paths(journal, record.run_id, node)[0]
        return Machine(
            host="127.0.0.1", port=port, user=getpass.getuser(), host_keys=(host_pub,),
            client_key=str(journal.key_path(record.run_id, "client_key")),
            python=sys.executable, root=str(sandbox), venv_cache=str(journal.root.parent / "cache" / "venvs"),
        )

    async def provision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        journal.write_private(record.run_id, "client_key", client_key.export_private_key())
        self._paths(journal, record.run_id)[2].write_bytes(client_key.export_public_key())
        # Every node's server started or failed before this returns: a failure raised while another
        # node's server was still starting would leave that one running past the clean-up.
        made = await asyncio.gather(*(self._provision_node(record, journal, on_event, k)
                                      for k in range(max(record.spec.nodes, 1))), return_exceptions=True)
        failed = [m for m in made if isinstance(m, BaseException)]
        if failed:
            raise failed[0]
        machines = [m for m in made if isinstance(m, Machine)]
        if len(machines) > 1:
            record.nodes = list(machines)
        return machines[0]

    async def _provision_node(self, record: RunRecord, journal: Journal, on_event: EventSink, node: int) -> Machine:
        sandbox, host_key_path, _, _ = self._paths(journal, record.run_id, node)
        sandbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        journal.write_private(record.run_id, str(host_key_path.relative_to(journal.dir(record.run_id))),
                              host_key.export_private_key())
        port, pid = await self._start_server(record, journal, node)
        if node == 0:
            record.local_server_pid = pid
        host_pub = host_key.export_public_key().decode().strip()
        which = f"node {node}: " if record.spec.nodes > 1 else ""
        on_event(Notice(f"local machine: {which}SSH server on 127.0.0.1:{port} (pid {pid}), sandbox {sandbox}"))
        return self._machine(record, journal, port, host_pub, node)

    def _server_pid(self, record: RunRecord, journal: Journal, node: int) -> int | None:
        if node == 0:
            return record.local_server_pid
        try:  # another node's pid is in its ready file
            return int(json.loads(self._paths(journal, record.run_id, node)[3].read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def reattach(self, record: RunRecord, journal: Journal) -> Machine:
        assert record.machine is not None
        async with self._server_lock(journal, record.run_id):
            # What the journal says now, not what this command read earlier: another command may
            # have started the server while this one waited for the lock.
            now = journal.load(record.run_id)
            if now.state in (RunState.DESTROYING, RunState.DESTROYED) or now.machine is None:
                raise RemoteFailed(f"run {record.run_id} is {now.state}: its local machine is gone.")
            machines, changed = now.all_nodes(), False
            for k, m in enumerate(machines):
                pid, sandbox = self._server_pid(now, journal, k), self._paths(journal, record.run_id, k)[0]
                if not (alive(pid) and _is_our_server(pid, sandbox)):
                    # The server is gone (this computer restarted, or it was killed): start it again
                    # with the same keys; the training, detached from it, may well still be running.
                    port, pid = await self._start_server(now, journal, k)
                    if k == 0:
                        now.local_server_pid = pid
                    machines[k], changed = self._machine(now, journal, port, m.host_keys[0], k), True
            if changed:
                now.machine = machines[0]
                now.nodes = machines if len(machines) > 1 else []
                journal.save(now)
            record.local_server_pid, record.machine, record.nodes = now.local_server_pid, now.machine, now.nodes
        return record.machine

    async def destroy(self, record: RunRecord, journal: Journal, on_event: EventSink) -> None:
        # Stop a training that still runs with the machine-side tool itself: this computer is the
        # machine, and its SSH server may be the thing that is gone. It also ends what the training
        # started that left its process group. Every node at once.
        await asyncio.gather(*(asyncio.to_thread(stop_run, m.run_dir(record.run_id), 20.0) for m in record.all_nodes()))
        async with self._server_lock(journal, record.run_id):
            for k in range(max(record.spec.nodes, 1)):
                sandbox = self._paths(journal, record.run_id, k)[0]
                # Every server of the sandbox, not only the recorded one.
                await asyncio.to_thread(_stop_servers, sandbox)
                shutil.rmtree(sandbox, ignore_errors=True)
                if k:  # its host key and server log: node 0's go with the run's own files
                    shutil.rmtree(journal.dir(record.run_id) / f"node-{k}", ignore_errors=True)
        record.local_server_pid = None
