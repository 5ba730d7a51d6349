"""benchmarks/gpu.py in its --smoke mode: the GPU benchmark's three modes (fp32 eager, bf16 +
channels_last, and with compile) run end to end on this CPU, through the harness's paths."""

from __future__ import annotations

import sys

import pytest
import torch

from harness.paths import builtin_suites_dir

BENCHMARKS = builtin_suites_dir().parent / "benchmarks"


@pytest.fixture
def gpu_benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts its checkout first
    import gpu

    return gpu


def test_the_gpu_benchmark_smoke_mode_runs_every_mode_on_cpu(gpu_benchmark, capsys):
    compile_before = torch.compile
    assert gpu_benchmark.main(["--smoke", "--model", "resnet18", "--device", "cpu"]) == 0
    assert torch.compile is compile_before
    out = capsys.readouterr().out
    for mode in gpu_benchmark.MODES:
        line = next(row for row in out.splitlines() if row.strip().startswith(mode + "  "))
        assert line.count("n/a") == 2  # no GPU memory to report on a CPU
    assert "resnet18 width 4" in out and "AT img/s" in out and "AA img/s" in out
