"""SSH to a run's machine: pinned host keys, library errors turned into the project's own."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncssh

from runner.errors import AuthFailed, HostKeyMismatch, RemoteFailed, Unreachable
from runner.machine import Machine

CONNECT_TIMEOUT_S = 15
# AES-GCM first: with AES-NI it costs asyncssh (via `cryptography`) far less CPU per byte than
# ChaCha20-Poly1305, which matters for big uploads (see benchmarks/upload_vs_rsync.py).
CIPHERS = os.environ.get("TRAINRIG_SSH_CIPHERS", "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr").split(",")


def fingerprints(keys: tuple[str, ...]) -> str:
    out = []
    for k in keys:
        key = asyncssh.import_public_key(k)
        out.append(f"{key.get_algorithm()} {key.get_fingerprint()}")
    return ", ".join(out)


def _why(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "no answer within the time limit"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return "unknown host name"
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


@asynccontextmanager
async def connect(machine: Machine, timeout: float = CONNECT_TIMEOUT_S) -> AsyncIterator[asyncssh.SSHClientConnection]:
    trusted = [asyncssh.import_public_key(k) for k in machine.host_keys]
    options: dict = {}
    if machine.client_key:
        options.update(client_keys=[machine.client_key], agent_path=None)
    where = f"{machine.host}:{machine.port}"
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                machine.host, machine.port, username=machine.user, known_hosts=(trusted, [], []),
                config=[], keepalive_interval=15, keepalive_count_max=4, encryption_algs=CIPHERS, **options,
            ),
            timeout,
        )
    except asyncssh.HostKeyNotVerifiable as e:
        raise HostKeyMismatch(
            f"{where} presented a host key that is not the pinned one (expected {fingerprints(machine.host_keys)}); "
            "refusing to connect: if the machine was reinstalled, check its new key and update known_hosts."
        ) from e
    except asyncssh.PermissionDenied as e:
        raise AuthFailed(
            f"{machine.user}@{where} refused our key: add your public key to its authorized_keys, "
            "or give the right one with --identity."
        ) from e
    except (OSError, asyncio.TimeoutError) as e:
        why = _why(e)
        raise Unreachable(f"cannot reach {where} over SSH ({why}): check the address, the port and that its SSH server runs.") from e
    except asyncssh.Error as e:
        raise Unreachable(f"SSH to {where} failed: {e.reason}.") from e
    try:
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


async def run(conn: asyncssh.SSHClientConnection, argv: list[str], stdin: bytes | None = None) -> asyncssh.SSHCompletedProcess:
    """Run `argv` on the machine; every word is quoted, so no user string is read by its shell."""
    try:
        return await conn.run(shlex.join(argv), input=stdin, encoding=None, check=False)
    except asyncssh.Error as e:
        raise RemoteFailed(f"the connection to the machine broke while running {argv[0]}: {e.reason}") from e
