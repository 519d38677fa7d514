"""The `local` target's machine: an SSH server on 127.0.0.1 that runs commands on this computer.

Started detached by `trainrig up --target local` (`python -m runner.targets.local_server ...`), it
accepts only the run's own client key, presents the run's own host key, and runs each command with
`/bin/sh -c` in the run's sandbox folder, exactly as sshd would run it in a login folder. So the
local target goes through the same runner, supervisor and SSH as a cloud machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

import asyncssh


async def _pump_in(process: asyncssh.SSHServerProcess, child: asyncio.subprocess.Process) -> None:
    try:
        while True:
            data = await process.stdin.read(1 << 16)
            if not data:
                break
            child.stdin.write(data)
            await child.stdin.drain()
    except (BrokenPipeError, ConnectionResetError, asyncssh.Error):
        pass
    finally:
        try:
            child.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass


async def _pump_out(reader: asyncio.StreamReader, writer: asyncssh.SSHWriter) -> None:
    while True:
        data = await reader.read(1 << 16)
        if not data:
            return
        writer.write(data)
        await writer.drain()


async def _read_pipe(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """A reader of our end of a child's output pipe, and the transport that closes it."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader, transport


async def _end(child: asyncio.subprocess.Process) -> None:
    """After the channel closed: what sshd does (the child's stdin ends, its output pipes lose their
    reader: a follower sees that at once, an upload keeps its index), then, for a command that
    carries on regardless, its group is ended (a detached supervisor is in a session of its own)."""
    for sig, grace in ((None, GONE_GRACE_S), (signal.SIGTERM, GONE_GRACE_S), (signal.SIGKILL, None)):
        if sig is not None:
            try:
                os.killpg(child.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
        try:
            await asyncio.wait_for(child.wait(), grace)
            return
        except asyncio.TimeoutError:
            pass


GONE_GRACE_S = 5.0


async def handle(process: asyncssh.SSHServerProcess, sandbox: str) -> None:
    if not process.command:
        process.stderr.write(b"trainrig's local machine runs commands only (no interactive shell)\n")
        process.exit(1)
        return
    # Output pipes of our own (not asyncio's), so that their reading ends can be closed as sshd's are.
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    try:
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", process.command, cwd=sandbox,
            stdin=asyncio.subprocess.PIPE, stdout=out_w, stderr=err_w, start_new_session=True,
        )
    except OSError as e:  # the sandbox is gone (`down` ran meanwhile), say
        os.close(out_r)
        os.close(err_r)
        process.stderr.write(f"trainrig's local machine cannot run the command: {e}\n".encode())
        process.exit(127)
        return
    finally:
        os.close(out_w)
        os.close(err_w)
    (out, out_t), (err, err_t) = await _read_pipe(out_r), await _read_pipe(err_r)
    feeder = asyncio.ensure_future(_pump_in(process, child))
    # Exit only after both output pipes are drained: exiting on the child's exit alone can drop its
    # last output.
    outputs = asyncio.ensure_future(asyncio.gather(_pump_out(out, process.stdout), _pump_out(err, process.stderr)))
    # The channel closing (the client killed, or done with it): a follower of a quiet training
    # would otherwise only notice at its next line, and stay until then.
    closed = asyncio.ensure_future(process.channel.wait_closed())
    try:
        await asyncio.wait({outputs, closed}, return_when=asyncio.FIRST_COMPLETED)
        if outputs.done():
            outputs.result()
            code = await child.wait()
            process.exit(code if code >= 0 else 128 - code)
            return
    except (BrokenPipeError, ConnectionResetError, asyncssh.Error):
        pass  # the client went away mid-write
    finally:
        for task in (feeder, outputs, closed):
            task.cancel()
    child.stdin.close()
    out_t.close()
    err_t.close()
    await _end(child)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Server(asyncssh.SSHServer):
    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        """Port forwards (e.g. `trainrig tensorboard`) may reach this computer's loopback only,
        as they would reach a cloud machine's own services, never another host."""
        return dest_host in LOOPBACK


async def serve(sandbox: str, host_key: str, authorized_key: str, ready_file: str) -> None:
    server = await asyncssh.listen(
        "127.0.0.1", 0,
        server_factory=_Server,
        server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(open(authorized_key).read()),
        process_factory=lambda p: handle(p, sandbox),
        encoding=None, line_editor=False, allow_scp=False, sftp_factory=None,
        agent_forwarding=False, x11_forwarding=False, allow_pty=False,
    )
    port = server.sockets[0].getsockname()[1]
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port, "pid": os.getpid()}, f)
    os.replace(tmp, ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m runner.targets.local_server")
    p.add_argument("--sandbox", required=True)
    p.add_argument("--host-key", required=True)
    p.add_argument("--authorized-key", required=True)
    p.add_argument("--ready-file", required=True)
    a = p.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    asyncio.run(serve(a.sandbox, a.host_key, a.authorized_key, a.ready_file))
    sys.exit(0)


if __name__ == "__main__":
    main()
