"""Bad input: one clear sentence, exit code 2, nothing started (no run in the journal)."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import make_code, record


def one_error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].replace("e.g. ", "").count(". ") == 0, "one sentence"
    return errors[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["run", "{tmp}/nope", "--dataset-name", "d"], "code folder {tmp}/nope does not exist"),
        (["run", "{tmp}/noentry", "--dataset-name", "d"], "no entry point found"),
        (["run", "{tmp}/ok", "--code-name", "My_Code", "--dataset-name", "d"], "'My_Code' is not valid"),
        (["run", "{tmp}/ok", "--dataset-name", "d", "--dataset", "{tmp}/missing"], "dataset folder {tmp}/missing does not exist"),
        (["run", "{tmp}/ok", "--dataset-name", "d", "--max-runtime", "soon"], "is not a duration"),
        (["run", "{tmp}/ok", "--dataset-name", "d", "--target", "moon"], "--target 'moon' is not known"),
        (["run", "{tmp}/ok", "--dataset-name", "d", "--env", "NOEQUALS"], "KEY=VALUE"),
        (["logs", "no-such-run"], "there is no run 'no-such-run'"),
        (["run", "{tmp}/ok", "--dataset-name", "d", "--python", "/usr/bin/python3"], "--python is only for --target ssh"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(trainrig, tmp_path, state_home, args, expected):
    make_code(tmp_path / "ok", "print('x')\n")
    (tmp_path / "noentry").mkdir()
    (tmp_path / "noentry" / "model.py").write_text("")
    before = sorted(p.name for p in (state_home / "runs").iterdir()) if (state_home / "runs").exists() else []
    done = trainrig(*[a.format(tmp=tmp_path) for a in args])
    assert done.code == 2
    assert expected.format(tmp=tmp_path) in one_error_line(done.err)
    after = sorted(p.name for p in (state_home / "runs").iterdir()) if (state_home / "runs").exists() else []
    assert after == before


def test_requirements_pip_cannot_install_fail_the_run_with_pips_words_and_a_hint_that_works(trainrig, tmp_path, state_home):
    # --no-index keeps the test off the network: pip must fail at once, as it would for a typo.
    code = make_code(tmp_path / "badreq", "print('trained')\n", requirements="--no-index\ntrainrig-no-such-package==1.0\n")
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert done.code == 1  # the run's failure; 2 is bad input with nothing started
    assert "pip could not install requirements.txt" in done.err
    assert "| ERROR: " in done.err and "trainrig-no-such-package" in done.err
    assert "trained" not in done.out
    assert record(state_home, "badreq-none")["state"] == "destroyed"
    assert "`trainrig run badreq-none`" in done.err
    # The hint, as printed, after the fix: the destroyed run is provisioned again from its record.
    (code / "requirements.txt").write_text("")
    again = trainrig("run", "badreq-none", "--outputs", str(tmp_path / "out"))
    assert again.code == 0, again.err
    assert again.out == "trained\n"


def test_a_failing_install_script_is_named_with_its_own_lines_and_exit_1(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "badscript", "print('trained')\n", **{"install.sh": "echo fetching the object detection API\nexit 7\n"})
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        done = trainrig("start", "badscript-none")
        assert done.code == 1
        assert "install script install.sh failed (exit 7)" in done.err
        assert "| fetching the object detection API" in done.err
        assert "`trainrig start badscript-none`" in done.err  # the machine is kept: start works again
        (code / "install.sh").write_text("echo fixed\n")
        assert trainrig("start", "badscript-none").code == 0
    finally:
        assert trainrig("down", "badscript-none", "--yes").code == 0


def test_unreachable_ssh_host(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "far", "print('x')\n")
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:1 {key}")
    done = trainrig("up", str(code), "--dataset-name", "none", "--target", "ssh", "--host", "me@127.0.0.1:1",
                    "--known-hosts", str(known))
    assert done.code == 2
    assert "cannot reach 127.0.0.1:1 over SSH" in one_error_line(done.err)
    assert not (state_home / "runs" / "far-none").exists()


def test_ssh_host_missing_from_known_hosts_is_never_trusted(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "unknown", "print('x')\n")
    known = tmp_path / "known_hosts"
    known.write_text("")
    done = trainrig("up", str(code), "--dataset-name", "none", "--target", "ssh", "--host", "me@127.0.0.1:2",
                    "--known-hosts", str(known))
    assert done.code == 2
    assert "[127.0.0.1]:2 is not in" in one_error_line(done.err) and "ssh-keyscan -p 2 127.0.0.1" in done.err
    assert not (state_home / "runs" / "unknown-none").exists()


def test_a_changed_host_key_is_refused_naming_the_expected_one(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "pinned", "print('x')\n")
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    path: Path = state_home / "runs" / "pinned-none" / "record.json"
    try:
        rec = json.loads(path.read_text())
        real = rec["machine"]["host_keys"]
        impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
        rec["machine"]["host_keys"] = [impostor]
        path.write_text(json.dumps(rec))
        done = trainrig("start", "pinned-none")
        line = one_error_line(done.err)
        assert done.code == 2
        expected = asyncssh.import_public_key(impostor).get_fingerprint()
        assert "not the pinned one" in line and expected in line
        rec["machine"]["host_keys"] = real
        path.write_text(json.dumps(rec))
    finally:
        assert trainrig("down", "pinned-none", "--stop", "--discard-outputs").code == 0


def test_a_refusal_after_the_spec_is_built_is_the_only_line_printed(trainrig, tmp_path, state_home):
    # The entry point's note ("running train.py as ...") is said only once the input is known good.
    make_code(tmp_path / "ok", "print('x')\n")
    done = trainrig("run", str(tmp_path / "ok"), "--dataset-name", "d", "--max-restarts", "2")
    assert done.code == 2
    printed = [line for line in (done.out + done.err).splitlines() if line.strip()]
    assert len(printed) == 1 and printed[0] == one_error_line(done.err)
