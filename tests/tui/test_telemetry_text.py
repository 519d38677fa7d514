"""`trainrig status` puts the machine's telemetry in words (a GPU machine's sample as the
supervisor writes it, since no GPU is lent to these tests)."""

from runner.remote.telemetry import GpuSample, Sample, parse_nvidia_smi
from tui.telemetry_text import telemetry_lines


def test_a_gpu_machine_in_words():
    gpus = parse_nvidia_smi("0, Tesla T4, 87, 10240, 15360, 71, 62.45, 70.00\n")
    s = Sample(0.0, cpu_percent=35.2, memory_used_mb=3174.4, memory_total_mb=15974.4, disk_free_mb=40960.0,
               disk_total_mb=102400.0, gpus=gpus)
    assert telemetry_lines(s) == [
        "cpu 35%  memory 3.1/15.6 GB  disk 40.0 GB free of 100.0 GB",
        "gpu0 Tesla T4  87%  memory 10.0/15.0 GB  71 C  62 W",
    ]


def test_unknown_figures_are_question_marks_and_no_gpu_is_said():
    s = Sample(0.0, gpus=[GpuSample(1, "NVIDIA A100-SXM4-80GB", None, 1.0, 81920.0, 33.0, None, 400.0)])
    assert telemetry_lines(s)[1] == "gpu1 NVIDIA A100-SXM4-80GB  ?  memory 0.0/80.0 GB  33 C  ?"
    assert telemetry_lines(Sample(0.0, gpu_note="no nvidia-smi on this machine: no NVIDIA GPU"))[1].startswith("no nvidia-smi")
