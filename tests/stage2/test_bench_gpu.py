"""bench/bench_gpu.py, which only a lent GPU runs in full, stays runnable: its CPU dry run, the stage-1
MLLM part (bench/stage1_gpu.py at --scale tiny) included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a whole benchmark run (about a minute here)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_gpu.py"


def test_gpu_bench_dry_run():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(BENCH), "--dry-run", "--no-compile"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.strip().startswith("bf16 + channels-last") for line in lines)
    assert any("end to end" in line for line in lines)
    stage1 = [line for line in lines if line.startswith("RESULT gpu-stage1 samples/s ")]  # the tiny VLM, CPU
    assert len(stage1) == 1 and "projected" in stage1[0] and any("answers ok" in line for line in lines)
    assert lines[-1].startswith("RESULT gpu-train samples/s ")
