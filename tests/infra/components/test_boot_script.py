"""The boot scripts: valid shell / cloud-config, keys written verbatim, nothing user-given executed."""

import subprocess
from dataclasses import replace

import pytest

from infra.components.boot_script import _write_file, aws_cloud_config, gcp_startup_script
from tests.infra.components.harness import HOST_KEY


def test_gcp_script_is_valid_bash_that_pins_the_host_key_and_schedules_the_failsafe():
    script = gcp_startup_script(HOST_KEY, failsafe_minutes=90)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert script.startswith("#!/bin/bash\n")
    assert HOST_KEY.private_openssh.strip() in script
    assert "install -m 0600 /dev/null /etc/ssh/ssh_host_ed25519_key\n" in script
    assert "install -m 0644 /dev/null /etc/ssh/ssh_host_ed25519_key.pub\n" in script
    assert "set_host_keys = false" in script and "/etc/default/instance_configs.cfg" in script
    assert "systemctl restart ssh" in script
    # The failsafe comes before anything that could fail under `set -e`.
    lines = script.splitlines()
    assert lines.index("shutdown -h +90") == lines.index("set -euo pipefail") + 1


def test_a_written_file_holds_the_text_verbatim_and_runs_none_of_it(tmp_path):
    evil = "ssh-ed25519 AAAA $(touch pwned) `touch pwned2` ${HOME} 'quote\" ; touch pwned3"
    target = tmp_path / "dir with space" / "key.pub"
    target.parent.mkdir()
    subprocess.run(
        ["bash", "-e"], input=_write_file(str(target), evil, "0640"), text=True, check=True, cwd=tmp_path
    )
    assert target.read_text() == evil + "\n"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert not list(tmp_path.glob("pwned*"))


def test_refuses_a_host_key_that_is_not_ed25519_or_holds_the_delimiter():
    with pytest.raises(ValueError, match="ed25519"):
        gcp_startup_script(replace(HOST_KEY, public_openssh="ssh-rsa AAAAB3 host"), 60)
    with pytest.raises(ValueError, match="delimiter"):
        aws_cloud_config(replace(HOST_KEY, private_openssh="x\nTRAINRIG_END_OF_KEY\nrm -rf /\n"), 60)


def test_aws_cloud_config_replaces_the_host_keys_and_powers_off_without_a_shell():
    yaml = pytest.importorskip("yaml")
    text = aws_cloud_config(HOST_KEY, failsafe_minutes=780)
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["ssh_deletekeys"] is True
    assert config["ssh_keys"] == {
        "ed25519_private": HOST_KEY.private_openssh,
        "ed25519_public": HOST_KEY.public_openssh,
    }
    assert config["runcmd"] == [["shutdown", "-h", "+780"]]


def test_aws_cloud_config_tells_the_machine_its_region():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(aws_cloud_config(HOST_KEY, failsafe_minutes=60, region="eu-west-1"))
    assert config["write_files"] == [
        {"path": "/etc/environment", "append": True, "content": "AWS_DEFAULT_REGION=eu-west-1\n"}
    ]
    assert "write_files" not in yaml.safe_load(aws_cloud_config(HOST_KEY, failsafe_minutes=60))


def _fake_tools(bin_dir, apt_ok_after: int) -> None:
    """dpkg says python3-venv is missing; apt-get logs its arguments and fails its first calls."""
    bin_dir.mkdir()
    (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{bin_dir}/apt.log"\n'
        f'n=$(wc -l < "{bin_dir}/apt.log")\n'
        f'[ "$n" -gt {apt_ok_after} ]\n'
    )
    for tool in ("dpkg", "apt-get"):
        (bin_dir / tool).chmod(0o755)


@pytest.mark.parametrize("apt_ok_after,installed", [(0, True), (1, True), (9, False)],
                         ids=["installs", "updates-then-installs", "cannot-install"])
def test_python3_venv_is_installed_at_boot_and_a_failure_never_stops_the_script(tmp_path, apt_ok_after, installed):
    from infra.components.boot_script import INSTALL_VENV

    _fake_tools(tmp_path / "bin", apt_ok_after)
    script = "set -euo pipefail\n" + INSTALL_VENV + "echo went-on\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "went-on"  # the host key and the rest still follow
    calls = (tmp_path / "bin" / "apt.log").read_text().splitlines()
    assert calls[0].endswith("install -y python3-venv")
    if apt_ok_after == 1:
        assert calls[1].endswith(" update") and calls[2].endswith("install -y python3-venv")
    assert ("python3-venv could not be installed" in done.stderr) is (not installed)
