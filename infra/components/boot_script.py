"""What the machine runs at its first boot, before anyone logs in: install the host key trainrig made
for this run (so the client can pin it), and schedule the failsafe power-off.

No user string ever reaches a shell unquoted: keys go through here-docs with a quoted delimiter that
cannot be a line of a key, everything else through shlex.quote; the AWS cloud-config is JSON (which
is YAML), so every string is quoted by construction.
"""

from __future__ import annotations

import json
import shlex

from infra.stack_inputs import HostKey

_KEY_DIR = "/etc/ssh"
# An OpenSSH key is base64 between "-----BEGIN/END" lines: it never holds an underscore.
_END_OF_KEY = "TRAINRIG_END_OF_KEY"
# The Google guest agent regenerates host keys when it thinks the instance is new; this turns it off.
_GUEST_AGENT_CONFIG = "/etc/default/instance_configs.cfg"


def _check_ed25519(host_key: HostKey) -> None:
    if not host_key.public_openssh.startswith("ssh-ed25519 "):
        raise ValueError("the run's host key must be an ed25519 key (ssh-ed25519 ...)")
    for text in (host_key.private_openssh, host_key.public_openssh):
        if _END_OF_KEY in text:
            raise ValueError("the host key holds the here-doc delimiter; refusing to write it")


def _write_file(path: str, text: str, mode: str) -> str:
    """Shell lines that write `text` to `path` with `mode`, never expanding anything in `text`."""
    quoted = shlex.quote(path)
    return (
        f"install -m {mode} /dev/null {quoted}\n"  # create it with its final mode before writing
        f"cat > {quoted} <<'{_END_OF_KEY}'\n{text.strip()}\n{_END_OF_KEY}\n"
    )


# Ubuntu's python3 makes no venv without python3-venv, and the runner makes the tool venv as soon as it
# logs in. Installed before the run's host key is (GCP: earlier in the script; AWS: bootcmd runs before
# cloud-init's ssh module), so a login that passes the key check finds it. A failure is reported, not
# fatal: the host key and the failsafe must still be set. The lock timeout waits out the image's own
# unattended upgrades at first boot.
INSTALL_VENV = (
    "if command -v apt-get >/dev/null && ! dpkg -s python3-venv >/dev/null 2>&1; then\n"
    "  export DEBIAN_FRONTEND=noninteractive\n"
    "  apt-get -o DPkg::Lock::Timeout=300 install -y python3-venv"
    " || { apt-get -o DPkg::Lock::Timeout=300 update && apt-get -o DPkg::Lock::Timeout=300 install -y python3-venv; }"
    " || echo 'trainrig: python3-venv could not be installed' >&2\n"
    "fi\n"
)


def gcp_startup_script(host_key: HostKey, failsafe_minutes: int) -> str:
    """The `startup-script` metadata of a GCP GPU or TPU VM (runs as root at every boot)."""
    _check_ed25519(host_key)
    return "".join(
        [
            "#!/bin/bash\n",
            "# trainrig: pin the run's host key, then power off by itself after the maximum runtime.\n",
            "set -euo pipefail\n",
            # First, so that nothing failing below can leave the machine running.
            f"shutdown -h +{int(failsafe_minutes)}\n",
            INSTALL_VENV,
            _write_file(f"{_KEY_DIR}/ssh_host_ed25519_key", host_key.private_openssh, "0600"),
            _write_file(f"{_KEY_DIR}/ssh_host_ed25519_key.pub", host_key.public_openssh, "0644"),
            f"if ! grep -qs '^set_host_keys' {_GUEST_AGENT_CONFIG}; then\n",
            f"  printf '[InstanceSetup]\\nset_host_keys = false\\n' >> {_GUEST_AGENT_CONFIG}\n",
            "fi\n",
            "systemctl restart ssh 2>/dev/null || systemctl restart sshd\n",
        ]
    )


def aws_cloud_config(host_key: HostKey, failsafe_minutes: int, region: str | None = None) -> str:
    """The EC2 user data: cloud-init replaces the AMI's host keys by the run's and powers off later."""
    _check_ed25519(host_key)
    config: dict[str, object] = {
        "ssh_deletekeys": True,  # drop whatever host keys the AMI or a first boot made
        "ssh_keys": {
            "ed25519_private": host_key.private_openssh.strip() + "\n",
            "ed25519_public": host_key.public_openssh.strip(),
        },
        # A list runs without a shell, so nothing in it is interpreted.
        "runcmd": [["shutdown", "-h", f"+{int(failsafe_minutes)}"]],
        "bootcmd": [["sh", "-c", INSTALL_VENV]],
    }
    if region:
        # boto3 does not read the instance's region from its metadata: the bucket clients on the
        # machine (SSH sessions read /etc/environment) would sign for us-east-1 otherwise.
        config["write_files"] = [{"path": "/etc/environment", "append": True,
                                  "content": "AWS_DEFAULT_REGION=%s\n" % region}]
    return "#cloud-config\n" + json.dumps(config, indent=2) + "\n"
