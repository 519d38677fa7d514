"""A real OpenSSH sshd on a loopback port, for the ssh target's test and the benchmarks."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


class SshdUnavailable(Exception):
    pass


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    dir: Path
    user: str

    @property
    def client_key(self) -> Path:
        return self.dir / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def ssh_args(self) -> list[str]:
        """Options for OpenSSH's own `ssh` client (used by the peers in the benchmarks)."""
        return ["-p", str(self.port), "-i", str(self.client_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd(d: Path) -> Sshd:
    if SSHD is None:
        raise SshdUnavailable("OpenSSH's sshd is not installed (Debian: apt-get install openssh-server); .ci/run installs it")
    d.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    for name, key in (("host_key", host_key), ("client_key", client_key)):
        (d / name).write_bytes(key.export_private_key())
        os.chmod(d / name, 0o600)
    (d / "authorized_keys").write_bytes(client_key.export_public_key())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=open(d / "sshd.log", "w"))
    end = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > end:
                proc.kill()
                raise SshdUnavailable(f"sshd could not start here: {(d / 'sshd.log').read_text().strip()[-300:]}") from None
            time.sleep(0.05)
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
    return Sshd(proc, port, d, getpass.getuser())
