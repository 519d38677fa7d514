"""Telemetry on the machine: nvidia-smi's output parsed (a pure function, fed output in the real
format, since no GPU is lent to these tests), this machine's own figures, the disk rule."""

from __future__ import annotations

import time

from runner.remote import telemetry
from runner.remote.telemetry import GpuSample, Sample

# `nvidia-smi --query-gpu=<telemetry.QUERY> --format=csv,noheader,nounits`, in the format drivers
# print it: a busy T4 and an idle A100 whose power reading is not supported.
TWO_GPUS = """\
0, Tesla T4, 87, 10240, 15360, 71, 62.45, 70.00
1, NVIDIA A100-SXM4-80GB, [N/A], 1, 81920, 33, [Not Supported], 400.00
"""


def test_nvidia_smi_rows_become_gpu_samples_with_unknowns_as_none():
    assert telemetry.parse_nvidia_smi(TWO_GPUS) == [
        GpuSample(0, "Tesla T4", 87.0, 10240.0, 15360.0, 71.0, 62.45, 70.0),
        GpuSample(1, "NVIDIA A100-SXM4-80GB", None, 1.0, 81920.0, 33.0, None, 400.0),
    ]


def test_odd_nvidia_smi_lines_are_skipped_and_commas_in_names_kept():
    text = "\n" + "garbage\n" + "No devices were found\n" + "0, Odd, Name, 5, 1, 2, [Unknown Error], 10.5, 20\n"
    [gpu] = telemetry.parse_nvidia_smi(text)
    assert gpu.name == "Odd, Name" and gpu.utilization_percent == 5.0 and gpu.temperature_c is None
    assert telemetry.parse_nvidia_smi("") == []


def test_a_machine_without_nvidia_smi_says_so_and_still_reports_cpu_memory_and_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere on it
    sampler = telemetry.Sampler(str(tmp_path))
    time.sleep(0.1)  # CPU use is measured between two readings
    s = sampler.sample()
    assert s.gpus == [] and s.gpu_note == telemetry.NO_GPU
    assert s.disk_free_mb > 0 and s.disk_total_mb >= s.disk_free_mb
    assert 0 < s.memory_used_mb < s.memory_total_mb
    assert s.cpu_percent is not None and 0.0 <= s.cpu_percent <= 100.0
    assert Sample.from_dict(s.to_dict()) == s


def test_the_disk_is_nearly_full_under_5_gib_or_a_tenth_of_a_small_disk():
    def warn(free, total, below=None):  # type: ignore[no-untyped-def]
        return telemetry.disk_warning(Sample(0.0, disk_free_mb=free, disk_total_mb=total), below)

    assert warn(6000, 500_000) == ""
    assert "nearly full: 4000 MB free of 500000 MB" in warn(4000, 500_000)
    assert warn(1500, 10_000) == "" and warn(900, 10_000) != ""
    assert warn(100_000, 500_000, below=200_000) != ""
    assert warn(None, None) == ""


def test_an_nvidia_smi_that_never_answers_is_killed_and_named(tmp_path, monkeypatch):
    # What a GPU fallen off the bus does to nvidia-smi: it hangs. The sampler must go on.
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nsleep 30\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path) + ":/usr/bin:/bin")
    monkeypatch.setattr(telemetry, "SMI_TIMEOUT_S", 1)
    t0 = time.monotonic()
    gpus, note = telemetry.query_gpus()
    assert time.monotonic() - t0 < 5
    assert gpus == [] and "did not answer within 1s" in note
