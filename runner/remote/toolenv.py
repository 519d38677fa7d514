"""The machine's small tool environment: a venv with the cloud storage clients the supervisor's
sync needs (boto3, google-cloud-storage), built once per package set and reused by every run.

Built with --system-site-packages, so a machine image that already has them installs nothing. It
holds no credentials: the clients find the machine's own identity (instance profile, service account).
"""

import os

from . import venv


def ensure(cache, packages, log_path):
    """The tool venv's python for `packages` (pip requirement strings); raises venv.InstallFailed."""
    requirements = "".join(p + "\n" for p in sorted(packages))
    folder, _ = venv.ensure(os.path.join(cache, "tools"), requirements, log_path)
    return os.path.join(folder, "bin", "python")
