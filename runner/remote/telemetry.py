"""Machine telemetry: GPUs (from nvidia-smi), CPU, memory and the run folder's disk, sampled by
the supervisor every few seconds into logs/telemetry.jsonl (one JSON object per line), which the
runner follows like the log. No nvidia-smi is a fact about the machine, reported as such.
"""

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

FILENAME = "telemetry.jsonl"
NO_GPU = "no nvidia-smi on this machine: no NVIDIA GPU"
# What nvidia-smi is asked, in this order; `parse_nvidia_smi` reads the same columns.
QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,power.limit"
SMI_TIMEOUT_S = 10
GIB = 1 << 30


@dataclass
class GpuSample:
    index: int
    name: str
    utilization_percent: Optional[float] = None  # None: nvidia-smi said [N/A] or [Not Supported]
    memory_used_mb: Optional[float] = None
    memory_total_mb: Optional[float] = None
    temperature_c: Optional[float] = None
    power_w: Optional[float] = None
    power_limit_w: Optional[float] = None


@dataclass
class Sample:
    wall_time: float
    cpu_percent: Optional[float] = None  # of all cores; None for the first sample (no interval yet)
    memory_used_mb: Optional[float] = None
    memory_total_mb: Optional[float] = None
    disk_free_mb: Optional[float] = None  # of the file system holding the run folder
    disk_total_mb: Optional[float] = None
    gpus: List[GpuSample] = field(default_factory=list)
    gpu_note: str = ""  # why there are no GPU figures ("no nvidia-smi ...", "nvidia-smi failed: ...")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        gpus = [GpuSample(**{k: v for k, v in g.items() if k in GpuSample.__dataclass_fields__}) for g in d.pop("gpus", None) or []]
        known = set(cls.__dataclass_fields__)
        return cls(gpus=gpus, **{k: v for k, v in d.items() if k in known})


def _figure(text):
    """A number from nvidia-smi's CSV, or None for [N/A], [Not Supported], [Unknown Error], ''."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None


def parse_nvidia_smi(text):
    """GPU samples from `nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits` output.
    Lines that do not fit are skipped (a GPU name may hold commas: the fields around it are fixed)."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 8:
            continue
        index, numbers = parts[0], parts[-6:]
        name = ", ".join(parts[1:-6])
        if not index.isdigit():
            continue
        util, used, total, temp, power, limit = (_figure(p) for p in numbers)
        found.append(GpuSample(int(index), name, util, used, total, temp, power, limit))
    return found


def query_gpus():
    """(GPU samples, note): the note says why there are none, when there are none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return [], NO_GPU
    try:
        proc = subprocess.Popen([smi, "--query-gpu=" + QUERY, "--format=csv,noheader,nounits"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as e:
        return [], "nvidia-smi failed: %s" % e
    try:
        out, err = proc.communicate(timeout=SMI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # A GPU fallen off the bus leaves nvidia-smi in uninterruptible sleep: kill it, never wait
        # for it (subprocess.run would), so the sampler and the final sync go on.
        proc.kill()
        return [], "nvidia-smi did not answer within %ds" % SMI_TIMEOUT_S
    if proc.returncode != 0:
        return [], "nvidia-smi failed: %s" % (err.strip() or out.strip())[:200]
    gpus = parse_nvidia_smi(out)
    return gpus, "" if gpus else "nvidia-smi listed no GPU"


def _cpu_times():
    """(busy, total) jiffies of all cores since boot, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def _memory_mb():
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None, None
    if "MemTotal" not in info or "MemAvailable" not in info:
        return None, None
    return round((info["MemTotal"] - info["MemAvailable"]) / 1024, 1), round(info["MemTotal"] / 1024, 1)


def disk_mb(path):
    st = os.statvfs(path)
    return round(st.f_bavail * st.f_frsize / 2 ** 20, 1), round(st.f_blocks * st.f_frsize / 2 ** 20, 1)


def low_disk_mb(total_mb, warn_below_mb=None):
    """The free space under which the disk counts as nearly full: 5 GiB, or a tenth of a small disk."""
    if warn_below_mb is not None:
        return warn_below_mb
    return min(5 * 1024.0, total_mb / 10)


def disk_warning(sample, warn_below_mb=None):
    """One sentence when the run folder's disk is nearly full, else ''."""
    if sample.disk_free_mb is None or sample.disk_total_mb is None:
        return ""
    if sample.disk_free_mb >= low_disk_mb(sample.disk_total_mb, warn_below_mb):
        return ""
    return ("the machine's disk is nearly full: %.0f MB free of %.0f MB; the training will fail when it fills up "
            "(free space, or write fewer checkpoints)" % (sample.disk_free_mb, sample.disk_total_mb))


class Sampler:
    def __init__(self, disk_path):
        self.disk_path = disk_path
        self._cpu = _cpu_times()

    def sample(self):
        s = Sample(wall_time=round(time.time(), 3))
        cpu = _cpu_times()
        if cpu is not None and self._cpu is not None and cpu[1] > self._cpu[1]:
            s.cpu_percent = round(100.0 * (cpu[0] - self._cpu[0]) / (cpu[1] - self._cpu[1]), 1)
        self._cpu = cpu
        s.memory_used_mb, s.memory_total_mb = _memory_mb()
        try:
            s.disk_free_mb, s.disk_total_mb = disk_mb(self.disk_path)
        except OSError:
            pass
        s.gpus, s.gpu_note = query_gpus()
        return s


def append(path, sample):
    """One line, written whole and flushed: a follower sends whole lines only."""
    with open(path, "a") as f:
        f.write(json.dumps(sample.to_dict()) + "\n")
