"""Target `local`: this computer is the machine, behind an embedded SSH server on loopback.

Each run gets its own sandbox folder (the machine's disk), a fresh host key (pinned at once, since
trainrig made it) and a per-run client key. The venv cache is shared by all local runs, as a real
machine's would be across runs.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncssh

from runner.errors import RemoteFailed
from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.remote.main import stop_run
from runner.remote.procs import alive

START_TIMEOUT_S = 20


def _is_our_server(pid: int, sandbox: Path) -> bool:
    """The pid still runs our server for this sandbox (pids get reused after a reboot)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return str(sandbox).encode() in f.read()
    except OSError:
        return alive(pid)


class LocalTarget:
    name = "local"

    def _paths(self, journal: Journal, run_id: str) -> tuple[Path, Path, Path, Path]:
        d = journal.dir(run_id)
        return d / "sandbox", d / "host_key", d / "client_key.pub", d / "server.json"

    async def _start_server(self, record: RunRecord, journal: Journal) -> tuple[int, int]:
        sandbox, host_key, client_pub, ready = self._paths(journal, record.run_id)
        ready.unlink(missing_ok=True)
        log = open(journal.dir(record.run_id) / "server.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.targets.local_server", "--sandbox", str(sandbox),
             "--host-key", str(host_key), "--authorized-key", str(client_pub), "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        log.close()
        # Recorded before it is ready: an interrupt from here on still finds it to stop.
        record.local_server_pid = proc.pid
        journal.save(record)
        end = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > end:
                proc.kill()
                tail = (journal.dir(record.run_id) / "server.log").read_text(errors="replace").strip().splitlines()
                raise RemoteFailed(f"the local SSH server did not start: {tail[-1] if tail else 'no output'}")
            await asyncio.sleep(0.02)
        info = json.loads(ready.read_text())
        return info["port"], info["pid"]

    def _machine(self, record: RunRecord, journal: Journal, port: int, host_pub: str) -> Machine:
        sandbox = self._paths(journal, record.run_id)[0]
        return Machine(
            host="127.0.0.1", port=port, user=getpass.getuser(), host_keys=(host_pub,),
            client_key=str(journal.key_path(record.run_id, "client_key")),
            python=sys.executable, root=str(sandbox), venv_cache=str(journal.root.parent / "cache" / "venvs"),
        )

    async def provision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        sandbox, host_key_path, client_pub, _ = self._paths(journal, record.run_id)
        sandbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        journal.write_private(record.run_id, "host_key", host_key.export_private_key())
        journal.write_private(record.run_id, "client_key", client_key.export_private_key())
        client_pub.write_bytes(client_key.export_public_key())
        port, pid = await self._start_server(record, journal)
        record.local_server_pid = pid
        host_pub = host_key.export_public_key().decode().strip()
        on_event(Notice(f"local machine: SSH server on 127.0.0.1:{port} (pid {pid}), sandbox {sandbox}"))
        return self._machine(record, journal, port, host_pub)

    async def reattach(self, record: RunRecord, journal: Journal) -> Machine:
        assert record.machine is not None
        sandbox = self._paths(journal, record.run_id)[0]
        if alive(record.local_server_pid) and _is_our_server(record.local_server_pid, sandbox):
            return record.machine
        # The server is gone (this computer restarted, or it was killed): start it again with the
        # same keys; the training, detached from it, may well still be running.
        port, pid = await self._start_server(record, journal)
        record.local_server_pid = pid
        record.machine = self._machine(record, journal, port, record.machine.host_keys[0])
        journal.save(record)
        return record.machine

    async def destroy(self, record: RunRecord, journal: Journal, on_event: EventSink) -> None:
        sandbox = self._paths(journal, record.run_id)[0]
        if record.machine is not None:
            # Stop a training that still runs with the machine-side tool itself: this computer is
            # the machine, and its SSH server may be the thing that is gone.
            await asyncio.to_thread(stop_run, record.machine.run_dir(record.run_id), 20.0)
        pid = record.local_server_pid
        if pid and alive(pid) and _is_our_server(pid, sandbox):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not alive(pid):
                    break
                await asyncio.sleep(0.02)
            else:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(sandbox, ignore_errors=True)
        record.local_server_pid = None

