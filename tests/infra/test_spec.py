from pathlib import Path

import pytest

from infra.errors import BadInput
from infra.spec import RunSpec, SshHost, build_spec


def code(tmp_path: Path, *files: str) -> Path:
    d = tmp_path / "code"
    d.mkdir()
    for f in files:
        p = d / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("print('hi')\n")
    return d


def test_train_py_is_the_default_entry_point_and_trainrig_says_so(tmp_path):
    spec = build_spec(code=str(code(tmp_path, "train.py")), code_name="c", dataset_name="d")
    assert spec.entry.module == "train"
    assert any("train.py" in n for n in spec.notes)


def test_module_must_exist_in_code_folder(tmp_path):
    d = code(tmp_path, "pkg/trainer/__main__.py", "pkg/__init__.py")
    assert build_spec(code=str(d), code_name="c", dataset_name="d", module="pkg.trainer").entry.module == "pkg.trainer"
    with pytest.raises(BadInput, match="no nope.py"):
        build_spec(code=str(d), code_name="c", dataset_name="d", module="nope")


def test_command_is_split_never_given_to_a_shell(tmp_path):
    d = str(code(tmp_path))
    spec = build_spec(code=d, code_name="c", dataset_name="d", command="python x.py --name 'a b; rm -rf /'")
    assert spec.entry.command == ("python", "x.py", "--name", "a b; rm -rf /")
    with pytest.raises(BadInput, match="quotes"):
        build_spec(code=d, code_name="c", dataset_name="d", command="python 'x.py")


def test_no_entry_point(tmp_path):
    with pytest.raises(BadInput, match="no entry point found"):
        build_spec(code=str(code(tmp_path, "model.py")), code_name="c", dataset_name="d")


def test_missing_folders(tmp_path):
    with pytest.raises(BadInput, match="code folder .* does not exist"):
        build_spec(code=str(tmp_path / "nope"), code_name="c", dataset_name="d")
    with pytest.raises(BadInput, match="dataset folder .* does not exist"):
        build_spec(code=str(code(tmp_path, "train.py")), code_name="c", dataset_name="d", dataset=str(tmp_path / "x"))


def test_env_pairs(tmp_path):
    d = code(tmp_path, "train.py")
    spec = build_spec(code=str(d), code_name="c", dataset_name="d", env=["A=1", "B=x=y"])
    assert spec.env == (("A", "1"), ("B", "x=y"))
    with pytest.raises(BadInput, match="KEY=VALUE"):
        build_spec(code=str(d), code_name="c", dataset_name="d", env=["nope"])
    with pytest.raises(BadInput, match="set by trainrig"):
        build_spec(code=str(d), code_name="c", dataset_name="d", env=["TRAINRIG_OUTPUT_DIR=/tmp"])


def test_spec_round_trips_through_its_dict(tmp_path):
    d = code(tmp_path, "train.py")
    spec = build_spec(code=str(d), code_name="c", dataset_name="d", env=["A=1"], target="ssh", host="me@10.0.0.1:2200")
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_ssh_host_parsing():
    assert SshHost.parse("me@h.example:2222") == SshHost("me", "h.example", 2222)
    assert SshHost.parse("me@[::1]:22").address == "::1"
    for bad in ("me@", "me@host:99999", "a b"):
        with pytest.raises(BadInput, match="--host"):
            SshHost.parse(bad)


def test_ssh_target_needs_a_host(tmp_path):
    with pytest.raises(BadInput, match="needs --host"):
        build_spec(code=str(code(tmp_path, "train.py")), code_name="c", dataset_name="d", target="ssh")


def test_the_smallest_disk_follows_the_cloud_image():
    # GCP: a Deep Learning VM image takes 50 GB; AWS: the DLAMI asks for 100 GB (its snapshot, checked
    # again against the AMI found at `pulumi up`).
    from infra.cloud import MIN_DISK_GB, CloudOptions, build_cloud
    from infra.errors import BadInput

    assert MIN_DISK_GB == {"gcp": 50, "aws": 100}
    assert build_cloud("gcp", CloudOptions(accelerator="T4", project="p", zone="us-central1-a", disk_gb=50)).disk_gb == 50
    with pytest.raises(BadInput, match="--disk-gb 80 is too small for aws's Deep Learning image: give at least 100"):
        build_cloud("aws", CloudOptions(accelerator="T4", region="us-east-1", disk_gb=80))
    assert build_cloud("aws", CloudOptions(accelerator="T4", region="us-east-1", disk_gb=100)).disk_gb == 100


@pytest.mark.parametrize("target,image,ok", [
    ("gcp", "common-cu129-ubuntu-2204-nvidia-580", True),
    ("gcp", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *", False),
    ("aws", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *", True),
    ("aws", "dl;rm -rf", False),
])
def test_an_image_of_the_other_cloud_is_refused_in_one_sentence(target, image, ok):
    from infra.cloud import CloudOptions, build_cloud

    options = CloudOptions(accelerator="T4", project="p" if target == "gcp" else None, image=image,
                           zone="us-central1-a" if target == "gcp" else None, region="us-east-1" if target == "aws" else None)
    if ok:
        assert build_cloud(target, options).image == image
    else:
        with pytest.raises(BadInput, match=r"^--image .* is not (a Deep Learning VM image family|an AMI name pattern)"):
            build_cloud(target, options)
