"""Facts about the machine for the run manifest: CPU, memory, GPUs (from nvidia-smi when present)."""

import os
import platform
import shutil
import socket
import subprocess

from .status import Gpu, MachineFacts


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def gpus():
    """(GPUs, note); no nvidia-smi is a fact ('no NVIDIA GPU'), not an error."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return [], "no nvidia-smi on this machine: no NVIDIA GPU"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], "nvidia-smi failed: %s" % e
    if out.returncode != 0:
        return [], "nvidia-smi failed: %s" % (out.stderr.strip() or out.stdout.strip())[:200]
    found = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            mem = int(float(parts[1])) if parts[1].replace(".", "", 1).isdigit() else 0
            found.append(Gpu(name=parts[0], memory_mb=mem, driver=parts[2]))
    return found, ""


def collect():
    found, note = gpus()
    return MachineFacts(
        hostname=socket.gethostname(),
        os=platform.platform(),
        cpu_model=_cpu_model(),
        cpus=os.cpu_count() or 0,
        memory_gb=_memory_gb(),
        python=platform.python_version(),
        gpus=found,
        gpu_note=note,
    )
