"""`trainrig`'s argument parser. Imports only argparse, so `trainrig --help` stays fast."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  trainrig run examples/digits --code-name digits --dataset-name sklearn-digits --dataset examples/digits/data
  trainrig run ./yolo --module train --dataset ./beer --dataset-name beer --target ssh --host me@gpu-box
  trainrig logs digits-sklearn-digits -f
exit codes: 0 success, 1 the training failed, 2 bad input (nothing started), 130 interrupted,
  141 the reader of the log went away (`| head`): the training goes on"""


def spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", help="folder with your training code (requirements.txt and install.sh are used when present); "
                   "or the id of a gcp/aws run whose stacks/Pulumi.<run>.yaml describes it")
    p.add_argument("--code-name", help="name of the code (default: the folder's name); lowercase, digits, hyphens")
    p.add_argument("--dataset-name", help="name of the dataset; the run id is <code-name>-<dataset-name>")
    p.add_argument("--dataset", help="dataset: a local folder (uploaded incrementally) or gs://... / s3://... (pulled by the machine)")
    p.add_argument("--output-store", help="gs://BUCKET/PATH or s3://BUCKET/PATH: outputs and logs are synced to PATH/<run id>/ "
                   "(default: a folder on the machine)")
    entry = p.add_mutually_exclusive_group()
    entry.add_argument("--module", help="run `python -m MODULE --dataset_directory D --output_directory O --logs_directory L`")
    entry.add_argument("--command", help="run this command line instead (split like a shell would, not run by one)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable for the training (repeatable)")
    p.add_argument("--target", default="local", help="where to train: local (default), ssh, gcp or aws")
    p.add_argument("--host", help="for --target ssh: user@address[:port]")
    p.add_argument("--identity", help="for --target ssh: private key file (default: your SSH agent and default keys)")
    p.add_argument("--known-hosts", help="for --target ssh: known_hosts file with the host's key (default ~/.ssh/known_hosts)")
    p.add_argument("--python", help="for --target ssh: the Python on the machine whose packages the training sees "
                   "(e.g. a conda env's /opt/conda/envs/ml/bin/python; default: python3)")
    p.add_argument("--max-runtime", default="12h", help="stop the training after this long (e.g. 90m, 2h; default 12h)")
    p.add_argument("--sync-interval", default="60s", help="copy outputs and logs to the run's store this often (default 60s)")
    p.add_argument("--install-script", help="bash script in the code folder run before training (default: install.sh if present)")
    c = p.add_argument_group("gcp and aws (see `trainrig accelerators`)")
    c.add_argument("--accelerator", help="NAME or NAME:COUNT, e.g. T4, A10G:4, v5litepod-8")
    c.add_argument("--zone", help="gcp: the zone (default: gcloud's, else the catalog's first); aws: an availability zone")
    c.add_argument("--region", help="aws: the region (default: AWS_REGION / AWS_DEFAULT_REGION / the AWS config)")
    c.add_argument("--project", help="gcp: the project (default: GOOGLE_CLOUD_PROJECT / gcloud's)")
    c.add_argument("--spot", action="store_true", help="a spot (preemptible) machine: cheaper, may be taken back "
                   "(then trainrig resumes the training on a new machine, see --max-restarts)")
    p.add_argument("--max-restarts", type=int, metavar="N", help="bring up a new machine at most N times when the run's "
                   "machine is preempted or vanishes, resuming from the last checkpoint synced to the store "
                   "(default 3 with --spot, else 0; the local target needs --output-store)")
    c.add_argument("--disk-gb", type=int, help="boot disk size in GB (default 200)")
    c.add_argument("--ssh-from", help="CIDR allowed to SSH in (default: this computer's public address /32; "
                   "`anywhere` opens it to the internet)")
    c.add_argument("--image", help="override the image: a GCP image family or an AWS AMI name pattern")
    c.add_argument("--any-zone", action="store_true", help="gcp: when the zone has no capacity, try the catalog's "
                   "other zones for the accelerator (same region first, at most 6)")
    n = p.add_argument_group("several machines (local, gcp, aws)")
    n.add_argument("--nodes", type=int, default=1, metavar="N", help="train on N machines at once, rank 0 first "
                   "(default 1; each gets TRAINRIG_NODE_RANK, MASTER_ADDR, WORLD_SIZE, ...)")
    n.add_argument("--launcher", choices=("none", "torchrun"), default="none", help="start the training as given "
                   "(none, default) or through PyTorch's torchrun on each machine")
    n.add_argument("--outputs-from", choices=("rank0", "all"), default="rank0", help="whose outputs come home: "
                   "rank 0's (default) or every machine's, each under node-K/")


def _node(text: str) -> int | str:
    """`logs --node`: a rank (0, 1, ...) or `all`."""
    if text == "all":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is no node: give a rank (0 is the first machine) or all")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trainrig", description="Train your own script on a machine with a GPU, or on this computer, and bring the model home.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=False, metavar="COMMAND")  # none: the terminal UI
    ui = sub.add_parser("ui", help="the terminal UI (also `trainrig` alone): every run, one run in depth, every action")
    ui.add_argument("--outputs", default="outputs", help="folder for downloaded runs (default ./outputs)")
    run = sub.add_parser("run", help="the whole lifecycle: up, start, follow, download, down")
    spec_options(run)
    run.add_argument("--outputs", default="outputs", help="folder for downloaded runs (default ./outputs)")
    up = sub.add_parser("up", help="provision a run's machine")
    spec_options(up)
    start = sub.add_parser("start", help="upload code and dataset, start the training, follow its log")
    start.add_argument("run")
    start.add_argument("--no-follow", action="store_true", help="return once the training has started")
    logs = sub.add_parser("logs", help="print a run's training log")
    logs.add_argument("run")
    logs.add_argument("-f", "--follow", action="store_true", help="print from the start and follow until the training ends")
    logs.add_argument("--node", type=_node, default=0, metavar="K|all",
                      help="a multi-node run: the log of the machine of rank K (default 0), or of all of them")
    logs.add_argument("--metrics", action="store_true",
                      help="print the training's metric points (trainrig_helpers.log_metrics) instead of its log")
    tb = sub.add_parser("tensorboard", help="TensorBoard on the run's machine, forwarded to localhost through SSH")
    tb.add_argument("run")
    tb.add_argument("--port", type=int, default=6006, help="port on this computer (default 6006, or the next free one)")
    st = sub.add_parser("status", help="a run's state and its machine's status")
    st.add_argument("run")
    st.add_argument("--json", action="store_true")
    ls = sub.add_parser("ls", help="all runs")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--stacks", action="store_true", help="also ask the Pulumi backend for stacks this computer has no "
                    "live run for (made elsewhere, or a lost journal): they may still hold cloud resources")
    stop = sub.add_parser("stop", help="stop the training (outputs are synced); the machine stays (a cloud machine powers off)")
    stop.add_argument("run")
    dl = sub.add_parser("download", help="download outputs and logs into <outputs>/<UTC>_<code>_<dataset>/ "
                        "(one cut off is resumed in its folder)")
    dl.add_argument("run")
    dl.add_argument("--outputs", default="outputs")
    ds = sub.add_parser("dataset", help="upload or download a dataset folder to or from a bucket (gs://, s3://)")
    ds_sub = ds.add_subparsers(dest="dataset_cmd", required=True, metavar="ACTION")
    ds_push = ds_sub.add_parser("push", help="upload a local folder to a bucket location, only what changed")
    ds_push.add_argument("folder")
    ds_push.add_argument("uri", help="gs://bucket/path or s3://bucket/path (or another folder)")
    ds_pull = ds_sub.add_parser("pull", help="download a bucket location into a local folder, only what changed")
    ds_pull.add_argument("uri")
    ds_pull.add_argument("folder")
    for p_ in (ds_push, ds_pull):
        p_.add_argument("--delete", action="store_true", help="also delete what the source no longer has")
    down = sub.add_parser("down", help="destroy everything the run created")
    down.add_argument("run")
    down.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    down.add_argument("--discard-outputs", action="store_true", help="destroy the run even if its outputs were never downloaded")
    down.add_argument("--stop", action="store_true", help="stop a training that still runs first (otherwise down refuses)")
    down.add_argument("--outputs", default="outputs", help="where a download chosen at the prompt goes (default ./outputs)")
    acc = sub.add_parser("accelerators", help="the accelerator catalog: machines, memory, prices, places")
    acc.add_argument("--cloud", choices=("gcp", "aws"), help="only this cloud's")
    sub.add_parser("pulumi-env", help="print the exports that make plain `pulumi` see trainrig's stacks (eval it)")
    from tui.doctor_cli import add_parser as add_doctor
    from tui.ssh_cli import add_parser as add_ssh
    from tui.sweep_cli import add_parser as add_sweep

    add_doctor(sub)
    add_ssh(sub)
    add_sweep(sub)
    return p

