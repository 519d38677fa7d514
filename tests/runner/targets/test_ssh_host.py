"""The `ssh` target against a real OpenSSH sshd, started by the test on a loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_code, manifest, only_folder, record
from tests.sshd import SshdUnavailable, start_sshd

@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def test_a_run_on_a_machine_reached_by_openssh(trainrig, sshd, tmp_path, state_home):
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
    args = ["--target", "ssh", "--host", f"{sshd.user}@127.0.0.1:{sshd.port}",
            "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    done = trainrig("run", str(code), "--dataset", str(data), "--dataset-name", "numbers", "--outputs",
                    str(tmp_path / "out"), *args)
    assert done.code == 0, done.err
    assert "sum 10 on" in done.out
    assert "host key pinned" in done.err
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "sum.txt").read_text() == "10"
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and m["machine_address"].endswith(f"127.0.0.1:{sshd.port}")
    assert record(state_home, "owned-numbers")["state"] == "destroyed"
    # destroy removed the run's folder on the machine, and nothing else of trainrig's there
    assert not (Path.home() / ".trainrig" / "runs" / "owned-numbers").exists()
    assert (Path.home() / ".trainrig" / "tools").is_dir()
