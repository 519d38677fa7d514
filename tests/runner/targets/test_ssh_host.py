"""The `ssh` target against a real OpenSSH sshd, started by the test on a loopback port."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import make_code, manifest, only_folder, record

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if SSHD is None:
        pytest.skip("OpenSSH's sshd is not installed (Debian: apt-get install openssh-server); .ci/run installs it")
    d = tmp_path_factory.mktemp("sshd")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (d / "host_key").write_bytes(host_key.export_private_key())
    (d / "client_key").write_bytes(client_key.export_private_key())
    for name in ("host_key", "client_key"):
        os.chmod(d / name, 0o600)
    (d / "authorized_keys").write_bytes(client_key.export_public_key())
    port = free_port()
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
                pytest.skip(f"sshd could not start here: {(d / 'sshd.log').read_text().strip()[-300:]}")
            time.sleep(0.05)
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
    yield {"port": port, "dir": d, "user": getpass.getuser()}
    proc.terminate()
    proc.wait(10)


def test_a_run_on_a_machine_reached_by_openssh(trainrig, sshd, tmp_path, state_home):
    d = sshd["dir"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "numbers.txt").write_text("1 2 3 4\n")
    code = make_code(tmp_path / "owned", """
        import argparse, os
        ap = argparse.ArgumentParser()
        for name in ("--dataset_directory", "--output_directory", "--logs_directory"):
            ap.add_argument(name)
        a = ap.parse_args()
        total = sum(int(x) for x in open(os.path.join(a.dataset_directory, "numbers.txt")).read().split())
        print(f"sum {total} on {os.uname().nodename}", flush=True)
        open(os.path.join(a.output_directory, "sum.txt"), "w").write(str(total))
    """)
    args = ["--target", "ssh", "--host", f"{sshd['user']}@127.0.0.1:{sshd['port']}",
            "--identity", str(d / "client_key"), "--known-hosts", str(d / "known_hosts")]
    done = trainrig("run", str(code), "--dataset", str(data), "--dataset-name", "numbers", "--outputs",
                    str(tmp_path / "out"), *args)
    assert done.code == 0, done.err
    assert "sum 10 on" in done.out
    assert "host key pinned" in done.err
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "sum.txt").read_text() == "10"
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and m["machine_address"].endswith(f"127.0.0.1:{sshd['port']}")
    assert record(state_home, "owned-numbers")["state"] == "destroyed"
    # destroy removed the run's folder on the machine, and nothing else of trainrig's there
    assert not (Path.home() / ".trainrig" / "runs" / "owned-numbers").exists()
    assert (Path.home() / ".trainrig" / "tools").is_dir()
