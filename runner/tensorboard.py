"""TensorBoard through the run's SSH connection: started on the machine over the run's logs
folder (listening on the machine's loopback only), forwarded to a port on this computer's
loopback. Nothing is opened in any firewall: the tunnel is the SSH connection already allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import asyncssh

from runner import tools
from runner.errors import BadInput, RemoteFailed
from runner.machine import Machine

FIRST_PORTS = 20  # how many ports from the asked one are tried before giving up


@dataclass(frozen=True)
class Tunnel:
    local_port: int
    remote_port: int

    @property
    def url(self) -> str:
        return f"http://localhost:{self.local_port}/"


async def forward_local(
    conn: asyncssh.SSHClientConnection, remote_port: int, first_port: int, tries: int = FIRST_PORTS
) -> tuple[asyncssh.SSHListener, int]:
    """Listen on 127.0.0.1:`first_port` here (or the next free port) and forward every connection
    to the machine's 127.0.0.1:`remote_port`. Returns (listener, the local port)."""
    last: OSError | None = None
    for port in range(first_port, min(first_port + tries, 65536)):
        try:
            listener = await conn.forward_local_port("127.0.0.1", port, "127.0.0.1", remote_port)
        except OSError as e:  # in use (or refused): the next one
            last = e
            continue
        return listener, listener.get_port()
    raise BadInput(f"no free port on this computer from {first_port} to {first_port + tries - 1} "
                   f"({last.strerror if last else 'all in use'}): choose another with --port.")


async def serve_tensorboard(
    conn: asyncssh.SSHClientConnection, machine: Machine, run_id: str, first_port: int,
    on_ready: Callable[[Tunnel], None],
) -> None:
    """Start TensorBoard on the machine, forward it, call `on_ready`, and keep both up until this
    coroutine is cancelled (Ctrl-C) or TensorBoard ends. Closing the channel stops TensorBoard."""
    run_dir = machine.run_dir(run_id)

    async def start() -> tuple[asyncssh.SSHClientProcess, dict]:
        proc = await tools.open_process(conn, machine, ["tensorboard", run_dir])
        line = await proc.stdout.readline()
        if not line:
            await tools.check_missing(proc)
            err = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            raise RemoteFailed(f"could not start TensorBoard on the machine: {err[-1] if err else 'the connection closed'}")
        return proc, json.loads(line)

    try:
        proc, reply = await tools.with_tools(conn, machine, start)
    except asyncssh.Error as e:
        raise RemoteFailed(f"the connection to the machine broke: {e.reason}") from e
    try:
        error = reply.get("error")
        if error == "no_environment":
            raise BadInput(f"run {run_id} has no training environment yet: `trainrig start {run_id}` first.")
        if error == "not_installed":
            raise BadInput(f"TensorBoard is not installed in run {run_id}'s environment: add `tensorboard` to the "
                           f"requirements.txt of your code folder and `trainrig start {run_id}` again.")
        if error:
            tail = " | ".join(reply.get("tail", [])[-2:])
            raise RemoteFailed(f"TensorBoard did not start on the machine: {tail or error}")
        listener, port = await forward_local(conn, reply["port"], first_port)
        try:
            on_ready(Tunnel(port, reply["port"]))
            done = await proc.wait()  # until TensorBoard ends, or Ctrl-C cancels this
            err = (done.stderr or b"").decode(errors="replace").strip().splitlines()
            raise RemoteFailed(f"TensorBoard on the machine ended: {err[-1] if err else f'exit {done.exit_status}'}")
        finally:
            listener.close()
    finally:
        proc.close()  # the machine's side sees its input close and stops TensorBoard
