"""The `ssh` target against a real OpenSSH sshd, started by the test on a loopback port."""

from __future__ import annotations

import sys
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


def test_metrics_and_tensorboard_through_openssh(trainrig, popen_trainrig, sshd, tmp_path):
    """The helpers travel with the tools to a real sshd's machine, and OpenSSH forwards the tunnel."""
    import re
    import signal
    import urllib.request

    code = make_code(tmp_path / "sshboard", """
        import trainrig_helpers as th
        for step in range(3):
            th.log_metrics(step, loss=1.0 / (step + 1))
    """)
    # The machine's Python is this one (its TensorBoard, as a GPU box's conda env would have it), not
    # whatever python3 the login shell finds first.
    args = ["--target", "ssh", "--host", f"{sshd.user}@127.0.0.1:{sshd.port}",
            "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts), "--python", sys.executable]
    assert trainrig("up", str(code), "--dataset-name", "none", *args).code == 0
    try:
        assert trainrig("start", "sshboard-none").code == 0
        metrics = trainrig("logs", "sshboard-none", "--metrics")
        assert metrics.code == 0 and metrics.out.splitlines() == [
            "step      0  loss 1", "step      1  loss 0.5", "step      2  loss 0.333333"]
        try:
            import tensorboard  # noqa: F401
        except ImportError as e:
            pytest.skip(f"tensorboard is not installed here, its tunnel is not tried: {e}")
        p = popen_trainrig("tensorboard", "sshboard-none", "--port", "16006")
        line = p.stderr.readline()
        m = re.search(r"(http://localhost:\d+/)", line)
        assert m, line
        assert urllib.request.urlopen(m.group(1) + "data/runs", timeout=30).read() in (b"[]", b'["tensorboard"]')
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
    finally:
        assert trainrig("down", "sshboard-none", "--stop", "--discard-outputs").code == 0


def test_a_python_the_machine_does_not_have_is_one_sentence(trainrig, sshd, tmp_path, state_home):
    code = make_code(tmp_path / "nopy", "print('x')\n")
    done = trainrig("up", str(code), "--dataset-name", "none", "--target", "ssh", "--host", f"{sshd.user}@127.0.0.1:{sshd.port}",
                    "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts), "--python", "/no/such/python")
    assert done.code == 2
    [line] = [ln for ln in done.err.splitlines() if ln.startswith("error:")]
    assert "/no/such/python" in line and "--python" in line
    assert not (state_home / "runs" / "nopy-none").exists()
